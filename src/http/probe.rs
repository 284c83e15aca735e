//! The doctor's pre-call look at the path to the kiosk (`/api/network-probe`): round trips (an empty answer) and
//! throughput both ways (a download of incompressible bytes; an upload counted and thrown away), over the same
//! HTTPS connection the page uses. Logged-in staff only; each transfer at most [`MAX_BYTES`], and one upload at a
//! time, so a page cannot use it to load the clinic's link or the kiosk's memory.

use std::sync::OnceLock;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, ApiQuery};
use crate::core::ErrorCode;

/// The largest transfer either way (4 MiB: a few seconds on the links the kiosk is made for).
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

/// The bytes downloads are cut from: random, so no layer on the path can compress them; made once.
fn payload() -> &'static Bytes {
    static PAYLOAD: OnceLock<Bytes> = OnceLock::new();
    PAYLOAD.get_or_init(|| {
        use rand::RngCore;
        let mut v = vec![0u8; MAX_BYTES];
        rand::thread_rng().fill_bytes(&mut v);
        Bytes::from(v)
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DownloadQuery {
    #[serde(default)]
    bytes: usize,
}

/// `bytes=0` (the default) answers 204 at once, for a round trip; otherwise that many random bytes.
pub(super) async fn download(_caller: Caller, ApiQuery(q): ApiQuery<DownloadQuery>) -> Result<Response, ApiError> {
    if q.bytes > MAX_BYTES {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("`bytes` must be at most {MAX_BYTES}")));
    }
    if q.bytes == 0 {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut response = Body::from(payload().slice(..q.bytes)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok(response)
}

#[derive(Serialize)]
pub(super) struct Uploaded {
    bytes: usize,
    /// From the request reaching the handler to its last byte read.
    millis: u64,
}

/// Reads the body (at most [`MAX_BYTES`]) and says how many bytes came.
pub(super) async fn upload(State(s): State<AppState>, _caller: Caller, body: Body) -> Result<Json<Uploaded>, ApiError> {
    let _one_at_a_time = s.probe_upload.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(ErrorCode::Busy, "another network check is sending to the kiosk; try again in a few seconds")
    })?;
    let start = Instant::now();
    let got = axum::body::to_bytes(body, MAX_BYTES).await.map_err(|_| {
        ApiError::new(ErrorCode::BodyTooLarge, format!("a network check sends at most {MAX_BYTES} bytes"))
    })?;
    Ok(Json(Uploaded { bytes: got.len(), millis: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX) }))
}
