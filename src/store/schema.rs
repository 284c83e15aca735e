//! Versioned migrations. `PRAGMA user_version` records how many have run; each runs once, in its own transaction.
//! Never edit a migration that has shipped: add a new one.

pub const MIGRATIONS: &[&str] = &[
    // 1: the foundation.
    r#"
    CREATE TABLE doctors (
        id                   INTEGER PRIMARY KEY,
        name                 TEXT NOT NULL,
        specialty            TEXT NOT NULL DEFAULT '',
        email                TEXT NOT NULL UNIQUE,
        password_hash        TEXT NOT NULL,
        role                 TEXT NOT NULL CHECK (role IN ('doctor', 'technician')),
        active               INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
        created_at           TEXT NOT NULL
    );
    CREATE TABLE patients (
        id                   INTEGER PRIMARY KEY,
        name                 TEXT NOT NULL,
        date_of_birth        TEXT,
        sex                  TEXT NOT NULL CHECK (sex IN ('female', 'male', 'other', 'unknown')),
        phone                TEXT,
        language             TEXT NOT NULL,
        created_at           TEXT NOT NULL
    );
    CREATE TABLE appointments (
        id                   INTEGER PRIMARY KEY,
        patient_id           INTEGER NOT NULL REFERENCES patients(id),
        doctor_id            INTEGER NOT NULL REFERENCES doctors(id),
        starts_at            TEXT NOT NULL,
        duration_minutes     INTEGER NOT NULL CHECK (duration_minutes BETWEEN 5 AND 240),
        reason               TEXT NOT NULL DEFAULT '',
        status               TEXT NOT NULL CHECK (status IN
                                 ('scheduled', 'checked_in', 'in_call', 'completed', 'cancelled', 'no_show')),
        notes                TEXT NOT NULL DEFAULT '',
        created_at           TEXT NOT NULL,
        updated_at           TEXT NOT NULL
    );
    CREATE INDEX appointments_by_doctor_and_start ON appointments (doctor_id, starts_at);
    CREATE INDEX appointments_by_start ON appointments (starts_at);
    CREATE TABLE call_records (
        id                   INTEGER PRIMARY KEY,
        appointment_id       INTEGER NOT NULL REFERENCES appointments(id),
        started_at           TEXT NOT NULL,
        ended_at             TEXT,
        end_reason           TEXT,
        quality_summary      TEXT
    );
    CREATE INDEX call_records_by_appointment ON call_records (appointment_id);
    CREATE TABLE sessions (
        token_hash           TEXT PRIMARY KEY,
        doctor_id            INTEGER NOT NULL REFERENCES doctors(id),
        created_at           TEXT NOT NULL,
        expires_at           TEXT NOT NULL,
        revoked_at           TEXT
    );
    CREATE INDEX sessions_by_doctor ON sessions (doctor_id);
    CREATE TABLE audit_log (
        id                   INTEGER PRIMARY KEY,
        at                   TEXT NOT NULL,
        actor                TEXT NOT NULL,
        action               TEXT NOT NULL,
        target               TEXT NOT NULL DEFAULT '',
        detail               TEXT NOT NULL DEFAULT ''
    );
    "#,
    // 2: accounts made with a one-time password (first-boot provisioning) must choose their own at first login.
    r#"
    ALTER TABLE doctors ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0
        CHECK (must_change_password IN (0, 1));
    "#,
    // 3: `doctors` held every staff account (technicians too): it is `accounts` now, and a session belongs to an
    // account. SQLite rewrites the foreign keys that name the table (appointments.doctor_id, sessions).
    r#"
    ALTER TABLE doctors RENAME TO accounts;
    ALTER TABLE sessions RENAME COLUMN doctor_id TO account_id;
    DROP INDEX sessions_by_doctor;
    CREATE INDEX sessions_by_account ON sessions (account_id);
    "#,
    // 4: two-factor login for staff. The TOTP secret (hex) is set once an enrolment is confirmed with a code;
    // `totp_pending` holds an enrolment in progress; `totp_last_step` is the last time step a code was accepted for
    // (a code works once). Recovery codes are stored as SHA-256 and used once.
    r#"
    ALTER TABLE accounts ADD COLUMN totp_secret TEXT;
    ALTER TABLE accounts ADD COLUMN totp_pending TEXT;
    ALTER TABLE accounts ADD COLUMN totp_last_step INTEGER;
    CREATE TABLE recovery_codes (
        account_id           INTEGER NOT NULL REFERENCES accounts(id),
        code_hash            TEXT NOT NULL,
        used_at              TEXT,
        PRIMARY KEY (account_id, code_hash)
    );
    "#,
    // 5: readings from the kiosk's medical devices kept with an appointment (stable values only, never the
    // waveform): `kind` is `core::vitals::observation::ObservationKind`, `device` a `core::vitals::Protocol`.
    r#"
    CREATE TABLE observations (
        id                   INTEGER PRIMARY KEY,
        appointment_id       INTEGER NOT NULL REFERENCES appointments(id),
        kind                 TEXT NOT NULL CHECK (kind IN ('spo2', 'heart_rate', 'body_weight')),
        value                REAL NOT NULL,
        device               TEXT NOT NULL,
        taken_at             TEXT NOT NULL
    );
    CREATE INDEX observations_by_appointment ON observations (appointment_id, taken_at);
    "#,
    // 6: when the patient checked in (for the doctor's "waiting 6 min"); set on each move to `checked_in`, kept
    // afterwards. Appointments checked in before this migration get the time of their audit entry, if any.
    r#"
    ALTER TABLE appointments ADD COLUMN checked_in_at TEXT;
    UPDATE appointments SET checked_in_at = (
        SELECT MAX(at) FROM audit_log WHERE audit_log.target = 'appointment:' || appointments.id
            AND audit_log.detail LIKE '% -> checked_in'
    ) WHERE status <> 'scheduled';
    "#,
    // 7: the visit note's versions. `appointments.notes` stays the current text (the API's `notes`); every save
    // and every addition adds a revision here (1, 2, ...), so an edit never loses what was written before. Notes
    // written before this migration become revision 1 (author unknown: the lines themselves name theirs).
    r#"
    CREATE TABLE note_revisions (
        appointment_id       INTEGER NOT NULL REFERENCES appointments(id),
        revision             INTEGER NOT NULL CHECK (revision > 0),
        text                 TEXT NOT NULL,
        author               TEXT NOT NULL,
        saved_at             TEXT NOT NULL,
        PRIMARY KEY (appointment_id, revision)
    );
    INSERT INTO note_revisions (appointment_id, revision, text, author, saved_at)
        SELECT id, 1, notes, '', updated_at FROM appointments WHERE notes <> '';
    "#,
];
