//! The SQLite store on real files: migrations, the status state machine as the database enforces it, concurrent
//! writers, backup and integrity checks.

use chrono::{Duration, TimeZone, Utc};
use medimitra::core::{AppointmentStatus, Language, Role, Sex};
use medimitra::store::{NewAppointment, NewDoctor, NewPatient, Store, StoreError};

fn seed(store: &Store) -> (i64, i64) {
    let now = Utc::now();
    store
        .write_blocking(|db| {
            let d = db.add_doctor(
                &NewDoctor {
                    name: "Dr. Asha Rao".into(),
                    specialty: "GP".into(),
                    email: "asha@clinic.in".into(),
                    password_hash: "x".into(),
                    role: Role::Doctor,
                },
                now,
            )?;
            let p = db.add_patient(
                &NewPatient {
                    name: "Meena".into(),
                    date_of_birth: None,
                    sex: Sex::Female,
                    phone: None,
                    preferred_language: Language::Hindi,
                },
                now,
            )?;
            Ok((d.id, p.id))
        })
        .unwrap()
}

fn book(store: &Store, doctor: i64, patient: i64, slot: i64) -> i64 {
    let start = Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap() + Duration::minutes(15 * slot);
    store
        .write_blocking(|db| {
            db.add_appointment(
                &NewAppointment {
                    patient_id: patient,
                    doctor_id: doctor,
                    starts_at: start,
                    duration_minutes: 15,
                    reason: String::new(),
                },
                Utc::now(),
            )
        })
        .unwrap()
        .id
}

#[test]
fn migrations_run_on_an_empty_file_and_again_on_an_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), 2);
    let (d, p) = seed(&store);
    book(&store, d, p, 0);
    let mode: String =
        rusqlite::Connection::open(store.path()).unwrap().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    drop(store);

    let again = Store::open_in(dir.path()).unwrap();
    assert_eq!(again.schema_version().unwrap(), 2);
    let counts = again.read_blocking(|db| db.table_counts()).unwrap();
    assert!(counts.contains(&("appointments".to_string(), 1)), "{counts:?}");
    assert!(again.check().unwrap().is_empty());
}

#[test]
fn a_database_from_a_newer_version_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open_in(dir.path()).unwrap());
    let path = dir.path().join(medimitra::store::DB_FILE);
    rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    match Store::open(&path) {
        Err(StoreError::TooNew { found: 99, .. }) => {}
        other => panic!("expected TooNew, got {:?}", other.map(|_| ())),
    }
}

/// The shortest allowed path from `scheduled` to each status.
fn path_to(status: AppointmentStatus) -> &'static [AppointmentStatus] {
    use AppointmentStatus::*;
    match status {
        Scheduled => &[],
        CheckedIn => &[CheckedIn],
        InCall => &[CheckedIn, InCall],
        Completed => &[CheckedIn, InCall, Completed],
        Cancelled => &[Cancelled],
        NoShow => &[NoShow],
    }
}

#[test]
fn every_status_change_is_allowed_or_refused_as_the_rules_say() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let (d, p) = seed(&store);
    let mut slot = 0;
    let mut allowed = 0;
    for from in AppointmentStatus::ALL {
        for to in AppointmentStatus::ALL {
            let id = book(&store, d, p, slot);
            slot += 1;
            for step in path_to(from) {
                store.write_blocking(|db| db.set_appointment_status(id, *step, Utc::now())).unwrap();
            }
            let result = store.write_blocking(|db| db.set_appointment_status(id, to, Utc::now()));
            let now_status = store.read_blocking(|db| db.appointment(id)).unwrap().status;
            if from.can_become(to) {
                assert_eq!(result.unwrap().status, to, "{from} -> {to}");
                assert_eq!(now_status, to);
                allowed += 1;
            } else {
                assert!(matches!(result, Err(StoreError::Transition(_))), "{from} -> {to} should be refused");
                assert_eq!(now_status, from, "a refused change must leave {from} as it was");
            }
        }
    }
    assert_eq!(allowed, 8);
}

#[test]
fn eight_writers_doing_500_operations_each_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let (d, p) = seed(&store);
    let shared = book(&store, d, p, 0);
    let path = store.path().to_path_buf();
    // Each writer has its own Store (its own connections), as separate processes would: the worst case for locking.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = Store::open(&path).unwrap();
                for i in 0..500 {
                    // Read-modify-write of one shared row, plus an insert: a lost update would drop a note line.
                    store
                        .write_blocking(|db| {
                            db.add_note(shared, &format!("w{w}"), &format!("op {i}"), Utc::now())?;
                            db.audit(&format!("w{w}"), "op", "", &i.to_string(), Utc::now())
                        })
                        .map_err(|e| format!("writer {w} op {i}: {e}"))?;
                    if i % 50 == 0 {
                        store.read_blocking(|db| db.appointment(shared)).map_err(|e| format!("reader {w}: {e}"))?;
                    }
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap().unwrap();
    }
    let notes = store.read_blocking(|db| db.appointment(shared)).unwrap().notes;
    assert_eq!(notes.lines().count(), 4000);
    for w in 0..8 {
        assert_eq!(notes.lines().filter(|l| l.contains(&format!(" w{w}] "))).count(), 500, "writer {w}");
    }
    let counts = store.read_blocking(|db| db.table_counts()).unwrap();
    assert!(counts.contains(&("audit_log".to_string(), 4000)), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_async_tasks_share_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let (d, p) = seed(&store);
    let shared = book(&store, d, p, 0);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..500 {
                    store
                        .write(move |db| db.add_note(shared, &format!("t{w}"), &i.to_string(), Utc::now()).map(|_| ()))
                        .await?;
                }
                Ok::<(), StoreError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let notes = store.read(move |db| db.appointment(shared)).await.unwrap().notes;
    assert_eq!(notes.lines().count(), 4000);
}

#[test]
fn call_records_open_and_close_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let (d, p) = seed(&store);
    let a = book(&store, d, p, 0);
    let id = store.write_blocking(|db| db.open_call_record(a, Utc::now())).unwrap();
    store.write_blocking(|db| db.close_call_record(id, "doctor_ended", Some(r#"{"rttMs":40}"#), Utc::now())).unwrap();
    assert!(matches!(
        store.write_blocking(|db| db.close_call_record(id, "again", None, Utc::now())),
        Err(StoreError::NotFound(_))
    ));
    let records = store.read_blocking(|db| db.call_records(a)).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].end_reason.as_deref(), Some("doctor_ended"));
    assert!(matches!(store.write_blocking(|db| db.open_call_record(9999, Utc::now())), Err(StoreError::NotFound(_))));
}

#[test]
fn calls_interrupted_by_a_restart_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let (d, p) = seed(&store);
    let a = book(&store, d, p, 0);
    let other = book(&store, d, p, 1);
    for st in [AppointmentStatus::CheckedIn, AppointmentStatus::InCall] {
        store.write_blocking(|db| db.set_appointment_status(a, st, Utc::now())).unwrap();
    }
    let rec = store.write_blocking(|db| db.open_call_record(a, Utc::now())).unwrap();
    assert_eq!(store.write_blocking(|db| db.recover_interrupted_calls(Utc::now())).unwrap(), 1);
    assert_eq!(store.read_blocking(|db| db.appointment(a)).unwrap().status, AppointmentStatus::CheckedIn);
    assert_eq!(store.read_blocking(|db| db.appointment(other)).unwrap().status, AppointmentStatus::Scheduled);
    let records = store.read_blocking(|db| db.call_records(a)).unwrap();
    assert_eq!((records[0].id, records[0].end_reason.as_deref()), (rec, Some("kiosk_restarted")));
    assert_eq!(store.write_blocking(|db| db.recover_interrupted_calls(Utc::now())).unwrap(), 0);
}

#[test]
fn online_backup_is_a_complete_consistent_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let (d, p) = seed(&store);
    for slot in 0..20 {
        book(&store, d, p, slot);
    }
    let dest = dir.path().join("backup.sqlite3");
    store.backup_to(&dest).unwrap();
    let copy = Store::open(&dest).unwrap();
    assert!(copy.check().unwrap().is_empty());
    assert_eq!(
        copy.read_blocking(|db| db.table_counts()).unwrap(),
        store.read_blocking(|db| db.table_counts()).unwrap()
    );
}
