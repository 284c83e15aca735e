//! One session's loss repair and rate state, shared by webrtcbin's callbacks (on streaming threads) and the session's
//! monitor thread: what the doctor's answer agreed to, congestion control's estimate, the protection levels, and the
//! elements webrtcbin makes inside itself that the monitor reads and adjusts. Also the hooks that fill it.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::super::{BitrateUnit, LiveMedia};
use crate::core::adaptation::{SendSplit, split_send_budget};
use crate::core::media_rules::AnswerFacts;
use crate::core::retransmission::RetransmissionLimiter;

/// What the audio takes of the estimate: Opus at 32 kbit/s, its RTP and the feedback's share.
pub(super) const AUDIO_KBPS: u32 = 40;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic elsewhere cannot leave it half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) struct Tuning {
    /// From the doctor's answer; `None` until it is applied.
    facts: Mutex<Option<AnswerFacts>>,
    /// rtpgccbwe's latest estimate for everything sent (kbit/s); 0 before its first.
    pub estimate_kbps: AtomicU32,
    /// ULPFEC protection now (percent).
    pub fec_percent: AtomicU32,
    /// ULPFEC protection the measured loss calls for (percent), before the budget has its say.
    pub fec_wanted: AtomicU32,
    /// The most the current rung's encoder is given (kbit/s; `Rung::max_useful_kbps`).
    pub rung_cap_kbps: AtomicU32,
    /// The round trip to the browser (ms), as the monitor last measured it.
    pub rtt_ms: AtomicU32,
    /// Retransmission requests the kiosk refused (over budget, or the packet was resent within a round trip).
    pub rtx_refused: AtomicU64,
    /// Frames out of the video encoder since the session started.
    pub encoded_frames: AtomicU64,
    /// Frames out of the audio encoder since the session started.
    pub encoded_audio_frames: AtomicU64,
    /// The doctor's video jitter buffers (retransmission on, latency adjusted by the monitor).
    pub video_jitterbuffers: Mutex<Vec<glib::WeakRef<gst::Element>>>,
    /// The doctor's audio jitter buffers (latency raised with the video's playout delay, for lip sync).
    pub audio_jitterbuffers: Mutex<Vec<glib::WeakRef<gst::Element>>>,
    /// How long the doctor's frames are held before they are shown (ms; `core::playout`), set by the monitor.
    pub playout_delay_ms: AtomicU32,
    /// webrtcbin's own `rtprtxsend`, for its counters.
    pub rtx_sender: Mutex<Option<glib::WeakRef<gst::Element>>>,
    /// webrtcbin's own `rtpulpfecenc` and `rtpredenc` for the video.
    pub fec_encoder: Mutex<Option<glib::WeakRef<gst::Element>>>,
    pub red_encoder: Mutex<Option<glib::WeakRef<gst::Element>>>,
    /// The receive jitter buffer's floor (ms): `media.jitter_latency_ms`.
    pub jitter_floor_ms: u32,
    encoder: glib::WeakRef<gst::Element>,
    bitrate_unit: BitrateUnit,
    bitrate_property: String,
    min_kbps: u32,
    max_kbps: u32,
}

impl Tuning {
    pub(super) fn new(
        encoder: &gst::Element,
        unit: BitrateUnit,
        property: &str,
        (min_kbps, max_kbps): (u32, u32),
        jitter_floor_ms: u32,
    ) -> Self {
        Tuning {
            facts: Mutex::new(None),
            estimate_kbps: AtomicU32::new(0),
            fec_percent: AtomicU32::new(0),
            fec_wanted: AtomicU32::new(0),
            rung_cap_kbps: AtomicU32::new(u32::MAX),
            rtt_ms: AtomicU32::new(100),
            rtx_refused: AtomicU64::new(0),
            encoded_frames: AtomicU64::new(0),
            encoded_audio_frames: AtomicU64::new(0),
            video_jitterbuffers: Mutex::new(Vec::new()),
            audio_jitterbuffers: Mutex::new(Vec::new()),
            playout_delay_ms: AtomicU32::new(0),
            rtx_sender: Mutex::new(None),
            fec_encoder: Mutex::new(None),
            red_encoder: Mutex::new(None),
            jitter_floor_ms,
            encoder: encoder.downgrade(),
            bitrate_unit: unit,
            bitrate_property: property.to_string(),
            min_kbps,
            max_kbps,
        }
    }

    pub(super) fn set_facts(&self, facts: AnswerFacts) {
        *lock(&self.facts) = Some(facts);
    }

    pub(super) fn facts(&self) -> Option<AnswerFacts> {
        lock(&self.facts).clone()
    }

    /// How an estimate for everything sent is shared between the audio, the reserve, the video and its FEC.
    pub(super) fn split(&self, estimate_kbps: u32) -> SendSplit {
        let wanted = self.fec_wanted.load(Ordering::Relaxed);
        split_send_budget(estimate_kbps, AUDIO_KBPS, wanted, (self.min_kbps, self.max_kbps))
    }

    /// The video bitrate an estimate for everything allows (see [`Tuning::split`]).
    pub(super) fn video_budget(&self, estimate_kbps: u32) -> u32 {
        self.split(estimate_kbps).video_kbps
    }

    /// Sets the encoder's bitrate to `kbps`, or to the current rung's cap when that is lower.
    pub(super) fn set_encoder_bitrate(&self, kbps: u32) {
        let kbps = kbps.min(self.rung_cap_kbps.load(Ordering::Relaxed));
        if let Some(encoder) = self.encoder.upgrade() {
            set_bitrate(&encoder, self.bitrate_unit, &self.bitrate_property, kbps);
        }
    }
}

pub(super) fn set_bitrate(encoder: &gst::Element, unit: BitrateUnit, property: &str, kbps: u32) {
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

/// Google congestion control (rtpgccbwe) as webrtcbin's aux sender. webrtcbin puts its own `rtprtxsend` in front of
/// it, so retransmissions are paced and counted too. The encoder's bitrate follows the estimate at once.
pub(super) fn connect_congestion_control(
    webrtc: &gst::Element,
    tuning: &Arc<Tuning>,
    live: &Arc<LiveMedia>,
    (min, max, start): (u32, u32, u32),
) {
    let (tuning, live) = (tuning.clone(), live.clone());
    webrtc.connect("request-aux-sender", false, move |_| {
        let gcc = gst::ElementFactory::make("rtpgccbwe").build().ok()?;
        gcc.set_property("min-bitrate", min * 1000);
        gcc.set_property("max-bitrate", max * 1000);
        gcc.set_property("estimated-bitrate", start * 1000);
        let (tuning, live) = (tuning.clone(), live.clone());
        gcc.connect_notify(Some("estimated-bitrate"), move |gcc, _| {
            let kbps = gcc.property::<u32>("estimated-bitrate") / 1000;
            tuning.estimate_kbps.store(kbps, Ordering::Relaxed);
            let video = tuning.video_budget(kbps);
            tracing::debug!(estimate = kbps, video, "congestion control sets the video bitrate");
            live.sent.video_bitrate_kbps.store(u64::from(video), Ordering::Relaxed);
            tuning.set_encoder_bitrate(video);
        });
        Some(gcc.to_value())
    });
}

/// webrtcbin's own `rtpbin`, which holds the RTP session (session 0: everything is bundled).
pub(super) fn rtpbin(webrtc: &gst::Element) -> Option<gst::Element> {
    webrtc.downcast_ref::<gst::Bin>().and_then(|b| b.by_name("rtpbin"))
}

/// Retransmission for the doctor's video. webrtcbin 1.22 sets `do-retransmission` on every jitter buffer of a
/// bundled transport from whichever transceiver it meets last (the audio one, without NACK), so the kiosk never
/// sent NACKs; this handler, run after webrtcbin's, turns it on for the video SSRCs the answer names (for every
/// stream when the answer names none).
pub(super) fn connect_jitterbuffers(webrtc: &gst::Element, tuning: &Arc<Tuning>) {
    let Some(rtpbin) = rtpbin(webrtc) else {
        tracing::warn!("webrtcbin has no rtpbin: no retransmission requests for the doctor's video");
        return;
    };
    let tuning = tuning.clone();
    rtpbin.connect("new-jitterbuffer", false, move |args| {
        let jb = args.get(1).and_then(|v| v.get::<gst::Element>().ok())?;
        let ssrc = args.get(3).and_then(|v| v.get::<u32>().ok())?;
        let video = tuning.facts().is_none_or(|f| f.video_ssrcs.is_empty() || f.video_ssrcs.contains(&ssrc));
        jb.set_property("do-retransmission", video);
        jb.set_property("latency", tuning.jitter_floor_ms);
        // Requests only for gaps (as libwebrtc's NACK module): the next-packet timer (`rtx-next-seqnum`, on by
        // default) asked for every packet that came later than expected, ~40 % of the doctor's packets on a link with
        // ±20 ms of jitter and no reordering, and the doctor's uplink carried the needless copies.
        jb.set_property("rtx-next-seqnum", false);
        let list = if video { &tuning.video_jitterbuffers } else { &tuning.audio_jitterbuffers };
        lock(list).push(jb.downgrade());
        None
    });
}

/// Keeps weak references to the `rtprtxsend`, `rtpulpfecenc` and `rtpredenc` webrtcbin makes, for the monitor.
pub(super) fn catch_rtx_sender(webrtc: &gst::Element, tuning: &Arc<Tuning>) {
    let tuning = tuning.clone();
    webrtc.connect("deep-element-added", false, move |args| {
        let element = args.get(2).and_then(|v| v.get::<gst::Element>().ok())?;
        let slot = match element.factory()?.name().as_str() {
            "rtprtxsend" => &tuning.rtx_sender,
            "rtpulpfecenc" => &tuning.fec_encoder,
            "rtpredenc" => &tuning.red_encoder,
            _ => return None,
        };
        // The first of each is the video's (the audio m-line is made after it and gets no FEC).
        let mut slot = lock(slot);
        if slot.is_none() {
            if element.factory().is_some_and(|f| f.name() == "rtprtxsend") {
                limit_retransmissions(&element, &tuning);
            }
            *slot = Some(element.downgrade());
        }
        None
    });
}

/// The browser's retransmission requests reach `rtprtxsend` as upstream events on its source pad; those the
/// [`RetransmissionLimiter`] refuses are dropped there.
fn limit_retransmissions(rtx_sender: &gst::Element, tuning: &Arc<Tuning>) {
    let Some(pad) = rtx_sender.static_pad("src") else { return };
    let tuning = tuning.clone();
    let limiter = Mutex::new(RetransmissionLimiter::default());
    let started = std::time::Instant::now();
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(event)) = &info.data else { return gst::PadProbeReturn::Ok };
        let Some(request) = event.structure().filter(|s| s.name() == "GstRTPRetransmissionRequest") else {
            return gst::PadProbeReturn::Ok;
        };
        let Ok(seqnum) = request.get::<u32>("seqnum") else { return gst::PadProbeReturn::Ok };
        let estimate = tuning.estimate_kbps.load(Ordering::Relaxed);
        let target = tuning.video_budget(if estimate == 0 { tuning.min_kbps } else { estimate });
        let rtt = std::time::Duration::from_millis(u64::from(tuning.rtt_ms.load(Ordering::Relaxed)));
        if lock(&limiter).allow(started.elapsed(), seqnum as u16, rtt, target) {
            gst::PadProbeReturn::Ok
        } else {
            tuning.rtx_refused.fetch_add(1, Ordering::Relaxed);
            // Taken and reported handled: the request ends here, and rtpsession counts the push as done.
            drop(info.data.take());
            gst::PadProbeReturn::Handled
        }
    });
}

/// Counts the frames an encoder puts out into `counter`: the video encoder's health (a busy CPU shows as fewer
/// frames), and the audio encoder's pace.
pub(super) fn count_encoded(encoder: &gst::Element, tuning: &Arc<Tuning>, counter: fn(&Tuning) -> &AtomicU64) {
    let Some(pad) = encoder.static_pad("src") else { return };
    let tuning = tuning.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        counter(&tuning).fetch_add(1, Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
}

/// The audio's payload type in the kiosk's offer (Opus).
pub(super) const AUDIO_PT: u32 = 111;
/// The video's payload type in the kiosk's offer (and so in the browser's answer).
pub(super) const VIDEO_PT: u32 = 96;
/// The payload type of the video the doctor shares (its own receive-only transceiver; the camera's codec).
pub(super) const SHARED_PT: u32 = 100;

/// Asks the doctor's browser for a keyframe of each of its video streams (RTCP PLI), straight at webrtcbin's RTP
/// session: the GstForceKeyUnit event with the stream's SSRC and payload type (the video's, [`VIDEO_PT`], whose caps
/// carry `rtcp-fb-nack-pli`), which `rtpsession` turns into a PLI. Requests from the decoder never became one (the
/// page counted 0 PLIs in every lossy call; with `GST_DEBUG=rtpsession:6` no upstream event ever reached the
/// session). Returns how many streams were asked.
pub(super) fn request_doctor_keyframe(webrtc: &gst::Element, ssrcs: &[u32]) -> usize {
    let Some(session) = rtpbin(webrtc).and_then(|b| b.emit_by_name::<Option<gst::Element>>("get-session", &[&0u32]))
    else {
        return 0;
    };
    let Some(pad) = session.static_pad("recv_rtp_src") else { return 0 };
    ssrcs
        .iter()
        .filter(|&&ssrc| {
            let s = gst::Structure::builder("GstForceKeyUnit")
                .field("running-time", u64::MAX)
                // rtpsession sends a FIR instead when the headers are asked for too; a PLI is what browsers expect
                // (Chrome counts it in `pliCount`) and answer with a keyframe that carries them anyway.
                .field("all-headers", false)
                .field("count", 0i32)
                .field("ssrc", ssrc)
                .field("payload", VIDEO_PT)
                .build();
            pad.send_event(gst::event::CustomUpstream::new(s))
        })
        .count()
}
