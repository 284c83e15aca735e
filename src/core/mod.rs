//! The pure core: domain types and the rules that govern them. Nothing here touches a socket, a file or a database,
//! so every rule is unit-tested on its own and every edge (HTTP, CLI, touch UI) applies the same rules.
//!
//! - `names`: the one mapping between domain enums and their words outside the program ([`wire_enum!`]).
//! - [`call`]: the call state machine (events in, effects out); [`call_status`]: the typed status it publishes.
//! - [`protocol`]: the signaling messages; [`signaling`]: the rules of one signaling socket (hello, version, bad
//!   frames, silence); [`error_code`]: every error code the API and the socket send.
//! - [`media_rules`]: codec choice and answer checks; [`playout`]: when the doctor's frames are shown;
//!   [`reception_report`]: the RTCP report blocks the kiosk adds about the doctor's streams; [`dtls`]: when a lost
//!   DTLS handshake flight is sent again.
//!   [`chat`]: the doctor's messages and the patient's quick replies during a call;
//!   `appointment`, `people`, `validate`: the data rules; [`vitals`]: the medical devices' serial protocols;
//!   [`stun`]: the STUN/TURN messages and verdict of the kiosk's network check.

pub(crate) mod names;

pub mod adaptation;
mod appointment;
pub mod call;
pub mod call_status;
pub mod chat;
pub mod dtls;
pub mod error_code;
pub mod frame_stamp;
pub mod freeze;
pub mod login_throttle;
pub mod media_rules;
mod people;
pub mod playout;
pub mod protocol;
pub mod reception_report;
pub mod retransmission;
pub mod signaling;
pub mod stun;
mod validate;
pub mod vitals;

pub use appointment::{AppointmentStatus, TransitionError, overlaps};
pub use call_status::{CallPhase, CallState, EndReason};
pub use error_code::ErrorCode;
pub use people::{Actor, Language, Role, Sex};
pub use validate::{
    FieldError, local_day_range, parse_birth_date, parse_start_time, validate_duration, validate_email, validate_name,
    validate_password, validate_phone, validate_text,
};
