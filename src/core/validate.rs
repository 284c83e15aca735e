//! Checks on values that come from outside (API bodies, CLI arguments, provisioning files). Each failure names the
//! field so the caller can show it to a person. Values are stored verbatim once they pass: quotes, apostrophes and
//! words like `DROP TABLE` are ordinary text to us.

use chrono::{DateTime, NaiveDate, Utc};

/// One field that failed a check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_string(), message: message.into() }
    }
}

fn has_control(s: &str, allow_newlines: bool) -> bool {
    s.chars().any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\t')))
}

/// A person's name: trimmed, 1–120 characters, no control characters.
pub fn validate_name(field: &str, value: &str) -> Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if v.chars().count() > 120 {
        return Err(FieldError::new(field, "must be at most 120 characters"));
    }
    if has_control(v, false) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(v.to_string())
}

/// Free text such as a reason or notes: at most `max` characters; newlines and tabs allowed.
pub fn validate_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    if value.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    if has_control(value, true) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(value.trim().to_string())
}

/// A phone number: digits with optional leading `+`, spaces and dashes; 6–20 digits.
pub fn validate_phone(field: &str, value: &str) -> Result<String, FieldError> {
    let v = value.trim();
    let digits = v.chars().filter(|c| c.is_ascii_digit()).count();
    let shape_ok =
        v.chars().enumerate().all(|(i, c)| c.is_ascii_digit() || c == ' ' || c == '-' || (c == '+' && i == 0));
    if !shape_ok || !(6..=20).contains(&digits) {
        return Err(FieldError::new(field, "must be a phone number of 6 to 20 digits (optional leading +)"));
    }
    Ok(v.to_string())
}

/// An e-mail address used as a login name: lower-cased, one `@`, no spaces, at most 254 characters.
pub fn validate_email(field: &str, value: &str) -> Result<String, FieldError> {
    let v = value.trim().to_lowercase();
    let mut parts = v.split('@');
    let ok = match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        }
        _ => false,
    };
    if !ok || v.len() > 254 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new(field, "must be an e-mail address such as name@example.org"));
    }
    Ok(v)
}

/// A date of birth as `YYYY-MM-DD`, not in the future and not before 1900.
pub fn parse_birth_date(field: &str, value: &str, today: NaiveDate) -> Result<NaiveDate, FieldError> {
    let d = NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map_err(|_| FieldError::new(field, format!("`{value}` is not a date of the form YYYY-MM-DD")))?;
    if d > today {
        return Err(FieldError::new(field, "must not be in the future"));
    }
    if d < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN) {
        return Err(FieldError::new(field, "must not be before 1900-01-01"));
    }
    Ok(d)
}

/// An appointment's start as an RFC 3339 timestamp with offset (`2026-11-25T10:30:00+05:30`), kept in UTC.
pub fn parse_start_time(field: &str, value: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(value.trim()).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        FieldError::new(field, format!("`{value}` is not an RFC 3339 time such as 2026-11-25T10:30:00+05:30"))
    })
}

/// A new password: 10 to 128 characters, not all the same character. (Length beats composition rules.)
pub fn validate_password(value: &str) -> Result<(), FieldError> {
    let n = value.chars().count();
    if !(10..=128).contains(&n) {
        return Err(FieldError::new("password", "must be 10 to 128 characters long"));
    }
    let mut chars = value.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(FieldError::new("password", "must not repeat one character"));
    }
    Ok(())
}

/// The UTC range `[start, end)` of a calendar day (`YYYY-MM-DD`) in the kiosk's local time zone.
pub fn local_day_range(field: &str, day: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), FieldError> {
    use chrono::{Local, TimeZone};
    let bad = || FieldError::new(field, format!("`{day}` is not a date of the form YYYY-MM-DD"));
    let d = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| bad())?;
    let start = d.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
    let next = d.succ_opt().and_then(|n| n.and_hms_opt(0, 0, 0)).ok_or_else(bad)?;
    let from = Local.from_local_datetime(&start).earliest().ok_or_else(bad)?;
    let to = Local.from_local_datetime(&next).earliest().ok_or_else(bad)?;
    Ok((from.with_timezone(&Utc), to.with_timezone(&Utc)))
}

/// An appointment's length in minutes: 5 to 240.
pub fn validate_duration(field: &str, minutes: i64) -> Result<u32, FieldError> {
    if (5..=240).contains(&minutes) {
        Ok(minutes as u32)
    } else {
        Err(FieldError::new(field, "must be between 5 and 240 minutes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_quotes_and_sql_words_verbatim() {
        let n = "Robert'); DROP TABLE patients;-- \"Bobby\"";
        assert_eq!(validate_name("name", n).unwrap(), n);
        assert_eq!(validate_name("name", "  अनीता शर्मा ").unwrap(), "अनीता शर्मा");
        assert!(validate_name("name", "   ").is_err());
        assert!(validate_name("name", "a\u{0}b").is_err());
        assert!(validate_name("name", &"x".repeat(121)).is_err());
    }

    #[test]
    fn dates_and_times_are_checked() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert!(parse_birth_date("dob", "1950-02-30", today).is_err());
        assert!(parse_birth_date("dob", "2027-01-01", today).is_err());
        assert!(parse_birth_date("dob", "1899-12-31", today).is_err());
        assert_eq!(parse_birth_date("dob", "1950-02-28", today).unwrap().to_string(), "1950-02-28");
        let t = parse_start_time("start", "2026-11-25T10:30:00+05:30").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T05:00:00+00:00");
        assert!(parse_start_time("start", "2026-13-01T10:00:00Z").is_err());
        assert!(parse_start_time("start", "tomorrow").is_err());
    }

    #[test]
    fn contact_fields_are_checked() {
        assert_eq!(validate_email("email", " Dr.Rao@Clinic.IN ").unwrap(), "dr.rao@clinic.in");
        assert!(validate_email("email", "rao@clinic").is_err());
        assert!(validate_email("email", "a@b@c.in").is_err());
        assert!(validate_phone("phone", "+91 98765-43210").is_ok());
        assert!(validate_phone("phone", "12+34567").is_err());
        assert!(validate_duration("duration", 4).is_err());
        assert_eq!(validate_duration("duration", 15), Ok(15));
    }
}
