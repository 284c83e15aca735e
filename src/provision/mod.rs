//! First-boot provisioning. A technician writes `medimitra-provision.toml` onto the boot partition; at boot
//! `medimitra-provision.service` runs `medimitra provision FILE` before the kiosk starts.
//!
//! The whole file is checked first ([`parse`], pure: every problem is named by its key, secrets are never echoed),
//! then against the kiosk's accounts; only a file without problems changes anything. Changes are staged next to
//! their targets and moved into place at the end, the configuration last. The file is removed either way (its
//! bytes overwritten first) so secrets do not stay on the FAT partition; a failure leaves
//! `medimitra-provision-error.txt` beside it and a record in the data dir that the kiosk's screen shows.

mod apply;
mod parse;

pub use apply::{Applied, Targets, apply};
pub use parse::{Plan, TlsPlan, Wifi, parse, wpa_psk};

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::store::Store;

/// The file's name on the boot partition.
pub const FILE_NAME: &str = "medimitra-provision.toml";
/// Written beside the provisioning file when it was refused (no secrets in it).
pub const ERROR_FILE_NAME: &str = "medimitra-provision-error.txt";
/// The outcome of the last provisioning, in the data dir.
const RESULT_FILE: &str = "provisioning.json";
/// A provisioning file is a few hundred bytes; anything much larger is not one.
const MAX_FILE_BYTES: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot read the provisioning file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("the provisioning file was refused and nothing was changed:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
    #[error("provisioning failed while {step}: {message}")]
    Apply { step: &'static str, message: String },
}

impl ProvisionError {
    fn apply(step: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Apply { step, message: e.to_string() }
    }
}

/// Reads and checks a provisioning file without changing anything (`medimitra provision --check`).
pub fn check_file(file: &Path, root: &Path) -> Result<Plan, ProvisionError> {
    let text = read(file)?;
    parse(&text, &|zone| zone_exists(root, zone)).map_err(ProvisionError::Invalid)
}

/// The whole first-boot step: read, check, apply, then remove the file (unless `keep_file`) and record the outcome
/// in the data dir and, on failure, beside the file.
pub fn run(file: &Path, config: &Config, targets: &Targets, keep_file: bool) -> Result<Applied, ProvisionError> {
    let outcome = read(file).and_then(|text| {
        let plan = parse(&text, &|zone| zone_exists(&targets.root, zone)).map_err(ProvisionError::Invalid)?;
        let store =
            Store::open_in(&config.storage.data_dir).map_err(|e| ProvisionError::apply("opening the store", e))?;
        apply(&plan, &store, targets)
    });
    let data_dir = &config.storage.data_dir;
    let error_file = file.with_file_name(ERROR_FILE_NAME);
    match &outcome {
        Ok(_) => {
            let _ = std::fs::remove_file(&error_file);
            record(data_dir, &[]);
        }
        Err(e) => {
            let problems = problems_of(e);
            record(data_dir, &problems);
            let text = format!(
                "Medi-Mitra provisioning failed at {}. Nothing was changed.\n\n{}\n\nFix these, then copy the \
                 whole file ({FILE_NAME}) onto this partition again.\n",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                problems.join("\n")
            );
            if let Err(err) = std::fs::write(&error_file, text) {
                tracing::warn!(path = %error_file.display(), error = %err, "could not write the provisioning error file");
            }
        }
    }
    // A file that could not be read is left alone: there may be nothing to remove.
    if !keep_file && !matches!(outcome, Err(ProvisionError::Read { .. })) {
        shred_and_remove(file);
    }
    outcome
}

fn problems_of(e: &ProvisionError) -> Vec<String> {
    match e {
        ProvisionError::Invalid(p) => p.clone(),
        other => vec![other.to_string()],
    }
}

fn read(file: &Path) -> Result<String, ProvisionError> {
    let err = |message: String| ProvisionError::Read { path: file.to_path_buf(), message };
    let meta = std::fs::metadata(file).map_err(|e| err(e.to_string()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(format!("it is {} bytes; a provisioning file is at most {MAX_FILE_BYTES}", meta.len())));
    }
    let bytes = std::fs::read(file).map_err(|e| err(e.to_string()))?;
    String::from_utf8(bytes).map_err(|_| err("it is not UTF-8 text".into()))
}

/// A time zone exists when the system's zone database has a file of that name.
fn zone_exists(root: &Path, zone: &str) -> bool {
    root.join("usr/share/zoneinfo").join(zone).is_file()
}

/// Overwrites the file's bytes before removing it: a FAT partition keeps a deleted file's clusters.
fn shred_and_remove(file: &Path) {
    if let Ok(meta) = std::fs::metadata(file)
        && let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(file)
    {
        use std::io::Write;
        let zeros = vec![0u8; usize::try_from(meta.len()).unwrap_or(0)];
        let _ = f.write_all(&zeros).and_then(|()| f.sync_all());
    }
    match std::fs::remove_file(file) {
        Ok(()) => {
            if let Some(dir) = file.parent()
                && let Ok(d) = std::fs::File::open(dir)
            {
                let _ = d.sync_all();
            }
        }
        Err(e) => tracing::warn!(path = %file.display(), error = %e, "could not remove the provisioning file"),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Outcome {
    ok: bool,
    at: String,
    problems: Vec<String>,
}

fn record(data_dir: &Path, problems: &[String]) {
    let outcome = Outcome {
        ok: problems.is_empty(),
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        problems: problems.to_vec(),
    };
    let path = data_dir.join(RESULT_FILE);
    let written = std::fs::create_dir_all(data_dir)
        .and_then(|()| std::fs::write(&path, serde_json::to_vec_pretty(&outcome).unwrap_or_default()));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "could not record the provisioning outcome");
    }
}

/// The problems of the last provisioning when it failed; `None` when it succeeded or never ran.
pub fn last_failure(data_dir: &Path) -> Option<Vec<String>> {
    let bytes = std::fs::read(data_dir.join(RESULT_FILE)).ok()?;
    let outcome: Outcome = serde_json::from_slice(&bytes).ok()?;
    (!outcome.ok).then_some(outcome.problems)
}
