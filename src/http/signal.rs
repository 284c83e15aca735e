//! `/api/signal`: the doctor's WebSocket. Authenticated at the upgrade (session cookie or bearer token) with the
//! Origin checked; after that this module only moves frames: each one goes through the socket's protocol rules
//! ([`SocketRules`]: hello and version, bad frames, keepalive), messages they accept go to the call service, and the
//! service's [`KioskMessage`]s are written back.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::sessions::Registered;
use crate::calls::{CallsHandle, Command};
use crate::core::ErrorCode;
use crate::core::protocol::KioskMessage;
use crate::core::signaling::{CloseReason, Frame, PING_EVERY, SocketRules, Verdict};
use crate::store::Store;

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
        return ApiError::new(ErrorCode::CallsUnavailable, "this kiosk has no media engine running").into_response();
    };
    let open = OpenSocket::count(&s.open_sockets);
    // Frames up to 1 MiB are read so that oversized ones (over 64 KiB) can be answered with an error.
    let registered = s.session_sockets.register(caller.account.id, &caller.token_hash);
    let store = s.store.clone();
    ws.max_message_size(1024 * 1024).max_frame_size(1024 * 1024).on_upgrade(move |socket| async move {
        run(socket, calls, caller, registered, store).await;
        drop(open);
    })
}

/// Counts an open signaling socket for as long as it lives.
struct OpenSocket(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl OpenSocket {
    fn count(counter: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(counter.clone())
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Why this end closed the socket: by the rules, or because the other side or the transport went away.
enum Closed {
    ByRule(CloseReason),
    ByPeer,
}

async fn run(mut socket: WebSocket, calls: CallsHandle, caller: Caller, mut registered: Registered, store: Store) {
    let (outbox, mut inbox) = mpsc::unbounded_channel::<KioskMessage>();
    let (reply, conn) = oneshot::channel();
    let account = caller.account.id;
    let token_hash = caller.token_hash.clone();
    if !calls.send(Command::Connect { account: caller.account, outbox, reply }) {
        return;
    }
    let Ok(conn) = conn.await else { return };
    tracing::info!(conn, account, "signaling socket open");
    let mut rules = SocketRules::new();
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let closed = loop {
        tokio::select! {
            // An ended session wins over a frame that arrived with it: nothing more is delivered for it.
            biased;
            _ = &mut registered.ended => break Closed::ByRule(CloseReason::SessionEnded),
            out = inbox.recv() => match out {
                Some(m) => {
                    if send(&mut socket, &m).await.is_err() {
                        break Closed::ByPeer;
                    }
                }
                // The call service dropped this socket's outbox: it has stopped, after telling the page why.
                None => break Closed::ByRule(CloseReason::ServiceStopped),
            },
            incoming = socket.recv() => {
                let frame = match incoming {
                    Some(Ok(f)) => f,
                    Some(Err(_)) | None => break Closed::ByPeer,
                };
                last_heard = Instant::now();
                let verdict = match &frame {
                    Message::Text(t) => rules.on_frame(Frame::Text(t.as_str())),
                    Message::Binary(_) => rules.on_frame(Frame::Binary),
                    Message::Close(_) => break Closed::ByPeer,
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                match verdict {
                    Verdict::Deliver(message) => {
                        if !calls.send(Command::Message { conn, message }) {
                            break Closed::ByRule(CloseReason::ServiceStopped);
                        }
                    }
                    Verdict::Reply(m) => {
                        if send(&mut socket, &m).await.is_err() {
                            break Closed::ByPeer;
                        }
                    }
                    Verdict::Close(m, why) => {
                        let _ = send(&mut socket, &m).await;
                        break Closed::ByRule(why);
                    }
                }
            }
            _ = ping.tick() => {
                if rules.silent_too_long(last_heard.elapsed()) {
                    break Closed::ByRule(CloseReason::Silent);
                }
                // Sessions also end where no socket hears of it at once: expiry, the command line, provisioning.
                let hash = token_hash.clone();
                if let Ok(None) = store.read(move |db| db.session_account(&hash, chrono::Utc::now())).await {
                    break Closed::ByRule(CloseReason::SessionEnded);
                }
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break Closed::ByPeer;
                }
            }
        }
    };
    if matches!(closed, Closed::ByRule(CloseReason::SessionEnded)) {
        // End the call first and deliver what that says (`call:ended`) before the close frame.
        let (done, handled) = oneshot::channel();
        if calls.send(Command::SessionEnded { conn, done }) && handled.await.is_ok() {
            while let Ok(m) = inbox.try_recv() {
                if send(&mut socket, &m).await.is_err() {
                    break;
                }
            }
        }
        tracing::info!(conn, account, "signaling socket closed: its login session ended");
    }
    let reason = match closed {
        Closed::ByRule(why) => {
            let frame = CloseFrame { code: why.close_code(), reason: why.as_str().into() };
            let _ = socket.send(Message::Close(Some(frame))).await;
            why.as_str()
        }
        Closed::ByPeer => "closed by the doctor",
    };
    calls.send(Command::Disconnected { conn });
    tracing::info!(conn, reason, "signaling socket closed");
}

async fn send(socket: &mut WebSocket, message: &KioskMessage) -> Result<(), axum::Error> {
    socket.send(Message::Text(message.to_json().into())).await
}
