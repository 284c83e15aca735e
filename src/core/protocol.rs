//! The signaling protocol between the doctor's page and the kiosk, as plain types. JSON objects tagged by `type`,
//! field names in camelCase; unknown types and unknown fields are refused. Documented in `docs/signaling.md`.
//! Every message about a media session carries its `sessionId`, so stale offers, answers and candidates from an
//! earlier session of the same call are recognised and dropped.

use serde::{Deserialize, Serialize};

use super::call_status::{CallPhase, EndReason};
use super::error_code::ErrorCode;
use super::media_rules::VideoCodec;
use super::names::wire_enum;

wire_enum!(
    /// Which ICE candidates a call may use (as `RTCPeerConnection`'s `iceTransportPolicy`).
    #[derive(Default)]
    IceTransportPolicy {
        /// Direct paths first, TURN when needed.
        #[default]
        All = "all",
        /// Only the TURN server's relay (sites where nothing else gets through).
        Relay = "relay",
    }
);

/// Bumped on any incompatible change; the page says which version it speaks in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Frames larger than this are refused with an `error` and never parsed.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// One ICE candidate as the browser's `RTCIceCandidate` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_m_line_index: u32,
    #[serde(default)]
    pub sdp_mid: Option<String>,
}

/// One entry of `RTCRtpReceiver.getCapabilities('video').codecs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodecCapability {
    pub mime_type: String,
    #[serde(default)]
    pub sdp_fmtp_line: Option<String>,
    #[serde(default)]
    pub clock_rate: Option<u32>,
}

/// What the doctor's browser can receive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default)]
    pub video: Vec<CodecCapability>,
}

/// A STUN/TURN server for the page's `RTCPeerConnection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServerInfo {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// Messages from the doctor's page to the kiosk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum DoctorMessage {
    /// First message on a socket: the protocol version the page speaks.
    #[serde(rename = "hello")]
    Hello { version: u32 },
    /// Ring the patient for this appointment (the doctor's own, checked in).
    #[serde(rename = "call:start")]
    CallStart {
        appointment_id: i64,
        #[serde(default)]
        capabilities: Capabilities,
    },
    /// Take up a call again after the page lost its socket (reload, network change) within the grace period.
    #[serde(rename = "call:resume")]
    CallResume {
        call_id: String,
        #[serde(default)]
        capabilities: Capabilities,
    },
    /// Hang up.
    #[serde(rename = "call:end")]
    CallEnd {
        call_id: String,
        #[serde(default)]
        reason: Option<String>,
    },
    /// The page's SDP answer to the kiosk's offer.
    #[serde(rename = "sdp:answer")]
    Answer { session_id: String, sdp: String },
    /// A trickled candidate; `candidate: null` is end-of-candidates.
    #[serde(rename = "ice:candidate")]
    Candidate { session_id: String, candidate: Option<IceCandidate> },
    /// The page's peer connection failed; the kiosk answers with a fresh session.
    #[serde(rename = "session:failed")]
    SessionFailed {
        session_id: String,
        #[serde(default)]
        reason: Option<String>,
    },
    /// Keepalive; answered with `pong`.
    #[serde(rename = "ping")]
    Ping,
}

/// Messages from the kiosk to the doctor's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum KioskMessage {
    /// Reply to `hello`: versions and what the page needs to set up a peer connection.
    #[serde(rename = "welcome")]
    Welcome {
        version: u32,
        clinic: String,
        ice_servers: Vec<IceServerInfo>,
        /// A call of this doctor that can be resumed, if any.
        resumable_call_id: Option<String>,
        /// Different after every start of the kiosk: a page that finds it changed knows its call did not survive.
        boot_id: String,
        /// `all`, or `relay` when only the TURN server may carry media (`RTCPeerConnection`'s own option).
        ice_transport_policy: IceTransportPolicy,
    },
    /// The call's phase changed.
    #[serde(rename = "call:state")]
    CallState {
        call_id: String,
        appointment_id: i64,
        state: CallPhase,
        /// Video codec chosen for the call.
        codec: VideoCodec,
    },
    /// The kiosk's SDP offer for a new media session.
    #[serde(rename = "sdp:offer")]
    Offer { session_id: String, sdp: String },
    /// A trickled kiosk candidate; `candidate: null` is end-of-candidates.
    #[serde(rename = "ice:candidate")]
    Candidate { session_id: String, candidate: Option<IceCandidate> },
    /// The call is over; `reason` says why (see docs/signaling.md).
    #[serde(rename = "call:ended")]
    CallEnded { call_id: String, reason: EndReason },
    /// Another call is in progress at this kiosk.
    #[serde(rename = "busy")]
    Busy { message: String },
    /// A refused or malformed message.
    #[serde(rename = "error")]
    Error { code: ErrorCode, message: String },
    /// Keepalive reply.
    #[serde(rename = "pong")]
    Pong,
}

/// Why a frame could not be read as a [`DoctorMessage`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message of {0} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("{0}")]
    Invalid(String),
}

impl ParseError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge(_) => ErrorCode::MessageTooLarge,
            Self::Invalid(_) => ErrorCode::InvalidMessage,
        }
    }
}

impl DoctorMessage {
    /// Parses one text frame, refusing oversized ones before looking inside.
    pub fn parse(text: &str) -> Result<DoctorMessage, ParseError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(ParseError::TooLarge(text.len()));
        }
        serde_json::from_str(text).map_err(|e| ParseError::Invalid(e.to_string()))
    }
}

impl KioskMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error { code, message: message.into() }
    }

    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail (no maps with non-string keys, no custom serialisers).
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"serialisation"}"#.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doctor_examples() -> Vec<DoctorMessage> {
        let cand = IceCandidate {
            candidate: "candidate:1 1 udp 2122260223 10.0.0.2 50000 typ host".into(),
            sdp_m_line_index: 1,
            sdp_mid: Some("1".into()),
        };
        vec![
            DoctorMessage::Hello { version: 1 },
            DoctorMessage::CallStart {
                appointment_id: 7,
                capabilities: Capabilities {
                    video: vec![CodecCapability {
                        mime_type: "video/H264".into(),
                        sdp_fmtp_line: Some("packetization-mode=1".into()),
                        clock_rate: Some(90000),
                    }],
                },
            },
            DoctorMessage::CallResume { call_id: "c1".into(), capabilities: Capabilities::default() },
            DoctorMessage::CallEnd { call_id: "c1".into(), reason: Some("done".into()) },
            DoctorMessage::Answer { session_id: "c1-s1".into(), sdp: "v=0\r\n".into() },
            DoctorMessage::Candidate { session_id: "c1-s1".into(), candidate: Some(cand) },
            DoctorMessage::Candidate { session_id: "c1-s1".into(), candidate: None },
            DoctorMessage::SessionFailed { session_id: "c1-s1".into(), reason: None },
            DoctorMessage::Ping,
        ]
    }

    fn kiosk_examples() -> Vec<KioskMessage> {
        vec![
            KioskMessage::Welcome {
                version: 1,
                clinic: "Gram".into(),
                ice_servers: vec![IceServerInfo { urls: vec!["stun:s".into()], username: None, credential: None }],
                resumable_call_id: None,
                boot_id: "b1".into(),
                ice_transport_policy: IceTransportPolicy::Relay,
            },
            KioskMessage::CallState {
                call_id: "c1".into(),
                appointment_id: 7,
                state: CallPhase::Connecting,
                codec: VideoCodec::H264,
            },
            KioskMessage::Offer { session_id: "c1-s1".into(), sdp: "v=0\r\n".into() },
            KioskMessage::Candidate { session_id: "c1-s1".into(), candidate: None },
            KioskMessage::CallEnded { call_id: "c1".into(), reason: EndReason::Declined },
            KioskMessage::Busy { message: "busy".into() },
            KioskMessage::error(ErrorCode::InvalidMessage, "x"),
            KioskMessage::Pong,
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in doctor_examples() {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(DoctorMessage::parse(&json).unwrap(), m, "{json}");
        }
        for m in kiosk_examples() {
            let json = m.to_json();
            assert_eq!(serde_json::from_str::<KioskMessage>(&json).unwrap(), m, "{json}");
        }
    }

    #[test]
    fn wire_names_are_the_documented_ones() {
        let json =
            serde_json::to_value(DoctorMessage::CallStart { appointment_id: 3, capabilities: Capabilities::default() })
                .unwrap();
        assert_eq!(json, serde_json::json!({"type": "call:start", "appointmentId": 3, "capabilities": {"video": []}}));
        let json = serde_json::to_value(KioskMessage::Offer { session_id: "s".into(), sdp: "x".into() }).unwrap();
        assert_eq!(json, serde_json::json!({"type": "sdp:offer", "sessionId": "s", "sdp": "x"}));
        assert_eq!(
            DoctorMessage::parse(r#"{"type":"call:start","appointmentId":3}"#).unwrap(),
            DoctorMessage::CallStart { appointment_id: 3, capabilities: Capabilities::default() }
        );
    }

    #[test]
    fn unknown_types_missing_fields_and_garbage_are_refused() {
        for bad in [
            r#"{"type":"call:teleport"}"#,
            r#"{"type":"call:start"}"#,
            r#"{"type":"call:start","appointmentId":"seven"}"#,
            r#"{"type":"call:start","appointmentId":1,"extra":true}"#,
            r#"{"appointmentId":1}"#,
            r#"{"type":"sdp:answer","sessionId":"s"}"#,
            "not json",
            "",
            "[]",
        ] {
            assert!(matches!(DoctorMessage::parse(bad), Err(ParseError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn oversized_frames_are_refused_before_parsing() {
        let big = format!(r#"{{"type":"sdp:answer","sessionId":"s","sdp":"{}"}}"#, "a".repeat(MAX_MESSAGE_BYTES));
        assert_eq!(DoctorMessage::parse(&big).unwrap_err().code(), ErrorCode::MessageTooLarge);
    }
}
