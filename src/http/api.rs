//! The REST API. Doctors see and change only their own appointments (and the patients those concern); technicians
//! manage accounts and patients. Every change goes through a store mutator that writes its audit entry in the same
//! transaction.

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{Local, Utc};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

use super::AppState;
use super::auth::{COOKIE, Caller, DEVICE_COOKIE, PendingCaller};
use super::error::{ApiError, ApiJson, ApiQuery, IdPath};
use crate::core::{
    AppointmentStatus, ErrorCode, Language, Role, Sex, local_day_range, parse_birth_date, parse_start_time,
    validate_duration, validate_email, validate_name, validate_password, validate_phone, validate_text,
};
use crate::credentials;
use crate::store::{Account, AppointmentFilter, NewAccount, NewAppointment, NewPatient};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/password", post(change_password))
        .route("/auth/2fa/setup", post(super::two_factor::setup))
        .route("/auth/2fa/confirm", post(super::two_factor::confirm))
        .route("/accounts/{id}/two-factor/reset", post(super::two_factor::reset))
        .route("/users/profile", get(profile))
        .route("/network-check", get(network_check))
        .route("/appointments", get(list_appointments).post(create_appointment))
        .route("/appointments/{id}", get(get_appointment))
        .route("/appointments/{id}/status", put(set_status))
        .route("/appointments/{id}/notes", post(add_note))
        .route("/appointments/{id}/note", put(save_note))
        .route("/appointments/{id}/note/revisions", get(note_revisions))
        .route("/appointments/{id}/observations", get(observations))
        .route("/appointments/{id}/calls", get(call_records))
        .route("/patients", get(list_patients).post(create_patient))
        .route("/patients/{id}", get(get_patient))
        .route("/accounts", get(list_accounts).post(create_account))
        .route("/accounts/{id}/active", put(set_account_active))
        // The names before staff accounts were called accounts (0.1.0); kept so existing clients keep working.
        .route("/doctors", get(list_accounts).post(create_account))
        .route("/doctors/{id}/active", put(set_account_active))
        .fallback(|| async { ApiError::not_found("API endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "this endpoint does not take that method")
        })
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    clinic: ClinicInfo,
    #[serde(rename = "schemaVersion")]
    schema_version: i64,
}

#[derive(Serialize)]
struct ClinicInfo {
    name: String,
    id: String,
}

/// Liveness and readiness: answers only when the database answers.
async fn health(State(s): State<AppState>) -> Result<Json<Health>, ApiError> {
    let schema_version = s.store.read(|db| db.schema_version_now()).await?;
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        clinic: ClinicInfo { name: s.config.clinic.name.clone(), id: s.config.clinic.id.as_str().to_string() },
        schema_version,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
    /// The authenticator app's code (or a recovery code), for an account with two-factor login.
    #[serde(default)]
    code: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LoginReply {
    token: String,
    expires_at: String,
    user: Account,
}

async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    let email = body.email.trim().to_lowercase();
    if email.is_empty() || body.password.is_empty() || body.password.len() > 1024 || email.len() > 254 {
        return Err(ApiError::new(ErrorCode::InvalidCredentialsFormat, "give an e-mail and a password"));
    }
    // Counted before the password is checked: simultaneous guesses cannot all slip under the limit.
    let trusted = s.limiter.is_trusted(&headers, &email);
    let attempt = s.limiter.admit(peer.ip(), &email, trusted).map_err(too_many_attempts)?;
    let lookup = email.clone();
    let found = s.store.read(move |db| db.credentials(&lookup)).await?;
    let password = body.password;
    let lane = if trusted { credentials::Lane::Priority } else { credentials::Lane::Anonymous };
    // Verify even for unknown accounts so the answer takes as long either way.
    let (account, ok) = credentials::password_work(lane, move || match found {
        Some((a, hash)) => {
            let ok = credentials::verify_password(&password, &hash) && a.active;
            (Some(a), ok)
        }
        None => {
            credentials::verify_password(&password, &DUMMY_HASH);
            (None, false)
        }
    })
    .await?;
    let now = Utc::now();
    let Some(account) = account.filter(|_| ok) else {
        let origin = origin_label(&headers, peer);
        s.store.write(move |db| db.record_failed_login(&email, &origin, now)).await?;
        return Err(ApiError::unauthenticated("wrong e-mail or password"));
    };
    if account.two_factor {
        let Some(code) = body.code.filter(|c| !c.trim().is_empty()) else {
            return Err(ApiError::new(
                ErrorCode::SecondFactorRequired,
                "enter the 6-digit code from your authenticator app, or a recovery code",
            ));
        };
        if !super::two_factor::check_at_login(&s, account.id, code).await? {
            let origin = origin_label(&headers, peer);
            s.store.write(move |db| db.record_failed_login(&email, &origin, now)).await?;
            return Err(super::two_factor::wrong_code());
        }
    }
    s.limiter.succeeded(attempt);
    let (token, hash) = credentials::new_token();
    let expires = now + chrono::Duration::hours(i64::from(s.config.auth.session_hours));
    let id = account.id;
    let session_of = account.clone();
    s.store.write(move |db| db.create_session(&hash, &session_of, now, expires)).await?;
    tracing::info!(account = id, "login");
    let max_age = i64::from(s.config.auth.session_hours) * 3600;
    let secure = if s.tls { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    let reply = LoginReply { token, expires_at: crate::store::ts(expires), user: account };
    // This browser has now logged into the account: an account-wide guard against guessing does not hold it.
    let device = format!(
        "{DEVICE_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/api/auth; Max-Age={}{secure}",
        s.limiter.device_token(&email),
        180 * 24 * 3600
    );
    let mut resp = Json(reply).into_response();
    for c in [cookie, device] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

fn too_many_attempts(wait: u64) -> ApiError {
    let mut e = ApiError::new(ErrorCode::TooManyAttempts, format!("too many password attempts; try again in {wait} s"));
    e.retry_after = Some(wait);
    e
}

/// A hash of a random password, verified against when the account does not exist.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let (random, _) = credentials::new_token();
    credentials::hash_password(&random).unwrap_or_default()
});

fn origin_label(headers: &HeaderMap, peer: SocketAddr) -> String {
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("-");
    format!("from {} ({})", peer.ip(), ua.chars().take(80).collect::<String>())
}

async fn logout(State(s): State<AppState>, PendingCaller(caller): PendingCaller) -> Result<Response, ApiError> {
    let now = Utc::now();
    let actor = caller.actor();
    let token_hash = caller.token_hash.clone();
    s.store.write(move |db| db.revoke_session(&caller.token_hash, actor, now)).await?;
    s.session_sockets.end_session(&token_hash);
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let secure = if s.tls { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// The logged-in account chooses its own password (required after a one-time password). Other sessions end.
async fn change_password(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    PendingCaller(caller): PendingCaller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Json<Account>, ApiError> {
    validate_password(&body.new_password)?;
    if body.new_password == body.current_password {
        return Err(ApiError::new(ErrorCode::SamePassword, "the new password must differ from the current one"));
    }
    let wrong = || ApiError::new(ErrorCode::WrongPassword, "the current password is wrong");
    if body.current_password.len() > 1024 {
        return Err(wrong());
    }
    // Guessing the current password of a stolen session is throttled like logins are.
    let email = caller.account.email.clone();
    let trusted = s.limiter.is_trusted(&headers, &email);
    let attempt = s.limiter.admit(peer.ip(), &email, trusted).map_err(too_many_attempts)?;
    let found = s.store.read(move |db| db.credentials(&email)).await?;
    let (current, new) = (body.current_password, body.new_password);
    let hash = credentials::password_work(credentials::Lane::Priority, move || {
        let ok = found.is_some_and(|(_, hash)| credentials::verify_password(&current, &hash));
        ok.then(|| credentials::hash_password(&new))
    })
    .await?;
    let Some(hash) = hash else {
        return Err(wrong());
    };
    s.limiter.succeeded(attempt);
    let hash = hash.map_err(ApiError::internal)?;
    let (id, keep, actor, now) = (caller.account.id, caller.token_hash.clone(), caller.actor(), Utc::now());
    let kept = keep.clone();
    let account = s.store.write(move |db| db.change_own_password(id, &hash, &keep, actor, now)).await?;
    s.session_sockets.end_account(id, Some(&kept));
    tracing::info!(account = id, "password changed");
    Ok(Json(account))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(flatten)]
    account: Account,
    /// The clinic's policy requires a second factor for this account.
    two_factor_required: bool,
}

async fn profile(State(s): State<AppState>, PendingCaller(caller): PendingCaller) -> Json<Profile> {
    let two_factor_required = super::auth::two_factor_required(&s, &caller.account);
    Json(Profile { account: caller.account, two_factor_required })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ListQuery {
    /// A local calendar day, `YYYY-MM-DD` (the kiosk's time zone).
    day: Option<String>,
    status: Option<String>,
    doctor_id: Option<i64>,
    /// One patient's appointments (a doctor: those with them), newest last.
    patient_id: Option<i64>,
    limit: Option<u32>,
    offset: Option<u32>,
}

#[derive(Serialize)]
struct AppointmentList {
    appointments: Vec<crate::store::Appointment>,
    limit: u32,
    offset: u32,
}

async fn list_appointments(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<AppointmentList>, ApiError> {
    let doctor_id = if caller.is_technician() {
        q.doctor_id
    } else {
        match q.doctor_id {
            Some(id) if id != caller.account.id => {
                return Err(ApiError::forbidden("a doctor sees only their own appointments"));
            }
            _ => Some(caller.account.id),
        }
    };
    let (from, to) = match &q.day {
        Some(day) => local_day_range("day", day)
            .map(|(f, t)| (Some(f), Some(t)))
            .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.to_string()))?,
        None => (None, None),
    };
    let status = q
        .status
        .as_deref()
        .map(str::parse::<AppointmentStatus>)
        .transpose()
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, format!("status: {e}")))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "limit: must be between 1 and 500"));
    }
    let offset = q.offset.unwrap_or(0);
    let filter = AppointmentFilter { doctor_id, patient_id: q.patient_id, from, to, status, limit, offset };
    let appointments = s.store.read(move |db| db.list_appointments(&filter)).await?;
    Ok(Json(AppointmentList { appointments, limit, offset }))
}

/// The appointment if the caller may see it; someone else's is "not found" so ids reveal nothing.
async fn visible_appointment(s: &AppState, caller: &Caller, id: i64) -> Result<crate::store::Appointment, ApiError> {
    let a = s.store.read(move |db| db.appointment(id)).await?;
    if caller.is_technician() || a.doctor_id == caller.account.id {
        Ok(a)
    } else {
        Err(ApiError::not_found("appointment"))
    }
}

async fn get_appointment(
    State(s): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<crate::store::Appointment>, ApiError> {
    visible_appointment(&s, &caller, id).await.map(Json)
}

/// The readings kept with the appointment, as a FHIR R4 `Bundle` of `Observation`s (`application/fhir+json`).
async fn observations(State(s): State<AppState>, caller: Caller, IdPath(id): IdPath) -> Result<Response, ApiError> {
    let a = visible_appointment(&s, &caller, id).await?;
    let kept = s.store.read(move |db| db.observations(id)).await?;
    let bundle = crate::core::vitals::observation::fhir_bundle(a.patient_id, a.id, &kept);
    let mut response = Json(bundle).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/fhir+json"));
    Ok(response)
}

/// The kiosk's STUN/TURN reachability with a plain verdict (a real TURN allocation, released at once). For any
/// logged-in account: a doctor checks the kiosk's side before calling. Takes up to 3 s per server.
async fn network_check(
    State(s): State<AppState>,
    _caller: Caller,
) -> Result<Json<crate::netcheck::NetworkCheck>, ApiError> {
    let servers = s.config.ice_servers.clone();
    let result =
        tokio::task::spawn_blocking(move || crate::netcheck::check(&servers, std::time::Duration::from_secs(3)))
            .await
            .map_err(|e| ApiError::internal(format!("network check: {e}")))?;
    Ok(Json(result))
}

/// The appointment's calls: when, how long, how each ended and its connection quality summary (never any media).
async fn call_records(
    State(s): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<Vec<crate::store::CallRecord>>, ApiError> {
    visible_appointment(&s, &caller, id).await?;
    Ok(Json(s.store.read(move |db| db.call_records(id)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateAppointment {
    patient_id: i64,
    doctor_id: Option<i64>,
    starts_at: String,
    duration_minutes: i64,
    #[serde(default)]
    reason: String,
}

async fn create_appointment(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateAppointment>,
) -> Result<(StatusCode, Json<crate::store::Appointment>), ApiError> {
    let doctor_id = match (caller.is_technician(), body.doctor_id) {
        (true, Some(id)) => id,
        (true, None) => {
            return Err(crate::core::FieldError::new("doctorId", "is required for a technician").into());
        }
        (false, Some(id)) if id != caller.account.id => {
            return Err(ApiError::forbidden("a doctor may book appointments only for themselves"));
        }
        (false, _) => caller.account.id,
    };
    let new = NewAppointment {
        patient_id: body.patient_id,
        doctor_id,
        starts_at: parse_start_time("startsAt", &body.starts_at)?,
        duration_minutes: validate_duration("durationMinutes", body.duration_minutes)?,
        reason: validate_text("reason", &body.reason, 500)?,
    };
    let actor = caller.actor();
    let now = Utc::now();
    // A doctor books follow-ups with their own patients; a patient new to them is booked by a technician (who
    // registers patients). Checked in the same transaction as the booking; an unknown patient and another doctor's
    // patient get the same answer, so ids cannot be probed.
    let doctor_only = !caller.is_technician();
    let a = s
        .store
        .write(move |db| {
            if doctor_only && !db.doctor_sees_patient(new.doctor_id, new.patient_id)? {
                return Ok(None);
            }
            db.add_appointment(&new, actor, now).map(Some)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("patient"))?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: AppointmentStatus,
}

async fn set_status(
    State(s): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<StatusBody>,
) -> Result<Json<crate::store::Appointment>, ApiError> {
    visible_appointment(&s, &caller, id).await?;
    if body.status == AppointmentStatus::InCall {
        // Only a call that is really running may say so; otherwise a stuck `in_call` would block the next call.
        return Err(ApiError::new(
            ErrorCode::CallManaged,
            "an appointment becomes in_call only when its call is accepted",
        ));
    }
    let actor = caller.actor();
    let now = Utc::now();
    let a = s.store.write(move |db| db.set_appointment_status(id, body.status, actor, now)).await?;
    Ok(Json(a))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    text: String,
}

async fn add_note(
    State(s): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<NoteBody>,
) -> Result<Json<crate::store::Appointment>, ApiError> {
    visible_appointment(&s, &caller, id).await?;
    let text = validate_text("text", &body.text, 2000)?;
    if text.is_empty() {
        return Err(crate::core::FieldError::new("text", "must not be empty").into());
    }
    let author = caller.account.name.clone();
    let actor = caller.actor();
    let now = Utc::now();
    let a = s.store.write(move |db| db.add_note(id, &author, &text, actor, now)).await?;
    Ok(Json(a))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SaveNoteBody {
    text: String,
    /// The `noteRevision` the doctor's text started from.
    base_revision: u32,
}

/// The longest visit note (the whole text, additions included).
const NOTE_MAX_CHARS: usize = 20_000;

/// Replaces the visit note (a new revision; the earlier ones are kept). Only the appointment's doctor writes it; a
/// save started from an older revision than the current one is refused with `conflict`, changing nothing.
async fn save_note(
    State(s): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<SaveNoteBody>,
) -> Result<Json<crate::store::Appointment>, ApiError> {
    let a = visible_appointment(&s, &caller, id).await?;
    if a.doctor_id != caller.account.id {
        return Err(ApiError::forbidden("only the appointment's doctor writes its visit note"));
    }
    let text = validate_text("text", &body.text, NOTE_MAX_CHARS)?;
    let author = caller.account.name.clone();
    let actor = caller.actor();
    let now = Utc::now();
    let a = s.store.write(move |db| db.save_note(id, body.base_revision, &author, &text, actor, now)).await?;
    Ok(Json(a))
}

#[derive(Serialize)]
struct NoteRevisions {
    revisions: Vec<crate::store::NoteRevision>,
}

/// The visit note's revisions, newest first.
async fn note_revisions(
    State(s): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<NoteRevisions>, ApiError> {
    visible_appointment(&s, &caller, id).await?;
    let revisions = s.store.read(move |db| db.note_revisions(id)).await?;
    Ok(Json(NoteRevisions { revisions }))
}

async fn get_patient(
    State(s): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<Json<crate::store::Patient>, ApiError> {
    let (tech, doctor_id) = (caller.is_technician(), caller.account.id);
    let p = s
        .store
        .read(
            move |db| {
                if tech || db.doctor_sees_patient(doctor_id, id)? { db.patient(id).map(Some) } else { Ok(None) }
            },
        )
        .await?;
    p.map(Json).ok_or_else(|| ApiError::not_found("patient"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    limit: Option<u32>,
    offset: Option<u32>,
}

async fn list_patients(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<Page>,
) -> Result<Json<Vec<crate::store::Patient>>, ApiError> {
    caller.require_technician()?;
    let (limit, offset) = (q.limit.unwrap_or(100).clamp(1, 500), q.offset.unwrap_or(0));
    Ok(Json(s.store.read(move |db| db.list_patients(limit, offset)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreatePatient {
    name: String,
    date_of_birth: Option<String>,
    #[serde(default = "unknown_sex")]
    sex: Sex,
    phone: Option<String>,
    #[serde(default = "hindi")]
    preferred_language: Language,
}

fn unknown_sex() -> Sex {
    Sex::Unknown
}
fn hindi() -> Language {
    Language::Hindi
}

async fn create_patient(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreatePatient>,
) -> Result<(StatusCode, Json<crate::store::Patient>), ApiError> {
    caller.require_technician()?;
    let today = Local::now().date_naive();
    let new = NewPatient {
        name: validate_name("name", &body.name)?,
        date_of_birth: body.date_of_birth.as_deref().map(|d| parse_birth_date("dateOfBirth", d, today)).transpose()?,
        sex: body.sex,
        phone: body.phone.as_deref().map(|p| validate_phone("phone", p)).transpose()?,
        preferred_language: body.preferred_language,
    };
    let actor = caller.actor();
    let now = Utc::now();
    let p = s.store.write(move |db| db.add_patient(&new, actor, now)).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

async fn list_accounts(State(s): State<AppState>, caller: Caller) -> Result<Json<Vec<Account>>, ApiError> {
    caller.require_technician()?;
    Ok(Json(s.store.read(|db| db.list_accounts(None)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccount {
    name: String,
    #[serde(default)]
    specialty: String,
    email: String,
    password: String,
    role: Role,
}

async fn create_account(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateAccount>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    caller.require_technician()?;
    let name = validate_name("name", &body.name)?;
    let specialty = validate_text("specialty", &body.specialty, 80)?;
    let email = validate_email("email", &body.email)?;
    validate_password(&body.password)?;
    let password = body.password;
    let password_hash =
        credentials::password_work(credentials::Lane::Priority, move || credentials::hash_password(&password))
            .await?
            .map_err(ApiError::internal)?;
    let new = NewAccount { name, specialty, email, password_hash, role: body.role };
    let actor = caller.actor();
    let now = Utc::now();
    let a = s.store.write(move |db| db.add_account(&new, actor, now)).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActiveBody {
    active: bool,
}

async fn set_account_active(
    State(s): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<ActiveBody>,
) -> Result<Json<Account>, ApiError> {
    caller.require_technician()?;
    if id == caller.account.id && !body.active {
        return Err(ApiError::new(ErrorCode::Conflict, "you cannot disable your own account"));
    }
    let actor = caller.actor();
    let now = Utc::now();
    let a = s.store.write(move |db| db.set_account_active(id, body.active, actor, now)).await?;
    if !body.active {
        s.session_sockets.end_account(id, None);
    }
    Ok(Json(a))
}
