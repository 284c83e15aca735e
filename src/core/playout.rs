//! When to show each frame of the doctor's video: a playout delay that lets a retransmitted packet's frame be shown
//! on time instead of late.
//!
//! The kiosk shows frames as they are decoded. A frame that needed a retransmission is then a round trip late and
//! the picture stops for that long: on 40 ms / 3 % loss 63 of 72 lost packets were repaired and the picture still
//! froze 8 s a minute (Chrome's definition), where Chrome, which plays out at a delay that covers its own NACKs,
//! froze for none. While the kiosk is repairing losses, each frame is therefore shown at a fixed delay after the
//! time the fastest frames of the last seconds arrived; with no loss the delay is zero and frames are shown at once
//! (glass-to-glass stays at the decoder's speed on a clean link).

use std::collections::VecDeque;
use std::time::Duration;

/// How long frames are held while losses are being repaired: a round trip for the retransmission and 100 ms for
/// detecting the gap (up to a frame interval), the jitter buffer's request delay and the link's jitter, at most
/// [`MAX_PLAYOUT_DELAY`]. Zero when no repair happened lately.
pub fn video_playout_delay(rtt: Option<Duration>, repairing: bool) -> Duration {
    if !repairing {
        return Duration::ZERO;
    }
    (rtt.unwrap_or(Duration::from_millis(100)) + Duration::from_millis(100)).min(MAX_PLAYOUT_DELAY)
}

/// The longest the doctor's picture is held: beyond this the picture lags the conversation noticeably.
pub const MAX_PLAYOUT_DELAY: Duration = Duration::from_millis(400);

/// How long the fastest arrival is remembered.
const WINDOW: Duration = Duration::from_secs(2);

/// The frames' timing: when they came out of the decoder (`arrived`, measured before any queue, so a frame's own
/// wait is never taken for transit) against their presentation timestamps. Any monotonic time base for the arrival
/// and the sink's `now`; `pts` in the stream's running time.
#[derive(Debug, Default)]
pub struct PlayoutClock {
    /// (arrival, arrival − pts) of recent frames, offsets increasing from front to back (a monotonic queue for the
    /// minimum over the window).
    fastest: VecDeque<(Duration, i128)>,
}

impl PlayoutClock {
    /// A frame came out of the decoder at `arrival` with timestamp `pts`.
    pub fn arrived(&mut self, arrival: Duration, pts: Duration) {
        let offset = arrival.as_nanos() as i128 - pts.as_nanos() as i128;
        while self.fastest.back().is_some_and(|&(_, o)| o >= offset) {
            self.fastest.pop_back();
        }
        self.fastest.push_back((arrival, offset));
        while self.fastest.front().is_some_and(|&(at, _)| arrival.saturating_sub(at) > WINDOW) {
            self.fastest.pop_front();
        }
    }

    /// The frame with timestamp `pts` is at the sink at `now`: how long to hold it before showing it, at most
    /// `delay`. It is due `delay` after the time the fastest recent frames would have brought it.
    pub fn hold(&self, now: Duration, pts: Duration, delay: Duration) -> Duration {
        let Some(&(_, fastest)) = self.fastest.front() else { return Duration::ZERO };
        if delay.is_zero() {
            return Duration::ZERO;
        }
        let due = pts.as_nanos() as i128 + fastest + delay.as_nanos() as i128;
        let wait = u64::try_from(due - now.as_nanos() as i128).unwrap_or(0);
        Duration::from_nanos(wait).min(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn no_delay_without_repairs_and_a_capped_one_with_them() {
        assert_eq!(video_playout_delay(Some(ms(80)), false), Duration::ZERO);
        assert_eq!(video_playout_delay(Some(ms(80)), true), ms(180));
        assert_eq!(video_playout_delay(None, true), ms(200));
        assert_eq!(video_playout_delay(Some(ms(900)), true), MAX_PLAYOUT_DELAY);
    }

    /// Frames through the clock and a sink that holds each in turn (frames queue while one is held), as in the
    /// kiosk: returns when each was shown.
    fn play(frames: &[(Duration, Duration)], delay: Duration) -> Vec<Duration> {
        let mut c = PlayoutClock::default();
        let mut sink_free = Duration::ZERO;
        let mut shown = Vec::new();
        for &(pts, arrival) in frames {
            c.arrived(arrival, pts);
            let now = arrival.max(sink_free);
            let at = now + c.hold(now, pts, delay);
            sink_free = at;
            shown.push(at);
        }
        shown
    }

    #[test]
    fn a_retransmitted_frame_is_shown_on_its_time_not_late() {
        let delay = ms(180);
        // 30 fps, transit 40 ms; frame 30 waited 120 ms for a retransmission, the next two behind it.
        let frames: Vec<_> = (0..60u64)
            .map(|i| {
                let pts = ms(33 * i);
                let arrival = match i {
                    30 => pts + ms(160),
                    31 => pts + ms(127),
                    32 => pts + ms(94),
                    _ => pts + ms(40),
                };
                (pts, arrival)
            })
            .collect();
        let shown = play(&frames, delay);
        // Every frame is shown 33 ms after the one before: the late frame is not a gap.
        for w in shown.windows(2) {
            assert_eq!(w[1] - w[0], ms(33), "{shown:?}");
        }
        assert_eq!(shown[30], ms(33 * 30 + 40) + delay);
    }

    #[test]
    fn holding_frames_does_not_make_them_later_and_later() {
        // The queue wait of held frames must not be taken for transit (it was, when arrival was read at the sink:
        // the delay grew by itself until the queue overflowed). Ten seconds at 30 fps, steady transit.
        let frames: Vec<_> = (0..300u64).map(|i| (ms(33 * i), ms(33 * i + 50))).collect();
        let shown = play(&frames, ms(200));
        for (i, at) in shown.iter().enumerate() {
            assert_eq!(*at, ms(33 * i as u64 + 250), "frame {i}");
        }
    }

    #[test]
    fn without_a_delay_frames_are_shown_at_once() {
        let frames: Vec<_> = (0..10u64).map(|i| (ms(33 * i), ms(33 * i + 40 + (i % 3) * 10))).collect();
        let shown = play(&frames, Duration::ZERO);
        for (s, (_, arrival)) in shown.iter().zip(&frames) {
            assert_eq!(s, arrival);
        }
    }

    #[test]
    fn a_frame_later_than_the_delay_is_shown_at_once_and_holds_never_exceed_the_delay() {
        let mut c = PlayoutClock::default();
        assert_eq!(c.hold(ms(5), ms(0), ms(100)), Duration::ZERO, "nothing known yet");
        c.arrived(ms(40), ms(0));
        c.arrived(ms(33 + 40 + 300), ms(33));
        assert_eq!(c.hold(ms(33 + 40 + 300), ms(33), ms(100)), Duration::ZERO);
        // Timestamps that jump forward (a new stream): that frame is the fastest, held by the delay and no more.
        c.arrived(ms(500), ms(10_000));
        assert_eq!(c.hold(ms(500), ms(10_000), ms(100)), ms(100));
        // And backwards: shown at once, no overflow.
        c.arrived(ms(533), ms(0));
        assert_eq!(c.hold(ms(533), ms(0), ms(100)), Duration::ZERO);
    }

    #[test]
    fn the_fastest_arrival_is_forgotten_after_two_seconds() {
        let mut c = PlayoutClock::default();
        c.arrived(ms(10), ms(0)); // offset 10 ms, unusually fast
        // From then on every frame takes 60 ms: at first they are 50 ms late, after 2 s they are the fastest.
        c.arrived(ms(33 + 60), ms(33));
        assert_eq!(c.hold(ms(33 + 60), ms(33), ms(100)), ms(50));
        let mut last = Duration::ZERO;
        for i in 2..100u64 {
            c.arrived(ms(33 * i + 60), ms(33 * i));
            last = c.hold(ms(33 * i + 60), ms(33 * i), ms(100));
        }
        assert_eq!(last, ms(100));
    }
}
