//! When the kiosk sends a lost DTLS handshake flight again. Without a rule of its own, GStreamer's DTLS (OpenSSL)
//! waits 1 s for the first retransmission and doubles from there, so every lost handshake packet on a lossy rural
//! link delays the call's first picture by a second or more in both directions: the doctor's browser finishes its
//! handshake, and starts sending, only when the lost flight comes again. libwebrtc starts from a fraction of that
//! and caps the backoff at a few seconds; so does this rule.

use std::time::Duration;

/// The first wait for a reply to a handshake flight: above the round trip of most links the kiosk meets, so a
/// spurious resend (a few kilobytes) is rare; a satellite link's first resend may be one.
pub const FIRST_RETRANSMISSION: Duration = Duration::from_millis(200);

/// The longest wait between two sends of a flight.
pub const LONGEST_RETRANSMISSION: Duration = Duration::from_secs(3);

/// The wait before the next send of a flight, given the wait before the last one (`None`: the flight was just sent
/// for the first time). Doubles, between [`FIRST_RETRANSMISSION`] and [`LONGEST_RETRANSMISSION`].
pub fn next_retransmission(previous: Option<Duration>) -> Duration {
    match previous {
        None => FIRST_RETRANSMISSION,
        Some(p) => p.saturating_mul(2).clamp(FIRST_RETRANSMISSION, LONGEST_RETRANSMISSION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_wait_is_short_and_the_backoff_doubles_to_a_cap() {
        let mut waits = vec![next_retransmission(None)];
        for _ in 0..6 {
            let last = waits.last().copied();
            waits.push(next_retransmission(last));
        }
        let ms: Vec<u128> = waits.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![200, 400, 800, 1600, 3000, 3000, 3000]);
    }

    #[test]
    fn a_wait_below_the_first_or_far_beyond_the_cap_is_brought_into_range() {
        assert_eq!(next_retransmission(Some(Duration::ZERO)), FIRST_RETRANSMISSION);
        assert_eq!(next_retransmission(Some(Duration::from_micros(1))), FIRST_RETRANSMISSION);
        assert_eq!(next_retransmission(Some(Duration::MAX)), LONGEST_RETRANSMISSION);
    }
}
