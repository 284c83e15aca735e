//! Check-in: today's scheduled appointments (first name and time only) or the appointment number on a keypad, then
//! "Is this you?", then waiting. Reads and the check-in itself run off the UI thread through the store; the check-in
//! is the store's audited status change, by the touch screen.

use chrono::{DateTime, Local, Utc};
use slint::{ComponentHandle, ModelRc, SharedString, VecModel};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::super::{CheckInAdapter, Problem, Screen, Screens, Slot, model};
use crate::core::{Actor, AppointmentStatus};
use crate::store::{Appointment, AppointmentFilter, Store, StoreError};

/// The appointment the patient chose, until they confirm it.
#[derive(Debug, Clone)]
struct Pending {
    id: i64,
    doctor: String,
    time: String,
}

#[derive(Default)]
pub(crate) struct CheckIn {
    pending: RefCell<Option<Pending>>,
    /// Bumped when the patient leaves: results of store work started for them are dropped.
    generation: Cell<u64>,
}

impl CheckIn {
    pub(crate) fn forget(&self) {
        *self.pending.borrow_mut() = None;
        self.generation.set(self.generation.get() + 1);
    }
}

pub(crate) fn wire(s: &Rc<Screens>) {
    let g = s.window.global::<CheckInAdapter>();
    let weak = Rc::downgrade(s);
    g.on_start_checkin(move || {
        let Some(s) = weak.upgrade() else { return };
        let g = s.window.global::<CheckInAdapter>();
        g.set_problem(Problem::None);
        g.set_code(SharedString::new());
        s.show(Screen::Checkin);
        let store = s.ctx.store.clone();
        let generation = s.checkin.generation.get();
        s.off_thread(todays_appointments(store), move |s, found| {
            if s.checkin.generation.get() != generation {
                return;
            }
            let g = s.window.global::<CheckInAdapter>();
            match found {
                Ok(list) => g.set_slots(ModelRc::new(VecModel::from(slots(list)))),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read today's appointments");
                    g.set_problem(Problem::Store);
                }
            }
        });
    });
    let weak = Rc::downgrade(s);
    g.on_choose_slot(move |id| {
        if let Some(s) = weak.upgrade() {
            propose(&s, i64::from(id));
        }
    });
    let weak = Rc::downgrade(s);
    g.on_submit_code(move |code| {
        let Some(s) = weak.upgrade() else { return };
        s.touched();
        match code.trim().parse::<i64>() {
            Ok(id) if id > 0 => propose(&s, id),
            _ => s.window.global::<CheckInAdapter>().set_problem(Problem::CodeNotFound),
        }
    });
    let weak = Rc::downgrade(s);
    g.on_confirm_yes(move || {
        let Some(s) = weak.upgrade() else { return };
        let Some(p) = s.checkin.pending.borrow().clone() else { return };
        let store = s.ctx.store.clone();
        let generation = s.checkin.generation.get();
        let id = p.id;
        let check_in = async move {
            store
                .write(move |db| {
                    db.set_appointment_status(id, AppointmentStatus::CheckedIn, Actor::TouchScreen, Utc::now())
                })
                .await
        };
        s.off_thread(check_in, move |s, done| {
            if s.checkin.generation.get() != generation {
                return;
            }
            let g = s.window.global::<CheckInAdapter>();
            match done {
                Ok(_) => {
                    tracing::info!(appointment = id, "patient checked in at the kiosk");
                    g.set_doctor_name(p.doctor.as_str().into());
                    g.set_appointment_time(p.time.as_str().into());
                    s.show(Screen::Waiting);
                }
                Err(e) => {
                    tracing::warn!(appointment = id, error = %e, "check-in refused");
                    g.set_problem(Problem::NotToday);
                    s.show(Screen::Checkin);
                }
            }
        });
    });
}

async fn todays_appointments(store: Store) -> Result<Vec<Appointment>, StoreError> {
    let day = Local::now().date_naive().format("%Y-%m-%d").to_string();
    let (from, to) = crate::core::local_day_range("day", &day)?;
    let filter = AppointmentFilter {
        doctor_id: None,
        patient_id: None,
        from: Some(from),
        to: Some(to),
        status: Some(AppointmentStatus::Scheduled),
        limit: 40,
        offset: 0,
    };
    store.read(move |db| db.list_appointments(&filter)).await
}

fn local_time(rfc3339: &str) -> Option<DateTime<Local>> {
    DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.with_timezone(&Local))
}

fn slots(list: Vec<Appointment>) -> Vec<Slot> {
    list.into_iter()
        .filter_map(|a| {
            let t = local_time(&a.starts_at)?;
            Some(Slot {
                id: i32::try_from(a.id).ok()?,
                first_name: model::first_name(&a.patient_name).into(),
                time: t.format("%H:%M").to_string().into(),
            })
        })
        .collect()
}

/// Shows the confirmation for appointment `id`, or says why it cannot be checked in.
fn propose(s: &Screens, id: i64) {
    s.touched();
    let store = s.ctx.store.clone();
    let generation = s.checkin.generation.get();
    s.off_thread(async move { store.read(move |db| db.appointment(id)).await }, move |s, found| {
        if s.checkin.generation.get() != generation {
            return;
        }
        let g = s.window.global::<CheckInAdapter>();
        let Ok(a) = found else {
            g.set_problem(Problem::CodeNotFound);
            return;
        };
        let start = local_time(&a.starts_at);
        let is_today = start.is_some_and(|t| t.date_naive() == Local::now().date_naive());
        if model::can_check_in(a.status, is_today).is_err() {
            g.set_problem(Problem::NotToday);
            return;
        }
        let p = Pending {
            id,
            doctor: a.doctor_name,
            time: start.map(|t| t.format("%H:%M").to_string()).unwrap_or_default(),
        };
        g.set_problem(Problem::None);
        g.set_confirm_name(model::first_name(&a.patient_name).into());
        g.set_confirm_time(p.time.as_str().into());
        g.set_doctor_name(p.doctor.as_str().into());
        *s.checkin.pending.borrow_mut() = Some(p);
        s.show(Screen::Confirm);
    });
}
