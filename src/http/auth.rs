//! Who is calling: the `Caller` extractor that accepts a session cookie or `Authorization: Bearer`, and login rate
//! limiting per account and per address. Hashing and tokens are in [`crate::credentials`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AppState;
use super::error::ApiError;
use crate::core::{Actor, ErrorCode, Role};
use crate::credentials::token_hash;
use crate::store::Account;

/// Name of the session cookie.
pub const COOKIE: &str = "mm_session";

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

/// What the audit log calls an account: its role and id.
pub fn actor(a: &Account) -> Actor {
    Actor::Account { role: a.role, id: a.id }
}

/// The logged-in account behind a request, and the hash of the token that proved it.
pub struct Caller {
    pub account: Account,
    pub token_hash: String,
}

impl Caller {
    pub fn is_technician(&self) -> bool {
        self.account.role == Role::Technician
    }
    pub fn require_technician(&self) -> Result<(), ApiError> {
        if self.is_technician() { Ok(()) } else { Err(ApiError::forbidden("only a technician may do this")) }
    }
    /// What the audit log calls this caller.
    pub fn actor(&self) -> Actor {
        actor(&self.account)
    }
}

/// The caller of the few handlers an account still on its one-time password may reach (its profile, logout and the
/// password change). Every other handler takes [`Caller`], which refuses such an account.
pub struct PendingCaller(pub Caller);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let PendingCaller(caller) = PendingCaller::from_request_parts(parts, state).await?;
        if caller.account.must_change_password {
            return Err(ApiError::new(
                ErrorCode::PasswordChangeRequired,
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
        let account =
            state.store.read(move |db| db.session_account(&lookup, chrono::Utc::now())).await?.ok_or_else(|| {
                ApiError::new(ErrorCode::SessionExpired, "the session has expired or ended; log in again")
            })?;
        Ok(PendingCaller(Caller { account, token_hash: hash }))
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
