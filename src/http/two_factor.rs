//! Two-factor login for staff (TOTP, RFC 6238): set-up with a QR code, confirmation with a first code (which
//! gives the recovery codes, shown once), the check at login, and a technician's reset for a lost phone. The
//! codes themselves are [`crate::credentials::totp`].

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Caller, PendingCaller};
use super::error::{ApiError, ApiJson, IdPath};
use crate::core::ErrorCode;
use crate::credentials::totp;
use crate::store::Account;

/// The issuer name authenticator apps show beside the account.
const ISSUER: &str = "Medi-Mitra";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupReply {
    /// The secret in base32, for typing into an app by hand.
    secret: String,
    /// The `otpauth://` URI the QR code holds.
    uri: String,
    /// The QR code as an SVG document.
    qr_svg: String,
}

/// Starts (or restarts) a set-up: a new secret, not in force until a code from it is confirmed.
pub async fn setup(
    State(s): State<AppState>,
    PendingCaller(caller): PendingCaller,
) -> Result<Json<SetupReply>, ApiError> {
    caller.not_on_a_one_time_password()?;
    if caller.account.two_factor {
        return Err(ApiError::new(ErrorCode::Conflict, "two-factor login is set up already"));
    }
    let secret = totp::new_secret();
    let id = caller.account.id;
    let stored = secret.clone();
    s.store.write(move |db| db.start_two_factor(id, &stored)).await?;
    let label = format!("{} ({})", caller.account.email, s.config.clinic.name);
    let uri = totp::otpauth_uri(ISSUER, &label, &secret);
    let qr_svg = qr_svg(&uri).ok_or_else(|| ApiError::internal("the QR code could not be made"))?;
    Ok(Json(SetupReply { secret: totp::base32(&secret), uri, qr_svg }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmReply {
    /// Shown once: only their hashes are kept.
    recovery_codes: Vec<String>,
    user: Account,
}

/// Puts the set-up in force with a first code from the app; answers with the recovery codes.
pub async fn confirm(
    State(s): State<AppState>,
    PendingCaller(caller): PendingCaller,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<ConfirmReply>, ApiError> {
    caller.not_on_a_one_time_password()?;
    if body.code.len() > 64 {
        return Err(wrong_code());
    }
    let (id, actor, now) = (caller.account.id, caller.actor(), Utc::now());
    let step_now = totp::step_at(now.timestamp().max(0) as u64);
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|(_, h)| h.clone()).collect();
    let user = s
        .store
        .write(move |db| {
            let Some(secret) = db.pending_two_factor(id)? else {
                return Ok(Err(ApiError::new(
                    ErrorCode::Conflict,
                    "start the set-up first (POST /api/auth/2fa/setup)",
                )));
            };
            match totp::verify(&secret, &body.code, step_now, None) {
                Some(step) => db.confirm_two_factor(id, step, &hashes, actor, now).map(Ok),
                None => Ok(Err(wrong_code())),
            }
        })
        .await??;
    tracing::info!(account = id, "two-factor login set up");
    Ok(Json(ConfirmReply { recovery_codes: codes.into_iter().map(|(c, _)| c).collect(), user }))
}

/// A technician turns another account's two-factor login off (a lost phone and no recovery code): its sessions
/// end, and it sets up again at its next login where policy requires.
pub async fn reset(State(s): State<AppState>, caller: Caller, IdPath(id): IdPath) -> Result<Json<Account>, ApiError> {
    caller.require_technician()?;
    let (actor, now) = (caller.actor(), Utc::now());
    let account = s.store.write(move |db| db.reset_two_factor(id, actor, now)).await?;
    s.session_sockets.end_account(id, None);
    Ok(Json(account))
}

pub fn wrong_code() -> ApiError {
    ApiError::new(ErrorCode::WrongSecondFactor, "the code is wrong or was used already")
}

/// Checks a login's second factor: a TOTP code not used before, or an unused recovery code (then used up).
pub async fn check_at_login(s: &AppState, account_id: i64, code: String) -> Result<bool, ApiError> {
    if code.len() > 64 {
        return Ok(false);
    }
    let now = Utc::now();
    let step_now = totp::step_at(now.timestamp().max(0) as u64);
    let ok = s
        .store
        .write(move |db| {
            let Some((secret, last)) = db.second_factor(account_id)? else { return Ok(false) };
            if let Some(step) = totp::verify(&secret, &code, step_now, last) {
                return db.accept_totp_step(account_id, step);
            }
            db.use_recovery_code(account_id, &totp::recovery_hash(&code), now)
        })
        .await?;
    Ok(ok)
}

/// A QR code as a small SVG document (one path, one unit per module, a 4-module quiet zone).
fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let n = code.width();
    let colors = code.to_colors();
    let mut path = String::new();
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            path.push_str(&format!("M{} {}h1v1h-1z", i % n + 4, i / n + 4));
        }
    }
    let size = n + 8;
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\" \
         role=\"img\" aria-label=\"QR code for your authenticator app\"><rect width=\"{size}\" height=\"{size}\" \
         fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_qr_code_is_an_svg_with_a_quiet_zone() {
        let text = "otpauth://totp/x?secret=ABC";
        let svg = super::qr_svg(text).unwrap();
        let n = qrcode::QrCode::new(text.as_bytes()).unwrap().width() + 8;
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(&format!("viewBox=\"0 0 {n} {n}\"")), "{svg}");
    }
}
