//! `medimitra`: the kiosk binary. All behaviour lives in the library; this only hands over to the command line.

fn main() -> std::process::ExitCode {
    medimitra::cli::main()
}
