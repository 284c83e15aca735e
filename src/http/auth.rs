//! Who is calling: the `Caller` extractor that accepts a session cookie or `Authorization: Bearer`, and login rate
//! limiting (the rules are in [`crate::core::login_throttle`]). Hashing and tokens are in [`crate::credentials`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use super::AppState;
use super::error::ApiError;
use crate::core::login_throttle::{Attempt, LoginThrottle, ThrottleSettings};
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
    cookie(&parts.headers, COOKIE).map(|v| (v.to_string(), true))
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

    /// Refuses an account still on its one-time password: it must choose its own first.
    pub fn not_on_a_one_time_password(&self) -> Result<(), ApiError> {
        if self.account.must_change_password {
            return Err(ApiError::new(
                ErrorCode::PasswordChangeRequired,
                "choose a new password first (POST /api/auth/password)",
            ));
        }
        Ok(())
    }
}

/// Whether the clinic's policy requires a second factor for this account.
pub fn two_factor_required(state: &AppState, account: &Account) -> bool {
    let a = &state.config.auth;
    account.role.needs_two_factor(a.two_factor_for_technicians, a.two_factor_for_doctors)
}

/// The caller of the few handlers an account still on its one-time password, or without the second factor its
/// policy requires, may reach (its profile, logout, the password change, two-factor set-up). Every other handler
/// takes [`Caller`], which refuses such an account.
pub struct PendingCaller(pub Caller);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let PendingCaller(caller) = PendingCaller::from_request_parts(parts, state).await?;
        caller.not_on_a_one_time_password()?;
        if two_factor_required(state, &caller.account) && !caller.account.two_factor {
            return Err(ApiError::new(
                ErrorCode::TwoFactorSetupRequired,
                "set up two-factor login first (POST /api/auth/2fa/setup)",
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

/// Login throttling ([`LoginThrottle`]'s rules) and the trusted-device cookie that lets an account's owner past an
/// account-wide guard. In memory: a restart forgets counts and trusted browsers (an attacker cannot restart the
/// kiosk), and failed logins never write to the database to be counted.
pub struct LoginLimiter {
    throttle: Mutex<LoginThrottle>,
    /// Signs trusted-device cookies (HMAC-SHA256 of the account's e-mail); a fresh key at each start.
    device_key: ring::hmac::Key,
}

/// Name of the trusted-device cookie: set at a successful login, scoped to `/api/auth`.
pub const DEVICE_COOKIE: &str = "mm_device";

impl LoginLimiter {
    pub fn new(settings: ThrottleSettings) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let device_key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()));
        Self { throttle: Mutex::new(LoginThrottle::new(settings)), device_key }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LoginThrottle> {
        self.throttle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an attempt before its password is checked; refuses with the whole seconds to wait.
    pub fn admit(&self, addr: IpAddr, account: &str, trusted: bool) -> Result<Attempt, u64> {
        self.lock()
            .admit(account, addr, trusted, Instant::now())
            .map_err(|wait| wait.as_secs_f64().ceil().max(1.0) as u64)
    }

    /// The attempt's password was right.
    pub fn succeeded(&self, attempt: Attempt) {
        self.lock().succeeded(attempt);
    }

    /// The trusted-device cookie's value for an account.
    pub fn device_token(&self, account: &str) -> String {
        hex::encode(ring::hmac::sign(&self.device_key, account.as_bytes()).as_ref())
    }

    /// Whether the request carries a trusted-device cookie for `account`.
    pub fn is_trusted(&self, headers: &axum::http::HeaderMap, account: &str) -> bool {
        cookie(headers, DEVICE_COOKIE)
            .and_then(|v| hex::decode(v).ok())
            .is_some_and(|tag| ring::hmac::verify(&self.device_key, account.as_bytes(), &tag).is_ok())
    }
}

/// A cookie's value by name.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().split_once('=').filter(|(k, v)| *k == name && !v.is_empty()).map(|(_, v)| v))
}
