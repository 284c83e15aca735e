//! The SQLite store on real files: migrations, the status state machine as the database enforces it, concurrent
//! writers, backup and integrity checks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone, Utc};
use medimitra::core::{Actor, AppointmentStatus, EndReason, Language, Role, Sex};
use medimitra::store::{NewAccount, NewAppointment, NewPatient, Store, StoreError};

fn seed(store: &Store) -> (i64, i64) {
    let now = Utc::now();
    store
        .write_blocking(|db| {
            let d = db.add_account(
                &NewAccount {
                    name: "Dr. Asha Rao".into(),
                    specialty: "GP".into(),
                    email: "asha@clinic.in".into(),
                    password_hash: "x".into(),
                    role: Role::Doctor,
                },
                Actor::Cli,
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
                Actor::Cli,
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
                Actor::Cli,
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
    assert_eq!(store.schema_version().unwrap(), 7);
    let (d, p) = seed(&store);
    book(&store, d, p, 0);
    let mode: String =
        rusqlite::Connection::open(store.path()).unwrap().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    drop(store);

    let again = Store::open_in(dir.path()).unwrap();
    assert_eq!(again.schema_version().unwrap(), 7);
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
    for &from in AppointmentStatus::ALL {
        for &to in AppointmentStatus::ALL {
            let id = book(&store, d, p, slot);
            slot += 1;
            for step in path_to(from) {
                store.write_blocking(|db| db.set_appointment_status(id, *step, Actor::Cli, Utc::now())).unwrap();
            }
            let result = store.write_blocking(|db| db.set_appointment_status(id, to, Actor::Cli, Utc::now()));
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
                            db.add_note(shared, &format!("w{w}"), &format!("op {i}"), Actor::Cli, Utc::now())
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
    // One audit entry per note, written in the note's own transaction (plus the seed's three).
    assert!(counts.contains(&("audit_log".to_string(), 4003)), "{counts:?}");
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
                        .write(move |db| {
                            db.add_note(shared, &format!("t{w}"), &i.to_string(), Actor::Cli, Utc::now()).map(|_| ())
                        })
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
    store
        .write_blocking(|db| db.close_call_record(id, EndReason::DoctorEnded, Some(r#"{"rttMs":40}"#), Utc::now()))
        .unwrap();
    assert!(matches!(
        store.write_blocking(|db| db.close_call_record(id, EndReason::PatientEnded, None, Utc::now())),
        Err(StoreError::NotFound(_))
    ));
    let records = store.read_blocking(|db| db.call_records(a)).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].end_reason, Some(EndReason::DoctorEnded));
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
        store.write_blocking(|db| db.set_appointment_status(a, st, Actor::Cli, Utc::now())).unwrap();
    }
    let rec = store.write_blocking(|db| db.open_call_record(a, Utc::now())).unwrap();
    assert_eq!(store.write_blocking(|db| db.recover_interrupted_calls(Utc::now())).unwrap(), 1);
    assert_eq!(store.read_blocking(|db| db.appointment(a)).unwrap().status, AppointmentStatus::CheckedIn);
    assert_eq!(store.read_blocking(|db| db.appointment(other)).unwrap().status, AppointmentStatus::Scheduled);
    let records = store.read_blocking(|db| db.call_records(a)).unwrap();
    assert_eq!((records[0].id, records[0].end_reason), (rec, Some(EndReason::KioskRestarted)));
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
    // The copy itself, read-only and without the store's migrations (which would make an empty file look right).
    let copy = rusqlite::Connection::open_with_flags(&dest, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let version: i64 = copy.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, store.schema_version().unwrap());
    let live = store.read_blocking(|db| db.table_counts()).unwrap();
    for (table, rows) in &live {
        let n: i64 = copy.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap();
        assert_eq!(n, *rows, "{table} in the copy");
    }
    assert!(live.contains(&("appointments".to_string(), 20)));
}

#[test]
fn a_version_2_database_becomes_version_3_with_its_accounts_and_sessions_kept() {
    // Before version 3 the staff accounts were in `doctors` and sessions pointed at `doctor_id`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(medimitra::store::DB_FILE);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE doctors (id INTEGER PRIMARY KEY, name TEXT NOT NULL, specialty TEXT NOT NULL DEFAULT '', \
             email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, role TEXT NOT NULL CHECK (role IN ('doctor', \
             'technician')), active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)), created_at TEXT NOT NULL, \
             must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)));
             CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT NOT NULL, date_of_birth TEXT, sex TEXT NOT NULL \
             CHECK (sex IN ('female', 'male', 'other', 'unknown')), phone TEXT, language TEXT NOT NULL, \
             created_at TEXT NOT NULL);
             CREATE TABLE appointments (id INTEGER PRIMARY KEY, patient_id INTEGER NOT NULL REFERENCES patients(id), \
             doctor_id INTEGER NOT NULL REFERENCES doctors(id), starts_at TEXT NOT NULL, duration_minutes INTEGER \
             NOT NULL CHECK (duration_minutes BETWEEN 5 AND 240), reason TEXT NOT NULL DEFAULT '', status TEXT NOT \
             NULL CHECK (status IN ('scheduled', 'checked_in', 'in_call', 'completed', 'cancelled', 'no_show')), \
             notes TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
             CREATE INDEX appointments_by_doctor_and_start ON appointments (doctor_id, starts_at);
             CREATE INDEX appointments_by_start ON appointments (starts_at);
             CREATE TABLE call_records (id INTEGER PRIMARY KEY, appointment_id INTEGER NOT NULL REFERENCES \
             appointments(id), started_at TEXT NOT NULL, ended_at TEXT, end_reason TEXT, quality_summary TEXT);
             CREATE INDEX call_records_by_appointment ON call_records (appointment_id);
             CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, doctor_id INTEGER NOT NULL REFERENCES doctors(id), \
             created_at TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT);
             CREATE INDEX sessions_by_doctor ON sessions (doctor_id);
             CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT \
             NULL, target TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '');
             INSERT INTO doctors VALUES (1, 'Dr. Asha Rao', 'GP', 'asha@clinic.in', 'h', 'doctor', 1, \
             '2026-11-01T00:00:00Z', 0), (2, 'Tara', '', 'tara@clinic.in', 'h', 'technician', 1, \
             '2026-11-01T00:00:00Z', 1);
             INSERT INTO patients VALUES (1, 'Meena', NULL, 'female', NULL, 'hi', '2026-11-01T00:00:00Z');
             INSERT INTO appointments VALUES (1, 1, 1, '2026-11-25T03:00:00Z', 15, '', 'scheduled', '', \
             '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z'), (2, 1, 1, '2026-11-25T04:00:00Z', 15, '', 'in_call', \
             '[2026-11-25T04:01:00Z Dr. Asha Rao] BP high', '2026-11-01T00:00:00Z', '2026-11-25T04:02:00Z');
             INSERT INTO audit_log (at, actor, action, target, detail) VALUES \
             ('2026-11-25T03:55:00Z', 'touch_screen', 'appointment_status', 'appointment:2', 'scheduled -> checked_in'), \
             ('2026-11-25T04:02:00Z', 'call_service', 'appointment_status', 'appointment:2', 'checked_in -> in_call');
             INSERT INTO sessions VALUES ('abc', 1, '2026-11-01T00:00:00Z', '2999-01-01T00:00:00Z', NULL);
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 7);
    assert!(store.check().unwrap().is_empty(), "foreign keys follow the renamed table");
    let accounts = store.read_blocking(|db| db.list_accounts(None)).unwrap();
    assert_eq!(accounts.iter().map(|a| (a.id, a.role)).collect::<Vec<_>>(), [(1, Role::Doctor), (2, Role::Technician)]);
    assert!(accounts[1].must_change_password);
    let session = store.read_blocking(|db| db.session_account("abc", Utc::now())).unwrap();
    assert_eq!(session.map(|a| a.email), Some("asha@clinic.in".to_string()));
    assert_eq!(store.read_blocking(|db| db.appointment(1)).unwrap().doctor_name, "Dr. Asha Rao");
    // Version 6: when a patient checked in, from the audit log for appointments from before it.
    assert_eq!(store.read_blocking(|db| db.appointment(1)).unwrap().checked_in_at, None);
    assert_eq!(
        store.read_blocking(|db| db.appointment(2)).unwrap().checked_in_at.as_deref(),
        Some("2026-11-25T03:55:00Z")
    );
    // Version 7: a note written before revisions were kept is revision 1 of the visit note; none, none.
    let (one, two) = store.read_blocking(|db| Ok((db.appointment(1)?, db.appointment(2)?))).unwrap();
    assert_eq!((one.note_revision, two.note_revision), (0, 1));
    let kept = store.read_blocking(|db| db.note_revisions(2)).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].text.as_str(), kept[0].saved_at.as_str()), (two.notes.as_str(), "2026-11-25T04:02:00Z"));
}

#[test]
fn the_check_in_time_is_kept_through_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let (doctor, patient) = seed(&store);
    let a = book(&store, doctor, patient, 0);
    assert_eq!(store.read_blocking(|db| db.appointment(a)).unwrap().checked_in_at, None);
    let at = Utc::now();
    let checked = store.write_blocking(|db| db.set_appointment_status(a, AppointmentStatus::CheckedIn, Actor::Cli, at));
    let stamp = checked.unwrap().checked_in_at.expect("stamped");
    let later = at + Duration::minutes(6);
    let in_call = store
        .write_blocking(|db| db.set_appointment_status(a, AppointmentStatus::InCall, Actor::CallService, later))
        .unwrap();
    assert_eq!(in_call.checked_in_at, Some(stamp), "the call does not move it");
}

#[test]
fn every_change_writes_one_audit_entry_with_its_actor() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let (d, p) = seed(&store);
    let a = book(&store, d, p, 0);
    store
        .write_blocking(|db| {
            db.set_appointment_status(a, AppointmentStatus::CheckedIn, Actor::TouchScreen, Utc::now())?;
            db.set_appointment_status(a, AppointmentStatus::InCall, Actor::CallService, Utc::now())
        })
        .unwrap();
    // A refused change writes nothing, its audit entry included.
    let refused =
        store.write_blocking(|db| db.set_appointment_status(a, AppointmentStatus::Scheduled, Actor::Cli, Utc::now()));
    assert!(refused.is_err());
    let entries = store.read_blocking(|db| db.recent_audit(2)).unwrap();
    let seen: Vec<_> = entries.iter().map(|e| (e.actor.as_str(), e.action.as_str(), e.detail.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("call_service", "appointment_status", "checked_in -> in_call"),
            ("kiosk_screen", "appointment_status", "scheduled -> checked_in")
        ]
    );
    assert_eq!(entries[0].target, format!("appointment:{a}"));
}

#[test]
fn a_backup_finishes_while_writes_go_on() {
    // Before: SQLite's page-by-page online backup started over after each write by another connection, and with a
    // writer committing continuously it never finished (the test's writer gave up first).
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    // Over 1 MB, so the online backup needed several steps (a write between two restarted it).
    store
        .write_blocking(|db| {
            (0..8000).try_for_each(|i| db.add_patient(&patient(i), Actor::Cli, Utc::now()).map(|_| ()))
        })
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let mut writes = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && std::time::Instant::now() < deadline {
                let p = patient(100_000 + writes);
                store.write_blocking(|db| db.add_patient(&p, Actor::Cli, Utc::now())).unwrap();
                writes += 1;
            }
            (writes, std::time::Instant::now() < deadline)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let dest = dir.path().join("busy-backup.sqlite3");
    store.backup_to(&dest).unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (writes, writer_still_going) = writer.join().unwrap();
    assert!(writer_still_going, "the backup finished only after the writer gave up ({writes} writes)");
    assert!(writes > 10, "the writer wrote during the backup ({writes})");
    let copy = rusqlite::Connection::open_with_flags(&dest, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let n: i64 = copy.query_row("SELECT COUNT(*) FROM patients", [], |r| r.get(0)).unwrap();
    assert!(n >= 8000, "the copy holds the patients added before it started ({n})");
    // And a second backup to the same name is refused, leaving the first one as it was.
    let err = store.backup_to(&dest).unwrap_err();
    assert!(err.to_string().contains("exists already"), "{err}");
    assert_eq!(copy.query_row("SELECT COUNT(*) FROM patients", [], |r| r.get::<_, i64>(0)).unwrap(), n);
}

fn patient(i: u64) -> NewPatient {
    NewPatient {
        name: format!("Patient number {i} with a name long enough to fill pages"),
        date_of_birth: None,
        sex: Sex::Unknown,
        phone: Some(format!("+91 98{i:08}")),
        preferred_language: Language::English,
    }
}

#[test]
fn device_readings_are_kept_with_the_patient_at_the_kiosk_and_read_back_in_order() {
    use medimitra::core::vitals::Protocol;
    use medimitra::core::vitals::observation::{Observation, ObservationKind, owner};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in(dir.path()).unwrap();
    let (d, p) = seed(&store);
    let (first, second) = (book(&store, d, p, 0), book(&store, d, p, 1));
    let now = Utc::now();
    let status = |id, s| store.write_blocking(|db| db.set_appointment_status(id, s, Actor::Cli, now)).unwrap();
    let at_kiosk = || store.read_blocking(|db| db.patients_at_the_kiosk(Utc::now())).unwrap();
    assert_eq!(at_kiosk(), (None, vec![]));
    status(first, AppointmentStatus::CheckedIn);
    assert_eq!(owner(at_kiosk().0, &at_kiosk().1), Some(first));
    status(second, AppointmentStatus::CheckedIn);
    assert_eq!(owner(at_kiosk().0, &at_kiosk().1), None, "two patients waiting: nobody's reading");
    status(second, AppointmentStatus::InCall);
    assert_eq!(owner(at_kiosk().0, &at_kiosk().1), Some(second));

    let reading = |kind, value, secs| Observation {
        kind,
        value,
        device: Protocol::Cms50dLegacy,
        taken_at: Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, secs).unwrap(),
    };
    let kept = vec![reading(ObservationKind::HeartRate, 72.0, 5), reading(ObservationKind::Spo2, 97.0, 1)];
    store.write_blocking(|db| db.add_observations(second, &kept, now)).unwrap();
    let back: Vec<Observation> =
        store.read_blocking(|db| db.observations(second)).unwrap().into_iter().map(|(_, o)| o).collect();
    assert_eq!(back, vec![kept[1].clone(), kept[0].clone()], "oldest first");
    assert!(store.read_blocking(|db| db.observations(first)).unwrap().is_empty());

    // Bad input changes nothing: an unknown appointment, a value that is not a number.
    let before = store.read_blocking(|db| db.table_counts()).unwrap();
    assert!(matches!(store.write_blocking(|db| db.add_observations(9999, &kept, now)), Err(StoreError::NotFound(_))));
    let nan = vec![reading(ObservationKind::Spo2, 97.0, 2), reading(ObservationKind::BodyWeight, f64::NAN, 2)];
    assert!(store.write_blocking(|db| db.add_observations(second, &nan, now)).is_err());
    assert_eq!(store.read_blocking(|db| db.table_counts()).unwrap(), before);
}
