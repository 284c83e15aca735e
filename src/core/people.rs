//! Who takes part: the roles of staff accounts and the few facts kept about patients.

use std::fmt;

use super::names::wire_enum;

wire_enum!(
    /// What a staff account may do. Doctors see and call their own patients; technicians manage the kiosk,
    /// its doctors and its patients.
    Role { Doctor = "doctor", Technician = "technician" }
);

impl Role {
    /// Whether an account with this role must log in with a second factor: technicians (who manage every account
    /// and patient) unless a clinic turns it off, doctors where the clinic's policy says so.
    pub fn needs_two_factor(self, for_technicians: bool, for_doctors: bool) -> bool {
        match self {
            Role::Technician => for_technicians,
            Role::Doctor => for_doctors,
        }
    }
}

wire_enum!(
    /// Sex as recorded at registration.
    Sex { Female = "female", Male = "male", Other = "other", Unknown = "unknown" }
);

wire_enum!(
    /// Languages the kiosk speaks to patients in (ISO 639-1 codes).
    Language { English = "en", Hindi = "hi", Bengali = "bn", Tamil = "ta", Telugu = "te", Marathi = "mr" }
);

/// Who made a change, as the audit log names them: a role and an account id, or the part of the kiosk that acted.
/// Never a name or an e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A logged-in staff account (API).
    Account { role: Role, id: i64 },
    /// A technician at the command line (`medimitra …` on the device).
    Cli,
    /// The patient, on the kiosk's touch screen.
    TouchScreen,
    /// The call service, following a call.
    CallService,
    /// A first-boot provisioning file.
    Provisioning,
    /// The kiosk's medical devices (a stable reading kept with an appointment).
    Devices,
    /// The kiosk's own start-up (closing what a crash left open).
    Startup,
    /// Someone not logged in (a failed login).
    Anonymous,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account { role, id } => write!(f, "{role}:{id}"),
            Self::Cli => f.write_str("cli"),
            Self::TouchScreen => f.write_str("kiosk_screen"),
            Self::CallService => f.write_str("call_service"),
            Self::Provisioning => f.write_str("provisioning"),
            Self::Devices => f.write_str("devices"),
            Self::Startup => f.write_str("startup"),
            Self::Anonymous => f.write_str("anonymous"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_refuses_unknown_values() {
        assert_eq!("technician".parse::<Role>(), Ok(Role::Technician));
        assert_eq!("hi".parse::<Language>(), Ok(Language::Hindi));
        assert_eq!("admin".parse::<Role>().unwrap_err(), "unknown role `admin` (expected one of doctor, technician)");
        assert_eq!(serde_json::to_string(&Sex::Female).unwrap(), "\"female\"");
        assert_eq!(Actor::Account { role: Role::Doctor, id: 3 }.to_string(), "doctor:3");
    }
}
