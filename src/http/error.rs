//! One error type for every API answer: a status, a stable machine-readable `code` and a human `message`, always as
//! JSON. Extractor wrappers turn axum's own rejections (bad JSON, wrong types, oversized bodies, bad paths) into it,
//! so a client never sees a plain-text error.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::core::{ErrorCode, FieldError};
use crate::credentials::PasswordWorkError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    /// The code decides the HTTP status ([`ErrorCode::http_status`]).
    pub code: ErrorCode,
    pub message: String,
    /// Seconds, for 429 answers.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: ErrorCode,
    message: &'a str,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after: None }
    }
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "request failed");
        Self::new(ErrorCode::Internal, "the kiosk could not complete the request; see its log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), Json(Body { code: self.code, message: &self.message })).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::new(ErrorCode::InvalidField, e.to_string())
    }
}

impl From<PasswordWorkError> for ApiError {
    fn from(e: PasswordWorkError) -> Self {
        match e {
            PasswordWorkError::Busy => {
                let mut e = ApiError::new(ErrorCode::Busy, "the kiosk is checking many logins; try again in a second");
                e.retry_after = Some(1);
                e
            }
            PasswordWorkError::Gone => Self::internal(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(what),
            StoreError::Conflict(m) => Self::new(ErrorCode::Conflict, m),
            StoreError::Transition(t) => Self::new(ErrorCode::InvalidTransition, t.to_string()),
            StoreError::Invalid(f) => f.into(),
            other => Self::internal(other),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonSyntaxError(e) => {
                Self::new(ErrorCode::MalformedJson, format!("the body is not valid JSON: {}", inner_text(&e)))
            }
            JsonRejection::JsonDataError(e) => Self::new(ErrorCode::InvalidBody, inner_text(&e)),
            JsonRejection::MissingJsonContentType(_) => {
                Self::new(ErrorCode::UnsupportedMediaType, "send the body as application/json")
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(ErrorCode::BodyTooLarge, "the request body is larger than the kiosk accepts")
            }
            other => Self::new(ErrorCode::BadBody, other.body_text()),
        }
    }
}

/// serde's message without axum's generic prefix ("Failed to deserialize the JSON body into the target type: …").
fn inner_text(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `Json` whose rejections are [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state).await.map(|Json(v)| ApiJson(v)).map_err(ApiError::from)
    }
}

/// `Query` whose rejections are [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r: QueryRejection| ApiError::new(ErrorCode::InvalidQuery, inner_text(&r)))
    }
}

/// A numeric id from the path; anything else is a 404 (no such resource), not a 500.
pub struct IdPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|r: PathRejection| ApiError::new(ErrorCode::InvalidPath, r.body_text()))?;
        raw.parse::<i64>().map(IdPath).map_err(|_| ApiError::not_found("resource"))
    }
}

/// The code an error answer that no handler shaped gets, by its status (axum's own rejections outside the typed
/// extractors, the router's fallbacks).
pub fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::BodyTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        426 => ErrorCode::UpgradeRequired,
        500..=599 => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    }
}

/// Middleware: an error answer that is not JSON yet becomes `{code, message}` with the same status; the message is
/// the original text (first 200 characters) or the status's reason.
pub async fn json_errors(req: Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).trim().to_string());
    let message = match text {
        Ok(t) if !t.is_empty() => t.chars().take(200).collect(),
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let code = code_for_status(status);
    let json = serde_json::to_vec(&Body { code, message: &message }).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(json))
}
