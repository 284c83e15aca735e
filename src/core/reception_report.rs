//! RTCP reception report blocks (RFC 3550 section 6.4.1) about the doctor's streams, from the receive counts the RTP
//! session keeps. The kiosk adds them to its early feedback packets because its RTP session (GStreamer 1.22) stops
//! sending regular reports once feedback flows: without report blocks the doctor's browser never learns its round
//! trip to the kiosk (see `media::session::reports`).

use std::time::Duration;

/// What the RTP session has counted for one of the doctor's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiveCounts {
    /// The stream's first sequence number.
    pub seqnum_base: u32,
    pub packets_received: u64,
    /// Expected less received, since the start (negative with duplicates).
    pub packets_lost: i64,
    /// Interarrival jitter, in the stream's timestamp units.
    pub jitter: u32,
}

/// The latest sender report from that stream: its NTP timestamp and how long ago it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastSenderReport {
    pub ntp: u64,
    pub age: Duration,
}

/// One report block's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub fraction_lost: u8,
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    pub jitter: u32,
    /// The middle 32 bits of the last sender report's NTP timestamp; 0 before any.
    pub last_sr: u32,
    /// Time since that report arrived, in 1/65536 s; 0 before any.
    pub delay_since_last_sr: u32,
}

/// The report block for a stream now, given its counts at the previous block (for the fraction lost in between).
pub fn report_block(
    previous: Option<ReceiveCounts>,
    now: ReceiveCounts,
    last_sr: Option<LastSenderReport>,
) -> ReportBlock {
    let expected = |c: ReceiveCounts| c.packets_received as i64 + c.packets_lost;
    let expected_now = expected(now).max(0);
    let fraction_lost = match previous {
        Some(p) => {
            let expected_interval = expected_now - expected(p).max(0);
            let received_interval = now.packets_received as i64 - p.packets_received as i64;
            let lost_interval = expected_interval - received_interval;
            if expected_interval <= 0 || lost_interval <= 0 {
                0
            } else {
                ((lost_interval << 8) / expected_interval).min(255) as u8
            }
        }
        None => 0,
    };
    // The 24-bit signed field.
    let cumulative_lost = now.packets_lost.clamp(-0x80_0000, 0x7f_ffff) as i32;
    let extended_highest_seq = (i64::from(now.seqnum_base) + expected_now - 1).max(0) as u32;
    let (last_sr, delay_since_last_sr) = match last_sr {
        Some(sr) => {
            let dlsr = (sr.age.as_nanos() * 65_536 / 1_000_000_000).min(u128::from(u32::MAX)) as u32;
            (((sr.ntp >> 16) & 0xffff_ffff) as u32, dlsr)
        }
        None => (0, 0),
    };
    ReportBlock {
        fraction_lost,
        cumulative_lost,
        extended_highest_seq,
        jitter: now.jitter,
        last_sr,
        delay_since_last_sr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(received: u64, lost: i64) -> ReceiveCounts {
        ReceiveCounts { seqnum_base: 1000, packets_received: received, packets_lost: lost, jitter: 90 }
    }

    #[test]
    fn the_last_sender_report_is_echoed_with_the_time_since_it_arrived() {
        let sr = LastSenderReport { ntp: 0x1122_3344_5566_7788, age: Duration::from_millis(250) };
        let b = report_block(None, counts(100, 0), Some(sr));
        assert_eq!(b.last_sr, 0x3344_5566);
        assert_eq!(b.delay_since_last_sr, 16_384); // 0.25 s in 1/65536 s
        let none = report_block(None, counts(100, 0), None);
        assert_eq!((none.last_sr, none.delay_since_last_sr), (0, 0));
    }

    #[test]
    fn loss_is_counted_since_the_previous_block_and_in_total() {
        let b = report_block(Some(counts(100, 2)), counts(196, 6), None);
        // 100 expected in between (102 -> 202), 96 received: 4 % = 10/256.
        assert_eq!(b.fraction_lost, 10);
        assert_eq!(b.cumulative_lost, 6);
        assert_eq!(b.extended_highest_seq, 1000 + 202 - 1);
        assert_eq!(b.jitter, 90);
        // Duplicates make the count negative; the fraction never is.
        let dup = report_block(Some(counts(100, 0)), counts(210, -5), None);
        assert_eq!((dup.fraction_lost, dup.cumulative_lost), (0, -5));
        // Nothing expected in between, and the first block: no fraction.
        assert_eq!(report_block(Some(counts(100, 0)), counts(100, 0), None).fraction_lost, 0);
        assert_eq!(report_block(None, counts(50, 50), None).fraction_lost, 0);
        // All lost in between: at most 255.
        assert_eq!(report_block(Some(counts(100, 0)), counts(100, 100), None).fraction_lost, 255);
    }
}
