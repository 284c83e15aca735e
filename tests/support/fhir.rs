//! FHIR R4 checked by an independent implementation: PyPI `fhir.resources` 6.1.0 (FHIR 4.0.1) in
//! `target/fhir-venv`, which `scripts/test` installs (`FHIR_PYTHON` names another interpreter that has it).

use std::io::Write;
use std::process::{Command, Stdio};

/// Panics with the validator's errors unless `bundle` is a valid FHIR R4 `Bundle` of `Observation`s.
pub fn assert_valid_r4(bundle: &serde_json::Value) {
    let python = std::env::var("FHIR_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/fhir-venv/bin/python").to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fhir/validate.py");
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} ({e}): run scripts/test, which installs fhir.resources there"));
    child.stdin.take().expect("stdin").write_all(bundle.to_string().as_bytes()).expect("write the bundle");
    let out = child.wait_with_output().expect("validator");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "not valid FHIR R4: {said}\n{bundle:#}");
}
