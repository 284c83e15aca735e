//! Who is calling: password hashing (argon2id), opaque session tokens (only their SHA-256 is stored), the `Caller`
//! extractor that accepts a session cookie or `Authorization: Bearer`, and login rate limiting per account and per
//! address.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AppState;
use super::error::ApiError;
use crate::core::Role;
use crate::store::Doctor;

/// Name of the session cookie.
pub const COOKIE: &str = "mm_session";

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Checks a password against a stored PHC string; a malformed hash is a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

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
pub async fn password_work<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sender = PASSWORD_THREAD.as_ref().ok_or_else(|| ApiError::internal("the password thread could not start"))?;
    sender
        .send(Box::new(move || {
            let _ = tx.send(f());
        }))
        .map_err(|_| ApiError::internal("the password thread has stopped"))?;
    rx.await.map_err(|_| ApiError::internal("the password thread dropped a job"))
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

/// The session token a request carries: the bearer token if present, else the cookie.
pub fn request_token(parts: &Parts) -> Option<(String, bool)> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some((t.trim().to_string(), false));
    }
    for v in parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=')
                && k == COOKIE
                && !val.is_empty()
            {
                return Some((val.to_string(), true));
            }
        }
    }
    None
}

/// What the audit log calls an account: `role:id` (never a name or an e-mail).
pub fn actor(d: &Doctor) -> String {
    format!("{}:{}", d.role, d.id)
}

/// The logged-in account behind a request, and the hash of the token that proved it.
pub struct Caller {
    pub doctor: Doctor,
    pub token_hash: String,
}

impl Caller {
    pub fn is_technician(&self) -> bool {
        self.doctor.role == Role::Technician
    }
    pub fn require_technician(&self) -> Result<(), ApiError> {
        if self.is_technician() { Ok(()) } else { Err(ApiError::forbidden("only a technician may do this")) }
    }
    /// What the audit log calls this caller.
    pub fn actor(&self) -> String {
        actor(&self.doctor)
    }
}

/// The caller of the few handlers an account still on its one-time password may reach (its profile, logout and the
/// password change). Every other handler takes [`Caller`], which refuses such an account.
pub struct PendingCaller(pub Caller);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let PendingCaller(caller) = PendingCaller::from_request_parts(parts, state).await?;
        if caller.doctor.must_change_password {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "password_change_required",
                "choose a new password first (POST /api/auth/password)",
            ));
        }
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for PendingCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (token, from_cookie) = request_token(parts).ok_or_else(|| ApiError::unauthenticated("log in first"))?;
        // A cookie rides along on cross-site requests; for anything that changes state, the page must be ours.
        if from_cookie && !matches!(parts.method, Method::GET | Method::HEAD) && !state.origin_allowed(parts) {
            return Err(ApiError::forbidden("this page's origin may not use the kiosk's API"));
        }
        let hash = token_hash(&token);
        let lookup = hash.clone();
        let doctor =
            state.store.read(move |db| db.session_doctor(&lookup, chrono::Utc::now())).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "session_expired",
                    "the session has expired or ended; log in again",
                )
            })?;
        Ok(PendingCaller(Caller { doctor, token_hash: hash }))
    }
}

/// Sliding-window counters of login attempts. In memory: a restart forgets them, which is acceptable for a kiosk
/// (an attacker cannot restart it) and keeps failed logins from writing to the database.
pub struct LoginLimiter {
    window: Duration,
    max_failures_per_account: usize,
    max_attempts_per_address: usize,
    /// Failed attempts per lower-cased e-mail.
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// All attempts per client address.
    attempts: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// Beyond this many tracked keys, stale entries are swept before a new one is added.
const MAX_TRACKED: usize = 10_000;

impl LoginLimiter {
    pub fn new(window: Duration, max_failures_per_account: u32, max_attempts_per_address: u32) -> Self {
        Self {
            window,
            max_failures_per_account: max_failures_per_account as usize,
            max_attempts_per_address: max_attempts_per_address as usize,
            failures: Mutex::new(HashMap::new()),
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from `addr` for `account`; refuses with the seconds to wait if either limit is reached.
    /// Every attempt counts against the address, refused ones too, so hammering keeps the address locked out.
    pub fn admit(&self, addr: IpAddr, account: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = Self::full(&mut attempts, &addr, now, self.window, self.max_attempts_per_address) {
            return Err(wait);
        }
        if attempts.len() >= MAX_TRACKED {
            attempts.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.window));
        }
        attempts.entry(addr).or_default().push_back(now);
        drop(attempts);
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match Self::full(&mut failures, account, now, self.window, self.max_failures_per_account) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, account: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.window));
        }
        let q = failures.entry(account.to_string()).or_default();
        q.push_back(now);
        while q.len() > self.max_failures_per_account {
            q.pop_front();
        }
    }

    pub fn record_success(&self, account: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(account);
    }

    /// Whether `key` has used its allowance (the seconds until its oldest entry expires); drops expired entries.
    fn full<K, Q>(
        map: &mut HashMap<K, VecDeque<Instant>>,
        key: &Q,
        now: Instant,
        window: Duration,
        max: usize,
    ) -> Option<u64>
    where
        K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let q = map.get_mut(key)?;
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= max {
            q.front().map(|t| window.saturating_sub(now.duration_since(*t)).as_secs() + 1)
        } else {
            None
        }
    }
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

    #[test]
    fn limiter_refuses_after_failures_and_per_address() {
        let l = LoginLimiter::new(Duration::from_secs(60), 2, 5);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..2 {
            assert!(l.admit(ip, "a@x.in").is_ok());
            l.record_failure("a@x.in");
        }
        assert!(l.admit(ip, "a@x.in").is_err());
        assert!(l.admit(ip, "b@x.in").is_ok());
        assert!(l.admit(ip, "b@x.in").is_ok());
        // 5 attempts from this address so far, the refused one included.
        assert!(l.admit(ip, "c@x.in").is_err());
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(l.admit(other, "c@x.in").is_ok());
    }
}
