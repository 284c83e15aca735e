//! How the kiosk's video adapts to the network and to its own CPU, as pure rules: a resolution and frame-rate
//! ladder with hysteresis (like libwebrtc's "balanced" degradation: resolution first, frame rate only at the bottom),
//! a loss-based rate control for peers that send no transport-wide congestion feedback, and the protection levels
//! (Opus in-band FEC, video ULPFEC) and the jitter buffer's latency derived from what RTCP measures. The media
//! engine feeds measurements in every half second and carries out the decisions.

use std::time::Duration;

use super::names::wire_enum;

/// One step of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// The video bitrate (kbit/s) below which this rung is too big.
    pub min_kbps: u32,
}

impl Rung {
    /// The most bitrate worth giving this rung's encoder: 0.15 bit per pixel. More buys little picture and costs the
    /// encoder CPU (entropy coding grows with the bits): a picture stepped down for a busy CPU must not be encoded
    /// at the whole link's bitrate.
    pub fn max_useful_kbps(&self) -> u32 {
        (u64::from(self.width) * u64::from(self.height) * u64::from(self.fps) * 15 / 100 / 1000) as u32
    }
}

/// The ladder for a camera of `width`×`height` at `fps`: the standard 16:9 rungs that fit, the camera's own size on
/// top. Frame rate stays at the camera's down to 320×180 (what a viewer misses first is motion, then detail; a
/// browser keeps 30 fps at 300 kbit/s too) and halves only at the very bottom, under 100 kbit/s for the video.
/// (480×270 used to run at 20 fps and 320×180 at 15: on a bursty 1 Mbit/s link the kiosk then sent 20 fps where the
/// browser pair sent 30.)
pub fn ladder(width: u32, height: u32, fps: u32) -> Vec<Rung> {
    const STANDARD: [Rung; 6] = [
        Rung { width: 1280, height: 720, fps: 30, min_kbps: 900 },
        Rung { width: 960, height: 540, fps: 30, min_kbps: 500 },
        Rung { width: 640, height: 360, fps: 30, min_kbps: 250 },
        Rung { width: 480, height: 270, fps: 30, min_kbps: 150 },
        Rung { width: 320, height: 180, fps: 30, min_kbps: 100 },
        Rung { width: 320, height: 180, fps: 15, min_kbps: 0 },
    ];
    let mut rungs: Vec<Rung> = STANDARD
        .iter()
        .filter(|r| r.width <= width && r.height <= height)
        .map(|r| Rung { fps: r.fps.min(fps.max(1)), ..*r })
        .collect();
    // A slow camera makes the bottom two rungs one: keep the lower one's floor, so the bottom is always affordable.
    rungs.dedup_by(|lower, upper| {
        let same = (lower.width, lower.height, lower.fps) == (upper.width, upper.height, upper.fps);
        if same {
            upper.min_kbps = lower.min_kbps;
        }
        same
    });
    let fits_standard = rungs.first().is_some_and(|r| r.width == width && r.height == height);
    if !fits_standard {
        let above = STANDARD.iter().rev().find(|r| r.width >= width).map_or(900, |r| r.min_kbps);
        rungs.insert(0, Rung { width, height, fps: fps.max(1), min_kbps: above });
    }
    rungs
}

wire_enum!(
    /// What gives way when the link or the CPU cannot carry the camera's picture (as WebRTC's
    /// `RTCDegradationPreference`).
    #[derive(Default)]
    DegradationPreference {
        /// Resolution and frame rate step down the ladder together.
        #[default]
        Balanced = "balanced",
        /// The camera's size always; only the bitrate (and so the quality, then the frame rate) gives way. For
        /// measurements that compare equal work.
        MaintainResolution = "maintain-resolution",
    }
);

impl DegradationPreference {
    /// The rungs the ladder may use under this preference.
    pub fn rungs(self, mut rungs: Vec<Rung>) -> Vec<Rung> {
        if self == DegradationPreference::MaintainResolution {
            rungs.truncate(1);
        }
        rungs
    }
}

wire_enum!(
    /// Why the kiosk sends less than its camera could.
    LimitReason {
        /// Not limited: the top of the ladder.
        None = "none",
        /// The network's estimated capacity.
        Bandwidth = "bandwidth",
        /// The encoder could not keep up (a busy CPU).
        Cpu = "cpu",
    }
);

/// One half-second of measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptInput {
    /// The video bitrate available (kbit/s): congestion control's estimate less audio and FEC.
    pub video_kbps: u32,
    /// Frames the encoder put out per second over the last interval.
    pub encoded_fps: f64,
}

/// What the ladder decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptDecision {
    pub rung: Rung,
    /// Whether the rung changed with this input (the caller then changes the picture it encodes).
    pub changed: bool,
    pub limit: LimitReason,
}

/// Hysteresis: down when the budget has been short for this long (at once when it is far short).
const DOWN_AFTER: Duration = Duration::from_millis(1000);
/// Up when the budget has covered the next rung with a margin for this long.
const UP_AFTER: Duration = Duration::from_secs(4);
const UP_MARGIN: f64 = 1.25;
/// The encoder is starving when it puts out less than this share of the rung's frame rate...
const CPU_STARVED: f64 = 0.8;
/// ...as the median of the readings over this long.
const CPU_AFTER: Duration = Duration::from_secs(3);
/// After a step down for CPU, no step up for this long.
const CPU_HOLD: Duration = Duration::from_secs(30);

/// The ladder's state: where it stands and for how long conditions have held.
#[derive(Debug, Clone)]
pub struct Ladder {
    rungs: Vec<Rung>,
    current: usize,
    limit: LimitReason,
    short_since: Option<Duration>,
    roomy_since: Option<Duration>,
    /// The encoder's frame rate readings on this rung over the last `CPU_AFTER`: (time, frames per second).
    encoded: std::collections::VecDeque<(Duration, f64)>,
    cpu_hold_until: Option<Duration>,
}

impl Ladder {
    /// Starts on the highest rung that `start_kbps` affords.
    pub fn new(rungs: Vec<Rung>, start_kbps: u32) -> Ladder {
        let rungs = if rungs.is_empty() { vec![Rung { width: 320, height: 180, fps: 15, min_kbps: 0 }] } else { rungs };
        let current = rungs.iter().position(|r| start_kbps >= r.min_kbps).unwrap_or(rungs.len() - 1);
        let limit = if current == 0 { LimitReason::None } else { LimitReason::Bandwidth };
        Ladder {
            rungs,
            current,
            limit,
            short_since: None,
            roomy_since: None,
            encoded: std::collections::VecDeque::new(),
            cpu_hold_until: None,
        }
    }

    pub fn rung(&self) -> Rung {
        self.rungs[self.current]
    }

    pub fn limit(&self) -> LimitReason {
        self.limit
    }

    /// Takes the measurements of one interval ending at `now` (time since the session started).
    pub fn update(&mut self, now: Duration, input: AdaptInput) -> AdaptDecision {
        let before = self.current;
        let rung = self.rungs[self.current];
        let affordable = self.rungs.iter().position(|r| input.video_kbps >= r.min_kbps).unwrap_or(self.rungs.len() - 1);

        // The encoder's health: a rung whose frame rate it cannot reach, on average over `CPU_AFTER`, is a rung too
        // high.
        let starving = self.starving(now, input.encoded_fps, rung);
        if starving && self.current + 1 < self.rungs.len() {
            self.step_to(self.current + 1, LimitReason::Cpu);
            self.cpu_hold_until = Some(now + CPU_HOLD);
        } else if affordable > self.current {
            // Short of bandwidth: down after a while, or at once when the budget is under 70 % of the rung's need.
            let since = *self.short_since.get_or_insert(now);
            let far_short = f64::from(input.video_kbps) < f64::from(rung.min_kbps) * 0.7;
            if far_short || now.saturating_sub(since) >= DOWN_AFTER {
                self.step_to(affordable, LimitReason::Bandwidth);
            }
        } else {
            self.short_since = None;
            let held = self.cpu_hold_until.is_some_and(|t| now < t);
            let up = self.current.checked_sub(1).map(|i| self.rungs[i]);
            match up {
                Some(up) if !held && !starving && f64::from(input.video_kbps) >= f64::from(up.min_kbps) * UP_MARGIN => {
                    let since = *self.roomy_since.get_or_insert(now);
                    if now.saturating_sub(since) >= UP_AFTER {
                        self.step_to(self.current - 1, LimitReason::Bandwidth);
                    }
                }
                _ => self.roomy_since = None,
            }
        }
        if self.current == 0 {
            self.limit = LimitReason::None;
        }
        AdaptDecision { rung: self.rungs[self.current], changed: self.current != before, limit: self.limit }
    }

    /// Records a frame rate reading; whether the median of the readings of the last `CPU_AFTER` (a full window of
    /// them) is under the starving share of `rung`'s frame rate. The median: a throttled CPU delivers frames in bursts
    /// (no single reading tells), and one or two slow readings (the encoder's start, a keyframe) are not starving.
    fn starving(&mut self, now: Duration, encoded_fps: f64, rung: Rung) -> bool {
        self.encoded.push_back((now, encoded_fps.max(0.0)));
        while self.encoded.len() > 1 && self.encoded.get(1).is_some_and(|(t, _)| now.saturating_sub(*t) >= CPU_AFTER) {
            self.encoded.pop_front();
        }
        let full = self.encoded.front().is_some_and(|(t, _)| now.saturating_sub(*t) >= CPU_AFTER);
        let mut fps: Vec<f64> = self.encoded.iter().map(|(_, f)| *f).collect();
        fps.sort_by(f64::total_cmp);
        let median = fps.get(fps.len() / 2).copied().unwrap_or(0.0);
        full && median < f64::from(rung.fps) * CPU_STARVED
    }

    fn step_to(&mut self, index: usize, why: LimitReason) {
        self.current = index.min(self.rungs.len() - 1);
        self.limit = why;
        self.short_since = None;
        self.roomy_since = None;
        // The readings were of another picture (and the encoder restarts on the new one).
        self.encoded.clear();
    }
}

/// Rate control from RTCP receiver reports, for peers that send no transport-wide feedback (so Google congestion
/// control has nothing to estimate from): multiplicative decrease on loss over 10 %, hold between 2 and 10 %, grow
/// 5 % per second below, never above 1.5× what is really sent.
#[derive(Debug, Clone)]
pub struct ReportRateControl {
    kbps: f64,
    min_kbps: f64,
    max_kbps: f64,
    last_change: Option<Duration>,
}

impl ReportRateControl {
    pub fn new(start_kbps: u32, min_kbps: u32, max_kbps: u32) -> Self {
        Self {
            kbps: f64::from(start_kbps),
            min_kbps: f64::from(min_kbps),
            max_kbps: f64::from(max_kbps),
            last_change: None,
        }
    }

    /// Takes one receiver report: the fraction lost (0–1) since the last one and the bitrate sent meanwhile.
    pub fn on_report(&mut self, now: Duration, fraction_lost: f64, sent_kbps: f64) -> u32 {
        let since = self.last_change.map_or(Duration::MAX, |t| now.saturating_sub(t));
        if fraction_lost > 0.10 && since >= Duration::from_secs(1) {
            self.kbps *= 1.0 - 0.5 * fraction_lost.min(1.0);
            self.last_change = Some(now);
        } else if fraction_lost < 0.02 && since >= Duration::from_secs(1) {
            let ceiling = if sent_kbps > 0.0 { sent_kbps * 1.5 } else { self.max_kbps };
            self.kbps = (self.kbps * 1.05).min(ceiling.max(self.kbps));
            self.last_change = Some(now);
        }
        self.kbps = self.kbps.clamp(self.min_kbps, self.max_kbps);
        self.kbps.round() as u32
    }
}

/// Opus's expected packet loss (percent), which makes it spend bits on in-band FEC: a margin above the loss seen,
/// at least 5 while loss was seen lately, none on a clean link.
pub fn opus_loss_percent(loss_fraction: f64, lossy_lately: bool) -> u32 {
    let pct = (loss_fraction * 150.0).round() as u32;
    match (pct, lossy_lately) {
        (0, false) => 0,
        (p, _) => p.clamp(5, 25),
    }
}

/// The round trip to the browser as last measured. Most statistics readings carry no new RTCP report, so a reading
/// without one keeps the last measurement (before this, each such reading reset the jitter buffer's wait to its
/// floor and the next report set it back: on a 600 ms satellite round trip the wait jumped between 200 and 400 ms
/// every half second and the doctor's picture froze).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundTrip {
    last: Option<Duration>,
}

impl RoundTrip {
    /// Takes this reading's measurement, if any, and returns the round trip to act on.
    pub fn update(&mut self, measured: Option<Duration>) -> Option<Duration> {
        if let Some(rtt) = measured.filter(|r| !r.is_zero()) {
            self.last = Some(rtt);
        }
        self.last
    }
}

/// Share of what is left after the audio that is kept free for retransmissions and packet headers (RTP, SRTP, UDP,
/// TURN): the encoder and its FEC get the rest.
pub const SEND_RESERVE_PERCENT: u32 = 15;

/// How an estimate for everything the kiosk sends is shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendSplit {
    /// The video encoder's target (kbit/s).
    pub video_kbps: u32,
    /// ULPFEC protection (percent of the video's packets).
    pub fec_percent: u32,
}

/// Shares `estimate_kbps` (congestion control's estimate for everything sent) out: the audio first, then
/// [`SEND_RESERVE_PERCENT`] of the rest for retransmissions and headers, then the video and its FEC. The video stays
/// within `min_video_kbps..=max_video_kbps`; when the video at its floor and the FEC wanted (`wanted_fec_percent`,
/// from [`video_fec_percent`]) would not fit, the FEC gives way (to none), so protection never pushes the total over
/// the estimate and turns a slow link's queue into loss (seen at 500 kbit/s: 40 % FEC on a 300 kbit/s floor, 30 %
/// loss, the picture frozen).
pub fn split_send_budget(
    estimate_kbps: u32,
    audio_kbps: u32,
    wanted_fec_percent: u32,
    (min_video_kbps, max_video_kbps): (u32, u32),
) -> SendSplit {
    let room = u64::from(estimate_kbps.saturating_sub(audio_kbps)) * u64::from(100 - SEND_RESERVE_PERCENT) / 100;
    let ideal = room * 100 / (100 + u64::from(wanted_fec_percent));
    let video = ideal.clamp(u64::from(min_video_kbps), u64::from(max_video_kbps.max(min_video_kbps)));
    let fits = if room > video { (room - video) * 100 / video.max(1) } else { 0 };
    let fec = u64::from(wanted_fec_percent).min(fits);
    // Below 5 % ULPFEC protects too few packets to matter.
    let fec = if fec < 5 { 0 } else { fec };
    SendSplit { video_kbps: video as u32, fec_percent: fec as u32 }
}

/// ULPFEC protection for video (percent of media packets), from the loss left after retransmission can act: none
/// below 1 % loss; more when the round trip is too long for retransmissions to arrive in time.
pub fn video_fec_percent(loss_fraction: f64, rtt: Duration) -> u32 {
    let loss_pct = loss_fraction * 100.0;
    if loss_pct < 1.0 {
        return 0;
    }
    let factor = if rtt > Duration::from_millis(150) { 4.0 } else { 2.5 };
    ((loss_pct * factor).round() as u32).clamp(5, 40)
}

/// The receive jitter buffer for the doctor's video: the longest it waits for a missing packet. Long enough for two
/// requests (the first retransmission may be lost too): twice the round trip and 100 ms for the request's own delay
/// and the link's jitter; never shorter than the configured floor, at most a second. The kiosk shows the doctor's
/// picture as soon as it is decoded (its sink does not sync to the clock, so it takes no part in the pipeline's
/// latency): this wait costs nothing while packets arrive in order, and a wait cut short costs a frozen picture until
/// the next keyframe. (With the round trip and 40 ms, half the retransmissions came too late on 40 ms / 3 %.)
pub fn video_jitter_latency(rtt: Duration, floor: Duration) -> Duration {
    (rtt * 2 + Duration::from_millis(100)).clamp(floor, Duration::from_millis(1000).max(floor))
}

/// Keeps the picture at no more than a rung's frame rate, deciding each frame as it arrives: nothing is held back.
/// (GStreamer's `videorate` holds every frame until the next one arrives, one frame interval of delay; in its
/// averaging mode, which holds nothing, GStreamer 1.22 drops nothing either.)
#[derive(Debug, Default, Clone)]
pub struct FrameDropper {
    next_due_ns: Option<u64>,
}

impl FrameDropper {
    /// Whether the frame timestamped `pts_ns` goes on at `fps` frames a second at most (0: every frame). A frame up
    /// to a quarter of an interval early counts as on time (cameras' timestamps jitter); after a gap longer than an
    /// interval the count starts again from the late frame.
    pub fn pass(&mut self, pts_ns: u64, fps: u32) -> bool {
        if fps == 0 {
            return true;
        }
        let interval = 1_000_000_000 / u64::from(fps);
        let due = match self.next_due_ns {
            Some(due) if pts_ns.saturating_add(interval / 4) < due => return false,
            Some(due) if pts_ns < due.saturating_add(interval) => due,
            _ => pts_ns,
        };
        self.next_due_ns = Some(due.saturating_add(interval));
        true
    }
}

#[cfg(test)]
#[path = "adaptation_tests.rs"]
mod tests;
