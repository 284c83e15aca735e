//! Passwords and session tokens.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Checks a password against a stored PHC string; a malformed hash is a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// The password thread could not start or has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the password thread is not running")]
pub struct PasswordThreadGone;

/// Password hashing is expensive on purpose (argon2id: ~19 MiB and tens of milliseconds each). It runs on one
/// dedicated thread, one hash at a time, so a burst of logins can neither take both cores from calls nor allocate
/// 19 MiB per blocking-pool thread at once.
type Job = Box<dyn FnOnce() + Send>;

static PASSWORD_THREAD: std::sync::LazyLock<Option<std::sync::mpsc::Sender<Job>>> = std::sync::LazyLock::new(|| {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("password-hash".into())
        .spawn(move || {
            for job in rx {
                job();
            }
        })
        .ok()
        .map(|_| tx)
});

/// Runs password hashing or verification on the password thread and waits for the result without blocking the
/// async workers.
pub async fn password_work<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, PasswordThreadGone> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sender = PASSWORD_THREAD.as_ref().ok_or(PasswordThreadGone)?;
    sender
        .send(Box::new(move || {
            let _ = tx.send(f());
        }))
        .map_err(|_| PasswordThreadGone)?;
    rx.await.map_err(|_| PasswordThreadGone)
}

/// A fresh session token (256 random bits, URL-safe) and the hash under which it is stored.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a), ha);
        assert_ne!(a, ha);
    }
}
