//! Freezes of a received video, counted the way browsers count them (`freezeCount`, `totalFreezesDuration` in
//! WebRTC's statistics): a frame that arrives later than three times the average frame interval, and at least
//! 150 ms later than the average, ends a freeze lasting that whole gap.

use std::time::Duration;

/// Average frame interval over this many recent frames.
const WINDOW: usize = 30;

#[derive(Debug, Clone, Default)]
pub struct FreezeMeter {
    last: Option<Duration>,
    /// Recent frame intervals, for the average.
    recent: std::collections::VecDeque<Duration>,
    count: u64,
    total: Duration,
}

impl FreezeMeter {
    /// A frame was shown at `at` (any monotonic time base).
    pub fn frame(&mut self, at: Duration) {
        if let Some(last) = self.last {
            let gap = at.saturating_sub(last);
            if let Some(avg) = self.average()
                && gap > (avg * 3).max(avg + Duration::from_millis(150))
            {
                self.count += 1;
                self.total += gap;
            }
            self.recent.push_back(gap);
            if self.recent.len() > WINDOW {
                self.recent.pop_front();
            }
        }
        self.last = Some(at);
    }

    fn average(&self) -> Option<Duration> {
        let n = u32::try_from(self.recent.len()).ok().filter(|n| *n > 0)?;
        Some(self.recent.iter().sum::<Duration>() / n)
    }

    /// Freezes so far and their total length.
    pub fn totals(&self) -> (u64, Duration) {
        (self.count, self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_stream_never_freezes_and_a_long_gap_counts_once_with_its_length() {
        let mut m = FreezeMeter::default();
        let mut t = Duration::ZERO;
        for _ in 0..60 {
            t += Duration::from_millis(33);
            m.frame(t);
        }
        assert_eq!(m.totals(), (0, Duration::ZERO));
        // 100 ms is three frames at 30 fps but not 150 ms over the average: not a freeze.
        t += Duration::from_millis(100);
        m.frame(t);
        assert_eq!(m.totals().0, 0);
        t += Duration::from_millis(1200);
        m.frame(t);
        assert_eq!(m.totals(), (1, Duration::from_millis(1200)));
    }
}
