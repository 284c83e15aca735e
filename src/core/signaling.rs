//! The rules of one signaling socket, apart from its IO: the `hello` gate and the protocol version, what a bad frame
//! costs, keepalive and silence. `http::signal` moves frames between the WebSocket and these rules; the call rules
//! (`call:start`, `call:resume`, sessions) are the call core's. Every rule here is unit-tested without a socket.

use std::time::Duration;

use super::error_code::ErrorCode;
use super::names::wire_enum;
use super::protocol::{DoctorMessage, KioskMessage, PROTOCOL_VERSION};

/// Bad frames in a row after which the socket is closed.
pub const MAX_BAD_FRAMES: u32 = 5;
/// How often the kiosk pings an open socket.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// A socket not heard from for this long is closed.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// What arrived on the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    Text(&'a str),
    Binary,
}

wire_enum!(
    /// Why the kiosk closes a signaling socket (the WebSocket close frame's reason).
    CloseReason {
        /// Too many bad frames in a row.
        TooManyBadFrames = "too many bad frames",
        /// Nothing heard for [`SILENCE_LIMIT`].
        Silent = "silent for too long",
        /// The call service stopped (the kiosk is shutting down).
        ServiceStopped = "the kiosk is stopping",
        /// The login session behind the socket ended: logout, password change, account disabled, or expiry.
        SessionEnded = "the session has ended",
    }
);

impl CloseReason {
    /// The WebSocket close code that goes with the reason (RFC 6455 section 7.4.1).
    pub fn close_code(self) -> u16 {
        match self {
            Self::TooManyBadFrames => 1008,
            Self::Silent => 1000,
            Self::ServiceStopped => 1001,
            // 4000-4999 are for applications; 4001 mirrors HTTP 401: log in again.
            Self::SessionEnded => 4001,
        }
    }
}

/// What to do with a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Hand the message to the call service.
    Deliver(DoctorMessage),
    /// Answer on this socket only; nothing else happens.
    Reply(KioskMessage),
    /// Answer, then close the socket.
    Close(KioskMessage, CloseReason),
}

/// The state of one socket's protocol: whether the page has said a `hello` the kiosk accepts, and how many bad
/// frames it has sent in a row.
#[derive(Debug, Default)]
pub struct SocketRules {
    greeted: bool,
    bad_in_a_row: u32,
}

impl SocketRules {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the page has greeted with a supported version.
    pub fn greeted(&self) -> bool {
        self.greeted
    }

    /// Decides what a frame from the page leads to.
    pub fn on_frame(&mut self, frame: Frame<'_>) -> Verdict {
        let parsed = match frame {
            Frame::Text(text) => DoctorMessage::parse(text).map_err(|e| (e.code(), e.to_string())),
            Frame::Binary => Err((ErrorCode::InvalidMessage, "binary frames are not part of the protocol".into())),
        };
        let message = match parsed {
            Ok(m) => m,
            Err((code, text)) => return self.bad_frame(KioskMessage::error(code, text)),
        };
        self.bad_in_a_row = 0;
        match message {
            DoctorMessage::Ping => Verdict::Reply(KioskMessage::Pong),
            DoctorMessage::Hello { version } if version != PROTOCOL_VERSION => {
                // A page of another version is not greeted: it cannot start or resume calls.
                Verdict::Reply(KioskMessage::error(
                    ErrorCode::UnsupportedVersion,
                    format!("this kiosk speaks protocol version {PROTOCOL_VERSION}, not {version}"),
                ))
            }
            hello @ DoctorMessage::Hello { .. } => {
                self.greeted = true;
                Verdict::Deliver(hello)
            }
            _ if !self.greeted => Verdict::Reply(KioskMessage::error(
                ErrorCode::HelloRequired,
                format!("send hello with protocol version {PROTOCOL_VERSION} first"),
            )),
            other => Verdict::Deliver(other),
        }
    }

    /// Whether a socket last heard from `quiet` ago is to be closed.
    pub fn silent_too_long(&self, quiet: Duration) -> bool {
        quiet > SILENCE_LIMIT
    }

    fn bad_frame(&mut self, reply: KioskMessage) -> Verdict {
        self.bad_in_a_row += 1;
        if self.bad_in_a_row >= MAX_BAD_FRAMES {
            Verdict::Close(reply, CloseReason::TooManyBadFrames)
        } else {
            Verdict::Reply(reply)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_code(v: &Verdict) -> Option<ErrorCode> {
        match v {
            Verdict::Reply(KioskMessage::Error { code, .. }) | Verdict::Close(KioskMessage::Error { code, .. }, _) => {
                Some(*code)
            }
            _ => None,
        }
    }

    const START: &str = r#"{"type":"call:start","appointmentId":7}"#;

    #[test]
    fn nothing_but_ping_passes_before_hello() {
        let mut r = SocketRules::new();
        assert_eq!(error_code(&r.on_frame(Frame::Text(START))), Some(ErrorCode::HelloRequired));
        assert_eq!(r.on_frame(Frame::Text(r#"{"type":"ping"}"#)), Verdict::Reply(KioskMessage::Pong));
        assert!(!r.greeted());
    }

    #[test]
    fn hello_with_the_right_version_is_delivered_and_opens_the_gate() {
        let mut r = SocketRules::new();
        assert_eq!(
            r.on_frame(Frame::Text(r#"{"type":"hello","version":1}"#)),
            Verdict::Deliver(DoctorMessage::Hello { version: 1 })
        );
        assert!(r.greeted());
        assert!(matches!(r.on_frame(Frame::Text(START)), Verdict::Deliver(DoctorMessage::CallStart { .. })));
    }

    #[test]
    fn hello_with_an_unsupported_version_leaves_the_gate_shut() {
        // The bug this module fixes: the version was checked elsewhere, and a page with version 2 was then treated
        // as greeted, so its call:start rang the patient.
        let mut r = SocketRules::new();
        assert_eq!(
            error_code(&r.on_frame(Frame::Text(r#"{"type":"hello","version":2}"#))),
            Some(ErrorCode::UnsupportedVersion)
        );
        assert!(!r.greeted());
        assert_eq!(error_code(&r.on_frame(Frame::Text(START))), Some(ErrorCode::HelloRequired));
    }

    #[test]
    fn five_bad_frames_in_a_row_close_the_socket_and_a_good_one_resets_the_count() {
        let mut r = SocketRules::new();
        for _ in 0..MAX_BAD_FRAMES - 1 {
            assert_eq!(error_code(&r.on_frame(Frame::Text("nonsense"))), Some(ErrorCode::InvalidMessage));
        }
        assert_eq!(r.on_frame(Frame::Text(r#"{"type":"ping"}"#)), Verdict::Reply(KioskMessage::Pong));
        for _ in 0..MAX_BAD_FRAMES - 1 {
            assert!(matches!(r.on_frame(Frame::Binary), Verdict::Reply(_)));
        }
        let last = r.on_frame(Frame::Binary);
        assert!(matches!(last, Verdict::Close(_, CloseReason::TooManyBadFrames)), "{last:?}");
    }

    #[test]
    fn oversized_frames_are_bad_frames_with_their_own_code() {
        let mut r = SocketRules::new();
        let big = "x".repeat(super::super::protocol::MAX_MESSAGE_BYTES + 1);
        assert_eq!(error_code(&r.on_frame(Frame::Text(&big))), Some(ErrorCode::MessageTooLarge));
    }

    #[test]
    fn silence_beyond_the_limit_closes() {
        let r = SocketRules::new();
        assert!(!r.silent_too_long(SILENCE_LIMIT));
        assert!(r.silent_too_long(SILENCE_LIMIT + Duration::from_secs(1)));
    }
}
