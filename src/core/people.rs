//! Who takes part: the roles of staff accounts and the few facts kept about patients.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text),+ } }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.pad(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown {} `{}` (expected one of {})", stringify!($name).to_lowercase(), s, names.join(", "))
                })
            }
        }
    };
}

string_enum!(
    /// What a staff account may do. Doctors see and call their own patients; technicians manage the kiosk,
    /// its doctors and its patients.
    Role { Doctor = "doctor", Technician = "technician" }
);

string_enum!(
    /// Sex as recorded at registration.
    Sex { Female = "female", Male = "male", Other = "other", Unknown = "unknown" }
);

string_enum!(
    /// Languages the kiosk speaks to patients in (ISO 639-1 codes).
    Language { English = "en", Hindi = "hi", Bengali = "bn", Tamil = "ta", Telugu = "te", Marathi = "mr" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_refuses_unknown_values() {
        assert_eq!("technician".parse::<Role>(), Ok(Role::Technician));
        assert_eq!("hi".parse::<Language>(), Ok(Language::Hindi));
        assert_eq!("admin".parse::<Role>().unwrap_err(), "unknown role `admin` (expected one of doctor, technician)");
        assert_eq!(serde_json::to_string(&Sex::Female).unwrap(), "\"female\"");
    }
}
