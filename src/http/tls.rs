//! TLS material for the HTTPS listener: the configured certificate and key, or a self-signed ECDSA P-256
//! certificate made on first start and kept in the data dir (so its fingerprint stays the same across restarts and
//! doctors' browsers only need to accept it once).

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, TlsMode};
use crate::credentials::fingerprint;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no {what}")]
    Missing { path: PathBuf, what: &'static str },
    #[error("cannot make a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key do not work together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What the server presents, and what a technician compares on a doctor's screen.
pub struct TlsMaterial {
    pub server_config: Arc<rustls::ServerConfig>,
    /// Where the certificate (PEM) is, e.g. to hand to a client that should trust it.
    pub cert_path: PathBuf,
    /// SHA-256 of the leaf certificate, as colon-separated hex (how browsers show it).
    pub fingerprint: String,
}

/// Loads or makes the TLS material that `config` asks for; `None` when TLS is off.
pub fn load(config: &Config) -> Result<Option<TlsMaterial>, TlsError> {
    let (cert_path, key_path) = match config.tls.mode {
        TlsMode::Off => return Ok(None),
        TlsMode::Files => match (&config.tls.cert_file, &config.tls.key_file) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            // The config check refuses this combination; stay safe anyway.
            _ => {
                return Err(TlsError::Missing { path: PathBuf::from("tls.cert_file/tls.key_file"), what: "path" });
            }
        },
        TlsMode::Auto => {
            let dir = config.storage.data_dir.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                make_self_signed(&dir, &c, &k)?;
            }
            (c, k)
        }
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let fingerprint = fingerprint(&certs[0]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsMaterial { server_config: Arc::new(server_config), cert_path, fingerprint }))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read { path: path.into(), source })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice()).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::Missing { path: path.into(), what: "PEM certificate" });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read { path: path.into(), source })?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .ok()
        .flatten()
        .ok_or(TlsError::Missing { path: path.into(), what: "PEM private key" })
}

/// Names the certificate covers: loopback, the host name and every address the kiosk has now.
fn subject_names() -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            names.push(h.to_string());
            names.push(format!("{h}.local"));
        }
    }
    if let Ok(ifaces) = if_addrs::get_if_addrs() {
        names.extend(ifaces.into_iter().filter(|i| !i.is_loopback()).map(|i| i.ip().to_string()));
    }
    names.dedup();
    names
}

fn make_self_signed(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.into(), source })?;
    let mut params = rcgen::CertificateParams::new(subject_names())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "Medi-Mitra kiosk");
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2044, 1, 1);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    write_private(key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, cert.pem()).map_err(|source| TlsError::Write { path: cert_path.into(), source })?;
    tracing::info!(path = %cert_path.display(), "made a self-signed TLS certificate");
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| TlsError::Write { path: path.into(), source })?;
    f.write_all(bytes).map_err(|source| TlsError::Write { path: path.into(), source })
}
