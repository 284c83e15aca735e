//! The technician's "test device": what a few seconds of a port's counts say about the device behind it. Pure: the
//! caller takes [`PortCounts`] before and after the test window and asks [`verdict`].

use std::fmt;

use super::{ByteStats, Protocol};

/// A port's running counts since it was opened (they start again from zero when the port is reopened).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounts {
    pub bytes: ByteStats,
    /// Readings decoded (numbers or states such as "no finger").
    pub readings: u64,
}

impl PortCounts {
    /// What was counted since `before`; when the port was reopened in between (counts went back), all of `self`.
    pub fn since(&self, before: &PortCounts) -> PortCounts {
        let reopened = self.bytes.received < before.bytes.received || self.readings < before.readings;
        if reopened {
            return *self;
        }
        PortCounts {
            bytes: ByteStats {
                received: self.bytes.received - before.bytes.received,
                discarded: self.bytes.discarded.saturating_sub(before.bytes.discarded),
            },
            readings: self.readings - before.readings,
        }
    }
}

/// Where the port stood at the end of the test, as far as the verdict cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortCondition {
    /// Open and read with a known protocol.
    Open(Protocol),
    /// Its protocol is known but the port is not open (unplugged, or not yet reopened).
    Closed,
    /// No known protocol answered on it.
    Unknown,
    /// Still trying each protocol.
    Detecting,
}

/// The test's answer, with what the technician should do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Readings arrived.
    Working {
        readings: u64,
    },
    /// Bytes arrived but (almost) none made a frame: a wrong device, baud rate or protocol in the configuration.
    NotUnderstood {
        garbage_percent: u8,
    },
    /// The port is open and quiet.
    Silent {
        protocol: Protocol,
    },
    NotConnected,
    NoProtocol,
    Detecting,
}

/// Bytes that must arrive before "not understood" is said (a few frames' worth).
const MIN_BYTES_FOR_A_VERDICT: u64 = 20;

/// The verdict from the counts made during the test window and the port's condition at its end.
pub fn verdict(condition: PortCondition, during: &PortCounts) -> Verdict {
    let protocol = match condition {
        PortCondition::Closed => return Verdict::NotConnected,
        PortCondition::Unknown => return Verdict::NoProtocol,
        PortCondition::Detecting => return Verdict::Detecting,
        PortCondition::Open(p) => p,
    };
    if during.readings > 0 {
        return Verdict::Working { readings: during.readings };
    }
    if during.bytes.received >= MIN_BYTES_FOR_A_VERDICT {
        let percent = (during.bytes.garbage_ratio() * 100.0).round().clamp(0.0, 100.0) as u8;
        return Verdict::NotUnderstood { garbage_percent: percent };
    }
    Verdict::Silent { protocol }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Working { readings } => write!(f, "working: {readings} readings"),
            Verdict::NotUnderstood { garbage_percent } => write!(
                f,
                "data arrives but is not understood ({garbage_percent} % of it made no frame): check the device type, \
                 or the protocol named for this port"
            ),
            Verdict::Silent { protocol: Protocol::AndStandard } => {
                f.write_str("connected, no data: switch the scale on and step on it")
            }
            Verdict::Silent { .. } => f.write_str("connected, no data: switch the oximeter on and put a finger in"),
            Verdict::NotConnected => f.write_str("not connected: check the cable and the adapter"),
            Verdict::NoProtocol => f.write_str("no known device answered: replug it, or name its protocol"),
            Verdict::Detecting => f.write_str("still finding its protocol: try again in a few seconds"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(received: u64, discarded: u64, readings: u64) -> PortCounts {
        PortCounts { bytes: ByteStats { received, discarded }, readings }
    }

    #[test]
    fn readings_in_the_window_mean_working_even_with_some_garbage() {
        let during = counts(1000, 300, 200).since(&counts(500, 250, 100));
        assert_eq!(during, counts(500, 50, 100));
        assert_eq!(verdict(PortCondition::Open(Protocol::Cms50dLegacy), &during), Verdict::Working { readings: 100 });
    }

    #[test]
    fn bytes_without_frames_are_not_understood_and_quiet_is_silent() {
        let open = PortCondition::Open(Protocol::Cms50dV46);
        assert_eq!(verdict(open, &counts(400, 396, 0)), Verdict::NotUnderstood { garbage_percent: 99 });
        assert_eq!(verdict(open, &counts(5, 5, 0)), Verdict::Silent { protocol: Protocol::Cms50dV46 });
        let scale = verdict(PortCondition::Open(Protocol::AndStandard), &PortCounts::default());
        assert!(scale.to_string().contains("step on it"), "{scale}");
    }

    #[test]
    fn a_port_reopened_during_the_window_counts_from_its_reopening() {
        assert_eq!(counts(30, 0, 6).since(&counts(900, 10, 180)), counts(30, 0, 6));
    }

    #[test]
    fn a_port_not_open_says_why_before_any_count() {
        let busy = counts(1000, 0, 100);
        assert_eq!(verdict(PortCondition::Closed, &busy), Verdict::NotConnected);
        assert_eq!(verdict(PortCondition::Unknown, &busy), Verdict::NoProtocol);
        assert_eq!(verdict(PortCondition::Detecting, &busy), Verdict::Detecting);
    }
}
