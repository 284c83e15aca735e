//! Applying a checked [`Plan`]: the configuration file, the TLS files, the time zone, Wi-Fi and the first
//! technician account. Everything is staged beside its target first; the account is written in one transaction;
//! then the staged files are moved into place, the configuration last.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Plan, ProvisionError, TlsPlan, Wifi};
use crate::config::{Config, TlsMode};
use crate::core::{Actor, Role};
use crate::store::{NewAccount, Store, StoreError};

/// Where a provisioning writes.
#[derive(Debug, Clone)]
pub struct Targets {
    /// The configuration file to rewrite (on the device image: `/etc/medimitra/medimitra.toml`, a link into the
    /// data partition; the link's target is written).
    pub config_path: PathBuf,
    /// The system root for the time zone and Wi-Fi settings: `/` on a kiosk, a folder in tests.
    pub root: PathBuf,
}

/// What a provisioning did, for the technician.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub clinic_id: String,
    pub technician_created: bool,
    pub wifi: bool,
    pub tls_fingerprint: Option<String>,
}

const WPA_CONF: &str = "etc/wpa_supplicant/wpa_supplicant-wlan0.conf";
const WPA_WANTS: &str = "etc/systemd/system/multi-user.target.wants/wpa_supplicant@wlan0.service";
const WPA_UNIT: &str = "/lib/systemd/system/wpa_supplicant@.service";

/// A file (or link) written as `<target>.provision-new` and renamed over the target at the end.
struct Staged {
    target: PathBuf,
    staged: PathBuf,
}

#[derive(Default)]
struct Stage {
    files: Vec<Staged>,
    removals: Vec<PathBuf>,
}

impl Stage {
    /// The staged path beside `target`, its folder made and any leftover of an earlier run gone.
    fn prepare(target: &Path) -> Result<PathBuf, ProvisionError> {
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(".provision-new");
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(|e| ProvisionError::apply("creating a folder", e))?;
        }
        let staged = target.with_file_name(name);
        let _ = std::fs::remove_file(&staged);
        Ok(staged)
    }

    fn file(&mut self, target: PathBuf, bytes: &[u8], mode: u32) -> Result<(), ProvisionError> {
        let staged = Self::prepare(&target)?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&staged)?;
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            f.write_all(bytes)?;
            f.sync_all()
        };
        write().map_err(|e| ProvisionError::apply("writing a staged file", format!("{}: {e}", staged.display())))?;
        self.files.push(Staged { target, staged });
        Ok(())
    }

    fn link(&mut self, target: PathBuf, points_to: &str) -> Result<(), ProvisionError> {
        let staged = Self::prepare(&target)?;
        std::os::unix::fs::symlink(points_to, &staged)
            .map_err(|e| ProvisionError::apply("making a link", format!("{}: {e}", staged.display())))?;
        self.files.push(Staged { target, staged });
        Ok(())
    }

    fn discard(&self) {
        for f in &self.files {
            let _ = std::fs::remove_file(&f.staged);
        }
    }

    fn commit(self) -> Result<(), ProvisionError> {
        for path in &self.removals {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ProvisionError::apply("removing an old setting", format!("{}: {e}", path.display())));
                }
            }
        }
        for f in &self.files {
            std::fs::rename(&f.staged, &f.target).map_err(|e| {
                ProvisionError::apply("moving a file into place", format!("{}: {e}", f.target.display()))
            })?;
        }
        Ok(())
    }
}

/// Applies `plan`. Refuses (changing nothing) when the technician's e-mail belongs to a doctor's account or the
/// configuration file in place is broken.
pub fn apply(plan: &Plan, store: &Store, targets: &Targets) -> Result<Applied, ProvisionError> {
    let config_path = std::fs::canonicalize(&targets.config_path).unwrap_or_else(|_| targets.config_path.clone());
    let mut config = if config_path.exists() {
        Config::from_file(&config_path).map_err(|e| ProvisionError::Invalid(vec![e.to_string()]))?
    } else {
        Config::default()
    };

    let email = plan.technician_email.clone();
    let existing = match store.read_blocking(|db| db.account_by_email(&email)) {
        Ok(d) => Some(d),
        Err(StoreError::NotFound(_)) => None,
        Err(e) => return Err(ProvisionError::apply("reading the accounts", e)),
    };
    if existing.as_ref().is_some_and(|d| d.role != Role::Technician) {
        return Err(ProvisionError::Invalid(vec![
            "technician.email: belongs to a doctor's account on this kiosk; use another e-mail".into(),
        ]));
    }

    config.clinic.name = plan.clinic_name.clone();
    config.clinic.id = plan.clinic_id.clone();
    config.ice_servers = plan.ice_servers.clone();
    if let Some(required) = plan.two_factor_for_doctors {
        config.auth.two_factor_for_doctors = required;
    }
    if let Some(l) = &plan.language {
        config.ui.language = l.clone();
    }
    if let Some(p) = &plan.technician_pin {
        config.ui.technician_pin = p.clone();
    }

    let mut stage = Stage::default();
    let result = (|| {
        let tls_fingerprint = match &plan.tls {
            TlsPlan::Auto => {
                config.tls.mode = TlsMode::Auto;
                config.tls.cert_file = None;
                config.tls.key_file = None;
                None
            }
            TlsPlan::Files { cert_pem, key_pem, fingerprint } => {
                let dir = absolute(&config.storage.data_dir).join("tls");
                let (cert, key) = (dir.join("clinic-cert.pem"), dir.join("clinic-key.pem"));
                stage.file(cert.clone(), cert_pem.as_bytes(), 0o644)?;
                stage.file(key.clone(), key_pem.as_bytes(), 0o600)?;
                config.tls.mode = TlsMode::Files;
                config.tls.cert_file = Some(cert);
                config.tls.key_file = Some(key);
                Some(fingerprint.clone())
            }
        };
        let root = &targets.root;
        stage.link(root.join("etc/localtime"), &format!("/usr/share/zoneinfo/{}", plan.timezone))?;
        stage.file(root.join("etc/timezone"), format!("{}\n", plan.timezone).as_bytes(), 0o644)?;
        match &plan.wifi {
            Some(w) => {
                stage.file(root.join(WPA_CONF), wpa_conf(w).as_bytes(), 0o600)?;
                stage.link(root.join(WPA_WANTS), WPA_UNIT)?;
            }
            None => stage.removals.extend([root.join(WPA_CONF), root.join(WPA_WANTS)]),
        }
        let text = toml::to_string(&config).map_err(|e| ProvisionError::apply("writing the configuration", e))?;
        // The result must load like any configuration file, or nothing is changed.
        Config::from_toml(&text, "the new configuration")
            .map_err(|e| ProvisionError::Invalid(vec![e.to_string()]))?
            .check_all(&text, "the new configuration")
            .map_err(|e| ProvisionError::Invalid(vec![e.to_string()]))?;
        stage.file(config_path.clone(), text.as_bytes(), 0o644)?;

        let hash = crate::credentials::hash_password(&plan.one_time_password)
            .map_err(|e| ProvisionError::apply("hashing the one-time password", e))?;
        let now = chrono::Utc::now();
        let (name, email) = (plan.technician_name.clone(), plan.technician_email.clone());
        let created = store
            .write_blocking(|db| {
                let (id, created) = match &existing {
                    Some(d) => (d.id, false),
                    None => {
                        let new = NewAccount {
                            name,
                            specialty: String::new(),
                            email,
                            password_hash: hash.clone(),
                            role: Role::Technician,
                        };
                        (db.add_account(&new, Actor::Provisioning, now)?.id, true)
                    }
                };
                db.set_one_time_password(id, &hash, Actor::Provisioning, now)?;
                db.record_provisioning(id, plan.clinic_id.as_str(), now)?;
                Ok(created)
            })
            .map_err(|e| ProvisionError::apply("writing the technician's account", e))?;
        Ok((created, tls_fingerprint))
    })();
    match result {
        Ok((technician_created, tls_fingerprint)) => {
            stage.commit()?;
            Ok(Applied {
                clinic_id: plan.clinic_id.as_str().to_string(),
                technician_created,
                wifi: plan.wifi.is_some(),
                tls_fingerprint,
            })
        }
        Err(e) => {
            stage.discard();
            Err(e)
        }
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or(p.to_path_buf())
    }
}

/// wpa_supplicant's file for `wpa_supplicant@wlan0`: the SSID in hex (any bytes are safe), the derived key only.
fn wpa_conf(w: &Wifi) -> String {
    format!(
        "# Written by `medimitra provision`; provisioning again replaces it.\n\
         ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\n\
         update_config=0\n\
         country={}\n\
         \n\
         network={{\n\
         \tssid={}\n\
         \tpsk={}\n\
         \tkey_mgmt=WPA-PSK WPA-PSK-SHA256\n\
         \tieee80211w=1\n\
         }}\n",
        w.country,
        hex::encode(w.ssid.as_bytes()),
        w.psk_hex
    )
}
