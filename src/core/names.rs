//! One mapping between the kiosk's domain enums and the words that stand for them outside the program: JSON on the
//! API and the signaling socket, the control socket, database columns, audit entries, the CLI. Every such enum is
//! declared with [`wire_enum!`], which gives it `as_str`, `Display`, `FromStr`, serde and `ALL` from the one list of
//! names written next to its variants. Nothing else turns these values into text or back.

/// Declares an enum whose variants each stand for one fixed word on the wire.
///
/// ```ignore
/// wire_enum!(
///     /// What a staff account may do.
///     Role { Doctor = "doctor", Technician = "technician" }
/// );
/// ```
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word that stands for this value outside the program.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!(
                        "unknown {} `{}` (expected one of {})",
                        $crate::core::names::words_of(stringify!($name)),
                        s,
                        names.join(", ")
                    )
                })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use wire_enum;

/// `AppointmentStatus` → `appointment status`: how an enum's name reads in an error message.
pub fn words_of(type_name: &str) -> String {
    let mut out = String::new();
    for (i, c) in type_name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    wire_enum!(
        /// A test enum.
        Colour {
            /// Documented variant.
            DeepRed = "deep_red",
            Blue = "blue",
        }
    );

    #[test]
    fn one_list_gives_text_parsing_and_serde() {
        assert_eq!(Colour::DeepRed.as_str(), "deep_red");
        assert_eq!(Colour::Blue.to_string(), "blue");
        assert_eq!("deep_red".parse::<Colour>(), Ok(Colour::DeepRed));
        assert_eq!("red".parse::<Colour>().unwrap_err(), "unknown colour `red` (expected one of deep_red, blue)");
        assert_eq!(serde_json::to_string(&Colour::DeepRed).unwrap(), "\"deep_red\"");
        assert_eq!(serde_json::from_str::<Colour>("\"blue\"").unwrap(), Colour::Blue);
        assert!(serde_json::from_str::<Colour>("\"green\"").is_err());
        assert_eq!(super::words_of("AppointmentStatus"), "appointment status");
    }
}
