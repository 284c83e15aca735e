//! Counts of what the call service did since the kiosk started, for `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::core::EndReason;

#[derive(Debug, Default)]
pub struct CallCounters {
    /// Calls that rang the kiosk.
    pub started: AtomicU64,
    /// Calls ended, by reason (in the order of [`EndReason::ALL`]).
    ended: [AtomicU64; EndReason::ALL.len()],
    /// Media sessions started (a call has one, plus one per replacement).
    pub sessions_started: AtomicU64,
    /// Media sessions that failed (ICE failure, a pipeline error, no connection in time).
    pub sessions_failed: AtomicU64,
    /// Times the doctor's media stopped arriving during a call.
    pub interruptions: AtomicU64,
}

impl CallCounters {
    pub(super) fn ended(&self, reason: EndReason) {
        if let Some(i) = EndReason::ALL.iter().position(|r| *r == reason)
            && let Some(c) = self.ended.get(i)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Calls ended, by reason.
    pub fn ended_by_reason(&self) -> Vec<(EndReason, u64)> {
        EndReason::ALL.iter().zip(&self.ended).map(|(r, c)| (*r, c.load(Ordering::Relaxed))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_a_counter_for_every_end_reason() {
        let c = CallCounters::default();
        for r in EndReason::ALL {
            c.ended(*r);
        }
        assert!(c.ended_by_reason().iter().all(|(_, n)| *n == 1));
        assert_eq!(c.ended_by_reason().len(), EndReason::ALL.len());
    }
}
