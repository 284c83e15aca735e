// Medi-Mitra Kiosk patch (not upstream): the loss-based controller's view of packet loss.
//
// Upstream 0.15.4 averages the loss fraction of each transport-wide feedback with a weight of
// exp(-milliseconds since the previous feedback), so the "average" is the last feedback's loss alone: one lost
// video packet in a feedback covering three packets reads as 33 % and cuts the target bitrate, many times a second
// on a link with 1-5 % random loss. libwebrtc's loss-based estimator (send_side_bandwidth_estimation.cc) instead
// tallies lost and expected packets until at least 20 are expected and decides on that fraction, at most one
// decrease per (300 ms + RTT). This window does the same over a longer span, counting feedbacks until they cover
// both MIN_SPAN and MIN_PACKETS, so one burst of a Gilbert-Elliott link does not read as congestion; after a
// decrease the controller restarts the window so one loss episode cuts the rate once.
//
// SPDX-License-Identifier: MPL-2.0

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Feedbacks must cover at least this long before the fraction is trusted...
pub const MIN_SPAN: Duration = Duration::from_millis(1000);
/// ...and at least this many packets (a 300 kbit/s stream sends about 30 a second).
pub const MIN_PACKETS: u64 = 50;
/// Older feedbacks are forgotten even on a very slow stream.
pub const MAX_SPAN: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct LossWindow {
    /// (when the feedback arrived, packets it reported on, of which lost), oldest first.
    feedbacks: VecDeque<(Instant, u64, u64)>,
    /// When the window last started empty (creation or restart).
    started: Option<Instant>,
}

impl LossWindow {
    pub fn record(&mut self, now: Instant, packets: u64, lost: u64) {
        if packets == 0 {
            return;
        }
        self.started.get_or_insert(now);
        self.feedbacks.push_back((now, packets, lost.min(packets)));
        // Forget the oldest feedbacks while what remains still covers MIN_SPAN and MIN_PACKETS, and always
        // forget what is older than MAX_SPAN.
        while let Some(&(at, n, _)) = self.feedbacks.front() {
            let age = now.saturating_duration_since(at);
            let rest: u64 = self.packets() - n;
            let oldest_remaining_age = self.feedbacks.get(1).map(|&(t, _, _)| now.saturating_duration_since(t));
            let rest_covers_span = oldest_remaining_age.is_some_and(|a| a >= MIN_SPAN);
            if age > MAX_SPAN || (rest_covers_span && rest >= MIN_PACKETS) {
                self.feedbacks.pop_front();
            } else {
                break;
            }
        }
    }

    fn packets(&self) -> u64 {
        self.feedbacks.iter().map(|&(_, n, _)| n).sum()
    }

    /// The loss fraction over the window, or None while it does not yet hold enough evidence.
    pub fn ratio(&self, now: Instant) -> Option<f64> {
        let started = self.started?;
        let packets = self.packets();
        if packets < MIN_PACKETS || now.saturating_duration_since(started) < MIN_SPAN {
            return None;
        }
        let lost: u64 = self.feedbacks.iter().map(|&(_, _, l)| l).sum();
        Some(lost as f64 / packets as f64)
    }

    /// Forget everything: the next decision needs fresh evidence.
    pub fn restart(&mut self) {
        self.feedbacks.clear();
        self.started = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// One feedback every 50 ms of `packets` packets, the `lost_at`th ones losing one packet each.
    fn feed(w: &mut LossWindow, t0: Instant, count: u64, packets: u64, lost_every: u64) -> Instant {
        let mut now = t0;
        for i in 0..count {
            now = t0 + ms(50 * i);
            let lost = u64::from(lost_every != 0 && i % lost_every == 0);
            w.record(now, packets, lost);
        }
        now
    }

    #[test]
    fn one_lost_packet_in_a_small_feedback_is_not_a_third_of_the_traffic() {
        // Upstream read this feedback (1 of 3 lost) as 33 % loss.
        let mut w = LossWindow::default();
        let t0 = Instant::now();
        let now = feed(&mut w, t0, 20, 5, 0);
        w.record(now + ms(50), 3, 1);
        let r = w.ratio(now + ms(50)).expect("a second of feedback");
        assert!(r < 0.02, "{r}");
    }

    #[test]
    fn no_verdict_before_a_second_and_fifty_packets() {
        let mut w = LossWindow::default();
        let t0 = Instant::now();
        w.record(t0, 40, 20);
        assert_eq!(w.ratio(t0 + ms(1500)), None, "too few packets");
        let mut w = LossWindow::default();
        w.record(t0, 200, 100);
        assert_eq!(w.ratio(t0 + ms(500)), None, "too short");
        assert_eq!(w.ratio(t0 + ms(1000)), Some(0.5));
    }

    #[test]
    fn sustained_heavy_loss_is_seen_within_the_window() {
        let mut w = LossWindow::default();
        let t0 = Instant::now();
        // 5 packets per 50 ms, 1 lost in each: 20 %.
        let now = feed(&mut w, t0, 40, 5, 1);
        let r = w.ratio(now).expect("enough");
        assert!((r - 0.2).abs() < 1e-9, "{r}");
    }

    #[test]
    fn old_feedback_leaves_the_window() {
        let mut w = LossWindow::default();
        let t0 = Instant::now();
        // A bad first second, then three clean seconds.
        let now = feed(&mut w, t0, 20, 5, 1);
        let now = feed(&mut w, now + ms(50), 60, 5, 0);
        let r = w.ratio(now).expect("enough");
        assert_eq!(r, 0.0);
        // The window holds about a second, not all four.
        assert!(w.feedbacks.len() <= 22, "{}", w.feedbacks.len());
    }

    #[test]
    fn a_slow_stream_keeps_feedback_until_fifty_packets_but_not_past_five_seconds() {
        let mut w = LossWindow::default();
        let t0 = Instant::now();
        for i in 0..30u64 {
            w.record(t0 + ms(200 * i), 2, u64::from(i == 0));
        }
        // 6 s of feedback at 10 packets/s: the first (lossy) one is past MAX_SPAN and gone.
        assert_eq!(w.ratio(t0 + ms(200 * 29)), Some(0.0));
        let mut w = LossWindow::default();
        for i in 0..20u64 {
            w.record(t0 + ms(200 * i), 2, u64::from(i == 0));
        }
        // 4 s, 40 packets: not enough packets yet, nothing forgotten.
        assert_eq!(w.feedbacks.len(), 20);
    }

    #[test]
    fn restart_needs_fresh_evidence() {
        let mut w = LossWindow::default();
        let t0 = Instant::now();
        let now = feed(&mut w, t0, 40, 5, 1);
        assert!(w.ratio(now).is_some());
        w.restart();
        assert_eq!(w.ratio(now), None);
        w.record(now + ms(50), 100, 0);
        assert_eq!(w.ratio(now + ms(100)), None, "a new window needs its own second");
    }

    #[test]
    fn empty_feedback_and_impossible_counts_are_harmless() {
        let mut w = LossWindow::default();
        let t0 = Instant::now();
        w.record(t0, 0, 0);
        assert_eq!(w.ratio(t0 + ms(2000)), None);
        w.record(t0, 60, 90);
        assert_eq!(w.ratio(t0 + ms(2000)), Some(1.0));
    }
}
