//! TLS certificate and key checks (rustls), shared by the HTTPS listener and provisioning.

use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// What is wrong with a certificate and key given as PEM text.
#[derive(Debug, Clone, PartialEq)]
pub enum PemProblem {
    Certificate(String),
    Key(String),
}

/// Checks a certificate chain and private key given as PEM text: both parse, the key is a kind rustls serves with,
/// and it belongs to the leaf certificate. Returns the leaf's fingerprint.
pub fn check_pem_pair(cert_pem: &str, key_pem: &str) -> Result<String, PemProblem> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_bytes()).filter_map(Result::ok).collect();
    let Some(leaf) = certs.first() else {
        return Err(PemProblem::Certificate("holds no PEM certificate".into()));
    };
    let fingerprint = fingerprint(leaf);
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .ok()
        .flatten()
        .ok_or_else(|| PemProblem::Key("holds no PEM private key".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PemProblem::Key(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| PemProblem::Key(format!("does not go with the certificate ({e})")))?;
    Ok(fingerprint)
}

/// SHA-256 of a certificate, as colon-separated hex (how browsers show it).
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref()).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}
