//! The kiosk's own evidence of a lost network: the doctor's media stops arriving.

use std::time::{Duration, Instant};

use crate::core::call::Event;

/// Watches the doctor's media arriving, as the kiosk's own evidence of a lost network: webrtcbin 1.22's ICE agent
/// runs no consent checks, so a dead path can stay "connected" for ever. A stall becomes `MediaInterrupted`, flow
/// after a stall `MediaConnected`; the call core decides what they mean.
#[derive(Debug, Default)]
pub(super) struct FlowWatch {
    session: Option<String>,
    last_count: u64,
    last_change: Option<Instant>,
    stalled: bool,
}

/// Longer than any normal gap: audio arrives every 20 ms even when the doctor is muted.
const FLOW_STALL: Duration = Duration::from_secs(2);

impl FlowWatch {
    pub(super) fn check(&mut self, session: Option<&String>, count: u64, now: Instant) -> Option<Event> {
        if self.session.as_ref() != session {
            *self = FlowWatch { session: session.cloned(), last_count: count, last_change: None, stalled: false };
            return None;
        }
        let session_id = self.session.clone()?;
        if count != self.last_count {
            self.last_count = count;
            self.last_change = Some(now);
            if self.stalled {
                self.stalled = false;
                return Some(Event::MediaConnected { session_id });
            }
        } else if let Some(t) = self.last_change
            && !self.stalled
            && now.duration_since(t) >= FLOW_STALL
        {
            // Only media that has flowed in this session can stall.
            self.stalled = true;
            return Some(Event::MediaInterrupted { session_id });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_of_flowing_media_is_an_interruption_and_new_flow_ends_it() {
        let mut w = FlowWatch::default();
        let t0 = Instant::now();
        let s1 = "c1-s1".to_string();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(w.check(Some(&s1), 0, at(0)), None);
        // Nothing arrived yet in this session: connecting is not a stall.
        assert_eq!(w.check(Some(&s1), 0, at(5000)), None);
        assert_eq!(w.check(Some(&s1), 10, at(5500)), None);
        assert_eq!(w.check(Some(&s1), 10, at(7000)), None);
        assert_eq!(w.check(Some(&s1), 10, at(7500)), Some(Event::MediaInterrupted { session_id: s1.clone() }));
        assert_eq!(w.check(Some(&s1), 10, at(9000)), None, "reported once");
        assert_eq!(w.check(Some(&s1), 11, at(9500)), Some(Event::MediaConnected { session_id: s1.clone() }));
        // A new session starts afresh.
        let s2 = "c1-s2".to_string();
        assert_eq!(w.check(Some(&s2), 11, at(20000)), None);
        assert_eq!(w.check(Some(&s2), 11, at(30000)), None);
        assert_eq!(w.check(None, 11, at(31000)), None);
    }
}
