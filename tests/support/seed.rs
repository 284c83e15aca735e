//! The people and appointments a test kiosk starts with.

use chrono::{Local, TimeZone, Utc};
use medimitra::core::{Actor, AppointmentStatus, Language, Role, Sex};
use medimitra::store::{Account, NewAccount, NewAppointment, NewPatient, Store};

/// The accounts and the patient every test kiosk has.
pub struct People {
    pub asha: Account,
    pub vikram: Account,
    pub patient: i64,
}

/// Two doctors (asha@clinic.in, vikram@clinic.in, both with `password_hash`) and the patient Meena Kumari.
pub fn seed_people(store: &Store, password_hash: &str) -> People {
    let now = Utc::now();
    store
        .write_blocking(|db| {
            let mk = |name: &str, email: &str| NewAccount {
                name: name.into(),
                specialty: "GP".into(),
                email: email.into(),
                password_hash: password_hash.into(),
                role: Role::Doctor,
            };
            let asha = db.add_account(&mk("Dr. Asha Rao", "asha@clinic.in"), Actor::Cli, now)?;
            let vikram = db.add_account(&mk("Dr. Vikram Sen", "vikram@clinic.in"), Actor::Cli, now)?;
            let patient = db
                .add_patient(
                    &NewPatient {
                        name: "Meena Kumari".into(),
                        date_of_birth: None,
                        sex: Sex::Female,
                        phone: None,
                        preferred_language: Language::Hindi,
                    },
                    Actor::Cli,
                    now,
                )?
                .id;
            Ok(People { asha, vikram, patient })
        })
        .expect("seed")
}

/// An appointment `days` from today at `minutes` past local midnight, moved to `status` (from scheduled).
pub fn appointment(
    store: &Store,
    patient: i64,
    doctor: i64,
    days: i64,
    minutes: i64,
    status: AppointmentStatus,
) -> i64 {
    let midnight = Local::now().date_naive().and_hms_opt(0, 0, 0).expect("midnight") + chrono::Duration::days(days);
    let start = Local.from_local_datetime(&midnight).earliest().expect("local").with_timezone(&Utc)
        + chrono::Duration::minutes(minutes);
    let new = NewAppointment {
        patient_id: patient,
        doctor_id: doctor,
        starts_at: start,
        duration_minutes: 5,
        reason: "fever".into(),
    };
    store
        .write_blocking(|db| {
            let a = db.add_appointment(&new, Actor::Cli, Utc::now())?;
            if status != AppointmentStatus::Scheduled {
                db.set_appointment_status(a.id, status, Actor::Cli, Utc::now())?;
            }
            Ok(a.id)
        })
        .expect("appointment")
}
