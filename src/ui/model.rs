//! Pure rules of the patient's screens: what a connection-quality indicator shows, how a call timer and a name are
//! written, which appointments may be checked in. No Slint, no store.

use crate::core::AppointmentStatus;

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
