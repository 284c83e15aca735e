//! The pure core: domain types and the rules that govern them. Nothing here touches a socket, a file or a database,
//! so every rule is unit-tested on its own and every edge (HTTP, CLI, touch UI) applies the same rules.

mod appointment;
pub mod call;
pub mod media_rules;
mod people;
pub mod protocol;
mod validate;

pub use appointment::{AppointmentStatus, TransitionError, overlaps};
pub use people::{Language, Role, Sex};
pub use validate::{
    FieldError, local_day_range, parse_birth_date, parse_start_time, validate_duration, validate_email, validate_name,
    validate_password, validate_phone, validate_text,
};
