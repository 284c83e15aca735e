//! One media session: a pipeline with a `webrtcbin` that sends camera and microphone to the doctor and plays what
//! the doctor sends. Signal handlers hold only weak references to the pipeline, so stopping and dropping a session
//! frees its threads and sockets.
//!
//! ```text
//! camera ─ convert ─ scale/rate ─ encoder ─ payloader (+TWCC) ─┐
//! mic ─ webrtcdsp (AEC/NS/AGC) ─ opusenc ─ rtpopuspay ─────────┼─ webrtcbin ─ pad-added ─ decodebin ─┬─ video ─ appsink
//!                                                              │   └ request-aux-sender: rtpgccbwe  └─ audio ─┐
//! silence ─ audiomixer ─ webrtcechoprobe ─ speaker ◀───────────────────────────────────────────────────────────┘
//! ```

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::live::element;
use super::{BitrateUnit, EncoderProfile, LiveMedia, MediaError, MediaEvent, Sources, VideoFrame};
use crate::config::{IceServer, Media};
use crate::core::protocol::IceCandidate;

const TWCC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// The `level` element on the speaker path (what the patient hears, after the volume).
const SPEAKER_LEVEL: &str = "speakerlevel";
/// The application message that ends a session's bus thread.
const STOP_MESSAGE: &str = "medimitra-stop";

pub(super) struct SessionSpec {
    pub session_id: String,
    pub profile: EncoderProfile,
    pub sources: Sources,
    pub settings: Media,
    pub ice_servers: Vec<IceServer>,
    pub live: Arc<LiveMedia>,
    pub events: tokio::sync::mpsc::UnboundedSender<MediaEvent>,
}

/// A running session. Call [`Session::stop`] (it blocks briefly) when done.
pub struct Session {
    pub id: String,
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    /// Remote candidates that arrived before the answer was applied.
    pending: Arc<Mutex<Option<Vec<IceCandidate>>>>,
    bus_task: Option<std::thread::JoinHandle<()>>,
}

/// The elements of a session's pipeline that are configured after it is built.
struct Parts {
    webrtc: gst::Element,
    encoder: gst::Element,
    payloader: gst::Element,
}

fn build_error(e: impl std::fmt::Display) -> MediaError {
    MediaError::Build(e.to_string())
}

/// `stun:host:port` → `stun://host:port`; TURN URLs get the credentials webrtcbin expects inline.
fn webrtcbin_ice_urls(servers: &[IceServer]) -> (Option<String>, Vec<String>) {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let mut stun = None;
    let mut turn = Vec::new();
    for s in servers {
        for url in &s.urls {
            let u = url.as_str();
            if let Some(rest) = u.strip_prefix("stun:").or_else(|| u.strip_prefix("stuns:")) {
                stun.get_or_insert_with(|| format!("stun://{}", rest.trim_start_matches("//")));
            } else if let Some((scheme, rest)) = u.split_once(':') {
                let user = enc(s.username.as_deref().unwrap_or(""));
                let pass = enc(s.credential.as_deref().unwrap_or(""));
                turn.push(format!("{scheme}://{user}:{pass}@{}", rest.trim_start_matches("//")));
            }
        }
    }
    (stun, turn)
}

impl Session {
    /// Builds the pipeline, configures it, starts it and asks webrtcbin for an offer (reported as an event).
    pub(super) fn start(spec: SessionSpec) -> Result<Session, MediaError> {
        let pipeline = build_pipeline(&spec)?;
        let parts = find_parts(&pipeline)?;
        attach_self_view(&pipeline, &spec.live);
        spec.live.controls.attach(&pipeline);
        configure_ice_servers(&parts.webrtc, &spec.ice_servers);
        configure_transceivers(&parts, &spec.profile)?;
        connect_congestion_control(&parts, &spec);
        connect_ice_signals(&parts.webrtc, &spec.session_id, &spec.events);
        connect_remote_streams(&pipeline, &parts.webrtc, &spec.live);
        let bus_task = spawn_bus_thread(&pipeline, &spec)?;
        let session = Session {
            id: spec.session_id.clone(),
            pipeline,
            webrtc: parts.webrtc,
            pending: Arc::new(Mutex::new(Some(Vec::new()))),
            bus_task: Some(bus_task),
        };
        session
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| build_error("the pipeline did not start (camera or microphone busy or missing?)"))?;
        session.create_offer(spec.events);
        Ok(session)
    }

    fn create_offer(&self, events: tokio::sync::mpsc::UnboundedSender<MediaEvent>) {
        let weak = self.webrtc.downgrade();
        let sid = self.id.clone();
        let promise = gst::Promise::with_change_func(move |reply| {
            let fail = |why: String| {
                let _ = events.send(MediaEvent::Failed { session_id: sid.clone(), reason: why });
            };
            let offer = match reply {
                Ok(Some(s)) => match s.get::<gst_webrtc::WebRTCSessionDescription>("offer") {
                    Ok(o) => o,
                    Err(e) => return fail(format!("no offer: {e}")),
                },
                other => return fail(format!("create-offer failed: {other:?}")),
            };
            let Some(webrtc) = weak.upgrade() else { return };
            // Be the DTLS client (a=setup:active): then peers that only offer ECDSA cipher suites never meet
            // webrtcbin's RSA certificate in a server role.
            let text = match offer.sdp().as_text() {
                Ok(t) => t.replace("a=setup:actpass", "a=setup:active"),
                Err(e) => return fail(format!("offer text: {e}")),
            };
            let sdp = match gstreamer_sdp::SDPMessage::parse_buffer(text.as_bytes()) {
                Ok(s) => s,
                Err(e) => return fail(format!("offer parse: {e}")),
            };
            let offer = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, sdp);
            webrtc.emit_by_name::<()>("set-local-description", &[&offer, &None::<gst::Promise>]);
            let _ = events.send(MediaEvent::Offer { session_id: sid.clone(), sdp: text });
        });
        self.webrtc.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
    }

    /// Applies the doctor's answer, then any candidates that arrived before it. Blocks until webrtcbin has set
    /// the description. Never called from a webrtcbin callback: calling back into webrtcbin from its own thread
    /// deadlocks it.
    pub fn apply_answer(&self, sdp: &str) -> Result<(), MediaError> {
        let msg = gstreamer_sdp::SDPMessage::parse_buffer(sdp.as_bytes())
            .map_err(|e| MediaError::BadAnswer(e.to_string()))?;
        let answer = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, msg);
        let promise = gst::Promise::new();
        self.webrtc.emit_by_name::<()>("set-remote-description", &[&answer, &promise]);
        if promise.wait() != gst::PromiseResult::Replied {
            return Err(MediaError::BadAnswer("webrtcbin did not take the answer".into()));
        }
        if let Some(err) = promise.get_reply().and_then(|r| r.get::<glib::Error>("error").ok()) {
            return Err(MediaError::BadAnswer(err.to_string()));
        }
        let queued = self.pending.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
        for c in queued {
            add_candidate(&self.webrtc, &c);
        }
        Ok(())
    }

    /// Adds a remote candidate, or queues it until the answer is applied. End-of-candidates needs no action.
    pub fn add_remote_candidate(&self, candidate: Option<IceCandidate>) {
        let Some(c) = candidate.filter(|c| !c.candidate.is_empty()) else { return };
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(queue) = pending.as_mut() {
                queue.push(c);
                return;
            }
        }
        add_candidate(&self.webrtc, &c);
    }

    /// Stops the pipeline and its bus thread. Blocks until GStreamer has torn everything down.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // The bus goes flushing once the pipeline reaches NULL, dropping anything posted after: stop its thread
        // first.
        if let Some(t) = self.bus_task.take() {
            if let Some(bus) = self.pipeline.bus() {
                let _ = bus.post(gst::message::Application::new(gst::Structure::new_empty(STOP_MESSAGE)));
            }
            let _ = t.join();
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The pipeline of one session, from its text description (see the diagram at the top of this file).
fn build_pipeline(spec: &SessionSpec) -> Result<gst::Pipeline, MediaError> {
    let (settings, profile, sources) = (&spec.settings, &spec.profile, &spec.sources);
    let (w, h, f) = (settings.width, settings.height, settings.framerate);
    let desc = format!(
        "webrtcbin name=webrtc bundle-policy=max-bundle latency={latency} \
         {video} ! videoconvert ! videoscale ! videorate ! video/x-raw,width={w},height={h},framerate={f}/1 \
           ! videobalance name={camera} {self_view} \
           ! queue max-size-buffers=2 max-size-time=0 max-size-bytes=0 leaky=downstream \
           ! {convert} ! {encoder} name=venc ! {encoder_caps} ! {payloader} name=vpay pt=96 ! queue ! webrtc. \
         {audio} ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=48000,channels=1 \
           ! webrtcdsp name=dsp probe=echoprobe ! volume name={mic} ! audioconvert ! opusenc bitrate=32000 frame-size=20 \
           ! rtpopuspay pt=111 ! queue ! webrtc. \
         audiotestsrc is-live=true wave=silence ! audio/x-raw,format=S16LE,rate=48000,channels=1 \
           ! audiomixer name=playmix ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=48000,channels=1 \
           ! volume name={speaker} ! level name={level} interval=100000000 \
           ! webrtcechoprobe name=echoprobe ! audioconvert ! {sink}",
        latency = settings.jitter_latency_ms,
        video = sources.video,
        camera = element::CAMERA_BALANCE,
        mic = element::MIC_VOLUME,
        speaker = element::SPEAKER_VOLUME,
        level = SPEAKER_LEVEL,
        convert = profile.convert,
        encoder = profile.encoder,
        encoder_caps = profile.encoder_caps,
        payloader = profile.payloader,
        audio = sources.audio,
        sink = sources.audio_sink,
        // The patient's self view, only when a UI draws it: a small RGBA copy of what is sent.
        self_view = if spec.live.pictures.wanted() {
            "! tee name=camtee camtee. ! queue max-size-buffers=1 leaky=downstream ! videoscale \
             ! video/x-raw,width=320,height=180 ! videoconvert ! video/x-raw,format=RGBA \
             ! appsink name=selfview max-buffers=1 drop=true sync=false camtee."
        } else {
            ""
        },
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(build_error)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| MediaError::Build("not a pipeline".into()))?;
    pipeline.set_property("name", format!("call-{}", spec.session_id));
    Ok(pipeline)
}

fn find_parts(pipeline: &gst::Pipeline) -> Result<Parts, MediaError> {
    Ok(Parts {
        webrtc: pipeline.by_name("webrtc").ok_or_else(|| build_error("no webrtcbin"))?,
        encoder: pipeline.by_name("venc").ok_or_else(|| build_error("no encoder"))?,
        payloader: pipeline.by_name("vpay").ok_or_else(|| build_error("no payloader"))?,
    })
}

/// Feeds the patient's self view (a small copy of the camera) into its picture slot.
fn attach_self_view(pipeline: &gst::Pipeline, live: &Arc<LiveMedia>) {
    let Some(sink) = pipeline.by_name("selfview").and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok()) else {
        return;
    };
    let live = live.clone();
    sink.set_callbacks(
        gstreamer_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok())
                    && map.len() >= 320 * 180 * 4
                {
                    live.pictures.offer_self_view(VideoFrame {
                        width: 320,
                        height: 180,
                        rgba: map[..320 * 180 * 4].to_vec(),
                    });
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

fn configure_ice_servers(webrtc: &gst::Element, servers: &[IceServer]) {
    let (stun, turns) = webrtcbin_ice_urls(servers);
    if let Some(s) = stun {
        webrtc.set_property("stun-server", s);
    }
    for t in turns {
        let _ = webrtc.emit_by_name::<bool>("add-turn-server", &[&t]);
    }
}

/// Video and audio transceivers, both sendrecv, with the codecs the kiosk offers. The video payloader stamps the
/// transport-wide CC header extension, and the offer asks the browser for its feedback.
fn configure_transceivers(parts: &Parts, profile: &EncoderProfile) -> Result<(), MediaError> {
    let mut video_caps: gst::Caps =
        profile.rtp_caps.parse().map_err(|_| build_error(format!("rtp_caps of {}", profile.name)))?;
    if let Ok(ext) = gst::ElementFactory::make("rtphdrexttwcc").build()
        && let Ok(ext) = ext.downcast::<gstreamer_rtp::RTPHeaderExtension>()
    {
        use gstreamer_rtp::prelude::RTPHeaderExtensionExt;
        ext.set_id(1);
        parts.payloader.emit_by_name::<()>("add-extension", &[&ext]);
        if let Some(s) = video_caps.make_mut().structure_mut(0) {
            s.set("extmap-1", TWCC_URI);
            // Ask the browser for transport-wide feedback (what rtpgccbwe estimates from), and allow keyframe
            // requests and retransmission requests.
            s.set("rtcp-fb-transport-cc", true);
            s.set("rtcp-fb-nack", true);
            s.set("rtcp-fb-nack-pli", true);
        }
    }
    let audio_caps: gst::Caps =
        "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2"
            .parse()
            .map_err(|_| build_error("audio caps"))?;
    for (index, caps) in [(0i32, video_caps), (1i32, audio_caps)] {
        let t = parts
            .webrtc
            .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&index])
            .ok_or_else(|| build_error(format!("no transceiver {index}")))?;
        t.set_property("direction", gst_webrtc::WebRTCRTPTransceiverDirection::Sendrecv);
        t.set_property("codec-preferences", &caps);
    }
    Ok(())
}

/// Google congestion control (rtpgccbwe) as webrtcbin's aux sender; the encoder's bitrate follows its estimate.
fn connect_congestion_control(parts: &Parts, spec: &SessionSpec) {
    let settings = &spec.settings;
    let (min, max, start) = (settings.min_bitrate_kbps, settings.max_bitrate_kbps, settings.start_bitrate_kbps);
    let profile = &spec.profile;
    set_bitrate(&parts.encoder, profile.bitrate_unit, &profile.bitrate_property, start);
    let enc_weak = parts.encoder.downgrade();
    let live = spec.live.clone();
    let unit = profile.bitrate_unit;
    let prop = profile.bitrate_property.clone();
    parts.webrtc.connect("request-aux-sender", false, move |_| {
        let gcc = gst::ElementFactory::make("rtpgccbwe").build().ok()?;
        gcc.set_property("min-bitrate", min * 1000);
        gcc.set_property("max-bitrate", max * 1000);
        gcc.set_property("estimated-bitrate", start * 1000);
        let enc_weak = enc_weak.clone();
        let prop = prop.clone();
        let live = live.clone();
        gcc.connect_notify(Some("estimated-bitrate"), move |gcc, _| {
            let bps: u32 = gcc.property("estimated-bitrate");
            if let Some(enc) = enc_weak.upgrade() {
                let kbps = (bps / 1000).clamp(min, max);
                tracing::debug!(kbps, "congestion control sets the video bitrate");
                live.sent.video_bitrate_kbps.store(u64::from(kbps), Ordering::Relaxed);
                set_bitrate(&enc, unit, &prop, kbps);
            }
        });
        Some(gcc.to_value())
    });
}

/// Trickled candidates, end of gathering and the connection state, reported as [`MediaEvent`]s.
fn connect_ice_signals(
    webrtc: &gst::Element,
    session_id: &str,
    events: &tokio::sync::mpsc::UnboundedSender<MediaEvent>,
) {
    let sid = session_id.to_string();
    let tx = events.clone();
    webrtc.connect("on-ice-candidate", false, move |values| {
        let mline = values.get(1).and_then(|v| v.get::<u32>().ok()).unwrap_or(0);
        let candidate = values.get(2).and_then(|v| v.get::<String>().ok()).unwrap_or_default();
        let _ = tx.send(MediaEvent::Candidate {
            session_id: sid.clone(),
            candidate: Some(IceCandidate { candidate, sdp_m_line_index: mline, sdp_mid: None }),
        });
        None
    });
    let sid = session_id.to_string();
    let tx = events.clone();
    webrtc.connect_notify(Some("ice-gathering-state"), move |w, _| {
        if w.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
            == gst_webrtc::WebRTCICEGatheringState::Complete
        {
            let _ = tx.send(MediaEvent::Candidate { session_id: sid.clone(), candidate: None });
        }
    });
    let sid = session_id.to_string();
    let tx = events.clone();
    // Reported on every change between flowing and not: the call core decides what an interruption means.
    let flowing = Arc::new(AtomicBool::new(false));
    webrtc.connect_notify(Some("ice-connection-state"), move |w, _| {
        use gst_webrtc::WebRTCICEConnectionState as S;
        match w.property::<S>("ice-connection-state") {
            S::Connected | S::Completed if !flowing.swap(true, Ordering::SeqCst) => {
                let _ = tx.send(MediaEvent::Connected { session_id: sid.clone() });
            }
            S::Disconnected if flowing.swap(false, Ordering::SeqCst) => {
                let _ = tx.send(MediaEvent::Interrupted { session_id: sid.clone() });
            }
            S::Failed => {
                let _ = tx.send(MediaEvent::Failed { session_id: sid.clone(), reason: "ICE failed".into() });
            }
            _ => {}
        }
    });
}

/// Plays what the doctor sends as its streams appear.
fn connect_remote_streams(pipeline: &gst::Pipeline, webrtc: &gst::Element, live: &Arc<LiveMedia>) {
    let pipe_weak = pipeline.downgrade();
    let live = live.clone();
    webrtc.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        if let Some(pipeline) = pipe_weak.upgrade()
            && let Err(e) = link_remote(&pipeline, pad, &live)
        {
            tracing::warn!(error = %e, "cannot play the doctor's media");
        }
    });
}

/// The session's bus on its own thread: errors become [`MediaEvent::Failed`], the speaker's level goes to the
/// live counters. Ends when the session posts its own stop message.
fn spawn_bus_thread(pipeline: &gst::Pipeline, spec: &SessionSpec) -> Result<std::thread::JoinHandle<()>, MediaError> {
    let bus = pipeline.bus().ok_or_else(|| build_error("no bus"))?;
    let sid = spec.session_id.clone();
    let tx = spec.events.clone();
    let live = spec.live.clone();
    std::thread::Builder::new()
        .name("media-bus".into())
        .spawn(move || {
            while let Some(msg) = bus.timed_pop(gst::ClockTime::NONE) {
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        let src = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
                        tracing::warn!(session = %sid, element = %src, error = %e.error(), debug = ?e.debug(), "media error");
                        let _ = tx.send(MediaEvent::Failed { session_id: sid.clone(), reason: format!("{src}: {}", e.error()) });
                    }
                    gst::MessageView::Element(e) => {
                        if let Some(st) = e.structure().filter(|s| s.name() == "level")
                            && msg.src().is_some_and(|s| s.name() == SPEAKER_LEVEL)
                            && let Ok(peak) = st.get::<gst::glib::ValueArray>("peak")
                            && let Some(db) = peak.iter().filter_map(|v| v.get::<f64>().ok()).reduce(f64::max)
                        {
                            live.received.set_speaker_peak_db(db);
                        }
                    }
                    gst::MessageView::Application(a) if a.structure().is_some_and(|s| s.name() == STOP_MESSAGE) => break,
                    _ => {}
                }
            }
        })
        .map_err(build_error)
}

fn add_candidate(webrtc: &gst::Element, c: &IceCandidate) {
    webrtc.emit_by_name::<()>("add-ice-candidate", &[&c.sdp_m_line_index, &c.candidate]);
}

fn set_bitrate(encoder: &gst::Element, unit: BitrateUnit, property: &str, kbps: u32) {
    match unit {
        BitrateUnit::Kbps => encoder.set_property_from_str(property, &kbps.to_string()),
        BitrateUnit::Bps => encoder.set_property_from_str(property, &(u64::from(kbps) * 1000).to_string()),
        BitrateUnit::V4l2Controls => {
            let mut s = encoder
                .property::<Option<gst::Structure>>(property)
                .unwrap_or_else(|| gst::Structure::new_empty("controls"));
            s.set("video_bitrate", (kbps * 1000) as i32);
            encoder.set_property(property, s);
        }
    }
}

/// Plays one stream the doctor sends: video to the appsink (counted; the touch UI draws it), audio to the speaker
/// mixer that also feeds the echo canceller's probe.
fn link_remote(pipeline: &gst::Pipeline, pad: &gst::Pad, live: &Arc<LiveMedia>) -> Result<(), glib::BoolError> {
    let decodebin = gst::ElementFactory::make("decodebin").build()?;
    pipeline.add(&decodebin)?;
    decodebin.sync_state_with_parent()?;
    let sink = decodebin.static_pad("sink").ok_or_else(|| glib::bool_error!("decodebin has no sink"))?;
    pad.link(&sink).map_err(|e| glib::bool_error!("link: {e:?}"))?;
    let pipe_weak = pipeline.downgrade();
    let live = live.clone();
    decodebin.connect_pad_added(move |_, dpad| {
        let Some(pipeline) = pipe_weak.upgrade() else { return };
        let is_video =
            dpad.current_caps().and_then(|c| c.structure(0).map(|s| s.name().starts_with("video"))).unwrap_or(false);
        let result = if is_video { link_video(&pipeline, dpad, &live) } else { link_audio(&pipeline, dpad, &live) };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot link the doctor's stream");
        }
    });
    Ok(())
}

fn link_video(pipeline: &gst::Pipeline, pad: &gst::Pad, live: &Arc<LiveMedia>) -> Result<(), glib::BoolError> {
    let queue = gst::ElementFactory::make("queue")
        .property_from_str("leaky", "downstream")
        .property("max-size-buffers", 2u32)
        .build()?;
    // Converting every decoded frame to RGBA costs a few percent of a core at 720p: only when the UI draws them.
    let want_rgba = live.pictures.wanted();
    let convert = gst::ElementFactory::make(if want_rgba { "videoconvert" } else { "identity" }).build()?;
    let caps = if want_rgba {
        gst::Caps::builder("video/x-raw").field("format", "RGBA").build()
    } else {
        gst::Caps::new_any()
    };
    let sink = gstreamer_app::AppSink::builder().caps(&caps).max_buffers(2).drop(true).sync(false).build();
    let live = live.clone();
    sink.set_callbacks(
        gstreamer_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(st) = sample.caps().and_then(|c| c.structure(0).map(|s| s.to_owned()))
                    && let (Ok(w), Ok(h)) = (st.get::<i32>("width"), st.get::<i32>("height"))
                {
                    live.received.width.store(w as u64, Ordering::Relaxed);
                    live.received.height.store(h as u64, Ordering::Relaxed);
                }
                live.received.video_frames.fetch_add(1, Ordering::Relaxed);
                if want_rgba {
                    let (w, h) = (
                        live.received.width.load(Ordering::Relaxed) as u32,
                        live.received.height.load(Ordering::Relaxed) as u32,
                    );
                    let len = w as usize * h as usize * 4;
                    if let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok())
                        && map.len() >= len
                    {
                        live.pictures.offer_doctor(VideoFrame { width: w, height: h, rgba: map[..len].to_vec() });
                    }
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let elements = [&queue, &convert, sink.upcast_ref::<gst::Element>()];
    pipeline.add_many(elements)?;
    gst::Element::link_many(elements)?;
    for e in elements {
        e.sync_state_with_parent()?;
    }
    let sinkpad = queue.static_pad("sink").ok_or_else(|| glib::bool_error!("queue has no sink"))?;
    pad.link(&sinkpad).map_err(|e| glib::bool_error!("link: {e:?}"))?;
    Ok(())
}

fn link_audio(pipeline: &gst::Pipeline, pad: &gst::Pad, live: &Arc<LiveMedia>) -> Result<(), glib::BoolError> {
    let mixer = pipeline.by_name("playmix").ok_or_else(|| glib::bool_error!("no mixer"))?;
    let convert = gst::ElementFactory::make("audioconvert").build()?;
    let resample = gst::ElementFactory::make("audioresample").build()?;
    let caps = gst::ElementFactory::make("capsfilter")
        .property(
            "caps",
            gst::Caps::builder("audio/x-raw")
                .field("format", "S16LE")
                .field("rate", 48000i32)
                .field("channels", 1i32)
                .build(),
        )
        .build()?;
    let elements = [&convert, &resample, &caps];
    pipeline.add_many(elements)?;
    gst::Element::link_many(elements)?;
    let counts = live.clone();
    if let Some(p) = caps.static_pad("src") {
        p.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counts.received.audio_buffers.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
    let mixpad = mixer.request_pad_simple("sink_%u").ok_or_else(|| glib::bool_error!("no mixer pad"))?;
    caps.static_pad("src")
        .ok_or_else(|| glib::bool_error!("no src"))?
        .link(&mixpad)
        .map_err(|e| glib::bool_error!("link: {e:?}"))?;
    for e in elements {
        e.sync_state_with_parent()?;
    }
    pad.link(&convert.static_pad("sink").ok_or_else(|| glib::bool_error!("no sink"))?)
        .map_err(|e| glib::bool_error!("link: {e:?}"))?;
    Ok(())
}
