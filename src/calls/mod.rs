//! The call service: one task that owns the [`CallCore`], the doctors' sockets and the media sessions. Every input
//! (socket messages, patient intents, media events, timers) arrives as a [`Command`] on one channel, so the state
//! needs no locks; the core decides and this module carries out its effects.

pub mod control;

use chrono::Utc;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::core::call::{AppointmentInfo, CallCore, CallSettings, ConnId, Effect, Event, PatientView};
use crate::core::media_rules::choose_video_codec;
use crate::core::protocol::{DoctorMessage, IceServerInfo, KioskMessage, PROTOCOL_VERSION};
use crate::media::{MediaEngine, MediaEvent, RemoteMedia, Session};
use crate::store::{Doctor, Store};

/// Inputs of the call service.
pub enum Command {
    /// A doctor's socket opened; the reply is its connection id.
    Connect {
        doctor: Doctor,
        outbox: mpsc::UnboundedSender<KioskMessage>,
        reply: oneshot::Sender<ConnId>,
    },
    Message {
        conn: ConnId,
        message: DoctorMessage,
    },
    Disconnected {
        conn: ConnId,
    },
    /// An intent of the patient (touch UI or local control).
    Patient(PatientIntent),
    Timer(Event),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatientIntent {
    Accept,
    Decline,
    End,
}

/// What the kiosk shows and reports about calls.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KioskStatus {
    /// `idle`, `incoming`, `in_call` or `ended`.
    pub call: &'static str,
    pub call_id: Option<String>,
    pub doctor_name: Option<String>,
    /// `connecting`, `connected`, `reconnecting` while in a call.
    pub phase: Option<String>,
    /// Why the last call ended.
    pub ended_reason: Option<String>,
    pub remote_video_frames: u64,
    pub remote_audio_buffers: u64,
    pub remote_video_size: Option<(u64, u64)>,
    /// Video bitrate set by congestion control (kbit/s); 0 before its first estimate.
    pub send_bitrate_kbps: u64,
    pub test_video: bool,
    pub test_audio: bool,
    pub video_profiles: Vec<String>,
    pub media_sessions: usize,
    /// The media session in progress (`<call>-s<n>`); a new one after each reconnection.
    pub media_session: Option<String>,
}

/// How the rest of the program talks to the call service.
#[derive(Clone)]
pub struct CallsHandle {
    tx: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<KioskStatus>,
    remote: Arc<RemoteMedia>,
}

impl CallsHandle {
    pub fn send(&self, c: Command) -> bool {
        self.tx.send(c).is_ok()
    }

    pub fn patient(&self, intent: PatientIntent) -> bool {
        self.send(Command::Patient(intent))
    }

    /// The current status with fresh media counters.
    pub fn status(&self) -> KioskStatus {
        let mut s = self.status.borrow().clone();
        s.remote_video_frames = self.remote.video_frames();
        s.remote_audio_buffers = self.remote.audio_buffers();
        let (w, h) = (
            self.remote.width.load(std::sync::atomic::Ordering::Relaxed),
            self.remote.height.load(std::sync::atomic::Ordering::Relaxed),
        );
        s.remote_video_size = (w > 0).then_some((w, h));
        s.send_bitrate_kbps = self.remote.send_bitrate_kbps.load(std::sync::atomic::Ordering::Relaxed);
        s
    }

    /// Counters, frames and the patient's controls shared with the media engine (the touch UI draws from here).
    pub fn media(&self) -> &Arc<RemoteMedia> {
        &self.remote
    }

    /// Waits for the next status change.
    pub fn watch(&self) -> watch::Receiver<KioskStatus> {
        self.status.clone()
    }
}

struct Service {
    core: CallCore,
    media: Arc<MediaEngine>,
    store: Store,
    config: Arc<Config>,
    conns: HashMap<ConnId, (Doctor, mpsc::UnboundedSender<KioskMessage>)>,
    next_conn: ConnId,
    sessions: HashMap<String, Session>,
    media_tx: mpsc::UnboundedSender<MediaEvent>,
    tx: mpsc::UnboundedSender<Command>,
    record: Option<i64>,
    status: watch::Sender<KioskStatus>,
    flow: FlowWatch,
}

/// Watches the doctor's media arriving, as the kiosk's own evidence of a lost network: webrtcbin 1.22's ICE agent
/// runs no consent checks, so a dead path can stay "connected" for ever. A stall becomes `MediaInterrupted`, flow
/// after a stall `MediaConnected`; the call core decides what they mean.
#[derive(Debug, Default)]
struct FlowWatch {
    session: Option<String>,
    last_count: u64,
    last_change: Option<std::time::Instant>,
    stalled: bool,
}

/// Longer than any normal gap: audio arrives every 20 ms even when the doctor is muted.
const FLOW_STALL: Duration = Duration::from_secs(2);

impl FlowWatch {
    fn check(&mut self, session: Option<&String>, count: u64, now: std::time::Instant) -> Option<Event> {
        if self.session.as_ref() != session {
            *self = FlowWatch { session: session.cloned(), last_count: count, last_change: None, stalled: false };
            return None;
        }
        let session_id = self.session.clone()?;
        if count != self.last_count {
            self.last_count = count;
            self.last_change = Some(now);
            if self.stalled {
                self.stalled = false;
                return Some(Event::MediaConnected { session_id });
            }
        } else if let Some(t) = self.last_change
            && !self.stalled
            && now.duration_since(t) >= FLOW_STALL
        {
            // Only media that has flowed in this session can stall.
            self.stalled = true;
            return Some(Event::MediaInterrupted { session_id });
        }
        None
    }
}

/// Starts the call service on the current tokio runtime.
pub fn spawn(media: MediaEngine, store: Store, config: Arc<Config>) -> CallsHandle {
    match store.write_blocking(|db| db.recover_interrupted_calls(Utc::now())) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(appointments = n, "calls interrupted by a restart were closed"),
        Err(e) => tracing::error!(error = %e, "cannot close calls interrupted by a restart"),
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    let remote = media.remote.clone();
    let initial = KioskStatus {
        call: "idle",
        call_id: None,
        doctor_name: None,
        phase: None,
        ended_reason: None,
        remote_video_frames: 0,
        remote_audio_buffers: 0,
        remote_video_size: None,
        send_bitrate_kbps: 0,
        test_video: media.sources.video_is_test,
        test_audio: media.sources.audio_is_test,
        video_profiles: media.report.chosen().map(|p| p.name.clone()).collect(),
        media_sessions: 0,
        media_session: None,
    };
    let (status_tx, status_rx) = watch::channel(initial);
    let c = &config.calls;
    let settings = CallSettings {
        ring_timeout: Duration::from_secs(c.ring_timeout_secs.into()),
        connect_timeout: Duration::from_secs(c.connect_timeout_secs.into()),
        reconnect_grace: Duration::from_secs(c.reconnect_grace_secs.into()),
        interrupt_grace: Duration::from_secs(c.interrupt_grace_secs.into()),
        ..CallSettings::default()
    };
    let mut svc = Service {
        core: CallCore::new(settings),
        media: Arc::new(media),
        store,
        config,
        conns: HashMap::new(),
        next_conn: 1,
        sessions: HashMap::new(),
        media_tx,
        tx: tx.clone(),
        record: None,
        status: status_tx,
        flow: FlowWatch::default(),
    };
    let mut flow_tick = tokio::time::interval(Duration::from_millis(500));
    flow_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => svc.command(cmd).await,
                    None => break,
                },
                Some(ev) = media_rx.recv() => {
                    let event = match ev {
                        MediaEvent::Offer { session_id, sdp } => Event::MediaOffer { session_id, sdp },
                        MediaEvent::Candidate { session_id, candidate } => Event::MediaCandidate { session_id, candidate },
                        MediaEvent::Connected { session_id } => Event::MediaConnected { session_id },
                        MediaEvent::Interrupted { session_id } => {
                            tracing::info!(session = %session_id, "media interrupted");
                            Event::MediaInterrupted { session_id }
                        }
                        MediaEvent::Failed { session_id, reason } => {
                            tracing::warn!(session = %session_id, %reason, "media session failed");
                            Event::MediaFailed { session_id, reason }
                        }
                    };
                    svc.event(event).await;
                }
                _ = flow_tick.tick() => {
                    let count = svc.media.remote.video_frames() + svc.media.remote.audio_buffers();
                    let session = svc.sessions.keys().next().cloned();
                    if let Some(event) = svc.flow.check(session.as_ref(), count, std::time::Instant::now()) {
                        tracing::info!(flowing = matches!(event, Event::MediaConnected { .. }), "doctor's media");
                        svc.event(event).await;
                    }
                }
            }
        }
        for (_, s) in svc.sessions.drain() {
            tokio::task::block_in_place(|| s.stop());
        }
    });
    CallsHandle { tx, status: status_rx, remote }
}

impl Service {
    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Connect { doctor, outbox, reply } => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.conns.insert(conn, (doctor, outbox));
                let _ = reply.send(conn);
            }
            Command::Disconnected { conn } => {
                self.conns.remove(&conn);
                self.event(Event::DoctorDisconnected { conn }).await;
            }
            Command::Patient(intent) => {
                let event = match intent {
                    PatientIntent::Accept => Event::PatientAccept,
                    PatientIntent::Decline => Event::PatientDecline,
                    PatientIntent::End => Event::PatientEnd,
                };
                self.event(event).await;
            }
            Command::Timer(e) => self.event(e).await,
            Command::Message { conn, message } => self.doctor_message(conn, message).await,
        }
    }

    fn send(&self, conn: ConnId, message: KioskMessage) {
        if let Some((_, outbox)) = self.conns.get(&conn) {
            let _ = outbox.send(message);
        }
    }

    async fn doctor_message(&mut self, conn: ConnId, message: DoctorMessage) {
        tracing::debug!(conn, kind = message_kind(&message), "doctor message");
        let Some(doctor) = self.conns.get(&conn).map(|(d, _)| d.clone()) else { return };
        let event = match message {
            DoctorMessage::Hello { version } => {
                if version != PROTOCOL_VERSION {
                    self.send(
                        conn,
                        KioskMessage::error(
                            "unsupported_version",
                            format!("this kiosk speaks protocol version {PROTOCOL_VERSION}"),
                        ),
                    );
                    return;
                }
                let resumable =
                    self.core.current().filter(|(_, d, _)| *d == doctor.id).map(|(id, _, _)| id.to_string());
                let ice_servers = self
                    .config
                    .ice_servers
                    .iter()
                    .map(|s| IceServerInfo {
                        urls: s.urls.iter().map(|u| u.as_str().to_string()).collect(),
                        username: s.username.clone(),
                        credential: s.credential.clone(),
                    })
                    .collect();
                self.send(
                    conn,
                    KioskMessage::Welcome {
                        version: PROTOCOL_VERSION,
                        clinic: self.config.clinic.name.clone(),
                        ice_servers,
                        resumable_call_id: resumable,
                    },
                );
                return;
            }
            DoctorMessage::Ping => {
                self.send(conn, KioskMessage::Pong);
                return;
            }
            DoctorMessage::CallStart { appointment_id, capabilities } => {
                let found = self.store.read(move |db| db.appointment(appointment_id)).await;
                let appointment = match found {
                    Ok(a) => AppointmentInfo {
                        id: a.id,
                        doctor_id: a.doctor_id,
                        doctor_name: a.doctor_name,
                        status: a.status,
                    },
                    Err(_) => {
                        self.send(conn, KioskMessage::error("not_found", "no such appointment"));
                        return;
                    }
                };
                let codec = choose_video_codec(&capabilities.video, &self.media.codecs());
                Event::DoctorStart { conn, doctor_id: doctor.id, appointment, codec }
            }
            DoctorMessage::CallResume { call_id, capabilities } => {
                let codec = choose_video_codec(&capabilities.video, &self.media.codecs());
                Event::DoctorResume { conn, doctor_id: doctor.id, call_id, codec }
            }
            DoctorMessage::CallEnd { call_id, .. } => Event::DoctorEnd { conn, call_id },
            DoctorMessage::Answer { session_id, sdp } => Event::DoctorAnswer { conn, session_id, sdp },
            DoctorMessage::Candidate { session_id, candidate } => {
                Event::DoctorCandidate { conn, session_id, candidate }
            }
            DoctorMessage::SessionFailed { session_id, reason } => Event::DoctorSessionFailed {
                conn,
                session_id,
                reason: reason.unwrap_or_else(|| "the browser reported failure".into()),
            },
        };
        self.event(event).await;
    }

    /// Feeds one event to the core and carries out the effects, including events those effects cause.
    async fn event(&mut self, first: Event) {
        let mut queue = vec![first];
        while let Some(event) = queue.pop() {
            for effect in self.core.handle(event) {
                if let Some(follow_up) = self.effect(effect).await {
                    queue.push(follow_up);
                }
            }
        }
    }

    async fn effect(&mut self, effect: Effect) -> Option<Event> {
        match effect {
            Effect::Send { conn, message } => self.send(conn, message),
            Effect::StartMedia { session_id, codec } => {
                let media = self.media.clone();
                let tx = self.media_tx.clone();
                let sid = session_id.clone();
                let started = tokio::task::block_in_place(|| media.start_session(&sid, codec, tx));
                match started {
                    Ok(s) => {
                        tracing::info!(session = %session_id, codec = codec.encoding_name(), "media session started");
                        self.sessions.insert(session_id, s);
                    }
                    Err(e) => {
                        tracing::error!(session = %session_id, error = %e, "media session could not start");
                        return Some(Event::MediaFailed { session_id, reason: e.to_string() });
                    }
                }
                self.publish_sessions();
            }
            Effect::ApplyAnswer { session_id, sdp } => {
                if let Some(s) = self.sessions.get(&session_id)
                    && let Err(e) = tokio::task::block_in_place(|| s.apply_answer(&sdp))
                {
                    return Some(Event::MediaFailed { session_id, reason: e.to_string() });
                }
            }
            Effect::AddRemoteCandidate { session_id, candidate } => {
                if let Some(s) = self.sessions.get(&session_id) {
                    s.add_remote_candidate(candidate);
                }
            }
            Effect::StopMedia { session_id } => {
                if let Some(s) = self.sessions.remove(&session_id) {
                    tokio::task::block_in_place(|| s.stop());
                    tracing::info!(session = %session_id, "media session stopped");
                }
                self.publish_sessions();
            }
            Effect::SetAppointmentStatus { appointment_id, status } => {
                let now = Utc::now();
                let r = self
                    .store
                    .write(move |db| {
                        let a = db.set_appointment_status(appointment_id, status, now)?;
                        db.audit(
                            "kiosk",
                            "appointment_status",
                            &format!("appointment:{appointment_id}"),
                            &format!("call -> {}", a.status),
                            now,
                        )
                    })
                    .await;
                if let Err(e) = r {
                    tracing::error!(appointment = appointment_id, error = %e, "cannot record the appointment's status");
                }
            }
            Effect::OpenCallRecord { appointment_id } => {
                let now = Utc::now();
                match self.store.write(move |db| db.open_call_record(appointment_id, now)).await {
                    Ok(id) => self.record = Some(id),
                    Err(e) => tracing::error!(error = %e, "cannot open the call record"),
                }
            }
            Effect::CloseCallRecord { reason } => {
                if let Some(id) = self.record.take() {
                    let now = Utc::now();
                    let status = self.status.borrow().clone();
                    let quality = serde_json::json!({
                        "remoteVideoFrames": self.media.remote.video_frames(),
                        "remoteAudioBuffers": self.media.remote.audio_buffers(),
                        "lastPhase": status.phase,
                    })
                    .to_string();
                    if let Err(e) =
                        self.store.write(move |db| db.close_call_record(id, &reason, Some(&quality), now)).await
                    {
                        tracing::error!(error = %e, "cannot close the call record");
                    }
                }
            }
            Effect::StartTimer { call_id, timer, after } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = tx.send(Command::Timer(Event::TimerFired { call_id, timer }));
                });
            }
            Effect::Patient(view) => self.publish(view),
        }
        None
    }

    fn publish(&self, view: PatientView) {
        self.status.send_modify(|s| {
            let (call, call_id, doctor, phase, ended) = match view {
                PatientView::Idle => ("idle", None, None, None, None),
                PatientView::Incoming { call_id, doctor_name } => {
                    ("incoming", Some(call_id), Some(doctor_name), None, None)
                }
                PatientView::InCall { call_id, doctor_name, phase } => {
                    let p = serde_json::to_value(phase).ok().and_then(|v| v.as_str().map(str::to_string));
                    ("in_call", Some(call_id), Some(doctor_name), p, None)
                }
                PatientView::Ended { reason } => ("ended", None, None, None, Some(reason)),
            };
            s.call = call;
            s.call_id = call_id;
            s.doctor_name = doctor;
            s.phase = phase;
            s.ended_reason = ended;
        });
        match &*self.status.borrow() {
            s if s.call == "incoming" => tracing::info!("incoming call"),
            s if s.call == "ended" => tracing::info!(reason = ?s.ended_reason, "call ended"),
            _ => {}
        }
    }

    fn publish_sessions(&self) {
        let n = self.sessions.len();
        let current = self.sessions.keys().next().cloned();
        self.status.send_modify(|s| {
            s.media_sessions = n;
            s.media_session = current;
        });
    }
}

fn message_kind(m: &DoctorMessage) -> &'static str {
    match m {
        DoctorMessage::Hello { .. } => "hello",
        DoctorMessage::CallStart { .. } => "call:start",
        DoctorMessage::CallResume { .. } => "call:resume",
        DoctorMessage::CallEnd { .. } => "call:end",
        DoctorMessage::Answer { .. } => "sdp:answer",
        DoctorMessage::Candidate { .. } => "ice:candidate",
        DoctorMessage::SessionFailed { .. } => "session:failed",
        DoctorMessage::Ping => "ping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_stall_of_flowing_media_is_an_interruption_and_new_flow_ends_it() {
        let mut w = FlowWatch::default();
        let t0 = Instant::now();
        let s1 = "c1-s1".to_string();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(w.check(Some(&s1), 0, at(0)), None);
        // Nothing arrived yet in this session: connecting is not a stall.
        assert_eq!(w.check(Some(&s1), 0, at(5000)), None);
        assert_eq!(w.check(Some(&s1), 10, at(5500)), None);
        assert_eq!(w.check(Some(&s1), 10, at(7000)), None);
        assert_eq!(w.check(Some(&s1), 10, at(7500)), Some(Event::MediaInterrupted { session_id: s1.clone() }));
        assert_eq!(w.check(Some(&s1), 10, at(9000)), None, "reported once");
        assert_eq!(w.check(Some(&s1), 11, at(9500)), Some(Event::MediaConnected { session_id: s1.clone() }));
        // A new session starts afresh.
        let s2 = "c1-s2".to_string();
        assert_eq!(w.check(Some(&s2), 11, at(20000)), None);
        assert_eq!(w.check(Some(&s2), 11, at(30000)), None);
        assert_eq!(w.check(None, 11, at(31000)), None);
    }
}
