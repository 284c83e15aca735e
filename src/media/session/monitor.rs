//! Every half second, on the session's own thread: webrtcbin's statistics and the counters of the elements it made
//! are read, the core's adaptation rules decide (the picture's rung on the ladder, the rate when the browser sends no
//! transport-wide feedback, Opus's and the video's FEC, the jitter buffer's wait for retransmissions), the decisions
//! are carried out, and what is sent and received is published for the call status.
//!
//! webrtcbin 1.22's statistics under BUNDLE are only right when read by SSRC (its `kind` and `codec-id` fields
//! are not, and inbound loss comes from the wrong jitter buffer): streams are matched by SSRC here, and the video
//! jitter buffers' own counters give the doctor's loss.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::super::{LiveMedia, ReceiveStats, SendStats};
use super::tuning::Tuning;
use crate::core::adaptation::{
    AdaptInput, Ladder, ReportRateControl, RoundTrip, Rung, opus_loss_percent, video_fec_percent, video_jitter_latency,
};
use crate::core::playout::video_playout_delay;
use crate::core::retransmission::keyframe_needed;

const EVERY: Duration = Duration::from_millis(500);
/// Loss seen within this long keeps Opus's FEC on.
const LOSS_MEMORY: Duration = Duration::from_secs(10);

/// The elements the monitor drives.
pub(super) struct Handles {
    pub webrtc: glib::WeakRef<gst::Element>,
    pub ladder: glib::WeakRef<gst::Element>,
    pub opus: glib::WeakRef<gst::Element>,
    pub video_payloader: glib::WeakRef<gst::Element>,
    pub audio_payloader: glib::WeakRef<gst::Element>,
}

/// The settings the monitor needs.
pub(super) struct Limits {
    pub rungs: Vec<Rung>,
    pub start_kbps: u32,
    pub min_kbps: u32,
    pub max_kbps: u32,
    pub video_fec: bool,
}

pub(super) fn spawn(
    handles: Handles,
    tuning: Arc<Tuning>,
    live: Arc<LiveMedia>,
    limits: Limits,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("media-monitor".into()).spawn(move || {
        let mut m = Monitor::new(handles, tuning, live, limits);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(EVERY);
            if stop.load(Ordering::Relaxed) {
                break;
            }
            m.tick();
        }
    })
}

/// Counters at the last tick, for rates.
#[derive(Default)]
struct Previous {
    at: Option<Instant>,
    encoded_frames: u64,
    decoded_frames: u64,
    bytes_sent: u64,
    bytes_received: u64,
    jb_pushed: u64,
    jb_lost: u64,
    jb_repaired: u64,
}

struct Monitor {
    handles: Handles,
    tuning: Arc<Tuning>,
    live: Arc<LiveMedia>,
    limits: Limits,
    started: Instant,
    ladder: Ladder,
    reports: ReportRateControl,
    previous: Previous,
    last_loss_at: Option<Instant>,
    /// When a retransmission last repaired a packet of the doctor's video.
    last_repair_at: Option<Instant>,
    opus_loss: u32,
    /// The kiosk's loss as the browser sees it, smoothed over a few seconds (feedback batches are noisy).
    smoothed_loss: f64,
    round_trip: RoundTrip,
    /// Whether media has started to leave (packets sent grew): the encoder's health counts only from then on.
    flowing: bool,
}

/// One reading of webrtcbin's statistics, by SSRC.
#[derive(Default, Debug)]
struct Reading {
    outbound: HashMap<u32, Outbound>,
    remote_inbound: HashMap<u32, (Option<f64>, Option<f64>)>,
    inbound: HashMap<u32, Inbound>,
    twcc_loss_pct: Option<f64>,
}

#[derive(Default, Debug)]
struct Outbound {
    bytes: u64,
    packets: u64,
    nacks: u32,
    plis: u32,
}

#[derive(Default, Debug)]
struct Inbound {
    bytes: u64,
    nacks: u32,
    plis: u32,
}

impl Monitor {
    fn new(handles: Handles, tuning: Arc<Tuning>, live: Arc<LiveMedia>, limits: Limits) -> Self {
        let ladder = Ladder::new(limits.rungs.clone(), limits.start_kbps.saturating_sub(super::tuning::AUDIO_KBPS));
        let reports = ReportRateControl::new(limits.start_kbps, limits.min_kbps, limits.max_kbps);
        Monitor {
            handles,
            tuning,
            live,
            limits,
            started: Instant::now(),
            ladder,
            reports,
            previous: Previous::default(),
            last_repair_at: None,
            last_loss_at: None,
            opus_loss: 0,
            smoothed_loss: 0.0,
            round_trip: RoundTrip::default(),
            flowing: false,
        }
    }

    fn tick(&mut self) {
        let Some(webrtc) = self.handles.webrtc.upgrade() else { return };
        let Some(reading) = read_stats(&webrtc) else { return };
        let now = Instant::now();
        let dt = self.previous.at.map_or(EVERY, |t| now.duration_since(t)).as_secs_f64().max(0.05);
        let since_start = now.duration_since(self.started);
        let ssrc_of = |p: &glib::WeakRef<gst::Element>| {
            p.upgrade()
                .and_then(|p| p.property::<Option<gst::Structure>>("stats"))
                .and_then(|s| s.get::<u32>("ssrc").ok())
        };
        let (video_ssrc, audio_ssrc) = (ssrc_of(&self.handles.video_payloader), ssrc_of(&self.handles.audio_payloader));
        let facts = self.tuning.facts();
        tracing::trace!(?video_ssrc, ?audio_ssrc, outbound = ?reading.outbound, inbound = ?reading.inbound, "stats");

        // What the kiosk sends: everything outbound but the audio (the video, its retransmissions, its FEC).
        let video_out: Vec<&Outbound> =
            reading.outbound.iter().filter(|(ssrc, _)| Some(**ssrc) != audio_ssrc).map(|(_, o)| o).collect();
        let bytes_sent: u64 = video_out.iter().map(|o| o.bytes).sum();
        let packets_sent: u64 = video_out.iter().map(|o| o.packets).sum();
        let media = video_ssrc.and_then(|s| reading.outbound.get(&s));
        let sent_kbps = bytes_sent.saturating_sub(self.previous.bytes_sent) as f64 * 8.0 / 1000.0 / dt;
        self.flowing |= packets_sent > 0;
        let encoded = self.tuning.encoded_frames.load(Ordering::Relaxed);
        let encoded_fps = encoded.saturating_sub(self.previous.encoded_frames) as f64 / dt;

        // How the doctor's browser sees the kiosk's packets: the receiver report about the video (or else the audio).
        let report = video_ssrc
            .and_then(|s| reading.remote_inbound.get(&s))
            .or_else(|| audio_ssrc.and_then(|s| reading.remote_inbound.get(&s)));
        let measured_rtt = report.and_then(|r| r.0).filter(|r| *r > 0.0).map(Duration::from_secs_f64);
        let rtt = self.round_trip.update(measured_rtt);
        if let Some(rtt) = rtt {
            self.tuning.rtt_ms.store(rtt.as_millis() as u32, Ordering::Relaxed);
        }
        let report_loss = report.and_then(|r| r.1).unwrap_or(0.0);
        let sample = reading.twcc_loss_pct.filter(|p| (0.0..=100.0).contains(p)).map_or(report_loss, |p| p / 100.0);
        self.smoothed_loss = 0.8 * self.smoothed_loss + 0.2 * sample;
        let loss = self.smoothed_loss;
        if sample > 0.005 {
            self.last_loss_at = Some(now);
        }

        // The FEC the loss calls for; the budget below decides how much of it fits.
        let fec_wanted = if self.limits.video_fec && facts.as_ref().is_some_and(|f| f.ulpfec) {
            video_fec_percent(loss, rtt.unwrap_or_default())
        } else {
            0
        };
        self.tuning.fec_wanted.store(fec_wanted, Ordering::Relaxed);
        // The rate: Google congestion control's estimate, or the receiver reports when the browser sends no feedback.
        let twcc = facts.as_ref().is_none_or(|f| f.transport_cc);
        let (budget, total) = if twcc {
            let estimate = self.tuning.estimate_kbps.load(Ordering::Relaxed);
            let total = if estimate == 0 { self.limits.start_kbps } else { estimate };
            (self.tuning.video_budget(total), total)
        } else {
            let total = self.reports.on_report(since_start, report_loss, sent_kbps);
            let video = self.tuning.video_budget(total);
            self.tuning.set_encoder_bitrate(video);
            self.live.sent.video_bitrate_kbps.store(u64::from(video), Ordering::Relaxed);
            (video, total)
        };

        // The picture: the ladder, fed only once media flows (before that the encoder may wait on the transport).
        let decision = if self.flowing {
            self.ladder.update(since_start, AdaptInput { video_kbps: budget, encoded_fps })
        } else {
            let rung = self.ladder.rung();
            crate::core::adaptation::AdaptDecision { rung, changed: false, limit: self.ladder.limit() }
        };
        if decision.changed {
            tracing::info!(
                width = decision.rung.width,
                height = decision.rung.height,
                fps = decision.rung.fps,
                limit = %decision.limit,
                budget,
                "the kiosk's picture changes"
            );
            if let Some(filter) = self.handles.ladder.upgrade() {
                filter.set_property("caps", super::ladder::caps(decision.rung));
            }
            self.tuning.rung_cap_kbps.store(decision.rung.max_useful_kbps(), Ordering::Relaxed);
            self.tuning.set_encoder_bitrate(budget);
        }

        // Protection: Opus's in-band FEC, ULPFEC for the video when negotiated, the jitter buffer's wait.
        let lossy_lately = self.last_loss_at.is_some_and(|t| now.duration_since(t) < LOSS_MEMORY);
        let opus = opus_loss_percent(loss, lossy_lately);
        if opus != self.opus_loss
            && let Some(enc) = self.handles.opus.upgrade()
        {
            enc.set_property("packet-loss-percentage", opus as i32);
            self.opus_loss = opus;
        }
        let fec = self.tuning.split(total).fec_percent;
        if fec != self.tuning.fec_percent.swap(fec, Ordering::Relaxed)
            && let Some(t) =
                webrtc.emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&0i32])
        {
            t.set_property("fec-percentage", fec);
        }
        let floor = Duration::from_millis(u64::from(self.tuning.jitter_floor_ms));
        let latency = rtt.map_or(floor, |r| video_jitter_latency(r, floor)).as_millis() as u32;

        // The doctor's video as it arrives: the jitter buffers' own counts (loss before repair, repairs).
        let (mut jb_pushed, mut jb_lost, mut repaired) = (0u64, 0u64, 0u64);
        for jb in self.tuning.video_jitterbuffers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let Some(jb) = jb.upgrade() else { continue };
            if jb.property::<u32>("latency").abs_diff(latency) > 20 {
                jb.set_property("latency", latency);
            }
            if let Some(s) = jb.property::<Option<gst::Structure>>("stats") {
                tracing::debug!(latency, stats = %s, "the doctor's video jitter buffer");
                jb_pushed += s.get::<u64>("num-pushed").unwrap_or(0);
                jb_lost += s.get::<u64>("num-lost").unwrap_or(0);
                repaired += s.get::<u64>("rtx-success-count").unwrap_or(0);
            }
        }
        // Frames held for their playout time while losses are being repaired (`core::playout`), and the audio
        // waiting as long, so the doctor's lips and voice stay together. Started by a repaired packet: not by a
        // request alone (the jitter buffer also asks for packets that were only late, 20-95 times in 10 s on a
        // delayed loss-free link, see docs/platform-notes.md), nor by a packet given up (seen at the start of calls
        // on a clean link, which then held every frame 100 ms for 10 s; a wait would not have brought it back).
        if repaired > self.previous.jb_repaired {
            self.last_repair_at = Some(now);
        }
        let repairing = self.last_repair_at.is_some_and(|t| now.duration_since(t) < LOSS_MEMORY);
        let playout = video_playout_delay(rtt, repairing).as_millis() as u32;
        if playout != self.tuning.playout_delay_ms.swap(playout, Ordering::Relaxed) {
            tracing::debug!(playout, "the doctor's video playout delay");
            let audio_latency = playout.max(self.tuning.jitter_floor_ms);
            for jb in self.tuning.audio_jitterbuffers.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                if let Some(jb) = jb.upgrade()
                    && jb.property::<u32>("latency").abs_diff(audio_latency) > 20
                {
                    jb.set_property("latency", audio_latency);
                }
            }
        }
        let (pushed_now, lost_now) =
            (jb_pushed.saturating_sub(self.previous.jb_pushed), jb_lost.saturating_sub(self.previous.jb_lost));
        let doctor: Vec<&Inbound> = match &facts {
            Some(f) if !f.video_ssrcs.is_empty() => {
                reading.inbound.iter().filter(|(s, _)| f.video_ssrcs.contains(s)).map(|(_, i)| i).collect()
            }
            _ => reading.inbound.values().collect(),
        };
        let bytes_received: u64 = reading.inbound.values().map(|i| i.bytes).sum();
        let decoded = self.live.received.video_frames();
        // A keyframe when the doctor's picture cannot go on without one (once per tick at most).
        let frames_now = decoded.saturating_sub(self.previous.decoded_frames);
        if self.previous.at.is_some()
            && keyframe_needed(lost_now, pushed_now, frames_now)
            && let Some(f) = &facts
        {
            let asked = super::tuning::request_doctor_keyframe(&webrtc, &f.video_ssrcs);
            tracing::debug!(lost_now, pushed_now, frames_now, asked, "keyframe requested from the doctor");
        }
        let (rtx_packets, _) = self.rtx_counts();
        let element_of = |slot: &Mutex<Option<glib::WeakRef<gst::Element>>>| {
            slot.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|w| w.upgrade())
        };
        if let (Some(fec), Some(red)) = (element_of(&self.tuning.fec_encoder), element_of(&self.tuning.red_encoder)) {
            tracing::trace!(
                percentage = fec.property::<u32>("percentage"),
                protected = fec.property::<u32>("protected"),
                fec_pt = fec.property::<u32>("pt"),
                red_sent = red.property::<u32>("sent"),
                red_pt = red.property::<i32>("pt"),
                twcc_loss = ?reading.twcc_loss_pct,
                report_loss,
                "fec"
            );
        }

        let rung = self.ladder.rung();
        self.live.sent.set_stats(SendStats {
            fps: round1(encoded_fps),
            width: rung.width,
            height: rung.height,
            bitrate_kbps: sent_kbps.round() as u32,
            target_kbps: budget.min(self.tuning.rung_cap_kbps.load(Ordering::Relaxed)),
            limit: Some(decision.limit),
            rate_control: Some(if twcc { "transport-cc" } else { "receiver-reports" }.to_string()),
            rtx_packets,
            rtx_refused: self.tuning.rtx_refused.load(Ordering::Relaxed),
            nacks_received: media.map_or(0, |m| u64::from(m.nacks)),
            plis_received: media.map_or(0, |m| u64::from(m.plis)),
            fec_percent: fec,
            audio_fec_loss_percent: opus,
            loss_percent: round1(loss * 100.0),
            rtt_ms: rtt.map(|r| r.as_millis() as u32),
        });
        let (w, h) = self.live.received.video_size().unwrap_or((0, 0));
        self.live.received.set_stats(ReceiveStats {
            fps: round1(decoded.saturating_sub(self.previous.decoded_frames) as f64 / dt),
            width: w as u32,
            height: h as u32,
            bitrate_kbps: (bytes_received.saturating_sub(self.previous.bytes_received) as f64 * 8.0 / 1000.0 / dt)
                .round() as u32,
            loss_percent: if pushed_now + lost_now > 0 {
                round1(100.0 * lost_now as f64 / (pushed_now + lost_now) as f64)
            } else {
                0.0
            },
            nacks_sent: doctor.iter().map(|i| u64::from(i.nacks)).sum(),
            plis_sent: doctor.iter().map(|i| u64::from(i.plis)).sum(),
            packets_repaired: repaired,
            playout_delay_ms: playout,
            freeze_count: 0,
            freeze_seconds: 0.0,
            glass_to_glass_ms: None,
        });
        self.previous = Previous {
            at: Some(now),
            encoded_frames: encoded,
            decoded_frames: decoded,
            bytes_sent,
            bytes_received,
            jb_pushed,
            jb_lost,
            jb_repaired: repaired,
        };
    }

    /// Retransmitted packets and retransmission requests, from webrtcbin's `rtprtxsend`.
    fn rtx_counts(&self) -> (u64, u64) {
        let sender =
            self.tuning.rtx_sender.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|w| w.upgrade());
        sender.map_or((0, 0), |s| {
            (u64::from(s.property::<u32>("num-rtx-packets")), u64::from(s.property::<u32>("num-rtx-requests")))
        })
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// webrtcbin's `get-stats`, asked from this thread and waited for at most a second (a stopping pipeline may never
/// answer).
fn read_stats(webrtc: &gst::Element) -> Option<Reading> {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(Some(tx));
    let promise = gst::Promise::with_change_func(move |reply| {
        let reading = match reply {
            Ok(Some(s)) => parse_stats(s),
            _ => None,
        };
        if let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(reading);
        }
    });
    webrtc.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
    rx.recv_timeout(Duration::from_secs(1)).ok().flatten()
}

fn parse_stats(stats: &gst::StructureRef) -> Option<Reading> {
    use gst_webrtc::WebRTCStatsType as T;
    let mut r = Reading::default();
    for (_, value) in stats.iter() {
        let Ok(st) = value.get::<gst::Structure>() else { continue };
        let Ok(kind) = st.get::<T>("type") else { continue };
        let ssrc = st.get::<u32>("ssrc").ok();
        match (kind, ssrc) {
            (T::OutboundRtp, Some(ssrc)) => {
                r.outbound.insert(
                    ssrc,
                    Outbound {
                        bytes: st.get::<u64>("bytes-sent").unwrap_or(0),
                        packets: st.get::<u64>("packets-sent").unwrap_or(0),
                        nacks: st.get::<u32>("nack-count").unwrap_or(0),
                        plis: st.get::<u32>("pli-count").unwrap_or(0),
                    },
                );
            }
            (T::RemoteInboundRtp, Some(ssrc)) => {
                r.remote_inbound
                    .insert(ssrc, (st.get::<f64>("round-trip-time").ok(), st.get::<f64>("fraction-lost").ok()));
            }
            (T::InboundRtp, Some(ssrc)) => {
                r.inbound.insert(
                    ssrc,
                    Inbound {
                        bytes: st.get::<u64>("bytes-received").unwrap_or(0),
                        nacks: st.get::<u32>("nack-count").unwrap_or(0),
                        plis: st.get::<u32>("pli-count").unwrap_or(0),
                    },
                );
            }
            (T::CandidatePair, _) => {
                if let Ok(twcc) = st.get::<gst::Structure>("gst-twcc-stats")
                    && let Ok(pct) = twcc.get::<f64>("packet-loss-pct")
                {
                    r.twcc_loss_pct = Some(pct);
                }
            }
            _ => {}
        }
    }
    Some(r)
}
