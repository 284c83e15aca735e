//! The media engine: one GStreamer `webrtcbin` per call session, sending camera and microphone, receiving the
//! doctor's audio and video. Encoders come from the profiles in `pipelines/`, probed at start. The engine reports
//! what happens (offer ready, candidates, connected, failed) as [`MediaEvent`]s; it makes no call decisions.

mod probe;
mod profile;
mod ring;
mod session;

pub use probe::{ProbeOutcome, ProbeReport, probe};
pub use profile::{BitrateUnit, EncoderProfile, ProfileError};
pub use ring::Ringer;
pub use session::Session;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{IceServer, Media};
use crate::core::media_rules::VideoCodec;
use crate::core::protocol::IceCandidate;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("GStreamer could not start: {0}")]
    Init(String),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("no working encoder profile{0}")]
    NoProfile(String),
    #[error("cannot build the call pipeline: {0}")]
    Build(String),
    #[error("the doctor's answer is not valid SDP: {0}")]
    BadAnswer(String),
}

/// What a media session reports to the call service.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    Offer {
        session_id: String,
        sdp: String,
    },
    Candidate {
        session_id: String,
        candidate: Option<IceCandidate>,
    },
    Connected {
        session_id: String,
    },
    /// Connected media stopped flowing (ICE disconnected); it may come back by itself.
    Interrupted {
        session_id: String,
    },
    Failed {
        session_id: String,
        reason: String,
    },
}

/// Where capture comes from, decided once at start (and reported, so a kiosk on test sources says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub video: String,
    pub video_is_test: bool,
    pub audio: String,
    pub audio_is_test: bool,
    pub audio_sink: String,
}

/// One decoded picture from the doctor, tightly packed RGBA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

/// Counts of media received from the doctor, and the newest picture for whoever draws it.
#[derive(Debug, Default)]
pub struct RemoteMedia {
    /// Decoded video frames since start.
    pub video_frames: AtomicU64,
    /// Decoded audio buffers since start.
    pub audio_buffers: AtomicU64,
    pub width: AtomicU64,
    pub height: AtomicU64,
    /// The video bitrate congestion control last set on the encoder (kbit/s); 0 before the first estimate.
    pub send_bitrate_kbps: AtomicU64,
    /// Whether someone draws the frames (the touch UI). Headless, frames are only counted and never converted.
    pub want_frames: std::sync::atomic::AtomicBool,
    /// The newest picture not yet taken. One slot, not a queue: a UI slower than the stream skips frames.
    latest_frame: std::sync::Mutex<Option<VideoFrame>>,
    /// The newest picture of the kiosk's own camera (the patient's self view), small; only when `want_frames`.
    latest_self_frame: std::sync::Mutex<Option<VideoFrame>>,
    /// The patient's mute, camera and volume controls.
    pub controls: Controls,
}

/// The patient's controls during a call: applied at once to the running session and to every new one.
#[derive(Debug)]
pub struct Controls {
    muted: std::sync::atomic::AtomicBool,
    camera_off: std::sync::atomic::AtomicBool,
    /// Speaker volume in percent.
    volume_pct: AtomicU64,
    pipeline: std::sync::Mutex<Option<gstreamer::glib::WeakRef<gstreamer::Pipeline>>>,
}

pub const DEFAULT_VOLUME: f64 = 0.8;

impl Default for Controls {
    fn default() -> Self {
        Self {
            muted: Default::default(),
            camera_off: Default::default(),
            volume_pct: AtomicU64::new((DEFAULT_VOLUME * 100.0) as u64),
            pipeline: Default::default(),
        }
    }
}

impl Controls {
    pub fn muted(&self) -> bool {
        self.muted.load(Ordering::Relaxed)
    }
    pub fn camera_off(&self) -> bool {
        self.camera_off.load(Ordering::Relaxed)
    }
    pub fn volume(&self) -> f64 {
        self.volume_pct.load(Ordering::Relaxed) as f64 / 100.0
    }
    pub fn set_muted(&self, on: bool) {
        self.muted.store(on, Ordering::Relaxed);
        self.apply();
    }
    /// Camera off sends black pictures (the doctor sees the call is alive), it does not stop the stream.
    pub fn set_camera_off(&self, on: bool) {
        self.camera_off.store(on, Ordering::Relaxed);
        self.apply();
    }
    pub fn set_volume(&self, v: f64) {
        self.volume_pct.store((v.clamp(0.0, 1.0) * 100.0).round() as u64, Ordering::Relaxed);
        self.apply();
    }
    /// Back to unmuted, camera on, default volume: each patient starts from the same state.
    pub fn reset(&self) {
        self.muted.store(false, Ordering::Relaxed);
        self.camera_off.store(false, Ordering::Relaxed);
        self.volume_pct.store((DEFAULT_VOLUME * 100.0) as u64, Ordering::Relaxed);
        self.apply();
    }
    pub(crate) fn attach(&self, pipeline: &gstreamer::Pipeline) {
        use gstreamer::prelude::*;
        *self.pipeline.lock().unwrap_or_else(|p| p.into_inner()) = Some(pipeline.downgrade());
        self.apply();
    }
    fn apply(&self) {
        use gstreamer::prelude::*;
        let Some(p) = self.pipeline.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|w| w.upgrade()) else {
            return;
        };
        if let Some(e) = p.by_name("micvol") {
            e.set_property("mute", self.muted());
        }
        if let Some(e) = p.by_name("camblank") {
            let off = self.camera_off();
            e.set_property("brightness", if off { -1.0f64 } else { 0.0 });
            e.set_property("contrast", if off { 0.0f64 } else { 1.0 });
            e.set_property("saturation", if off { 0.0f64 } else { 1.0 });
        }
        if let Some(e) = p.by_name("playvol") {
            e.set_property("volume", self.volume());
        }
    }
}

impl RemoteMedia {
    /// Zeroes the counters; each media session starts from nothing.
    pub fn reset(&self) {
        for c in [&self.video_frames, &self.audio_buffers, &self.width, &self.height, &self.send_bitrate_kbps] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Puts a new picture in the slot, replacing any that was not taken (called on the streaming thread).
    pub fn offer_frame(&self, frame: VideoFrame) {
        *self.latest_frame.lock().unwrap_or_else(|p| p.into_inner()) = Some(frame);
    }

    /// Takes the newest picture, if one arrived since the last call.
    pub fn take_frame(&self) -> Option<VideoFrame> {
        self.latest_frame.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub fn offer_self_frame(&self, frame: VideoFrame) {
        *self.latest_self_frame.lock().unwrap_or_else(|p| p.into_inner()) = Some(frame);
    }

    pub fn take_self_frame(&self) -> Option<VideoFrame> {
        self.latest_self_frame.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub fn video_frames(&self) -> u64 {
        self.video_frames.load(Ordering::Relaxed)
    }
    pub fn audio_buffers(&self) -> u64 {
        self.audio_buffers.load(Ordering::Relaxed)
    }
}

/// The technician's camera and microphone check: runs the capture sources for `run` and says in one line what
/// arrived (pictures counted, microphone level), or why they did not start.
pub fn device_check(sources: &Sources, run: std::time::Duration) -> String {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    let desc = format!(
        "{} ! videoconvert ! appsink name=v sync=false max-buffers=1 drop=true \
         {} ! audioconvert ! level name=lvl interval=200000000 ! fakesink sync=false",
        sources.video, sources.audio
    );
    let pipeline = match gst::parse::launch(&desc).map(|e| e.downcast::<gst::Pipeline>()) {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => return "The check could not build its pipeline.".into(),
        Err(e) => return format!("The camera or microphone could not be opened: {e}"),
    };
    let frames = Arc::new(AtomicU64::new(0));
    if let Some(sink) = pipeline.by_name("v").and_then(|e| e.downcast::<gstreamer_app::AppSink>().ok()) {
        let frames = frames.clone();
        sink.set_callbacks(
            gstreamer_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let _ = s.pull_sample();
                    frames.fetch_add(1, Ordering::Relaxed);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        let _ = pipeline.set_state(gst::State::Null);
        return format!("The camera or microphone did not start: {e}");
    }
    let mut level_db: Option<f64> = None;
    let mut error = None;
    let deadline = std::time::Instant::now() + run;
    if let Some(bus) = pipeline.bus() {
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else { break };
            match msg.view() {
                gst::MessageView::Element(e) => {
                    if let Some(st) = e.structure().filter(|s| s.name() == "level")
                        && let Ok(rms) = st.get::<gst::glib::ValueArray>("rms")
                        && let Some(v) = rms.iter().filter_map(|v| v.get::<f64>().ok()).reduce(f64::max)
                    {
                        level_db = Some(level_db.map_or(v, |l: f64| l.max(v)));
                    }
                }
                gst::MessageView::Error(e) => {
                    error = Some(e.error().to_string());
                    break;
                }
                _ => {}
            }
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(e) = error {
        return format!("The check failed: {e}");
    }
    let n = frames.load(Ordering::Relaxed);
    let cam = if sources.video_is_test { " (test picture, no camera)" } else { "" };
    let mic = if sources.audio_is_test { " (test tone, no microphone)" } else { "" };
    let level = level_db.map_or("no sound level".to_string(), |l| format!("loudest {l:.0} dB"));
    format!("Camera: {n} pictures in {} s{cam}. Microphone: {level}{mic}.", run.as_secs())
}

/// The engine: chosen profiles and sources, and the settings every session uses.
pub struct MediaEngine {
    profiles: Vec<EncoderProfile>,
    pub sources: Sources,
    pub settings: Media,
    ice_servers: Vec<IceServer>,
    pub remote: Arc<RemoteMedia>,
    pub report: ProbeReport,
}

/// Initialises GStreamer once and registers the statically linked plugins (rtpgccbwe).
pub fn init() -> Result<(), MediaError> {
    static INIT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        gstreamer::init().map_err(|e| e.to_string())?;
        gstrsrtp::plugin_register_static().map_err(|e| e.to_string())
    })
    .clone()
    .map_err(MediaError::Init)
}

fn has_capture_device(prefix: &str, suffix: char) -> bool {
    std::fs::read_dir("/dev/snd").is_ok_and(|d| {
        d.filter_map(Result::ok).any(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
    })
}

fn first_camera() -> Option<String> {
    let mut cams: Vec<String> = std::fs::read_dir("/dev")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("video") && n[5..].chars().all(|c| c.is_ascii_digit()) && n.len() > 5)
        .collect();
    cams.sort();
    cams.first().map(|n| format!("/dev/{n}"))
}

impl Sources {
    /// Resolves `auto` against the devices present now.
    pub fn resolve(m: &Media) -> Sources {
        let (w, h, f) = (m.width, m.height, m.framerate);
        // The test picture is painted once, in I420 (what encoders take), and repeated live by imagefreeze. Measured
        // at 720p30: painting every frame cost 4 % of a core (13 % when left to paint a 64-bit format that
        // videoconvert then converted); repeating one frame costs 0.6 %. Either way the encoder sees a still picture.
        let test_video = format!(
            "videotestsrc pattern=smpte num-buffers=1 ! video/x-raw,format=I420,width={w},height={h},framerate={f}/1 \
             ! imagefreeze is-live=true"
        );
        let libcamera = gstreamer::ElementFactory::find("libcamerasrc").is_some();
        let (video, video_is_test) = match m.video_source.as_str() {
            "test" => (test_video, true),
            "auto" => match first_camera() {
                // Raspberry Pi camera modules expose raw sensor nodes that only libcamera can drive.
                Some(_) if libcamera => ("libcamerasrc".to_string(), false),
                Some(dev) => (format!("v4l2src device={dev}"), false),
                None => (test_video, true),
            },
            dev => (format!("v4l2src device={dev}"), false),
        };
        let test_audio = "audiotestsrc is-live=true wave=sine freq=440 volume=0.05".to_string();
        let (audio, audio_is_test) = match m.audio_source.as_str() {
            "auto" if has_capture_device("pcmC", 'c') => ("autoaudiosrc".to_string(), false),
            _ => (test_audio, true),
        };
        let audio_sink = match m.audio_sink.as_str() {
            "auto" if has_capture_device("pcmC", 'p') => "autoaudiosink".to_string(),
            _ => "fakesink sync=true".to_string(),
        };
        Sources { video, video_is_test, audio, audio_is_test, audio_sink }
    }
}

impl MediaEngine {
    /// Probes the profiles and prepares the engine. Fails only when no profile at all can encode.
    pub fn start(settings: &Media, ice_servers: &[IceServer]) -> Result<MediaEngine, MediaError> {
        init()?;
        let all = EncoderProfile::load_all(settings.profiles_dir.as_deref().map(Path::new))?;
        let report = probe(&all, &settings.profile);
        let profiles = report.chosen().cloned().collect::<Vec<_>>();
        if profiles.is_empty() {
            return Err(MediaError::NoProfile(format!(": {}", report.summary())));
        }
        Ok(MediaEngine {
            profiles,
            sources: Sources::resolve(settings),
            settings: settings.clone(),
            ice_servers: ice_servers.to_vec(),
            remote: Arc::new(RemoteMedia::default()),
            report,
        })
    }

    /// Codecs the kiosk can send, best first.
    pub fn codecs(&self) -> Vec<VideoCodec> {
        let mut c: Vec<VideoCodec> = self.profiles.iter().map(|p| p.codec).collect();
        c.sort_by_key(|c| if *c == VideoCodec::H264 { 0 } else { 1 });
        c.dedup();
        c
    }

    /// The profile used for `codec`.
    pub fn profile_for(&self, codec: VideoCodec) -> Option<&EncoderProfile> {
        self.profiles.iter().find(|p| p.codec == codec)
    }

    /// Builds and starts one session; events arrive on `events`.
    pub fn start_session(
        &self,
        session_id: &str,
        codec: VideoCodec,
        events: tokio::sync::mpsc::UnboundedSender<MediaEvent>,
    ) -> Result<Session, MediaError> {
        let profile =
            self.profile_for(codec).ok_or_else(|| MediaError::NoProfile(format!(" for {}", codec.encoding_name())))?;
        self.remote.reset();
        Session::start(session::SessionSpec {
            session_id: session_id.to_string(),
            profile: profile.clone(),
            sources: self.sources.clone(),
            settings: self.settings.clone(),
            ice_servers: self.ice_servers.clone(),
            remote: self.remote.clone(),
            events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_slot_keeps_only_the_newest_picture() {
        let remote = RemoteMedia::default();
        assert_eq!(remote.take_frame(), None);
        for n in 1..=3u8 {
            remote.offer_frame(VideoFrame { width: 1, height: 1, rgba: vec![n; 4] });
        }
        assert_eq!(remote.take_frame().map(|f| f.rgba), Some(vec![3; 4]));
        assert_eq!(remote.take_frame(), None);
    }
}
