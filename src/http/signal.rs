//! `/api/signal`: the doctor's WebSocket. Authenticated at the upgrade (session cookie or bearer token) with the
//! Origin checked; then frames are parsed into [`DoctorMessage`]s and handed to the call service, and the service's
//! [`KioskMessage`]s are written back. Bad frames get an `error` reply; a socket that keeps sending them is closed.
//! The server pings every 15 s and drops a socket silent for 45 s.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::calls::Command;
use crate::core::protocol::{DoctorMessage, KioskMessage};

/// Consecutive bad frames after which the socket is closed.
const MAX_BAD_FRAMES: u32 = 5;
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// Checks the Origin of the upgrade request before anything else.
pub struct SameOrigin;

impl FromRequestParts<AppState> for SameOrigin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.origin_allowed(parts) {
            Ok(SameOrigin)
        } else {
            Err(ApiError::forbidden("this page's origin may not open the signaling socket"))
        }
    }
}

pub async fn upgrade(State(s): State<AppState>, _origin: SameOrigin, caller: Caller, ws: WebSocketUpgrade) -> Response {
    let Some(calls) = s.calls.clone() else {
        return ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "calls_unavailable",
            "this kiosk has no media engine running",
        )
        .into_response();
    };
    // Frames up to 1 MiB are read so that oversized ones (over 64 KiB) can be answered with an error.
    ws.max_message_size(1024 * 1024).max_frame_size(1024 * 1024).on_upgrade(move |socket| run(socket, calls, caller))
}

async fn run(mut socket: WebSocket, calls: crate::calls::CallsHandle, caller: Caller) {
    let (outbox, mut inbox) = mpsc::unbounded_channel::<KioskMessage>();
    let (reply, conn) = oneshot::channel();
    let doctor_id = caller.doctor.id;
    if !calls.send(Command::Connect { doctor: caller.doctor, outbox, reply }) {
        return;
    }
    let Ok(conn) = conn.await else { return };
    tracing::info!(conn, account = doctor_id, "signaling socket open");
    let mut hello = false;
    let mut bad = 0u32;
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let close_reason = loop {
        tokio::select! {
            out = inbox.recv() => match out {
                Some(m) => {
                    if send(&mut socket, &m).await.is_err() {
                        break "send failed";
                    }
                }
                None => break "call service stopped",
            },
            incoming = socket.recv() => {
                let frame = match incoming {
                    Some(Ok(f)) => f,
                    Some(Err(_)) | None => break "closed by the doctor",
                };
                last_heard = Instant::now();
                // One path for every bad frame: parse (which also refuses oversized frames) or refuse binary.
                let parsed = match frame {
                    Message::Text(t) => DoctorMessage::parse(t.as_str()).map_err(|e| (e.code(), e.to_string())),
                    Message::Binary(_) => Err(("invalid_message", "binary frames are not part of the protocol".to_string())),
                    Message::Close(_) => break "closed by the doctor",
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                match parsed {
                    Err((code, message)) => {
                        bad += 1;
                        let _ = send(&mut socket, &KioskMessage::error(code, message)).await;
                        if bad >= MAX_BAD_FRAMES { break "too many bad frames" }
                    }
                    Ok(m) => {
                        bad = 0;
                        let is_hello = matches!(m, DoctorMessage::Hello { .. });
                        if !hello && !is_hello && m != DoctorMessage::Ping {
                            let _ = send(&mut socket, &KioskMessage::error("hello_required", "send hello with the protocol version first")).await;
                            continue;
                        }
                        hello |= is_hello;
                        if !calls.send(Command::Message { conn, message: m }) {
                            break "call service stopped";
                        }
                    }
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    break "silent for too long";
                }
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break "ping failed";
                }
            }
        }
    };
    let _ = socket.send(Message::Close(Some(CloseFrame { code: 1008, reason: close_reason.into() }))).await;
    calls.send(Command::Disconnected { conn });
    tracing::info!(conn, reason = close_reason, "signaling socket closed");
}

async fn send(socket: &mut WebSocket, message: &KioskMessage) -> Result<(), axum::Error> {
    socket.send(Message::Text(message.to_json().into())).await
}
