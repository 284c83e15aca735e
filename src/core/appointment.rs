//! Appointment status and its state machine.
//!
//! `scheduled → checked_in → in_call → completed`, plus `scheduled | checked_in → cancelled | no_show`.
//! A failed call returns the appointment from `in_call` to `checked_in` so the doctor can call again.

use chrono::{DateTime, Duration, Utc};

use super::names::wire_enum;

wire_enum!(
    /// Where an appointment is in its life.
    AppointmentStatus {
        /// Booked; the patient has not arrived yet.
        Scheduled = "scheduled",
        /// The patient checked in at the kiosk and is waiting.
        CheckedIn = "checked_in",
        /// A call between doctor and patient is running.
        InCall = "in_call",
        /// The consultation took place. Final.
        Completed = "completed",
        /// Called off before it took place. Final.
        Cancelled = "cancelled",
        /// The patient did not come. Final.
        NoShow = "no_show",
    }
);

/// A status change the rules do not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an appointment that is {from} cannot become {to}")]
pub struct TransitionError {
    pub from: AppointmentStatus,
    pub to: AppointmentStatus,
}

impl AppointmentStatus {
    /// True when no further change is possible.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled | Self::NoShow)
    }

    /// Whether the state machine allows `self → to`.
    pub fn can_become(self, to: AppointmentStatus) -> bool {
        use AppointmentStatus::*;
        matches!(
            (self, to),
            (Scheduled, CheckedIn)
                | (CheckedIn, InCall)
                | (InCall, Completed)
                | (InCall, CheckedIn)
                | (Scheduled | CheckedIn, Cancelled | NoShow)
        )
    }

    /// The checked form of [`can_become`](Self::can_become).
    pub fn transition(self, to: AppointmentStatus) -> Result<AppointmentStatus, TransitionError> {
        if self.can_become(to) { Ok(to) } else { Err(TransitionError { from: self, to }) }
    }
}

/// Whether two appointments of one doctor overlap in time (half-open intervals: back-to-back is fine).
pub fn overlaps(a_start: DateTime<Utc>, a_minutes: u32, b_start: DateTime<Utc>, b_minutes: u32) -> bool {
    let a_end = a_start + Duration::minutes(i64::from(a_minutes));
    let b_end = b_start + Duration::minutes(i64::from(b_minutes));
    a_start < b_end && b_start < a_end
}

#[cfg(test)]
mod tests {
    use super::AppointmentStatus::{self, *};

    const ALLOWED: [(AppointmentStatus, AppointmentStatus); 8] = [
        (Scheduled, CheckedIn),
        (CheckedIn, InCall),
        (InCall, Completed),
        (InCall, CheckedIn),
        (Scheduled, Cancelled),
        (Scheduled, NoShow),
        (CheckedIn, Cancelled),
        (CheckedIn, NoShow),
    ];

    #[test]
    fn exactly_the_documented_transitions_are_allowed() {
        for &from in AppointmentStatus::ALL {
            for &to in AppointmentStatus::ALL {
                let expected = ALLOWED.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from} -> {to}");
                assert_eq!(from.transition(to).is_ok(), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn final_states_allow_nothing() {
        for &from in AppointmentStatus::ALL.iter().filter(|s| s.is_final()) {
            assert!(AppointmentStatus::ALL.iter().all(|&to| !from.can_become(to)));
        }
    }

    #[test]
    fn names_round_trip_through_str_and_json() {
        for &st in AppointmentStatus::ALL {
            assert_eq!(st.as_str().parse::<AppointmentStatus>(), Ok(st));
            assert_eq!(serde_json::to_string(&st).unwrap(), format!("\"{}\"", st.as_str()));
        }
        assert!("done".parse::<AppointmentStatus>().is_err());
    }

    #[test]
    fn overlap_is_half_open() {
        let t = |h: u32, m: u32| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 25, h, m, 0).unwrap();
        assert!(super::overlaps(t(10, 0), 30, t(10, 15), 15));
        assert!(super::overlaps(t(10, 15), 5, t(10, 0), 30));
        assert!(!super::overlaps(t(10, 0), 30, t(10, 30), 15));
        assert!(!super::overlaps(t(10, 30), 15, t(10, 0), 30));
    }

    #[test]
    fn refused_transition_names_both_states() {
        let err = Completed.transition(Scheduled).unwrap_err();
        assert_eq!(err.to_string(), "an appointment that is completed cannot become scheduled");
    }
}
