//! One media session: a pipeline with a `webrtcbin` that sends camera and microphone to the doctor and plays what
//! the doctor sends. Signal handlers hold only weak references to the pipeline, so stopping and dropping a session
//! frees its threads and sockets.
//!
//! ```text
//! camera ─ convert ─ scale/rate ─ [self view] ─ leaky queue ─ ladder ─ valve (until connected) ─ encoder ─ pay ─┐
//! mic ─ webrtcdsp (AEC/NS/AGC) ─ opusenc (in-band FEC) ─ rtpopuspay (dropped until connected) ──────────────────┤
//!            webrtcbin: video transceiver with NACK/RTX (and RED/ULPFEC), aux sender rtpgccbwe, ◀──────────────┘
//!                       its rtpbin's jitter buffers set for retransmission, pad-added ─ decodebin ─┬─ video ─ appsink
//!                                                                                                  └─ audio ─┐
//! silence ─ audiomixer ─ volume ─ level ─ webrtcechoprobe ─ speaker ◀────────────────────────────────────────┘
//! ```
//!
//! Loss repair: the browser's NACKs are answered from webrtcbin's `rtprtxsend` (500 packets of history); the kiosk
//! NACKs the doctor's lost video packets (jitter buffers, [`tuning`]) and asks for keyframes on loss, rate-limited
//! ([`remote`]); Opus carries in-band FEC, and RED/ULPFEC protects video when the browser accepts it. The
//! [`monitor`] reads the statistics every half second and adapts the picture (a resolution and frame-rate ladder),
//! the rate (when the browser sends no transport-wide feedback), the protection and the jitter buffer's wait.

mod chime;
mod data;
pub mod ladder;
mod monitor;
mod remote;
mod reports;
mod send_delay;
mod stamp;
mod tuning;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::live::element;
use super::{EncoderProfile, LiveMedia, MediaError, MediaEvent, Sources, VideoFrame};
use crate::config::{IceServer, IceTransportPolicy, Media};
use crate::core::media_rules::answer_facts;
use crate::core::protocol::IceCandidate;
use tuning::Tuning;

use crate::core::media_rules::TRANSPORT_WIDE_CC_URI as TWCC_URI;
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
    encoder: gst::Element,
    /// Loses its transport-wide sequence numbers when the answer does not read them on audio.
    audio_payloader: gst::Element,
    tuning: Arc<Tuning>,
    /// Ends the monitor thread.
    stop_monitor: Arc<AtomicBool>,
    monitor: Option<std::thread::JoinHandle<()>>,
    /// Whether the RTP session adds reception reports yet (`reports`; connected once, after the answer).
    reports_added: AtomicBool,
}

/// The elements of a session's pipeline that are configured after it is built.
struct Parts {
    webrtc: gst::Element,
    encoder: gst::Element,
    payloader: gst::Element,
    audio_payloader: gst::Element,
    opus: gst::Element,
    ladder: gst::Element,
}

/// The payload size: room for SRTP, TURN and tunnel headers within common MTUs (as libwebrtc and webrtcsink).
const MTU: u32 = 1200;

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
                let mut rest = rest.trim_start_matches("//").to_string();
                // `turn:` with no transport means UDP, as in browsers. webrtcbin would also open a TURN-over-TCP
                // relay for it, and ICE could pick that: TCP then hides every loss behind its own retransmissions
                // and stalls the call both ways (seen in the lab: no loss counted, 5-30 s frozen per minute, round
                // trips of seconds). Sites that need TCP say `?transport=tcp` (or use `turns:`).
                if scheme == "turn" && !rest.contains("transport=") {
                    rest.push_str(if rest.contains('?') { "&transport=udp" } else { "?transport=udp" });
                }
                turn.push(format!("{scheme}://{user}:{pass}@{rest}"));
            }
        }
    }
    (stun, turn)
}

impl Session {
    /// Builds the pipeline, configures it, starts it and asks webrtcbin for an offer (reported as an event).
    pub(super) fn start(spec: SessionSpec) -> Result<Session, MediaError> {
        let settings = &spec.settings;
        let rungs = settings.degradation_preference.rungs(crate::core::adaptation::ladder(
            settings.width,
            settings.height,
            settings.framerate,
        ));
        let first_rung = crate::core::adaptation::Ladder::new(
            rungs.clone(),
            settings.start_bitrate_kbps.saturating_sub(tuning::AUDIO_KBPS),
        )
        .rung();
        let pipeline = build_pipeline(&spec, first_rung)?;
        ladder::drop_above_rung(pipeline.upcast_ref());
        let parts = find_parts(&pipeline)?;
        let tuning = Arc::new(Tuning::new(
            &parts.encoder,
            spec.profile.bitrate_unit,
            &spec.profile.bitrate_property,
            (settings.min_bitrate_kbps, settings.max_bitrate_kbps),
            settings.jitter_latency_ms,
        ));
        tuning.rung_cap_kbps.store(first_rung.max_useful_kbps(), std::sync::atomic::Ordering::Relaxed);
        attach_self_view(&pipeline, &spec.live);
        if spec.sources.stamp_frames
            && let Some(pad) = pipeline.by_name(CAMERA_CONVERT).and_then(|c| c.static_pad("sink"))
        {
            stamp::stamp_passing(&pad);
        }
        spec.live.controls.attach(&pipeline);
        configure_ice(&parts.webrtc, &spec.ice_servers, settings.ice_transport_policy);
        configure_transceivers(&parts, &spec.profile, settings.video_fec)?;
        configure_encoder(&parts.encoder, &spec.profile, settings.start_bitrate_kbps);
        tuning::count_encoded(&parts.encoder, &tuning, |t| &t.encoded_frames);
        tuning::count_encoded(&parts.opus, &tuning, |t| &t.encoded_audio_frames);
        tuning::connect_congestion_control(
            &parts.webrtc,
            &tuning,
            &spec.live,
            (settings.min_bitrate_kbps, settings.max_bitrate_kbps, settings.start_bitrate_kbps),
        );
        tuning::connect_jitterbuffers(&parts.webrtc, &tuning);
        tuning::catch_rtx_sender(&parts.webrtc, &tuning);
        if send_delay::wanted() {
            send_delay::attach(&parts.encoder, &parts.payloader, &parts.webrtc, tuning::AUDIO_PT);
        }
        connect_ice_signals(&parts.webrtc, &spec.session_id, &spec.events);
        let stop_monitor = Arc::new(AtomicBool::new(false));
        connect_remote_streams(&pipeline, &parts.webrtc, &spec.live, &tuning);
        let bus_task = spawn_bus_thread(&pipeline, &spec)?;
        let monitor = monitor::spawn(
            monitor::Handles {
                webrtc: parts.webrtc.downgrade(),
                ladder: parts.ladder.downgrade(),
                opus: parts.opus.downgrade(),
                video_payloader: parts.payloader.downgrade(),
                audio_payloader: parts.audio_payloader.downgrade(),
            },
            tuning.clone(),
            spec.live.clone(),
            monitor::Limits {
                rungs,
                start_kbps: settings.start_bitrate_kbps,
                min_kbps: settings.min_bitrate_kbps,
                max_kbps: settings.max_bitrate_kbps,
                video_fec: settings.video_fec,
            },
            stop_monitor.clone(),
        )
        .map_err(build_error)?;
        let session = Session {
            id: spec.session_id.clone(),
            pipeline,
            webrtc: parts.webrtc,
            pending: Arc::new(Mutex::new(Some(Vec::new()))),
            bus_task: Some(bus_task),
            encoder: parts.encoder.clone(),
            audio_payloader: parts.audio_payloader.clone(),
            tuning,
            stop_monitor,
            monitor: Some(monitor),
            reports_added: AtomicBool::new(false),
        };
        session
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| build_error("the pipeline did not start (camera or microphone busy or missing?)"))?;
        wait_for_ssrcs(&session.webrtc);
        hold_until_connected(&session.pipeline, &session.webrtc, &session.encoder, &session.audio_payloader);
        // webrtcbin makes data channels only once it is running (before, `create-data-channel` gives nothing).
        data::open_channels(&session.webrtc, &spec.live, session.stop_monitor.clone());
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
        // Before webrtcbin sees the answer: its jitter buffers appear with the first packets, and the handler that
        // turns retransmission on for them needs to know which SSRCs are the doctor's video.
        let facts = answer_facts(sdp);
        if !facts.audio_transport_wide {
            self.audio_payloader.emit_by_name::<()>("clear-extensions", &[]);
        }
        self.tuning.set_facts(facts);
        let answer = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, msg);
        let promise = gst::Promise::new();
        self.webrtc.emit_by_name::<()>("set-remote-description", &[&answer, &promise]);
        if promise.wait() != gst::PromiseResult::Replied {
            return Err(MediaError::BadAnswer("webrtcbin did not take the answer".into()));
        }
        if let Some(err) = promise.get_reply().and_then(|r| r.get::<glib::Error>("error").ok()) {
            return Err(MediaError::BadAnswer(err.to_string()));
        }
        if !self.reports_added.swap(true, Ordering::Relaxed) {
            reports::add_reception_reports(&self.webrtc);
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

    /// How many video frames the encoder has put out in this session.
    pub fn encoded_frames(&self) -> u64 {
        self.tuning.encoded_frames.load(Ordering::Relaxed)
    }

    /// How many audio frames (20 ms each) the encoder has put out in this session.
    pub fn encoded_audio_frames(&self) -> u64 {
        self.tuning.encoded_audio_frames.load(Ordering::Relaxed)
    }

    /// Asks the video encoder for a keyframe now (as a browser's PLI would), and the doctor's browser for one (a
    /// PLI from the RTP session: the same event sent up from the doctor's picture never reached it, see
    /// docs/platform-notes.md).
    pub fn request_keyframe(&self) {
        // What GstVideo's upstream force-key-unit event is: a custom upstream event named GstForceKeyUnit.
        if let Some(pad) = self.encoder.static_pad("src") {
            pad.send_event(gst::event::CustomUpstream::new(
                gst::Structure::builder("GstForceKeyUnit").field("all-headers", true).field("count", 0u32).build(),
            ));
        }
        if let Some(ssrcs) = self.tuning.facts().map(|f| f.video_ssrcs) {
            tuning::request_doctor_keyframe(&self.webrtc, &ssrcs);
        }
    }

    /// Stops the pipeline and its bus thread. Blocks until GStreamer has torn everything down.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop_monitor.store(true, Ordering::Relaxed);
        if let Some(t) = self.monitor.take() {
            let _ = t.join();
        }
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
fn build_pipeline(spec: &SessionSpec, first_rung: crate::core::adaptation::Rung) -> Result<gst::Pipeline, MediaError> {
    let (settings, profile, sources) = (&spec.settings, &spec.profile, &spec.sources);
    let (w, h, f) = (settings.width, settings.height, settings.framerate);
    let desc = format!(
        "webrtcbin name=webrtc bundle-policy=max-bundle latency={latency} \
         {video} ! videoconvert name={camera_convert} ! videoscale {camera_rate} ! video/x-raw,width={w},height={h},framerate={f}/1 \
           ! videobalance name={camera} {self_view} \
           ! queue max-size-buffers=2 max-size-time=0 max-size-bytes=0 leaky=downstream \
           ! {ladder} ! valve name={hold} \
           ! {convert} ! {encoder} name=venc ! {encoder_caps} ! {payloader} name=vpay pt={video_pt} mtu={mtu} ! queue ! webrtc. \
         {audio} ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=48000,channels=1 \
           ! webrtcdsp name=dsp probe=echoprobe ! volume name={mic} ! audioconvert \
           ! opusenc name=aenc bitrate=32000 frame-size=20 audio-type=voice inband-fec=true packet-loss-percentage=0 \
           ! rtpopuspay name=apay pt={audio_pt} mtu={mtu} ! queue ! webrtc. \
         audiotestsrc is-live=true wave=silence ! audio/x-raw,format=S16LE,rate=48000,channels=1 \
           ! audiomixer name={playmix} ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=48000,channels=1 \
           ! volume name={speaker} ! level name={level} interval=100000000 \
           ! webrtcechoprobe name=echoprobe ! audioconvert ! {sink}",
        latency = settings.jitter_latency_ms,
        video_pt = tuning::VIDEO_PT,
        audio_pt = tuning::AUDIO_PT,
        video = sources.video,
        camera = element::CAMERA_BALANCE,
        camera_convert = CAMERA_CONVERT,
        // A camera's rate is made the configured one. videorate holds each frame until the next arrives (it compares
        // two), one frame interval of delay; the test sources already run at the configured rate and go without it.
        camera_rate = if sources.video_is_test { "" } else { "! videorate" },
        mic = element::MIC_VOLUME,
        speaker = element::SPEAKER_VOLUME,
        level = SPEAKER_LEVEL,
        playmix = chime::MIXER,
        ladder = ladder::stage(first_rung),
        hold = VIDEO_HOLD,
        mtu = MTU,
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

/// The first element after the camera: the glass-to-glass stamp is written where frames enter it, so the
/// measurement covers everything the kiosk does to a picture.
const CAMERA_CONVERT: &str = "camconvert";

/// The valve before the encoder that holds the picture back while the peer connection comes up.
const VIDEO_HOLD: &str = "videohold";

/// Until ICE and DTLS are up webrtcbin sends no RTP, and everything encoded meanwhile waits in the send queue; when
/// the connection came up, that second or two of video left at once, more than a 1 Mbit/s uplink takes (its router
/// dropped 100-190 packets per call, most in the first second). So once the first frame has given the payloaders
/// their caps (the offer's SSRCs need them), the camera's frames stop before the encoder until the connection is
/// up; then they flow again and the encoder is asked for a keyframe. Nothing encoded is dropped, so the browser sees
/// no gap in the sequence numbers. The encoder's health counts only once packets leave (the monitor), so the pause
/// does not read as CPU load.
///
/// The microphone's packets are dropped after the payloader until then. They used to fill the queue before webrtcbin,
/// which then blocked the live microphone source; once unblocked it made up for all the time it had missed at once
/// (235 packets within 250 ms after a 4.7 s set-up), and a 500 kbit/s uplink's router dropped 83-143 packets per
/// call, audio and the first video alike; the kiosk read that loss as a slow link. Audio that old is no use to a
/// conversation, and the browser, which has received nothing yet, sees no gap.
fn hold_until_connected(
    pipeline: &gst::Pipeline,
    webrtc: &gst::Element,
    encoder: &gst::Element,
    audio_payloader: &gst::Element,
) {
    let Some(valve) = pipeline.by_name(VIDEO_HOLD) else { return };
    let connected = || {
        webrtc.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state")
            == gst_webrtc::WebRTCPeerConnectionState::Connected
    };
    if connected() {
        return;
    }
    valve.set_property("drop", true);
    let audio_src = audio_payloader.static_pad("src");
    let audio_hold = audio_src.as_ref().and_then(|pad| {
        pad.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST, |_, _| gst::PadProbeReturn::Drop)
    });
    let audio_hold = Mutex::new(audio_src.map(|p| p.downgrade()).zip(audio_hold));
    let valve = valve.downgrade();
    let encoder_src = encoder.static_pad("src").map(|p| p.downgrade());
    let released = AtomicBool::new(false);
    webrtc.connect_notify(Some("connection-state"), move |w, _| {
        let up = w.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state")
            == gst_webrtc::WebRTCPeerConnectionState::Connected;
        if !up || released.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some((pad, probe)) = audio_hold.lock().unwrap_or_else(|p| p.into_inner()).take()
            && let Some(pad) = pad.upgrade()
        {
            pad.remove_probe(probe);
        }
        if let Some(v) = valve.upgrade() {
            v.set_property("drop", false);
        }
        if let Some(pad) = encoder_src.as_ref().and_then(|p| p.upgrade()) {
            pad.send_event(gst::event::CustomUpstream::new(
                gst::Structure::builder("GstForceKeyUnit").field("all-headers", true).field("count", 0u32).build(),
            ));
        }
        tracing::debug!("peer connection up: the picture flows, keyframe asked for");
    });
}

/// webrtcbin writes a stream's `a=ssrc` lines (and, for video, the `ssrc-group:FID` with its retransmission SSRC)
/// into the offer only when the caps with the stream's SSRC have reached its sink pad. Without them the browser cannot
/// tell the retransmission stream apart and drops every retransmitted packet (seen: 17,000 retransmissions sent, none
/// counted by Chrome, and a retransmission storm of 8 Mbit/s on a 1 Mbit/s link), and Chrome (which cannot
/// demultiplex by MID here: webrtcbin sends no MID header extension) drops the video itself: the doctor never sees
/// the kiosk. So the offer waits until every sink pad of webrtcbin has caps naming an SSRC: about one encoded frame,
/// at most 3 s. (It used to wait for the payloaders' own caps; those still had to cross the queue to webrtcbin, and
/// about 1 offer in 60 went out without the video's SSRC: `tests/media.rs`.)
fn wait_for_ssrcs(webrtc: &gst::Element) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let has_ssrc =
        |pad: &gst::Pad| pad.current_caps().and_then(|c| c.structure(0).map(|s| s.has_field("ssrc"))).unwrap_or(false);
    let ready = || {
        let pads = webrtc.sink_pads();
        !pads.is_empty() && pads.iter().all(has_ssrc)
    };
    while !ready() {
        if std::time::Instant::now() >= deadline {
            tracing::warn!("the offer goes out before every stream's SSRC is known: the browser may drop the video");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn find_parts(pipeline: &gst::Pipeline) -> Result<Parts, MediaError> {
    let find = |name: &str| pipeline.by_name(name).ok_or_else(|| build_error(format!("no element {name}")));
    Ok(Parts {
        webrtc: find("webrtc")?,
        encoder: find("venc")?,
        payloader: find("vpay")?,
        audio_payloader: find("apay")?,
        opus: find("aenc")?,
        ladder: find(ladder::NAME)?,
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

fn configure_ice(webrtc: &gst::Element, servers: &[IceServer], policy: IceTransportPolicy) {
    if policy == IceTransportPolicy::Relay {
        webrtc.set_property("ice-transport-policy", gst_webrtc::WebRTCICETransportPolicy::Relay);
    }
    let (stun, turns) = webrtcbin_ice_urls(servers);
    if let Some(s) = stun {
        webrtc.set_property("stun-server", s);
    }
    for t in turns {
        let _ = webrtc.emit_by_name::<bool>("add-turn-server", &[&t]);
    }
}

/// Makes `payloader` stamp the transport-wide sequence number (extension id 1) and `caps` ask the browser for its
/// feedback, what rtpgccbwe estimates from. False when the extension element is missing.
fn stamp_transport_wide(payloader: &gst::Element, caps: &mut gst::Caps) -> bool {
    use gstreamer_rtp::prelude::RTPHeaderExtensionExt;
    let Some(ext) = gst::ElementFactory::make("rtphdrexttwcc")
        .build()
        .ok()
        .and_then(|e| e.downcast::<gstreamer_rtp::RTPHeaderExtension>().ok())
    else {
        return false;
    };
    ext.set_id(1);
    payloader.emit_by_name::<()>("add-extension", &[&ext]);
    if let Some(s) = caps.make_mut().structure_mut(0) {
        s.set("extmap-1", TWCC_URI);
        s.set("rtcp-fb-transport-cc", true);
    }
    true
}

/// Video and audio transceivers, both sendrecv, with the codecs the kiosk offers. Both payloaders stamp the
/// transport-wide CC header extension, and the offer asks the browser for its feedback. Video offers
/// retransmission (an `rtx` payload; webrtcbin answers the browser's NACKs from it) and, when `video_fec`, RED and
/// ULPFEC (at 0 % until the monitor measures loss); audio says it decodes Opus in-band FEC.
fn configure_transceivers(parts: &Parts, profile: &EncoderProfile, video_fec: bool) -> Result<(), MediaError> {
    let mut video_caps: gst::Caps =
        profile.rtp_caps.parse().map_err(|_| build_error(format!("rtp_caps of {}", profile.name)))?;
    if stamp_transport_wide(&parts.payloader, &mut video_caps)
        && let Some(s) = video_caps.make_mut().structure_mut(0)
    {
        // Allow keyframe requests and retransmission requests.
        s.set("rtcp-fb-nack", true);
        s.set("rtcp-fb-nack-pli", true);
    }
    let mut audio_caps: gst::Caps = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,\
         encoding-params=(string)2,useinbandfec=(string)1"
        .parse()
        .map_err(|_| build_error("audio caps"))?;
    // The audio's packets in the transport-wide sequence too (as libwebrtc and webrtcsink send them): a feedback
    // message then reports on about twice as many packets, so congestion control's loss reading rests on more of
    // them (upstream rtpgccbwe judged the last feedback alone; the vendored one judges a window). rtpsession numbers
    // the packets of every stream that carries the extension from one counter. Taken off again when the answer's
    // audio section drops the extension (Firefox), see `apply_answer`.
    stamp_transport_wide(&parts.audio_payloader, &mut audio_caps);
    // What the doctor shares (a picture, a document page, their screen) comes on a video transceiver of its own,
    // offered receive-only: the doctor's camera keeps its stream, so the patient sees the shared page large and the
    // doctor's face small. The page attaches the shared track with replaceTrack, no renegotiation. Its own payload
    // type tells its packets from the camera's even where webrtcbin 1.22 (which maps a stream to its transceiver
    // by the answer's `a=ssrc` lines only) could not; its codec is the camera's.
    let mut shared_caps = video_caps.clone();
    if let Some(s) = shared_caps.make_mut().structure_mut(0) {
        s.set("payload", tuning::SHARED_PT as i32);
    }
    let shared = parts
        .webrtc
        .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>(
            "add-transceiver",
            &[&gst_webrtc::WebRTCRTPTransceiverDirection::Recvonly, &shared_caps],
        )
        .ok_or_else(|| build_error("no transceiver for shared pictures"))?;
    // webrtcbin 1.22 applies the last transceiver's `do-nack` to every jitter buffer of the bundle: it must agree
    // with the camera's, or the camera's lost packets would no longer be asked for again.
    shared.set_property("do-nack", true);
    for (index, caps) in [(0i32, video_caps), (1i32, audio_caps)] {
        let t = parts
            .webrtc
            .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&index])
            .ok_or_else(|| build_error(format!("no transceiver {index}")))?;
        t.set_property("direction", gst_webrtc::WebRTCRTPTransceiverDirection::Sendrecv);
        t.set_property("codec-preferences", &caps);
        if index == 0 {
            t.set_property("do-nack", true);
            if video_fec {
                t.set_property("fec-type", gst_webrtc::WebRTCFECType::UlpRed);
                t.set_property("fec-percentage", 0u32);
            }
        }
    }
    Ok(())
}

/// Keyframes on request at most twice a second (a burst of PLIs costs one keyframe), and the start bitrate.
fn configure_encoder(encoder: &gst::Element, profile: &EncoderProfile, start_kbps: u32) {
    if encoder.find_property("min-force-key-unit-interval").is_some() {
        encoder.set_property("min-force-key-unit-interval", gst::ClockTime::from_mseconds(500).nseconds());
    }
    tuning::set_bitrate(encoder, profile.bitrate_unit, &profile.bitrate_property, start_kbps);
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
        let state = w.property::<S>("ice-connection-state");
        tracing::debug!(?state, "ICE connection state");
        match state {
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
fn connect_remote_streams(
    pipeline: &gst::Pipeline,
    webrtc: &gst::Element,
    live: &Arc<LiveMedia>,
    tuning: &Arc<tuning::Tuning>,
) {
    let pipe_weak = pipeline.downgrade();
    let live = live.clone();
    let tuning = tuning.clone();
    webrtc.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let stream = remote_stream(pad);
        if let Some(pipeline) = pipe_weak.upgrade()
            && let Err(e) = remote::link_remote(&pipeline, pad, stream, &live, &tuning)
        {
            tracing::warn!(error = %e, "cannot play the doctor's media");
        }
    });
}

/// Which of the doctor's streams a webrtcbin source pad carries: the shared picture's when its transceiver is the
/// receive-only one (m-line 2) or, should webrtcbin put a stream it could not map on the first transceiver, when
/// its payload type is the shared one (`recv_rtp_src_<session>_<ssrc>_<pt>`, the pad's target in rtpbin).
fn remote_stream(pad: &gst::Pad) -> remote::RemoteStream {
    let mline = pad
        .find_property("transceiver")
        .and_then(|_| pad.property::<Option<gst_webrtc::WebRTCRTPTransceiver>>("transceiver"))
        .map(|t| t.mlineindex());
    let pt = pad
        .downcast_ref::<gst::GhostPad>()
        .and_then(|g| g.target())
        .and_then(|t| t.name().rsplit('_').next().and_then(|pt| pt.parse::<u32>().ok()));
    if mline == Some(SHARED_MLINE) || pt == Some(tuning::SHARED_PT) {
        remote::RemoteStream::Shared
    } else {
        remote::RemoteStream::Camera
    }
}

/// How long an SCTP association error may stand before the session counts as failed (see [`spawn_bus_thread`]).
const SCTP_ERROR_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether a bus message comes from webrtcbin's SCTP encoder or decoder (the data channels' association).
fn is_sctp_element(src: Option<&gst::Object>) -> bool {
    src.and_then(|s| s.downcast_ref::<gst::Element>())
        .and_then(|e| e.factory())
        .is_some_and(|f| matches!(f.name().as_str(), "sctpenc" | "sctpdec"))
}

/// The m-line of the shared pictures' transceiver: after the camera's video (0) and the audio (1).
const SHARED_MLINE: u32 = 2;

/// The session's bus on its own thread: errors become [`MediaEvent::Failed`], the speaker's level goes to the
/// live counters, a changed latency (the doctor's audio waiting as long as the video's playout delay) is
/// redistributed to the sinks. Ends when the session posts its own stop message.
///
/// An error of the data channels' SCTP association is reported only if the session is still running
/// [`SCTP_ERROR_GRACE`] later: when the doctor hangs up, the browser aborts the association a moment before its
/// `call:end` arrives over the signaling socket, and that ordinary end was counted as a failed session (one per call
/// in the network bench) and, when the error came first, made the kiosk start a replacement session for a call that
/// was ending.
fn spawn_bus_thread(pipeline: &gst::Pipeline, spec: &SessionSpec) -> Result<std::thread::JoinHandle<()>, MediaError> {
    let bus = pipeline.bus().ok_or_else(|| build_error("no bus"))?;
    let sid = spec.session_id.clone();
    let tx = spec.events.clone();
    let live = spec.live.clone();
    let pipe_weak = pipeline.downgrade();
    std::thread::Builder::new()
        .name("media-bus".into())
        .spawn(move || {
            let mut sctp_error: Option<(std::time::Instant, String)> = None;
            loop {
                if let Some((at, reason)) = sctp_error.take_if(|(at, _)| at.elapsed() >= SCTP_ERROR_GRACE) {
                    tracing::warn!(session = %sid, after = ?at.elapsed(), "the data channels' association stays failed");
                    let _ = tx.send(MediaEvent::Failed { session_id: sid.clone(), reason });
                }
                let wait = if sctp_error.is_some() { Some(gst::ClockTime::from_mseconds(100)) } else { gst::ClockTime::NONE };
                let Some(msg) = bus.timed_pop(wait) else {
                    // Nothing within the wait; without a pending error (or without a pipeline) the bus is flushing.
                    if sctp_error.is_some() && pipe_weak.upgrade().is_some() {
                        continue;
                    }
                    break;
                };
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        let src = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
                        let reason = format!("{src}: {}", e.error());
                        if is_sctp_element(msg.src()) {
                            tracing::debug!(session = %sid, element = %src, error = %e.error(), "the data channels' association failed");
                            sctp_error.get_or_insert((std::time::Instant::now(), reason));
                            continue;
                        }
                        tracing::warn!(session = %sid, element = %src, error = %e.error(), debug = ?e.debug(), "media error");
                        let _ = tx.send(MediaEvent::Failed { session_id: sid.clone(), reason });
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
                    gst::MessageView::Latency(_) => {
                        if let Some(p) = pipe_weak.upgrade()
                            && p.recalculate_latency().is_err()
                        {
                            tracing::debug!(session = %sid, "the pipeline's latency could not be recalculated");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IceUrl;

    fn server(urls: &[&str]) -> IceServer {
        IceServer {
            urls: urls.iter().map(|u| IceUrl::try_from(u.to_string()).expect("a valid URL")).collect(),
            username: Some("kiosk 1".into()),
            credential: Some("s3cr@t".into()),
        }
    }

    #[test]
    fn turn_without_a_transport_is_udp_only_as_in_browsers() {
        let (stun, turn) = webrtcbin_ice_urls(&[server(&[
            "stun:stun.example:3478",
            "turn:turn.example:3478",
            "turn:turn.example:3478?transport=tcp",
            "turns:turn.example:5349",
        ])]);
        assert_eq!(stun.as_deref(), Some("stun://stun.example:3478"));
        assert_eq!(
            turn,
            [
                "turn://kiosk%201:s3cr%40t@turn.example:3478?transport=udp",
                "turn://kiosk%201:s3cr%40t@turn.example:3478?transport=tcp",
                "turns://kiosk%201:s3cr%40t@turn.example:5349",
            ]
        );
    }
}
