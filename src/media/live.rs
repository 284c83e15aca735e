//! What the running call's media is doing, shared between GStreamer's streaming threads and whoever shows it (the
//! call status, the touch UI): counters of what arrives from the doctor and what is sent, the patient's controls, and
//! the newest pictures. Streaming threads only store into it; nothing here blocks them or queues frames.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::core::adaptation::LimitReason;
use crate::core::freeze::FreezeMeter;

/// One decoded picture, tightly packed RGBA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

/// The media of the call in progress, as the kiosk's screen and status see it.
#[derive(Debug, Default)]
pub struct LiveMedia {
    /// What arrives from the doctor.
    pub received: ReceivedMedia,
    /// What the kiosk sends.
    pub sent: SentMedia,
    /// The patient's mute, camera and volume controls.
    pub controls: PatientControls,
    /// The newest pictures, for a screen that draws them.
    pub pictures: Pictures,
    /// The kiosk's medical devices, for the call's data channels (fed by `crate::devices::Hub`).
    pub vitals: crate::devices::VitalsFeed,
    /// The doctor's latest chat message and the patient's quick replies.
    pub chat: ChatBox,
}

/// Chat during the call: the doctor's latest message (for the patient's screen) and the patient's replies (for the
/// session's `chat` channel). Held in memory only, and forgotten when the call ends.
#[derive(Debug)]
pub struct ChatBox {
    /// The latest message and its number (1, 2, …), so a screen can tell a new one from the one it shows.
    inbox: std::sync::Mutex<(u64, Option<String>)>,
    outbox: tokio::sync::broadcast::Sender<crate::core::chat::QuickReply>,
    /// The doctor shows a picture or their screen in place of their camera.
    sharing: std::sync::atomic::AtomicBool,
}

impl Default for ChatBox {
    fn default() -> Self {
        Self {
            inbox: std::sync::Mutex::new((0, None)),
            outbox: tokio::sync::broadcast::channel(16).0,
            sharing: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl ChatBox {
    /// A message from the doctor arrived.
    pub fn received(&self, text: String) {
        if let Ok(mut i) = self.inbox.lock() {
            *i = (i.0 + 1, Some(text));
        }
    }

    /// The latest message and its number; `None` once answered or forgotten.
    pub fn latest(&self) -> (u64, Option<String>) {
        self.inbox.lock().map(|i| i.clone()).unwrap_or((0, None))
    }

    /// The patient answered: the reply goes to the doctor and the message is put away.
    pub fn reply(&self, reply: crate::core::chat::QuickReply) {
        let _ = self.outbox.send(reply);
        self.forget();
    }

    /// Puts the message away and the sharing flag down (the call ended).
    pub fn forget(&self) {
        if let Ok(mut i) = self.inbox.lock() {
            i.1 = None;
        }
        self.set_sharing(false);
    }

    /// The doctor started or stopped showing a picture or their screen.
    pub fn set_sharing(&self, on: bool) {
        self.sharing.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the doctor's video is a shared picture or screen now.
    pub fn sharing(&self) -> bool {
        self.sharing.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The replies, for the session's channel.
    pub fn replies(&self) -> tokio::sync::broadcast::Receiver<crate::core::chat::QuickReply> {
        self.outbox.subscribe()
    }
}

impl LiveMedia {
    /// Zeroes the counters: each media session starts from nothing.
    pub fn reset_counters(&self) {
        self.received.reset();
        self.sent.reset();
    }
}

/// Counts of the doctor's media decoded at the kiosk.
#[derive(Debug)]
pub struct ReceivedMedia {
    /// Decoded video frames in this session.
    pub video_frames: AtomicU64,
    /// Decoded audio buffers in this session.
    pub audio_buffers: AtomicU64,
    /// Decoded frames of what the doctor shares (a picture or their screen, on its own video stream).
    pub shared_frames: AtomicU64,
    /// Size of the last decoded picture.
    pub width: AtomicU64,
    pub height: AtomicU64,
    /// Peak level on the speaker path (after the volume) over the last 100 ms, in hundredths of a dB (dBFS).
    speaker_peak_centi_db: std::sync::atomic::AtomicI64,
    /// Freezes of the doctor's picture (fed on the streaming thread, one short lock per frame).
    freezes: Mutex<FreezeMeter>,
    /// The session's measurements of what arrives, every half second.
    stats: Mutex<ReceiveStats>,
    /// When the session's clock started, for the freeze meter.
    started: Mutex<Option<std::time::Instant>>,
    /// The latest glass-to-glass delay read from a stamped picture (ms); `NO_DELAY` when none.
    glass_to_glass_ms: AtomicU64,
}

const NO_DELAY: u64 = u64::MAX;

/// What arrives from the doctor, measured by the kiosk (the counterpart of the browser's inbound statistics).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiveStats {
    /// Decoded video frames per second.
    pub fps: f64,
    pub width: u32,
    pub height: u32,
    /// Video and audio together.
    pub bitrate_kbps: u32,
    /// Of the doctor's video packets, lost before repair (percent, last interval).
    pub loss_percent: f64,
    /// Retransmission requests (NACK) and keyframe requests (PLI) the kiosk sent for the doctor's video.
    pub nacks_sent: u64,
    pub plis_sent: u64,
    /// Lost packets that retransmission repaired in time.
    pub packets_repaired: u64,
    /// How long each frame is held so a repaired one is shown on time (ms; 0 when nothing needed repair lately).
    #[serde(default)]
    pub playout_delay_ms: u32,
    /// Freezes of the doctor's picture as browsers count them, and their total length.
    pub freeze_count: u64,
    pub freeze_seconds: f64,
    /// From the doctor's camera to the kiosk's screen (ms), when the doctor's picture carries capture times (a
    /// measurement's test source; see `core::frame_stamp`). The latest frame's.
    pub glass_to_glass_ms: Option<u32>,
}

/// What the kiosk sends, measured by the kiosk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendStats {
    /// Frames the encoder put out per second.
    pub fps: f64,
    pub width: u32,
    pub height: u32,
    /// Video bitrate really sent (kbit/s), retransmissions and FEC included.
    pub bitrate_kbps: u32,
    /// The video bitrate congestion control allows (kbit/s).
    pub target_kbps: u32,
    /// Why the picture is smaller than the camera's, if it is.
    pub limit: Option<LimitReason>,
    /// How the rate is controlled: `transport-cc` (Google congestion control) or `receiver-reports`.
    pub rate_control: Option<String>,
    /// Retransmitted packets, and the doctor's retransmission (NACK) and keyframe (PLI) requests received.
    pub rtx_packets: u64,
    /// Retransmission requests refused: over the budget, or asked again within a round trip.
    pub rtx_refused: u64,
    pub nacks_received: u64,
    pub plis_received: u64,
    /// ULPFEC protection now (percent of media packets); 0 when off or not negotiated.
    pub fec_percent: u32,
    /// Opus's expected loss, which sets its in-band FEC.
    pub audio_fec_loss_percent: u32,
    /// Loss of the kiosk's packets as the doctor's browser reports it (percent).
    pub loss_percent: f64,
    /// Round trip to the doctor's browser (ms), from RTCP.
    pub rtt_ms: Option<u32>,
}

impl ReceiveStats {
    /// One line for people (the technician screen): what arrives from the doctor.
    pub fn summary(&self) -> String {
        if self.width == 0 && self.fps == 0.0 {
            return "nothing (no call)".into();
        }
        format!(
            "{}×{} @ {:.0} fps, {} kbit/s, loss {:.1} %; asked {} NACK, {} PLI; {} repaired, held {} ms; {} freezes \
             ({:.1} s)",
            self.width,
            self.height,
            self.fps,
            self.bitrate_kbps,
            self.loss_percent,
            self.nacks_sent,
            self.plis_sent,
            self.packets_repaired,
            self.playout_delay_ms,
            self.freeze_count,
            self.freeze_seconds
        )
    }
}

impl SendStats {
    /// One line for people (the technician screen): what the kiosk sends and why it is limited.
    pub fn summary(&self) -> String {
        if self.width == 0 && self.fps == 0.0 {
            return "nothing (no call)".into();
        }
        let limit = match self.limit {
            Some(LimitReason::Bandwidth) => "limited by bandwidth",
            Some(LimitReason::Cpu) => "limited by the CPU",
            Some(LimitReason::None) | None => "not limited",
        };
        let rtt = self.rtt_ms.map_or("–".to_string(), |r| format!("{r} ms"));
        format!(
            "{}×{} @ {:.0} fps, {} of {} kbit/s, {limit}; loss {:.1} %, RTT {rtt}; {} retransmitted for {} NACK, {} PLI; \
             FEC {} %",
            self.width,
            self.height,
            self.fps,
            self.bitrate_kbps,
            self.target_kbps,
            self.loss_percent,
            self.rtx_packets,
            self.nacks_received,
            self.plis_received,
            self.fec_percent
        )
    }
}

impl Default for ReceivedMedia {
    fn default() -> Self {
        Self {
            video_frames: AtomicU64::new(0),
            audio_buffers: AtomicU64::new(0),
            shared_frames: AtomicU64::new(0),
            width: AtomicU64::new(0),
            height: AtomicU64::new(0),
            speaker_peak_centi_db: std::sync::atomic::AtomicI64::new(SILENT_CENTI_DB),
            freezes: Mutex::new(FreezeMeter::default()),
            stats: Mutex::new(ReceiveStats::default()),
            started: Mutex::new(None),
            glass_to_glass_ms: AtomicU64::new(NO_DELAY),
        }
    }
}

impl ReceivedMedia {
    fn reset(&self) {
        for c in [&self.video_frames, &self.audio_buffers, &self.shared_frames, &self.width, &self.height] {
            c.store(0, Ordering::Relaxed);
        }
        self.speaker_peak_centi_db.store(SILENT_CENTI_DB, Ordering::Relaxed);
        *slot(&self.freezes) = FreezeMeter::default();
        *slot(&self.stats) = ReceiveStats::default();
        *slot(&self.started) = Some(std::time::Instant::now());
        self.glass_to_glass_ms.store(NO_DELAY, Ordering::Relaxed);
    }
    /// Frames of what the doctor shares decoded in this session.
    pub fn shared_frames(&self) -> u64 {
        self.shared_frames.load(Ordering::Relaxed)
    }
    /// A decoded frame of the doctor's video (streaming thread).
    pub(crate) fn video_frame(&self) {
        self.video_frames.fetch_add(1, Ordering::Relaxed);
        let at = slot(&self.started).get_or_insert_with(std::time::Instant::now).elapsed();
        slot(&self.freezes).frame(at);
    }
    /// The latest measurements, with the freeze totals.
    pub fn stats(&self) -> ReceiveStats {
        let mut s = slot(&self.stats).clone();
        let (count, total) = slot(&self.freezes).totals();
        s.freeze_count = count;
        s.freeze_seconds = total.as_secs_f64();
        let g2g = self.glass_to_glass_ms.load(Ordering::Relaxed);
        s.glass_to_glass_ms = (g2g != NO_DELAY).then_some(g2g as u32);
        s
    }
    /// A stamped picture arrived `ms` after its capture (streaming thread).
    pub(crate) fn set_glass_to_glass_ms(&self, ms: u32) {
        self.glass_to_glass_ms.store(u64::from(ms), Ordering::Relaxed);
    }
    pub(crate) fn set_stats(&self, stats: ReceiveStats) {
        *slot(&self.stats) = stats;
    }
    /// Records the speaker path's latest peak (from the session's `level` element).
    pub(crate) fn set_speaker_peak_db(&self, db: f64) {
        let centi =
            if db.is_finite() { (db * 100.0).round().max(SILENT_CENTI_DB as f64) as i64 } else { SILENT_CENTI_DB };
        self.speaker_peak_centi_db.store(centi, Ordering::Relaxed);
    }
    /// The speaker path's latest peak in dBFS (−200 for silence): what the volume steps change.
    pub fn speaker_peak_db(&self) -> f64 {
        self.speaker_peak_centi_db.load(Ordering::Relaxed) as f64 / 100.0
    }
    pub fn video_frames(&self) -> u64 {
        self.video_frames.load(Ordering::Relaxed)
    }
    pub fn audio_buffers(&self) -> u64 {
        self.audio_buffers.load(Ordering::Relaxed)
    }
    /// The size of the doctor's picture, once one has been decoded.
    pub fn video_size(&self) -> Option<(u64, u64)> {
        let (w, h) = (self.width.load(Ordering::Relaxed), self.height.load(Ordering::Relaxed));
        (w > 0).then_some((w, h))
    }
}

/// Silence on the speaker path: −200 dBFS.
const SILENT_CENTI_DB: i64 = -20_000;

/// What the kiosk sends.
#[derive(Debug, Default)]
pub struct SentMedia {
    /// The video bitrate congestion control last set on the encoder (kbit/s); 0 before the first estimate.
    pub video_bitrate_kbps: AtomicU64,
    /// The session's measurements of what is sent, every half second.
    stats: Mutex<SendStats>,
}

impl SentMedia {
    fn reset(&self) {
        self.video_bitrate_kbps.store(0, Ordering::Relaxed);
        *slot(&self.stats) = SendStats::default();
    }
    pub fn video_bitrate_kbps(&self) -> u64 {
        self.video_bitrate_kbps.load(Ordering::Relaxed)
    }
    pub fn stats(&self) -> SendStats {
        slot(&self.stats).clone()
    }
    pub(crate) fn set_stats(&self, stats: SendStats) {
        *slot(&self.stats) = stats;
    }
}

/// The newest picture of the doctor, of what the doctor shares and of the patient's own camera. One slot each, not
/// a queue: a screen slower than the stream skips frames.
#[derive(Debug, Default)]
pub struct Pictures {
    /// Whether someone draws them (the touch UI). Headless, decoded frames are only counted, never converted.
    wanted: AtomicBool,
    doctor: Mutex<Option<VideoFrame>>,
    shared: Mutex<Option<VideoFrame>>,
    self_view: Mutex<Option<VideoFrame>>,
}

fn slot<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A frame slot holds plain data: a panic elsewhere cannot leave it inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pictures {
    /// From now on the media engine converts decoded frames and keeps a self view (the touch UI calls this once).
    pub fn want(&self) {
        self.wanted.store(true, Ordering::Relaxed);
    }
    pub fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }
    /// Puts the doctor's newest picture in its slot, replacing any not taken (called on the streaming thread).
    pub fn offer_doctor(&self, frame: VideoFrame) {
        *slot(&self.doctor) = Some(frame);
    }
    /// Takes the doctor's newest picture, if one arrived since the last call.
    pub fn take_doctor(&self) -> Option<VideoFrame> {
        slot(&self.doctor).take()
    }
    /// Puts the newest frame of what the doctor shares in its slot (streaming thread).
    pub fn offer_shared(&self, frame: VideoFrame) {
        *slot(&self.shared) = Some(frame);
    }
    /// Takes the newest shared frame, if one arrived since the last call.
    pub fn take_shared(&self) -> Option<VideoFrame> {
        slot(&self.shared).take()
    }
    pub fn offer_self_view(&self, frame: VideoFrame) {
        *slot(&self.self_view) = Some(frame);
    }
    pub fn take_self_view(&self) -> Option<VideoFrame> {
        slot(&self.self_view).take()
    }
}

/// The patient's controls during a call: applied at once to the running session and to every new one.
#[derive(Debug)]
pub struct PatientControls {
    muted: AtomicBool,
    camera_off: AtomicBool,
    /// Speaker volume in percent.
    volume_pct: AtomicU64,
    pipeline: Mutex<Option<gstreamer::glib::WeakRef<gstreamer::Pipeline>>>,
}

pub const DEFAULT_VOLUME: f64 = 0.8;

/// Names of the elements the controls drive in a session's pipeline (`session.rs` builds them with these names).
pub(super) mod element {
    /// `volume` on the microphone path: Mute.
    pub const MIC_VOLUME: &str = "micvol";
    /// `videobalance` on the camera path: Camera off paints it black.
    pub const CAMERA_BALANCE: &str = "camblank";
    /// `volume` on the speaker path: the volume steps.
    pub const SPEAKER_VOLUME: &str = "playvol";
}

impl Default for PatientControls {
    fn default() -> Self {
        Self {
            muted: Default::default(),
            camera_off: Default::default(),
            volume_pct: AtomicU64::new((DEFAULT_VOLUME * 100.0) as u64),
            pipeline: Default::default(),
        }
    }
}

impl PatientControls {
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
        *slot(&self.pipeline) = Some(pipeline.downgrade());
        self.apply();
    }
    fn apply(&self) {
        use gstreamer::prelude::*;
        let Some(p) = slot(&self.pipeline).as_ref().and_then(|w| w.upgrade()) else {
            return;
        };
        if let Some(e) = p.by_name(element::MIC_VOLUME) {
            e.set_property("mute", self.muted());
        }
        if let Some(e) = p.by_name(element::CAMERA_BALANCE) {
            let off = self.camera_off();
            e.set_property("brightness", if off { -1.0f64 } else { 0.0 });
            e.set_property("contrast", if off { 0.0f64 } else { 1.0 });
            e.set_property("saturation", if off { 0.0f64 } else { 1.0 });
        }
        if let Some(e) = p.by_name(element::SPEAKER_VOLUME) {
            e.set_property("volume", self.volume());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_picture_slot_keeps_only_the_newest_picture() {
        let pictures = Pictures::default();
        assert_eq!(pictures.take_doctor(), None);
        for n in 1..=3u8 {
            pictures.offer_doctor(VideoFrame { width: 1, height: 1, rgba: vec![n; 4] });
        }
        assert_eq!(pictures.take_doctor().map(|f| f.rgba), Some(vec![3; 4]));
        assert_eq!(pictures.take_doctor(), None);
    }

    #[test]
    fn summaries_say_what_flows_and_why_it_is_limited() {
        let sent = SendStats {
            fps: 29.6,
            width: 640,
            height: 360,
            bitrate_kbps: 612,
            target_kbps: 650,
            limit: Some(LimitReason::Bandwidth),
            rtx_packets: 40,
            nacks_received: 12,
            plis_received: 1,
            fec_percent: 10,
            loss_percent: 2.5,
            rtt_ms: Some(90),
            ..SendStats::default()
        };
        assert_eq!(
            sent.summary(),
            "640×360 @ 30 fps, 612 of 650 kbit/s, limited by bandwidth; loss 2.5 %, RTT 90 ms; 40 retransmitted for \
             12 NACK, 1 PLI; FEC 10 %"
        );
        let got = ReceiveStats { fps: 25.0, width: 320, height: 180, bitrate_kbps: 300, ..ReceiveStats::default() };
        assert!(got.summary().starts_with("320×180 @ 25 fps, 300 kbit/s, loss 0.0 %"), "{}", got.summary());
        assert_eq!(SendStats::default().summary(), "nothing (no call)");
    }
}
