//! Pure rules of the patient's screens: what a connection-quality indicator shows, how a call timer and a name are
//! written, which appointments may be checked in. No Slint, no store.

use crate::core::AppointmentStatus;
use crate::core::vitals::Protocol;
use crate::core::vitals::wire::{DeviceState, VitalsMessage};

/// 0 unknown, 1 poor, 2 fair, 3 good: from the doctor's video frame rate arriving and the bitrate congestion
/// control allows for the kiosk's video.
pub fn quality(frames_per_sec: f64, send_kbps: u64, reconnecting: bool) -> i32 {
    if reconnecting {
        return 1;
    }
    if frames_per_sec <= 0.0 && send_kbps == 0 {
        return 0;
    }
    if frames_per_sec >= 20.0 && (send_kbps == 0 || send_kbps >= 500) {
        3
    } else if frames_per_sec >= 10.0 && (send_kbps == 0 || send_kbps >= 200) {
        2
    } else {
        1
    }
}

/// `m:ss`, or `h:mm:ss` past an hour.
pub fn call_timer(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
}

/// Only the first name is shown on the shared screen.
pub fn first_name(full: &str) -> String {
    full.split_whitespace().next().unwrap_or("").to_string()
}

/// What the pulse oximeter asks of the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OximeterPrompt {
    None,
    PutFinger,
    Searching,
    Unplugged,
}

/// The pulse oximeter on the patient's screen: the numbers as text ("--" when the device has none) and a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OximeterView {
    pub spo2: String,
    pub pulse: String,
    pub prompt: OximeterPrompt,
}

/// The oximeter's view from the devices' latest messages; `None` when no oximeter has been heard from.
pub fn oximeter_view(latest: &[VitalsMessage]) -> Option<OximeterView> {
    latest.iter().rev().find_map(|m| match m {
        VitalsMessage::Vitals { device: Protocol::Cms50dLegacy | Protocol::Cms50dV46, state, spo2, pulse, .. } => {
            let text = |v: Option<String>| v.unwrap_or_else(|| "--".into());
            let (spo2, pulse) = match state {
                DeviceState::Reading => (text(spo2.map(|v| v.to_string())), text(pulse.map(|v| v.to_string()))),
                _ => ("--".into(), "--".into()),
            };
            let prompt = match state {
                DeviceState::NoFinger => OximeterPrompt::PutFinger,
                DeviceState::Searching => OximeterPrompt::Searching,
                DeviceState::Unplugged => OximeterPrompt::Unplugged,
                DeviceState::Reading | DeviceState::Settling | DeviceState::Overload => OximeterPrompt::None,
            };
            Some(OximeterView { spo2, pulse, prompt })
        }
        _ => None,
    })
}

/// One device's line on the technician screen, e.g. `/dev/ttyUSB0 (cms50d-legacy): connected, SpO2 97 %  pulse 72
/// /min  signal 5/8, 0.2 s ago`.
pub fn device_line(d: &crate::devices::DeviceStatus, now: std::time::Instant) -> String {
    use crate::devices::PortState;
    let port = d.port.display();
    let named = match d.protocol {
        Some(p) => format!("{port} ({p})"),
        None => port.to_string(),
    };
    let mut line = match d.state {
        PortState::Detecting => format!("{named}: finding its protocol…"),
        PortState::NoProtocol => format!("{named}: no known protocol answered (replug it to try again)"),
        PortState::Waiting => format!("{named}: waiting for the device"),
        PortState::Unplugged => format!("{named}: unplugged"),
        PortState::Connected => match &d.last {
            Some((reading, at)) => {
                format!("{named}: connected, {reading}, {:.1} s ago", now.saturating_duration_since(*at).as_secs_f64())
            }
            None => format!("{named}: connected, nothing decoded yet"),
        },
    };
    let garbage = d.counts.bytes.garbage_ratio();
    if d.state == PortState::Connected && garbage > 0.5 {
        line.push_str(&format!(
            "; {:.0} % of its bytes made no frame: the wrong device or baud rate?",
            100.0 * garbage
        ));
    }
    line
}

/// The device test's result, one line per port watched at its end: the verdict from what the port counted since
/// `before`, and the latest reading when it works.
pub fn device_test_lines(before: &[crate::devices::DeviceStatus], after: &[crate::devices::DeviceStatus]) -> String {
    use crate::core::vitals::check::{PortCounts, Verdict, verdict};
    if after.is_empty() {
        return "No vitals device to test: plug one in, or name its port in the configuration".into();
    }
    after
        .iter()
        .map(|d| {
            let start = before.iter().find(|b| b.port == d.port).map_or(PortCounts::default(), |b| b.counts);
            let v = verdict(d.condition(), &d.counts.since(&start));
            let latest = match (&v, &d.last) {
                (Verdict::Working { .. }, Some((reading, _))) => format!(", latest {reading}"),
                _ => String::new(),
            };
            format!("{}: {v}{latest}", d.port.display())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why an appointment cannot be checked in at the kiosk now, if it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckInRefusal {
    NotToday,
    NotScheduled,
}

pub fn can_check_in(status: AppointmentStatus, is_today: bool) -> Result<(), CheckInRefusal> {
    if !is_today {
        return Err(CheckInRefusal::NotToday);
    }
    if status != AppointmentStatus::Scheduled {
        return Err(CheckInRefusal::NotScheduled);
    }
    Ok(())
}

/// Compares PINs without stopping at the first differing digit.
pub fn pin_matches(expected: &str, given: &str) -> bool {
    if expected.is_empty() || expected.len() != given.len() {
        return false;
    }
    expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oximeter(state: DeviceState, spo2: Option<u8>, pulse: Option<u16>) -> VitalsMessage {
        VitalsMessage::Vitals { device: Protocol::Cms50dLegacy, state, spo2, pulse, signal: Some(5), weight_kg: None }
    }

    #[test]
    fn a_device_line_says_where_the_port_stands_and_its_latest_reading() {
        use crate::devices::{DeviceStatus, PortState};
        let now = std::time::Instant::now();
        let mut d = DeviceStatus {
            port: "/dev/medimitra/vitals-cp210x-0".into(),
            protocol: None,
            state: PortState::Detecting,
            last: None,
            counts: Default::default(),
        };
        assert_eq!(device_line(&d, now), "/dev/medimitra/vitals-cp210x-0: finding its protocol…");
        d.protocol = Some(Protocol::Cms50dLegacy);
        d.state = PortState::Connected;
        let reading = crate::core::vitals::Reading::Oximetry {
            spo2_percent: Some(97),
            pulse_bpm: None,
            pleth: 3,
            signal_strength: 5,
        };
        d.last = Some((reading, now));
        assert_eq!(
            device_line(&d, now),
            "/dev/medimitra/vitals-cp210x-0 (cms50d-legacy): connected, SpO2 97 %  pulse -- /min  signal 5/8, 0.0 s ago"
        );
        d.counts.bytes = crate::core::vitals::ByteStats { received: 1000, discarded: 900 };
        assert!(device_line(&d, now).ends_with("90 % of its bytes made no frame: the wrong device or baud rate?"));
        d.state = PortState::Unplugged;
        assert_eq!(device_line(&d, now), "/dev/medimitra/vitals-cp210x-0 (cms50d-legacy): unplugged");
    }

    #[test]
    fn the_device_test_gives_each_port_its_verdict_from_its_own_counts() {
        use crate::core::vitals::ByteStats;
        use crate::core::vitals::check::PortCounts;
        use crate::devices::{DeviceStatus, PortState};
        let now = std::time::Instant::now();
        let port = |name: &str, received: u64, readings: u64| DeviceStatus {
            port: name.into(),
            protocol: Some(Protocol::Cms50dLegacy),
            state: PortState::Connected,
            last: Some((crate::core::vitals::Reading::NoFinger, now)),
            counts: PortCounts { bytes: ByteStats { received, discarded: 0 }, readings },
        };
        assert!(device_test_lines(&[], &[]).starts_with("No vitals device to test"));
        let before = [port("/dev/a", 100, 20), port("/dev/b", 50, 10)];
        let after = [port("/dev/a", 100, 20), port("/dev/b", 550, 110), port("/dev/c", 5, 1)];
        assert_eq!(
            device_test_lines(&before, &after),
            "/dev/a: connected, no data: switch the oximeter on and put a finger in\n\
             /dev/b: working: 100 readings, latest no finger in the clip\n\
             /dev/c: working: 1 readings, latest no finger in the clip"
        );
    }

    #[test]
    fn the_patient_sees_the_oximeter_numbers_or_what_to_do_never_stale_numbers() {
        assert_eq!(oximeter_view(&[]), None);
        let scale = VitalsMessage::Vitals {
            device: Protocol::AndStandard,
            state: DeviceState::Reading,
            spo2: None,
            pulse: None,
            signal: None,
            weight_kg: Some(70.0),
        };
        assert_eq!(oximeter_view(std::slice::from_ref(&scale)), None, "a scale is not an oximeter");
        let view = |m| oximeter_view(&[scale.clone(), m]).expect("oximeter");
        let reading = view(oximeter(DeviceState::Reading, Some(97), Some(72)));
        assert_eq!(reading, OximeterView { spo2: "97".into(), pulse: "72".into(), prompt: OximeterPrompt::None });
        assert_eq!(view(oximeter(DeviceState::Reading, None, Some(72))).spo2, "--");
        let no_finger = view(oximeter(DeviceState::NoFinger, None, None));
        assert_eq!(
            no_finger,
            OximeterView { spo2: "--".into(), pulse: "--".into(), prompt: OximeterPrompt::PutFinger }
        );
        assert_eq!(view(oximeter(DeviceState::Searching, None, None)).prompt, OximeterPrompt::Searching);
        assert_eq!(view(oximeter(DeviceState::Unplugged, None, None)).prompt, OximeterPrompt::Unplugged);
    }

    #[test]
    fn quality_from_frame_rate_and_bitrate() {
        assert_eq!(quality(0.0, 0, false), 0);
        assert_eq!(quality(30.0, 1500, false), 3);
        assert_eq!(quality(30.0, 0, false), 3, "no estimate yet: judge by frames");
        assert_eq!(quality(15.0, 1500, false), 2);
        assert_eq!(quality(30.0, 300, false), 2);
        assert_eq!(quality(5.0, 1500, false), 1);
        assert_eq!(quality(30.0, 100, false), 1);
        assert_eq!(quality(30.0, 1500, true), 1);
    }

    #[test]
    fn timer_and_names() {
        assert_eq!(call_timer(0), "0:00");
        assert_eq!(call_timer(754), "12:34");
        assert_eq!(call_timer(3725), "1:02:05");
        assert_eq!(first_name("Meena Kumari"), "Meena");
        assert_eq!(first_name("  "), "");
    }

    #[test]
    fn only_todays_scheduled_appointments_check_in() {
        assert_eq!(can_check_in(AppointmentStatus::Scheduled, true), Ok(()));
        assert_eq!(can_check_in(AppointmentStatus::Scheduled, false), Err(CheckInRefusal::NotToday));
        for s in [AppointmentStatus::CheckedIn, AppointmentStatus::Completed, AppointmentStatus::Cancelled] {
            assert_eq!(can_check_in(s, true), Err(CheckInRefusal::NotScheduled));
        }
    }

    #[test]
    fn pins() {
        assert!(pin_matches("2468", "2468"));
        assert!(!pin_matches("2468", "2469"));
        assert!(!pin_matches("2468", "246"));
        assert!(!pin_matches("", ""), "an empty PIN disables the screen");
    }
}
