//! Any provisioning file on the boot partition: the parser must list problems or give a plan, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = medimitra::provision::parse(text, &|zone| zone == "Asia/Kolkata" || zone == "UTC");
});
