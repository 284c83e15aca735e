//! Any configuration file: loading must give a configuration or a clear error, never panic; a loaded one must pass
//! or fail its full check without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = medimitra::config::Config::from_toml(text, "fuzz") {
        let _ = config.check_all(text, "fuzz");
    }
});
