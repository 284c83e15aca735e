//! The media engine: one GStreamer `webrtcbin` per call session, sending camera and microphone, receiving the
//! doctor's audio and video. Encoders come from the profiles in `pipelines/`, probed at start. The engine reports
//! what happens (offer ready, candidates, connected, failed) as [`MediaEvent`]s; it makes no call decisions.

mod device_check;
mod dtls_timer;
mod live;
mod probe;
mod profile;
mod ring_tone;
mod session;
mod sources;

pub use device_check::device_check;
pub use dtls_timer::DtlsTimerError;
pub use live::{
    DEFAULT_VOLUME, LiveMedia, PatientControls, Pictures, ReceiveStats, ReceivedMedia, SendStats, SentMedia, VideoFrame,
};
pub use probe::{ProbeOutcome, ProbeReport, probe};
pub use profile::{BitrateUnit, EncoderProfile, ProfileError};
pub use ring_tone::RingTone;
pub use session::{Session, ladder};
pub use sources::Sources;

use std::path::Path;
use std::sync::Arc;

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

/// The engine: chosen profiles and sources, and the settings every session uses.
pub struct MediaEngine {
    profiles: Vec<EncoderProfile>,
    pub sources: Sources,
    pub settings: Media,
    ice_servers: Vec<IceServer>,
    /// What the running session's media is doing, and the patient's controls.
    pub live: Arc<LiveMedia>,
    pub report: ProbeReport,
}

/// Initialises GStreamer once, registers the statically linked plugins (rtpgccbwe) and installs the kiosk's DTLS
/// handshake retransmission timer (`dtls_timer`).
pub fn init() -> Result<(), MediaError> {
    static INIT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        gstreamer::init().map_err(|e| e.to_string())?;
        gstrsrtp::plugin_register_static().map_err(|e| e.to_string())?;
        if let Err(e) = dtls_timer::install() {
            tracing::warn!(error = %e, "DTLS handshakes keep OpenSSL's 1 s retransmission timer");
        }
        Ok(())
    })
    .clone()
    .map_err(MediaError::Init)
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
            live: Arc::new(LiveMedia::default()),
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
        self.live.reset_counters();
        Session::start(session::SessionSpec {
            session_id: session_id.to_string(),
            profile: profile.clone(),
            sources: self.sources.clone(),
            settings: self.settings.clone(),
            ice_servers: self.ice_servers.clone(),
            live: self.live.clone(),
            events,
        })
    }
}
