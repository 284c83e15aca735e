//! The call state machine: one call at a time per kiosk. Events in (from the doctor's socket, the patient's UI or
//! local control, the media engine, timers), effects out (messages to send, media to start or stop, records to
//! write, timers to arm). No IO, no clocks, no GStreamer: the `calls` service carries out the effects.
//!
//! ```text
//!            call:start            accept              media connected
//!   (none) ─────────────▶ Ringing ───────▶ Connecting ─────────────────▶ Connected
//!              │ decline/timeout/doctor left      ▲  │ media lost / socket dropped    │
//!              ▼                                   │  ▼                               │
//!            (none)                          Reconnecting ◀──────────────────────────┘
//!                                 (new session; ends after the grace period or too many failures)
//! ```

use std::time::Duration;

use super::appointment::AppointmentStatus;
use super::call_status::{CallPhase, EndReason};
use super::error_code::ErrorCode;
use super::media_rules::{VideoCodec, check_answer};
use super::protocol::{IceCandidate, KioskMessage};

/// Identifies one doctor socket inside the process.
pub type ConnId = u64;

/// What the core needs to know about the appointment a call is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentInfo {
    pub id: i64,
    pub doctor_id: i64,
    pub doctor_name: String,
    pub status: AppointmentStatus,
}

/// Timings of the call rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSettings {
    /// Ringing ends as "no answer" after this.
    pub ring_timeout: Duration,
    /// A session that has not connected by then counts as failed.
    pub connect_timeout: Duration,
    /// How long a dropped doctor may take to come back.
    pub reconnect_grace: Duration,
    /// Fresh sessions tried in a row before the call ends as failed.
    pub max_session_attempts: u32,
    /// How long connected media may stay interrupted (ICE disconnected, or the doctor's media stalled) before a
    /// fresh session replaces it. Long on purpose: webrtcbin keeps its ICE/DTLS session through a cut, and media
    /// resumes on it as soon as packets flow again (a new session would first need signaling and ICE on the just
    /// returned network). ICE failure (the browser gives up after about 30 s) replaces the session at once.
    pub interrupt_grace: Duration,
}

impl Default for CallSettings {
    fn default() -> Self {
        Self {
            ring_timeout: Duration::from_secs(45),
            connect_timeout: Duration::from_secs(15),
            reconnect_grace: Duration::from_secs(30),
            max_session_attempts: 4,
            interrupt_grace: Duration::from_secs(20),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    Ring,
    /// Armed for one session attempt (its number).
    Connect(u32),
    Reconnect,
    /// Armed when connected media is interrupted: (session attempt, interruption number).
    Interrupted(u32, u32),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A doctor asked to call. `codec` is the outcome of codec negotiation for this page.
    DoctorStart {
        conn: ConnId,
        doctor_id: i64,
        appointment: AppointmentInfo,
        codec: Result<VideoCodec, String>,
    },
    /// The doctor's page came back and wants to take up its call.
    DoctorResume {
        conn: ConnId,
        doctor_id: i64,
        call_id: String,
        codec: Result<VideoCodec, String>,
    },
    DoctorEnd {
        conn: ConnId,
        call_id: String,
    },
    DoctorAnswer {
        conn: ConnId,
        session_id: String,
        sdp: String,
    },
    DoctorCandidate {
        conn: ConnId,
        session_id: String,
        candidate: Option<IceCandidate>,
    },
    DoctorSessionFailed {
        conn: ConnId,
        session_id: String,
        reason: String,
    },
    DoctorDisconnected {
        conn: ConnId,
    },
    /// The login session behind a doctor's socket ended (logout, password change, account disabled, expiry): a
    /// call on that socket ends now instead of waiting for the page to come back.
    DoctorSessionEnded {
        conn: ConnId,
    },
    PatientAccept,
    PatientDecline,
    PatientEnd,
    MediaOffer {
        session_id: String,
        sdp: String,
    },
    MediaCandidate {
        session_id: String,
        candidate: Option<IceCandidate>,
    },
    MediaConnected {
        session_id: String,
    },
    /// Connected media stopped flowing (ICE disconnected); it may come back by itself.
    MediaInterrupted {
        session_id: String,
    },
    MediaFailed {
        session_id: String,
        reason: String,
    },
    TimerFired {
        call_id: String,
        timer: Timer,
    },
    /// The kiosk is shutting down: any call ends now, and an accepted one gives its appointment back.
    KioskStopping,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send {
        conn: ConnId,
        message: KioskMessage,
    },
    /// Build a media session and produce an offer (reported back as `MediaOffer`).
    StartMedia {
        session_id: String,
        codec: VideoCodec,
    },
    ApplyAnswer {
        session_id: String,
        sdp: String,
    },
    AddRemoteCandidate {
        session_id: String,
        candidate: Option<IceCandidate>,
    },
    StopMedia {
        session_id: String,
    },
    /// A fresh keyframe both ways now (media resumed after an interruption): the kiosk sends one and asks the
    /// doctor's browser for one, so neither side waits to notice its broken picture.
    RefreshPicture {
        session_id: String,
    },
    SetAppointmentStatus {
        appointment_id: i64,
        status: AppointmentStatus,
    },
    OpenCallRecord {
        appointment_id: i64,
    },
    CloseCallRecord {
        reason: EndReason,
    },
    StartTimer {
        call_id: String,
        timer: Timer,
        after: Duration,
    },
    /// What the patient's screen (or the headless status) shows now.
    Patient(PatientView),
}

/// The patient side's view of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientView {
    Idle,
    Incoming { call_id: String, doctor_name: String },
    InCall { call_id: String, doctor_name: String, phase: CallPhase },
    Ended { reason: EndReason },
}

#[derive(Debug, Clone)]
struct Call {
    id: String,
    appointment_id: i64,
    doctor_id: i64,
    doctor_name: String,
    conn: Option<ConnId>,
    phase: CallPhase,
    codec: VideoCodec,
    /// Current media session number; 0 before the first.
    attempt: u32,
    /// Failures in a row since media last connected.
    failures: u32,
    /// Interruptions of connected media in this call, numbering the interruption timers.
    interruptions: u32,
    /// Whether the current session's media is running (and so needs stopping).
    media_running: bool,
    ever_connected: bool,
    /// Whether the current session has connected: its connect timer no longer applies (an interruption of a
    /// session that connected has its own grace).
    session_connected: bool,
}

impl Call {
    fn session_id(&self) -> Option<String> {
        (self.attempt > 0 && self.phase != CallPhase::Ringing).then(|| format!("{}-s{}", self.id, self.attempt))
    }
}

/// The kiosk's call state. Drive it with [`CallCore::handle`].
#[derive(Debug)]
pub struct CallCore {
    settings: CallSettings,
    call: Option<Call>,
    calls_started: u64,
    /// Starts every call id, so ids of different runs of the kiosk differ (`c` in tests).
    id_prefix: String,
}

impl CallCore {
    pub fn new(settings: CallSettings) -> Self {
        Self::with_id_prefix(settings, "c")
    }

    /// Call ids are `<prefix><n>`; the kiosk uses a prefix unique to this run.
    pub fn with_id_prefix(settings: CallSettings, prefix: &str) -> Self {
        Self { settings, call: None, calls_started: 0, id_prefix: prefix.to_string() }
    }

    /// The call in progress: its id, the doctor's account and whether it can be resumed by that doctor now.
    pub fn current(&self) -> Option<(&str, i64, CallPhase)> {
        self.call.as_ref().map(|c| (c.id.as_str(), c.doctor_id, c.phase))
    }

    /// Whether `session_id` is the media session of the call under way: anything a stopped or replaced session
    /// reports is stale.
    pub fn is_current_session(&self, session_id: &str) -> bool {
        self.current_session(session_id).is_some()
    }

    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::DoctorStart { conn, doctor_id, appointment, codec } => {
                self.start(conn, doctor_id, appointment, codec, &mut fx)
            }
            Event::DoctorResume { conn, doctor_id, call_id, codec } => {
                self.resume(conn, doctor_id, &call_id, codec, &mut fx)
            }
            Event::DoctorEnd { conn, call_id } => {
                if self.call.as_ref().is_some_and(|c| c.id == call_id && c.conn == Some(conn)) {
                    self.end(EndReason::DoctorEnded, &mut fx);
                } else {
                    fx.push(Effect::Send {
                        conn,
                        message: KioskMessage::error(ErrorCode::NoSuchCall, "that call is not yours or is over"),
                    });
                }
            }
            Event::DoctorAnswer { conn, session_id, sdp } => {
                let Some(call) = self.live_session(conn, &session_id) else {
                    return fx;
                };
                match check_answer(&sdp, call.codec) {
                    Ok(()) => fx.push(Effect::ApplyAnswer { session_id, sdp }),
                    Err(why) => {
                        fx.push(Effect::Send { conn, message: KioskMessage::error(ErrorCode::NegotiationFailed, why) });
                        self.end(EndReason::NegotiationFailed, &mut fx);
                    }
                }
            }
            Event::DoctorCandidate { conn, session_id, candidate } => {
                if self.live_session(conn, &session_id).is_some() {
                    fx.push(Effect::AddRemoteCandidate { session_id, candidate });
                }
            }
            Event::DoctorSessionFailed { conn, session_id, reason } => {
                if self.live_session(conn, &session_id).is_some() {
                    self.session_failed(&reason, &mut fx);
                }
            }
            Event::DoctorDisconnected { conn } => self.doctor_gone(conn, &mut fx),
            Event::DoctorSessionEnded { conn } => {
                if self.call.as_ref().is_some_and(|c| c.conn == Some(conn)) {
                    self.end(EndReason::SessionEnded, &mut fx);
                }
            }
            Event::PatientAccept => self.accept(&mut fx),
            Event::PatientDecline => {
                if self.phase() == Some(CallPhase::Ringing) {
                    self.end(EndReason::Declined, &mut fx);
                }
            }
            Event::PatientEnd => {
                if self.call.is_some() {
                    self.end(EndReason::PatientEnded, &mut fx);
                }
            }
            Event::MediaOffer { session_id, sdp } => {
                if let Some(conn) = self.current_session(&session_id).and_then(|c| c.conn) {
                    fx.push(Effect::Send { conn, message: KioskMessage::Offer { session_id, sdp } });
                }
            }
            Event::MediaCandidate { session_id, candidate } => {
                if let Some(conn) = self.current_session(&session_id).and_then(|c| c.conn) {
                    fx.push(Effect::Send { conn, message: KioskMessage::Candidate { session_id, candidate } });
                }
            }
            Event::MediaConnected { session_id } => {
                if let Some(call) = self.call.as_mut().filter(|c| c.session_id().as_deref() == Some(&session_id)) {
                    // Back from an interruption on the same session: the browser lost frames meanwhile, so a fresh
                    // keyframe now saves it detecting that and asking for one.
                    let resumed = call.phase == CallPhase::Reconnecting && call.ever_connected;
                    call.phase = CallPhase::Connected;
                    call.failures = 0;
                    call.ever_connected = true;
                    call.session_connected = true;
                    if resumed {
                        fx.push(Effect::RefreshPicture { session_id: session_id.clone() });
                    }
                    self.announce(&mut fx);
                }
            }
            Event::MediaInterrupted { session_id } => {
                if let Some(call) = self
                    .call
                    .as_mut()
                    .filter(|c| c.session_id().as_deref() == Some(&session_id) && c.phase == CallPhase::Connected)
                {
                    call.phase = CallPhase::Reconnecting;
                    call.interruptions += 1;
                    fx.push(Effect::StartTimer {
                        call_id: call.id.clone(),
                        timer: Timer::Interrupted(call.attempt, call.interruptions),
                        after: self.settings.interrupt_grace,
                    });
                    self.announce(&mut fx);
                }
            }
            Event::MediaFailed { session_id, reason } => {
                if self.current_session(&session_id).is_some() {
                    self.session_failed(&reason, &mut fx);
                }
            }
            Event::TimerFired { call_id, timer } => self.timer(&call_id, timer, &mut fx),
            Event::KioskStopping => self.end(EndReason::KioskStopping, &mut fx),
        }
        fx
    }

    fn phase(&self) -> Option<CallPhase> {
        self.call.as_ref().map(|c| c.phase)
    }

    fn current_session(&self, session_id: &str) -> Option<&Call> {
        self.call.as_ref().filter(|c| c.session_id().as_deref() == Some(session_id))
    }

    /// The call if `session_id` is its current session and `conn` its doctor; stale messages get `None`.
    fn live_session(&self, conn: ConnId, session_id: &str) -> Option<&Call> {
        self.current_session(session_id).filter(|c| c.conn == Some(conn))
    }

    fn start(
        &mut self,
        conn: ConnId,
        doctor_id: i64,
        a: AppointmentInfo,
        codec: Result<VideoCodec, String>,
        fx: &mut Vec<Effect>,
    ) {
        let refuse = |code: ErrorCode, msg: String| Effect::Send { conn, message: KioskMessage::error(code, msg) };
        if self.call.is_some() {
            fx.push(Effect::Send {
                conn,
                message: KioskMessage::Busy { message: "the kiosk is in another call".into() },
            });
            return;
        }
        if a.doctor_id != doctor_id {
            fx.push(refuse(ErrorCode::Forbidden, "you can only call for your own appointments".into()));
            return;
        }
        if a.status != AppointmentStatus::CheckedIn {
            fx.push(refuse(
                ErrorCode::NotCheckedIn,
                format!("the patient has not checked in (the appointment is {})", a.status),
            ));
            return;
        }
        let codec = match codec {
            Ok(c) => c,
            Err(why) => {
                fx.push(refuse(ErrorCode::NoCommonCodec, why));
                return;
            }
        };
        self.calls_started += 1;
        let call = Call {
            id: format!("{}{}", self.id_prefix, self.calls_started),
            appointment_id: a.id,
            doctor_id,
            doctor_name: a.doctor_name,
            conn: Some(conn),
            phase: CallPhase::Ringing,
            codec,
            attempt: 0,
            failures: 0,
            interruptions: 0,
            media_running: false,
            ever_connected: false,
            session_connected: false,
        };
        fx.push(Effect::StartTimer { call_id: call.id.clone(), timer: Timer::Ring, after: self.settings.ring_timeout });
        self.call = Some(call);
        self.announce(fx);
    }

    fn accept(&mut self, fx: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut().filter(|c| c.phase == CallPhase::Ringing) else {
            return;
        };
        call.phase = CallPhase::Connecting;
        fx.push(Effect::SetAppointmentStatus {
            appointment_id: call.appointment_id,
            status: AppointmentStatus::InCall,
        });
        fx.push(Effect::OpenCallRecord { appointment_id: call.appointment_id });
        self.new_session(fx);
    }

    /// Starts the next media session of the current call and tells the doctor.
    fn new_session(&mut self, fx: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        if let Some(old) = call.session_id().filter(|_| call.media_running) {
            fx.push(Effect::StopMedia { session_id: old });
        }
        call.attempt += 1;
        call.media_running = true;
        call.session_connected = false;
        if call.phase != CallPhase::Connecting {
            call.phase = CallPhase::Reconnecting;
        }
        let session_id = format!("{}-s{}", call.id, call.attempt);
        fx.push(Effect::StartMedia { session_id, codec: call.codec });
        fx.push(Effect::StartTimer {
            call_id: call.id.clone(),
            timer: Timer::Connect(call.attempt),
            after: self.settings.connect_timeout,
        });
        self.announce(fx);
    }

    fn session_failed(&mut self, why: &str, fx: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        call.failures += 1;
        if call.failures >= self.settings.max_session_attempts {
            if let Some(conn) = call.conn {
                let message = format!("the connection failed {} times in a row; last: {why}", call.failures);
                fx.push(Effect::Send { conn, message: KioskMessage::error(ErrorCode::MediaFailed, message) });
            }
            self.end(EndReason::MediaFailed, fx);
        } else {
            call.phase = CallPhase::Reconnecting;
            self.new_session(fx);
        }
    }

    fn doctor_gone(&mut self, conn: ConnId, fx: &mut Vec<Effect>) {
        let Some(call) = self.call.as_mut().filter(|c| c.conn == Some(conn)) else {
            return;
        };
        call.conn = None;
        if call.phase == CallPhase::Ringing {
            self.end(EndReason::DoctorLost, fx);
            return;
        }
        call.phase = CallPhase::Reconnecting;
        if let Some(old) = call.session_id().filter(|_| call.media_running) {
            fx.push(Effect::StopMedia { session_id: old });
        }
        call.media_running = false;
        fx.push(Effect::StartTimer {
            call_id: call.id.clone(),
            timer: Timer::Reconnect,
            after: self.settings.reconnect_grace,
        });
        self.announce(fx);
    }

    fn resume(
        &mut self,
        conn: ConnId,
        doctor_id: i64,
        call_id: &str,
        codec: Result<VideoCodec, String>,
        fx: &mut Vec<Effect>,
    ) {
        let resumable = self
            .call
            .as_ref()
            .is_some_and(|c| c.id == call_id && c.doctor_id == doctor_id && c.phase != CallPhase::Ringing);
        if !resumable {
            fx.push(Effect::Send {
                conn,
                message: KioskMessage::CallEnded { call_id: call_id.to_string(), reason: EndReason::NotResumable },
            });
            return;
        }
        let Some(call) = self.call.as_mut() else {
            return;
        };
        if let Ok(c) = codec {
            call.codec = c;
        }
        // A reload can open the new socket before the old one is seen closing: the newest socket wins.
        call.conn = Some(conn);
        call.phase = CallPhase::Reconnecting;
        call.failures = 0;
        self.new_session(fx);
    }

    fn timer(&mut self, call_id: &str, timer: Timer, fx: &mut Vec<Effect>) {
        let Some(call) = self.call.as_ref().filter(|c| c.id == call_id) else {
            return;
        };
        match timer {
            Timer::Ring if call.phase == CallPhase::Ringing => self.end(EndReason::NoAnswer, fx),
            Timer::Reconnect if call.conn.is_none() => self.end(EndReason::DoctorLost, fx),
            Timer::Connect(n)
                if n == call.attempt
                    && !call.session_connected
                    && matches!(call.phase, CallPhase::Connecting | CallPhase::Reconnecting)
                    && call.conn.is_some() =>
            {
                self.session_failed("the connection was not established in time", fx)
            }
            Timer::Interrupted(attempt, n)
                if attempt == call.attempt
                    && n == call.interruptions
                    && call.phase == CallPhase::Reconnecting
                    && call.conn.is_some() =>
            {
                self.session_failed("the connection was lost", fx)
            }
            _ => {}
        }
    }

    /// Tells the doctor and the patient where the call stands.
    fn announce(&self, fx: &mut Vec<Effect>) {
        let Some(call) = &self.call else { return };
        if let Some(conn) = call.conn {
            fx.push(Effect::Send {
                conn,
                message: KioskMessage::CallState {
                    call_id: call.id.clone(),
                    appointment_id: call.appointment_id,
                    state: call.phase,
                    codec: call.codec,
                },
            });
        }
        let view = match call.phase {
            CallPhase::Ringing => {
                PatientView::Incoming { call_id: call.id.clone(), doctor_name: call.doctor_name.clone() }
            }
            phase => PatientView::InCall { call_id: call.id.clone(), doctor_name: call.doctor_name.clone(), phase },
        };
        fx.push(Effect::Patient(view));
    }

    fn end(&mut self, why: EndReason, fx: &mut Vec<Effect>) {
        let Some(call) = self.call.take() else { return };
        if let Some(session_id) = call.session_id().filter(|_| call.media_running) {
            fx.push(Effect::StopMedia { session_id });
        }
        if let Some(conn) = call.conn {
            fx.push(Effect::Send { conn, message: KioskMessage::CallEnded { call_id: call.id.clone(), reason: why } });
        }
        if call.phase != CallPhase::Ringing {
            // Accepted calls moved the appointment to in_call: a consultation that took place completes it; one that
            // never connected, or that the kiosk's shutdown cut short, returns it to checked_in so the doctor can
            // call again.
            let completed = call.ever_connected && why != EndReason::KioskStopping;
            let status = if completed { AppointmentStatus::Completed } else { AppointmentStatus::CheckedIn };
            fx.push(Effect::SetAppointmentStatus { appointment_id: call.appointment_id, status });
            fx.push(Effect::CloseCallRecord { reason: why });
        }
        fx.push(Effect::Patient(PatientView::Ended { reason: why }));
    }
}

#[cfg(test)]
#[path = "call_tests.rs"]
mod tests;
