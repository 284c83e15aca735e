//! Which of the browser's retransmission requests the kiosk serves, like libwebrtc's sender: a packet is resent at
//! most once per round trip, and retransmissions together stay within a share of the target bitrate. Without this,
//! a link that drops a burst (a queue overflowing on a capped uplink) gets a storm: every NACK is served at once,
//! the extra traffic overflows the queue again, and the browser NACKs what it lost (seen: 35 Mbit/s of
//! retransmissions on a 1 Mbit/s link).

use std::collections::HashMap;
use std::time::Duration;

/// Retransmissions may take this share of the video's target bitrate.
const SHARE: f64 = 0.35;
/// The size retransmitted packets are counted at (the payloaders' MTU).
const PACKET_BYTES: f64 = 1200.0;
/// Tokens pile up to this many seconds of budget (libwebrtc's retransmission limiter counts over a 1 s window too):
/// a burst loss is repaired at once. With a quarter of a second, a 300 kbit/s video could resend only two or three
/// packets at a time, so a burst of four lost packets (a Gilbert-Elliott link) waited a round trip or more for the
/// rest: a freeze at the doctor.
const BURST_SECS: f64 = 1.0;
/// ...and at least this many packets, for the lowest bitrates.
const BURST_MIN_PACKETS: f64 = 6.0;

#[derive(Debug, Clone, Default)]
pub struct RetransmissionLimiter {
    tokens: f64,
    last: Option<Duration>,
    /// When each recently resent sequence number went out.
    resent: HashMap<u16, Duration>,
}

impl RetransmissionLimiter {
    /// Whether to resend packet `seqnum` now (`now` on any monotonic base), given the round trip and the video's
    /// target bitrate. A refused request costs nothing; the browser asks again if it still needs the packet.
    pub fn allow(&mut self, now: Duration, seqnum: u16, rtt: Duration, target_kbps: u32) -> bool {
        let rate = f64::from(target_kbps) * 1000.0 * SHARE / 8.0 / PACKET_BYTES;
        // A new limiter starts with a full bucket.
        let elapsed = self.last.map_or(f64::MAX, |t| now.saturating_sub(t).as_secs_f64());
        self.last = Some(now);
        self.tokens = (self.tokens + elapsed * rate).min((rate * BURST_SECS).max(BURST_MIN_PACKETS));
        if self.resent.len() > 4096 {
            self.resent.retain(|_, t| now.saturating_sub(*t) < Duration::from_secs(2));
        }
        let again_after = rtt.max(Duration::from_millis(50));
        if self.resent.get(&seqnum).is_some_and(|t| now.saturating_sub(*t) < again_after) {
            return false;
        }
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        self.resent.insert(seqnum, now);
        true
    }
}

/// Whether to ask the doctor's browser for a keyframe (PLI) after one monitor interval: a packet of its video was
/// given up (the jitter buffer waited and no retransmission came: the decoder now shows nothing or a broken
/// picture until the next keyframe, and a browser sends keyframes only when asked), or packets arrived and not a
/// single frame was decoded. The caller asks at most once per interval.
pub fn keyframe_needed(packets_given_up: u64, packets_arrived: u64, frames_decoded: u64) -> bool {
    packets_given_up > 0 || (packets_arrived > 0 && frames_decoded == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_packet_is_resent_at_most_once_per_round_trip() {
        let mut l = RetransmissionLimiter::default();
        assert!(l.allow(ms(0), 7, ms(80), 1000));
        assert!(!l.allow(ms(40), 7, ms(80), 1000), "asked again within the round trip");
        assert!(l.allow(ms(100), 7, ms(80), 1000), "asked again after it: the resend was lost too");
        assert!(l.allow(ms(100), 8, ms(80), 1000), "another packet");
    }

    #[test]
    fn retransmissions_stay_within_their_share_of_the_bitrate() {
        // 1000 kbit/s: 35 % is 350 kbit/s, about 36 packets per second, and a full bucket of 1 s at the start.
        let mut l = RetransmissionLimiter::default();
        let mut served = 0;
        for i in 0..5000u16 {
            // 5000 requests for different packets within five seconds.
            if l.allow(ms(u64::from(i)), i, ms(40), 1000) {
                served += 1;
            }
        }
        assert!((5 * 36..=6 * 37).contains(&served), "{served} served in five seconds");
    }

    #[test]
    fn a_burst_of_lost_packets_is_resent_at_once_even_at_a_low_bitrate() {
        // 300 kbit/s of video, a burst of four lost packets and then the next four: all resent when asked.
        let mut l = RetransmissionLimiter::default();
        assert!((0..4u16).all(|s| l.allow(ms(1000), s, ms(70), 300)), "the first burst");
        assert!((4..8u16).all(|s| l.allow(ms(1100), s, ms(70), 300)), "a second burst 100 ms later");
        // The lowest bitrate still repairs a burst of four.
        let mut low = RetransmissionLimiter::default();
        assert!((0..4u16).all(|s| low.allow(ms(1000), s, ms(70), 60)));
    }

    #[test]
    fn a_keyframe_is_asked_for_when_a_packet_is_given_up_or_frames_stop_while_packets_arrive() {
        assert!(!keyframe_needed(0, 40, 15), "a healthy interval");
        assert!(keyframe_needed(1, 40, 15), "a packet given up");
        assert!(keyframe_needed(0, 40, 0), "packets but no picture: the decoder waits for a keyframe");
        assert!(!keyframe_needed(0, 0, 0), "nothing arrives (a cut): a request could not arrive either");
    }
}
