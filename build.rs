//! Compiles the patient's touch UI (`ui/kiosk.slint`) with its translations (`lang/<code>/LC_MESSAGES/medimitra.po`)
//! bundled into the binary.

fn main() {
    let config = slint_build::CompilerConfiguration::new()
        .with_bundled_translations("lang")
        // Accessible labels and roles in the element tree: the UI tests find buttons by their words.
        .with_debug_info(true);
    if let Err(e) = slint_build::compile_with_config("ui/kiosk.slint", config) {
        eprintln!("ui/kiosk.slint: {e}");
        std::process::exit(1);
    }
    println!("cargo:rerun-if-changed=lang");
}
