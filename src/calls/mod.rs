//! The call service: one task that owns the [`CallCore`], the doctors' sockets and the media sessions. Every input
//! (socket messages, patient intents, media events, timers) arrives as a [`Command`] on one channel, so the state
//! needs no locks; the core decides and this module carries out its effects. It stops when the kiosk's
//! [`ShutdownSignal`] fires: the call ends with `kiosk_stopping`, media stops, the record is closed, and every
//! doctor's socket is let go.

pub mod control;
mod counters;
mod flow_watch;

pub use counters::CallCounters;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::Config;
use crate::core::call::{AppointmentInfo, CallCore, CallSettings, ConnId, Effect, Event, PatientView};
use crate::core::media_rules::choose_video_codec;
use crate::core::protocol::{DoctorMessage, IceServerInfo, KioskMessage, PROTOCOL_VERSION};
use crate::core::{Actor, CallPhase, CallState, EndReason, ErrorCode};
use crate::media::{LiveMedia, MediaEngine, MediaEvent, ReceiveStats, SendStats, Session};
use crate::shutdown::ShutdownSignal;
use crate::store::{Account, Store};
use flow_watch::FlowWatch;

/// Inputs of the call service.
pub enum Command {
    /// A doctor's socket opened; the reply is its connection id.
    Connect {
        account: Account,
        outbox: mpsc::UnboundedSender<KioskMessage>,
        reply: oneshot::Sender<ConnId>,
    },
    /// A message the socket's protocol rules accepted.
    Message {
        conn: ConnId,
        message: DoctorMessage,
    },
    Disconnected {
        conn: ConnId,
    },
    /// The login session behind a socket ended: its call ends now. `done` is answered once the messages this
    /// causes are in the socket's outbox, so the socket can deliver them before it closes.
    SessionEnded {
        conn: ConnId,
        done: oneshot::Sender<()>,
    },
    /// An intent of the patient (touch UI or local control).
    Patient(PatientIntent),
    Timer(Event),
}

/// What the patient can do about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientIntent {
    Accept,
    Decline,
    End,
}

/// What the kiosk shows and reports about calls (`medimitra call status`, the touch UI, the technician screen).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KioskStatus {
    pub call: CallState,
    pub call_id: Option<String>,
    pub doctor_name: Option<String>,
    /// Set while in a call.
    pub phase: Option<CallPhase>,
    /// Why the last call ended.
    pub ended_reason: Option<EndReason>,
    pub remote_video_frames: u64,
    pub remote_audio_buffers: u64,
    /// Frames of what the doctor shares, decoded in this media session (its own stream beside their camera).
    #[serde(default)]
    pub remote_shared_frames: u64,
    pub remote_video_size: Option<(u64, u64)>,
    /// Video bitrate set by congestion control (kbit/s); 0 before its first estimate.
    pub send_bitrate_kbps: u64,
    /// Peak level of what the speaker plays (after the volume), dBFS; −200 for silence.
    pub speaker_peak_db: f64,
    pub test_video: bool,
    pub test_audio: bool,
    pub video_profiles: Vec<String>,
    pub media_sessions: usize,
    /// The media session in progress (`<call>-s<n>`); a new one after each reconnection.
    pub media_session: Option<String>,
    /// What the kiosk sends now: frame rate, size, bitrate, why it is limited, retransmissions, FEC.
    pub sending: SendStats,
    /// What arrives from the doctor now: frame rate, size, loss, NACKs and PLIs sent, freezes.
    pub receiving: ReceiveStats,
    /// The doctor's chat message the patient has not answered yet (never stored, never logged).
    #[serde(default)]
    pub chat_message: Option<String>,
    /// The doctor's video is a picture or screen they share, not their camera.
    #[serde(default)]
    pub doctor_sharing: bool,
}

/// How the rest of the program talks to the call service.
#[derive(Clone)]
pub struct CallsHandle {
    tx: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<KioskStatus>,
    live: Arc<LiveMedia>,
    counters: Arc<CallCounters>,
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
        let received = &self.live.received;
        s.remote_video_frames = received.video_frames();
        s.remote_audio_buffers = received.audio_buffers();
        s.remote_shared_frames = received.shared_frames();
        s.remote_video_size = received.video_size();
        s.speaker_peak_db = received.speaker_peak_db();
        s.send_bitrate_kbps = self.live.sent.video_bitrate_kbps();
        s.sending = self.live.sent.stats();
        s.receiving = self.live.received.stats();
        s.chat_message = self.live.chat.latest().1;
        s.doctor_sharing = self.live.chat.sharing();
        s
    }

    /// Counters, pictures and the patient's controls shared with the media engine (the touch UI draws from here).
    pub fn media(&self) -> &Arc<LiveMedia> {
        &self.live
    }

    /// Waits for the next status change.
    pub fn watch(&self) -> watch::Receiver<KioskStatus> {
        self.status.clone()
    }

    /// What the service has done since the kiosk started.
    pub fn counters(&self) -> &CallCounters {
        &self.counters
    }
}

/// The running call service: its handle, and its task to wait for after the shutdown signal.
pub struct CallService {
    pub handle: CallsHandle,
    task: tokio::task::JoinHandle<()>,
}

impl CallService {
    /// Waits until the service has ended its call, stopped its media and let go of every socket.
    pub async fn stopped(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the call service ended abnormally");
        }
    }
}

struct Service {
    core: CallCore,
    media: Arc<MediaEngine>,
    store: Store,
    config: Arc<Config>,
    /// Identifies this run of the kiosk to the doctor's page (`welcome.bootId`).
    boot_id: String,
    conns: HashMap<ConnId, (Account, mpsc::UnboundedSender<KioskMessage>)>,
    next_conn: ConnId,
    sessions: HashMap<String, Session>,
    media_tx: mpsc::UnboundedSender<MediaEvent>,
    /// For timers, which come back as commands.
    tx: mpsc::UnboundedSender<Command>,
    record: Option<i64>,
    status: watch::Sender<KioskStatus>,
    flow: FlowWatch,
    counters: Arc<CallCounters>,
}

/// Starts the call service on the current tokio runtime. It runs until `shutdown` fires.
pub fn spawn(media: MediaEngine, store: Store, config: Arc<Config>, mut shutdown: ShutdownSignal) -> CallService {
    match store.write_blocking(|db| db.recover_interrupted_calls(Utc::now())) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(appointments = n, "calls interrupted by a restart were closed"),
        Err(e) => tracing::error!(error = %e, "cannot close calls interrupted by a restart"),
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (media_tx, mut media_rx) = mpsc::unbounded_channel();
    let live = media.live.clone();
    let initial = KioskStatus {
        call: CallState::Idle,
        call_id: None,
        doctor_name: None,
        phase: None,
        ended_reason: None,
        remote_video_frames: 0,
        remote_audio_buffers: 0,
        remote_shared_frames: 0,
        remote_video_size: None,
        send_bitrate_kbps: 0,
        speaker_peak_db: live.received.speaker_peak_db(),
        test_video: media.sources.video_is_test,
        test_audio: media.sources.audio_is_test,
        video_profiles: media.report.chosen().map(|p| p.name.clone()).collect(),
        media_sessions: 0,
        media_session: None,
        sending: SendStats::default(),
        receiving: ReceiveStats::default(),
        chat_message: None,
        doctor_sharing: false,
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
    let boot_id = format!("{:08x}", rand::random::<u32>());
    let mut svc = Service {
        core: CallCore::with_id_prefix(settings, &format!("c{boot_id}-")),
        media: Arc::new(media),
        store,
        config,
        boot_id,
        conns: HashMap::new(),
        next_conn: 1,
        sessions: HashMap::new(),
        media_tx,
        tx: tx.clone(),
        record: None,
        status: status_tx,
        flow: FlowWatch::default(),
        counters: Arc::new(CallCounters::default()),
    };
    let counters = svc.counters.clone();
    let mut flow_tick = tokio::time::interval(Duration::from_millis(500));
    flow_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                Some(cmd) = rx.recv() => svc.command(cmd).await,
                Some(ev) = media_rx.recv() => svc.media_event(ev).await,
                _ = flow_tick.tick() => {
                    let received = &svc.media.live.received;
                    let count = received.video_frames() + received.audio_buffers();
                    let session = svc.sessions.keys().next().cloned();
                    if let Some(event) = svc.flow.check(session.as_ref(), count, std::time::Instant::now()) {
                        tracing::info!(flowing = matches!(event, Event::MediaConnected { .. }), "doctor's media");
                        svc.event(event).await;
                    }
                }
            }
        }
        svc.stop().await;
    });
    CallService { handle: CallsHandle { tx, status: status_rx, live, counters }, task }
}

impl Service {
    /// The end of the service: the call (if any) ends as `kiosk_stopping` through the core like any other end, every
    /// media session stops, and the sockets' outboxes are dropped so each socket closes after its last message.
    async fn stop(&mut self) {
        tracing::info!("the call service is stopping");
        self.event(Event::KioskStopping).await;
        for (id, s) in self.sessions.drain() {
            tokio::task::block_in_place(|| s.stop());
            tracing::info!(session = %id, "media session stopped");
        }
        self.publish_sessions();
        self.conns.clear();
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Connect { account, outbox, reply } => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.conns.insert(conn, (account, outbox));
                let _ = reply.send(conn);
            }
            Command::Disconnected { conn } => {
                self.conns.remove(&conn);
                self.event(Event::DoctorDisconnected { conn }).await;
            }
            Command::SessionEnded { conn, done } => {
                self.event(Event::DoctorSessionEnded { conn }).await;
                let _ = done.send(());
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

    async fn media_event(&mut self, ev: MediaEvent) {
        let event = match ev {
            MediaEvent::Offer { session_id, sdp } => Event::MediaOffer { session_id, sdp },
            MediaEvent::Candidate { session_id, candidate } => Event::MediaCandidate { session_id, candidate },
            MediaEvent::Connected { session_id } => Event::MediaConnected { session_id },
            MediaEvent::Interrupted { session_id } => {
                self.counters.interruptions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(session = %session_id, "media interrupted");
                Event::MediaInterrupted { session_id }
            }
            MediaEvent::Failed { session_id, reason } => {
                // A session stopped a moment ago (the call ended, or it was replaced) may still report the error
                // its end caused; that is not a failure of the call.
                if !self.core.is_current_session(&session_id) {
                    tracing::debug!(session = %session_id, %reason, "a stopped media session reported an error");
                    return;
                }
                self.counters.sessions_failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(session = %session_id, %reason, "media session failed");
                Event::MediaFailed { session_id, reason }
            }
        };
        self.event(event).await;
    }

    fn send(&self, conn: ConnId, message: KioskMessage) {
        if let Some((_, outbox)) = self.conns.get(&conn) {
            let _ = outbox.send(message);
        }
    }

    fn welcome(&self, account: &Account) -> KioskMessage {
        let resumable = self.core.current().filter(|(_, d, _)| *d == account.id).map(|(id, _, _)| id.to_string());
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
        KioskMessage::Welcome {
            version: PROTOCOL_VERSION,
            clinic: self.config.clinic.name.clone(),
            ice_servers,
            resumable_call_id: resumable,
            boot_id: self.boot_id.clone(),
            ice_transport_policy: self.config.media.ice_transport_policy,
        }
    }

    /// Turns a message the socket rules accepted into a core event (looking up what the core needs to know).
    async fn doctor_message(&mut self, conn: ConnId, message: DoctorMessage) {
        tracing::debug!(conn, kind = message_kind(&message), "doctor message");
        let Some(account) = self.conns.get(&conn).map(|(a, _)| a.clone()) else { return };
        let event = match message {
            DoctorMessage::Hello { .. } => return self.send(conn, self.welcome(&account)),
            // Answered by the socket rules; never reaches the service.
            DoctorMessage::Ping => return,
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
                        return self.send(conn, KioskMessage::error(ErrorCode::NotFound, "no such appointment"));
                    }
                };
                let codec = choose_video_codec(&capabilities.video, &self.media.codecs());
                Event::DoctorStart { conn, doctor_id: account.id, appointment, codec }
            }
            DoctorMessage::CallResume { call_id, capabilities } => {
                let codec = choose_video_codec(&capabilities.video, &self.media.codecs());
                Event::DoctorResume { conn, doctor_id: account.id, call_id, codec }
            }
            DoctorMessage::CallEnd { call_id, .. } => Event::DoctorEnd { conn, call_id },
            DoctorMessage::Answer { session_id, sdp } => Event::DoctorAnswer { conn, session_id, sdp },
            DoctorMessage::Candidate { session_id, candidate } => {
                Event::DoctorCandidate { conn, session_id, candidate }
            }
            DoctorMessage::SessionFailed { session_id, reason } => {
                let reason = reason.unwrap_or_else(|| "the browser reported failure".into());
                tracing::info!(session = %session_id, %reason, "the doctor's browser reports the media session failed");
                Event::DoctorSessionFailed { conn, session_id, reason }
            }
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
                        self.counters.sessions_started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
            Effect::RefreshPicture { session_id } => {
                if let Some(s) = self.sessions.get(&session_id) {
                    s.request_keyframe();
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
                    .write(move |db| db.set_appointment_status(appointment_id, status, Actor::CallService, now))
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
                    let received = &self.media.live.received;
                    let quality = serde_json::json!({
                        "remoteVideoFrames": received.video_frames(),
                        "remoteAudioBuffers": received.audio_buffers(),
                        "lastPhase": self.status.borrow().phase,
                    })
                    .to_string();
                    let r = self.store.write(move |db| db.close_call_record(id, reason, Some(&quality), now)).await;
                    if let Err(e) = r {
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
        match &view {
            PatientView::Incoming { .. } => {
                self.counters.started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.media.live.chat.forget();
                tracing::info!("incoming call");
            }
            PatientView::Ended { reason } => {
                self.counters.ended(*reason);
                // A chat message belongs to its call only.
                self.media.live.chat.forget();
                tracing::info!(%reason, "call ended");
            }
            _ => {}
        }
        self.status.send_modify(|s| {
            let (call, call_id, doctor, phase, ended) = match view {
                PatientView::Idle => (CallState::Idle, None, None, None, None),
                PatientView::Incoming { call_id, doctor_name } => {
                    (CallState::Incoming, Some(call_id), Some(doctor_name), None, None)
                }
                PatientView::InCall { call_id, doctor_name, phase } => {
                    (CallState::InCall, Some(call_id), Some(doctor_name), Some(phase), None)
                }
                PatientView::Ended { reason } => (CallState::Ended, None, None, None, Some(reason)),
            };
            s.call = call;
            s.call_id = call_id;
            s.doctor_name = doctor;
            s.phase = phase;
            s.ended_reason = ended;
        });
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
