//! The queries, as methods on [`Db`], a borrowed connection. Inside [`Store::write_blocking`](super::Store) a `Db`
//! is a transaction: a method that checks and then changes does both atomically.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use std::str::FromStr;

use super::StoreError;
use crate::core::vitals::observation::{Observation, ObservationKind};
use crate::core::{Actor, AppointmentStatus, EndReason, Language, Role, Sex, overlaps};

/// Timestamps are stored as UTC text of one fixed width, so text order is time order.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parse_col<T: FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = row.get(idx)?;
    text.parse::<T>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.to_string().into()))
}

fn optional_col<T: FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(_) => parse_col(row, idx).map(Some),
    }
}

/// A staff account: a doctor or a technician (its [`Role`]). The password hash never leaves the store through this
/// type.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub specialty: String,
    pub email: String,
    pub role: Role,
    pub active: bool,
    pub created_at: String,
    /// Logged in with a one-time password: nothing but choosing a new one is allowed until then.
    pub must_change_password: bool,
    /// Two-factor login (TOTP) is set up for the account.
    pub two_factor: bool,
}

/// An account's TOTP secret and the last time step a code was accepted for (none yet: `None`).
pub type SecondFactor = (Vec<u8>, Option<u64>);

pub struct NewAccount {
    pub name: String,
    pub specialty: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    pub id: i64,
    pub name: String,
    pub date_of_birth: Option<String>,
    pub sex: Sex,
    pub phone: Option<String>,
    pub preferred_language: Language,
    pub created_at: String,
}

pub struct NewPatient {
    pub name: String,
    pub date_of_birth: Option<chrono::NaiveDate>,
    pub sex: Sex,
    pub phone: Option<String>,
    pub preferred_language: Language,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    pub id: i64,
    pub patient_id: i64,
    pub patient_name: String,
    pub doctor_id: i64,
    pub doctor_name: String,
    pub starts_at: String,
    pub duration_minutes: u32,
    pub reason: String,
    pub status: AppointmentStatus,
    pub notes: String,
    pub created_at: String,
    pub updated_at: String,
    /// When the patient last checked in (`None` before they did).
    pub checked_in_at: Option<String>,
    /// The visit note's revision `notes` holds (0: never written); an edit names the one it started from.
    pub note_revision: u32,
}

/// One saved version of an appointment's visit note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NoteRevision {
    pub revision: u32,
    pub text: String,
    /// The account's name when it was saved ("" for notes from before revisions were kept).
    pub author: String,
    pub saved_at: String,
}

pub struct NewAppointment {
    pub patient_id: i64,
    pub doctor_id: i64,
    pub starts_at: DateTime<Utc>,
    pub duration_minutes: u32,
    pub reason: String,
}

/// Which appointments to list. Times are UTC; `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Default)]
pub struct AppointmentFilter {
    pub doctor_id: Option<i64>,
    pub patient_id: Option<i64>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub status: Option<AppointmentStatus>,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    pub id: i64,
    pub appointment_id: i64,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub end_reason: Option<EndReason>,
    /// JSON summary of connection quality (bitrates, loss, RTT); never any media.
    pub quality_summary: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Every table, in the order `db check` reports them.
pub const TABLES: [&str; 9] = [
    "accounts",
    "patients",
    "appointments",
    "call_records",
    "sessions",
    "audit_log",
    "recovery_codes",
    "observations",
    "note_revisions",
];

/// A borrowed connection (or transaction) with the kiosk's queries.
pub struct Db<'c> {
    conn: &'c Connection,
}

const ACCOUNT_COLS: &str =
    "id, name, specialty, email, role, active, created_at, must_change_password, totp_secret IS NOT NULL";
const PATIENT_COLS: &str = "id, name, date_of_birth, sex, phone, language, created_at";
const APPOINTMENT_SELECT: &str = "SELECT a.id, a.patient_id, p.name, a.doctor_id, d.name, a.starts_at, \
     a.duration_minutes, a.reason, a.status, a.notes, a.created_at, a.updated_at, a.checked_in_at, \
     (SELECT COALESCE(MAX(n.revision), 0) FROM note_revisions n WHERE n.appointment_id = a.id) \
     FROM appointments a JOIN patients p ON p.id = a.patient_id JOIN accounts d ON d.id = a.doctor_id";

fn account_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        name: r.get(1)?,
        specialty: r.get(2)?,
        email: r.get(3)?,
        role: parse_col(r, 4)?,
        active: r.get(5)?,
        created_at: r.get(6)?,
        must_change_password: r.get(7)?,
        two_factor: r.get(8)?,
    })
}

/// An UPDATE of one account that touched no row names the missing account.
fn account_updated(rows: usize) -> Result<(), StoreError> {
    if rows == 0 { Err(StoreError::NotFound("account")) } else { Ok(()) }
}

fn patient_row(r: &Row<'_>) -> rusqlite::Result<Patient> {
    Ok(Patient {
        id: r.get(0)?,
        name: r.get(1)?,
        date_of_birth: r.get(2)?,
        sex: parse_col(r, 3)?,
        phone: r.get(4)?,
        preferred_language: parse_col(r, 5)?,
        created_at: r.get(6)?,
    })
}

fn appointment_row(r: &Row<'_>) -> rusqlite::Result<Appointment> {
    Ok(Appointment {
        id: r.get(0)?,
        patient_id: r.get(1)?,
        patient_name: r.get(2)?,
        doctor_id: r.get(3)?,
        doctor_name: r.get(4)?,
        starts_at: r.get(5)?,
        duration_minutes: r.get(6)?,
        reason: r.get(7)?,
        status: parse_col(r, 8)?,
        notes: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        checked_in_at: r.get(12)?,
        note_revision: r.get(13)?,
    })
}

impl<'c> Db<'c> {
    pub(super) fn new(conn: &'c Connection) -> Self {
        Self { conn }
    }

    // ---- staff accounts ----

    pub fn add_account(&self, a: &NewAccount, actor: Actor, now: DateTime<Utc>) -> Result<Account, StoreError> {
        let exists: bool =
            self.conn.query_row("SELECT EXISTS(SELECT 1 FROM accounts WHERE email = ?1)", [&a.email], |r| r.get(0))?;
        if exists {
            return Err(StoreError::Conflict(format!("an account with e-mail {} already exists", a.email)));
        }
        self.conn.execute(
            "INSERT INTO accounts (name, specialty, email, password_hash, role, active, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
            params![a.name, a.specialty, a.email, a.password_hash, a.role.as_str(), ts(now)],
        )?;
        let account = self.account(self.conn.last_insert_rowid())?;
        self.audit(actor, "account_create", &format!("account:{}", account.id), account.role.as_str(), now)?;
        Ok(account)
    }

    pub fn account(&self, id: i64) -> Result<Account, StoreError> {
        self.conn
            .query_row(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?1"), [id], account_row)
            .optional()?
            .ok_or(StoreError::NotFound("account"))
    }

    pub fn account_by_email(&self, email: &str) -> Result<Account, StoreError> {
        self.conn
            .query_row(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE email = ?1"), [email], account_row)
            .optional()?
            .ok_or(StoreError::NotFound("account"))
    }

    /// The account and its password hash, for a login check.
    pub fn credentials(&self, email: &str) -> Result<Option<(Account, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {ACCOUNT_COLS}, password_hash FROM accounts WHERE email = ?1"), [email], |r| {
                Ok((account_row(r)?, r.get::<_, String>(9)?))
            })
            .optional()?)
    }

    pub fn list_accounts(&self, role: Option<Role>) -> Result<Vec<Account>, StoreError> {
        let sql = match role {
            Some(_) => format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE role = ?1 ORDER BY name, id"),
            None => format!("SELECT {ACCOUNT_COLS} FROM accounts ORDER BY name, id"),
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = match role {
            Some(r) => stmt.query_map([r.as_str()], account_row)?.collect::<Result<_, _>>()?,
            None => stmt.query_map([], account_row)?.collect::<Result<_, _>>()?,
        };
        Ok(rows)
    }

    /// Enables or disables an account; disabling also ends its sessions.
    pub fn set_account_active(
        &self,
        id: i64,
        active: bool,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<Account, StoreError> {
        account_updated(self.conn.execute("UPDATE accounts SET active = ?2 WHERE id = ?1", params![id, active])?)?;
        if !active {
            self.revoke_sessions_of(id, now)?;
        }
        let action = if active { "account_enable" } else { "account_disable" };
        self.audit(actor, action, &format!("account:{id}"), "", now)?;
        self.account(id)
    }

    /// A password set for the account by someone else (a technician): ends every session of the account.
    pub fn reset_password(&self, id: i64, hash: &str, actor: Actor, now: DateTime<Utc>) -> Result<(), StoreError> {
        account_updated(self.conn.execute("UPDATE accounts SET password_hash = ?2 WHERE id = ?1", params![id, hash])?)?;
        self.revoke_sessions_of(id, now)?;
        self.audit(actor, "password_reset", &format!("account:{id}"), "", now)
    }

    /// Sets a one-time password: the account must choose its own at its next login. Ends its sessions, enables it.
    pub fn set_one_time_password(
        &self,
        id: i64,
        hash: &str,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        account_updated(self.conn.execute(
            "UPDATE accounts SET password_hash = ?2, must_change_password = 1, active = 1 WHERE id = ?1",
            params![id, hash],
        )?)?;
        self.revoke_sessions_of(id, now)?;
        self.audit(actor, "one_time_password", &format!("account:{id}"), "", now)
    }

    /// The account chose its own password: every other session ends, `keep` (the session it used) stays.
    pub fn change_own_password(
        &self,
        id: i64,
        hash: &str,
        keep: &str,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<Account, StoreError> {
        account_updated(self.conn.execute(
            "UPDATE accounts SET password_hash = ?2, must_change_password = 0 WHERE id = ?1",
            params![id, hash],
        )?)?;
        self.conn.execute(
            "UPDATE sessions SET revoked_at = ?3 WHERE account_id = ?1 AND token_hash <> ?2 AND revoked_at IS NULL",
            params![id, keep, ts(now)],
        )?;
        self.audit(actor, "password_change", &format!("account:{id}"), "", now)?;
        self.account(id)
    }

    // ---- two-factor login ----

    /// The account's TOTP secret and the last step a code was accepted for, when two-factor login is set up.
    pub fn second_factor(&self, id: i64) -> Result<Option<SecondFactor>, StoreError> {
        let row: Option<(Option<String>, Option<i64>)> = self
            .conn
            .query_row("SELECT totp_secret, totp_last_step FROM accounts WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        Ok(row.and_then(|(secret, step)| {
            let secret = hex::decode(secret?).ok()?;
            Some((secret, step.and_then(|s| u64::try_from(s).ok())))
        }))
    }

    /// Records that a code for `step` was accepted; false when that step (or a later one) was used already, so two
    /// logins racing with the same code cannot both pass.
    pub fn accept_totp_step(&self, id: i64, step: u64) -> Result<bool, StoreError> {
        let step = i64::try_from(step).map_err(|_| StoreError::Conflict("time step out of range".into()))?;
        Ok(self.conn.execute(
            "UPDATE accounts SET totp_last_step = ?2 WHERE id = ?1 AND totp_secret IS NOT NULL \
             AND (totp_last_step IS NULL OR totp_last_step < ?2)",
            params![id, step],
        )? > 0)
    }

    /// Uses up a recovery code; false when it is not one of the account's unused codes.
    pub fn use_recovery_code(&self, id: i64, code_hash: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let used = self.conn.execute(
            "UPDATE recovery_codes SET used_at = ?3 WHERE account_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
            params![id, code_hash, ts(now)],
        )? > 0;
        if used {
            self.audit(Actor::Account { role: self.account(id)?.role, id }, "recovery_code_used", "", "", now)?;
        }
        Ok(used)
    }

    /// Starts (or restarts) an enrolment with a new secret, not in force until confirmed.
    pub fn start_two_factor(&self, id: i64, secret: &[u8]) -> Result<(), StoreError> {
        account_updated(
            self.conn
                .execute("UPDATE accounts SET totp_pending = ?2 WHERE id = ?1", params![id, hex::encode(secret)])?,
        )
    }

    /// The secret of the enrolment in progress.
    pub fn pending_two_factor(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let s: Option<Option<String>> =
            self.conn.query_row("SELECT totp_pending FROM accounts WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        Ok(s.flatten().and_then(|h| hex::decode(h).ok()))
    }

    /// Puts the enrolment in force (its code matched `step`) with fresh recovery codes (their hashes).
    pub fn confirm_two_factor(
        &self,
        id: i64,
        step: u64,
        recovery_hashes: &[String],
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<Account, StoreError> {
        let step = i64::try_from(step).map_err(|_| StoreError::Conflict("time step out of range".into()))?;
        let moved = self.conn.execute(
            "UPDATE accounts SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = ?2 \
             WHERE id = ?1 AND totp_pending IS NOT NULL",
            params![id, step],
        )?;
        if moved == 0 {
            return Err(StoreError::Conflict("no two-factor set-up is in progress".into()));
        }
        self.conn.execute("DELETE FROM recovery_codes WHERE account_id = ?1", [id])?;
        for h in recovery_hashes {
            self.conn.execute("INSERT INTO recovery_codes (account_id, code_hash) VALUES (?1, ?2)", params![id, h])?;
        }
        self.audit(actor, "two_factor_enabled", &format!("account:{id}"), "", now)?;
        self.account(id)
    }

    /// Turns two-factor login off for an account (a technician for a lost phone, or the account itself where
    /// policy allows): its secret and recovery codes go, and its sessions end.
    pub fn reset_two_factor(&self, id: i64, actor: Actor, now: DateTime<Utc>) -> Result<Account, StoreError> {
        account_updated(self.conn.execute(
            "UPDATE accounts SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL WHERE id = ?1",
            [id],
        )?)?;
        self.conn.execute("DELETE FROM recovery_codes WHERE account_id = ?1", [id])?;
        self.revoke_sessions_of(id, now)?;
        self.audit(actor, "two_factor_reset", &format!("account:{id}"), "", now)?;
        self.account(id)
    }

    /// Unused recovery codes left.
    pub fn recovery_codes_left(&self, id: i64) -> Result<u32, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM recovery_codes WHERE account_id = ?1 AND used_at IS NULL",
            [id],
            |r| r.get(0),
        )?)
    }

    // ---- patients ----

    pub fn add_patient(&self, p: &NewPatient, actor: Actor, now: DateTime<Utc>) -> Result<Patient, StoreError> {
        self.conn.execute(
            "INSERT INTO patients (name, date_of_birth, sex, phone, language, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                p.name,
                p.date_of_birth.map(|d| d.format("%Y-%m-%d").to_string()),
                p.sex.as_str(),
                p.phone,
                p.preferred_language.as_str(),
                ts(now)
            ],
        )?;
        let patient = self.patient(self.conn.last_insert_rowid())?;
        self.audit(actor, "patient_create", &format!("patient:{}", patient.id), "", now)?;
        Ok(patient)
    }

    pub fn patient(&self, id: i64) -> Result<Patient, StoreError> {
        self.conn
            .query_row(&format!("SELECT {PATIENT_COLS} FROM patients WHERE id = ?1"), [id], patient_row)
            .optional()?
            .ok_or(StoreError::NotFound("patient"))
    }

    pub fn list_patients(&self, limit: u32, offset: u32) -> Result<Vec<Patient>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {PATIENT_COLS} FROM patients ORDER BY name, id LIMIT ?1 OFFSET ?2"))?;
        let rows = stmt.query_map([limit, offset], patient_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether `doctor_id` has (or had) an appointment with `patient_id`: what lets a doctor read a patient's record.
    pub fn doctor_sees_patient(&self, doctor_id: i64, patient_id: i64) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM appointments WHERE doctor_id = ?1 AND patient_id = ?2)",
            [doctor_id, patient_id],
            |r| r.get(0),
        )?)
    }

    // ---- appointments ----

    /// Books an appointment after checking that the patient exists, the doctor is an active doctor, and the
    /// doctor has no other live appointment at that time.
    pub fn add_appointment(
        &self,
        a: &NewAppointment,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<Appointment, StoreError> {
        self.patient(a.patient_id)?;
        let doctor = self.account(a.doctor_id).map_err(|_| StoreError::NotFound("doctor"))?;
        if doctor.role != Role::Doctor || !doctor.active {
            return Err(StoreError::Conflict(format!("account {} is not an active doctor", doctor.id)));
        }
        let window_start = ts(a.starts_at - Duration::minutes(240));
        let window_end = ts(a.starts_at + Duration::minutes(i64::from(a.duration_minutes)));
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, starts_at, duration_minutes FROM appointments WHERE doctor_id = ?1 \
             AND starts_at >= ?2 AND starts_at < ?3 AND status NOT IN ('cancelled', 'no_show')",
        )?;
        let nearby = stmt.query_map(params![a.doctor_id, window_start, window_end], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?))
        })?;
        for row in nearby {
            let (id, start, minutes) = row?;
            let start = DateTime::parse_from_rfc3339(&start).map(|t| t.with_timezone(&Utc)).map_err(|e| {
                StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into()))
            })?;
            if overlaps(start, minutes, a.starts_at, a.duration_minutes) {
                return Err(StoreError::Conflict(format!("the doctor already has appointment {id} at that time")));
            }
        }
        self.conn.execute(
            "INSERT INTO appointments (patient_id, doctor_id, starts_at, duration_minutes, reason, status, notes, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'scheduled', '', ?6, ?6)",
            params![a.patient_id, a.doctor_id, ts(a.starts_at), a.duration_minutes, a.reason, ts(now)],
        )?;
        let appointment = self.appointment(self.conn.last_insert_rowid())?;
        self.audit(actor, "appointment_create", &format!("appointment:{}", appointment.id), "", now)?;
        Ok(appointment)
    }

    pub fn appointment(&self, id: i64) -> Result<Appointment, StoreError> {
        self.conn
            .query_row(&format!("{APPOINTMENT_SELECT} WHERE a.id = ?1"), [id], appointment_row)
            .optional()?
            .ok_or(StoreError::NotFound("appointment"))
    }

    pub fn list_appointments(&self, f: &AppointmentFilter) -> Result<Vec<Appointment>, StoreError> {
        // Only the conditions in use go into the SQL (as parameters), so SQLite can pick the index for them:
        // `?1 IS NULL OR a.doctor_id = ?1` would force a scan of every appointment.
        let mut sql = format!("{APPOINTMENT_SELECT} WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut push = |cond: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&format!(" AND {cond} ?{}", args.len()));
        };
        if let Some(d) = f.doctor_id {
            push("a.doctor_id =", d.into());
        }
        if let Some(p) = f.patient_id {
            push("a.patient_id =", p.into());
        }
        if let Some(t) = f.from {
            push("a.starts_at >=", ts(t).into());
        }
        if let Some(t) = f.to {
            push("a.starts_at <", ts(t).into());
        }
        if let Some(st) = f.status {
            push("a.status =", st.as_str().to_string().into());
        }
        args.push(i64::from(f.limit).into());
        args.push(i64::from(f.offset).into());
        sql.push_str(&format!(" ORDER BY a.starts_at, a.id LIMIT ?{} OFFSET ?{}", args.len() - 1, args.len()));
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), appointment_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Moves an appointment to `to` if the state machine allows it from its current status, with its audit entry
    /// (`from -> to`). The one way every part of the kiosk changes an appointment's status.
    pub fn set_appointment_status(
        &self,
        id: i64,
        to: AppointmentStatus,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<Appointment, StoreError> {
        let current = self.appointment(id)?;
        current.status.transition(to)?;
        self.conn.execute(
            "UPDATE appointments SET status = ?2, updated_at = ?3, \
             checked_in_at = CASE WHEN ?2 = 'checked_in' THEN ?3 ELSE checked_in_at END WHERE id = ?1",
            params![id, to.as_str(), ts(now)],
        )?;
        self.audit(
            actor,
            "appointment_status",
            &format!("appointment:{id}"),
            &format!("{} -> {to}", current.status),
            now,
        )?;
        self.appointment(id)
    }

    /// Appends a dated line to the appointment's notes (a new revision of the visit note).
    pub fn add_note(
        &self,
        id: i64,
        author: &str,
        text: &str,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<Appointment, StoreError> {
        let current = self.appointment(id)?;
        let line = format!("[{} {}] {}", ts(now), author, text);
        let notes = if current.notes.is_empty() { line } else { format!("{}\n{}", current.notes, line) };
        self.write_note(&current, &notes, author, now)?;
        self.audit(actor, "appointment_note", &format!("appointment:{id}"), "", now)?;
        self.appointment(id)
    }

    /// Replaces the visit note with `text`, keeping what it said before as a revision. `base` is the revision the
    /// writer started from: if someone saved another since, nothing changes and the answer names who and when (two
    /// people editing must not silently overwrite each other). Saving the same text again adds no revision.
    pub fn save_note(
        &self,
        id: i64,
        base: u32,
        author: &str,
        text: &str,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<Appointment, StoreError> {
        let current = self.appointment(id)?;
        if base != current.note_revision {
            let latest = self.note_revisions(id)?.into_iter().next();
            let by = latest.map_or_else(String::new, |r| {
                let who = if r.author.is_empty() { String::new() } else { format!(" by {}", r.author) };
                format!("{who} at {}", r.saved_at)
            });
            return Err(StoreError::Conflict(format!(
                "the note was saved again{by} (revision {}) after revision {base} you started from",
                current.note_revision
            )));
        }
        if text == current.notes {
            return Ok(current);
        }
        self.write_note(&current, text, author, now)?;
        self.audit(
            actor,
            "appointment_note_edit",
            &format!("appointment:{id}"),
            &format!("revision {}", current.note_revision + 1),
            now,
        )?;
        self.appointment(id)
    }

    /// The visit note's revisions, newest first.
    pub fn note_revisions(&self, id: i64) -> Result<Vec<NoteRevision>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT revision, text, author, saved_at FROM note_revisions WHERE appointment_id = ?1 \
             ORDER BY revision DESC",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(NoteRevision { revision: r.get(0)?, text: r.get(1)?, author: r.get(2)?, saved_at: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Makes `text` the note's current text and its next revision.
    fn write_note(
        &self,
        current: &Appointment,
        text: &str,
        author: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO note_revisions (appointment_id, revision, text, author, saved_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![current.id, current.note_revision + 1, text, author, ts(now)],
        )?;
        self.conn.execute(
            "UPDATE appointments SET notes = ?2, updated_at = ?3 WHERE id = ?1",
            params![current.id, text, ts(now)],
        )?;
        Ok(())
    }

    // ---- call records ----

    /// After a restart no call is running: appointments left `in_call` go back to `checked_in` and open call records
    /// are closed. Returns how many appointments were returned.
    pub fn recover_interrupted_calls(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.conn.execute(
            "UPDATE call_records SET ended_at = ?1, end_reason = ?2 WHERE ended_at IS NULL",
            [ts(now), EndReason::KioskRestarted.as_str().to_string()],
        )?;
        let n = self.conn.execute(
            "UPDATE appointments SET status = 'checked_in', updated_at = ?1 WHERE status = 'in_call'",
            [ts(now)],
        )?;
        if n > 0 {
            let detail = format!("{n} appointment(s) back to checked_in");
            self.audit(Actor::Startup, "calls_recovered", "", &detail, now)?;
        }
        Ok(n)
    }

    pub fn open_call_record(&self, appointment_id: i64, now: DateTime<Utc>) -> Result<i64, StoreError> {
        self.appointment(appointment_id)?;
        self.conn.execute(
            "INSERT INTO call_records (appointment_id, started_at) VALUES (?1, ?2)",
            params![appointment_id, ts(now)],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn close_call_record(
        &self,
        id: i64,
        reason: EndReason,
        quality_summary: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE call_records SET ended_at = ?2, end_reason = ?3, quality_summary = ?4 WHERE id = ?1 AND ended_at IS NULL",
            params![id, ts(now), reason.as_str(), quality_summary],
        )?;
        if n == 0 { Err(StoreError::NotFound("open call record")) } else { Ok(()) }
    }

    pub fn call_records(&self, appointment_id: i64) -> Result<Vec<CallRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, appointment_id, started_at, ended_at, end_reason, quality_summary FROM call_records \
             WHERE appointment_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([appointment_id], |r| {
            Ok(CallRecord {
                id: r.get(0)?,
                appointment_id: r.get(1)?,
                started_at: r.get(2)?,
                ended_at: r.get(3)?,
                end_reason: optional_col(r, 4)?,
                quality_summary: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- sessions ----

    /// Stores a new login (only the token's hash is kept) with its audit entry. Old expired sessions are pruned on
    /// the way.
    pub fn create_session(
        &self,
        token_hash: &str,
        account: &Account,
        now: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [ts(now - Duration::days(7))])?;
        self.conn.execute(
            "INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, account.id, ts(now), ts(expires)],
        )?;
        self.audit(Actor::Account { role: account.role, id: account.id }, "login", "", "", now)
    }

    /// A login that failed: who tried (the e-mail given) and from where, for the technician's review.
    pub fn record_failed_login(&self, email: &str, origin: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.audit(Actor::Anonymous, "login_failed", email, origin, now)
    }

    /// The active account behind a live (not expired, not revoked) session.
    pub fn session_account(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Account>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.id, d.name, d.specialty, d.email, d.role, d.active, d.created_at, d.must_change_password, \
             d.totp_secret IS NOT NULL FROM sessions s \
             JOIN accounts d ON d.id = s.account_id WHERE s.token_hash = ?1 AND s.revoked_at IS NULL \
             AND s.expires_at > ?2 AND d.active = 1",
        )?;
        Ok(stmt.query_row(params![token_hash, ts(now)], account_row).optional()?)
    }

    /// Ends one session (a logout), with its audit entry; false when there was no live session with that hash.
    pub fn revoke_session(&self, token_hash: &str, actor: Actor, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let ended = self.conn.execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE token_hash = ?1 AND revoked_at IS NULL",
            params![token_hash, ts(now)],
        )? > 0;
        self.audit(actor, "logout", "", "", now)?;
        Ok(ended)
    }

    fn revoke_sessions_of(&self, account_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE account_id = ?1 AND revoked_at IS NULL",
            params![account_id, ts(now)],
        )?;
        Ok(())
    }

    /// A provisioning file was applied (its clinic id), by whom it was applied for.
    pub fn record_provisioning(
        &self,
        technician_id: i64,
        clinic_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.audit(Actor::Provisioning, "provision", &format!("account:{technician_id}"), clinic_id, now)
    }

    // ---- observations ----

    /// Keeps device readings with an appointment, with one audit entry (kinds only: values are patient data).
    pub fn add_observations(
        &self,
        appointment_id: i64,
        observations: &[Observation],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.appointment(appointment_id)?;
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO observations (appointment_id, kind, value, device, taken_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for o in observations {
            if !o.value.is_finite() {
                return Err(StoreError::Conflict(format!("{} is not a number", o.kind.as_str())));
            }
            stmt.execute(params![appointment_id, o.kind.as_str(), o.value, o.device.id(), ts(o.taken_at)])?;
        }
        let kinds: Vec<&str> = observations.iter().map(|o| o.kind.as_str()).collect();
        self.audit(Actor::Devices, "observations", &format!("appointment:{appointment_id}"), &kinds.join(","), now)
    }

    /// The appointment's readings, oldest first, each with its id.
    pub fn observations(&self, appointment_id: i64) -> Result<Vec<(i64, Observation)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, kind, value, device, taken_at FROM observations WHERE appointment_id = ?1 \
             ORDER BY taken_at, id",
        )?;
        let rows = stmt.query_map(params![appointment_id], |r| {
            let kind: String = r.get(1)?;
            let kind = ObservationKind::parse(&kind).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, "unknown kind".into())
            })?;
            Ok((
                r.get::<_, i64>(0)?,
                Observation {
                    kind,
                    value: r.get(2)?,
                    device: parse_col(r, 3)?,
                    taken_at: parse_col::<DateTime<Utc>>(r, 4)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The appointment in a call, and those checked in within the last 12 hours (older ones are forgotten
    /// check-ins, not patients at the kiosk): whose readings these are ([`crate::core::vitals::observation::owner`]).
    pub fn patients_at_the_kiosk(&self, now: DateTime<Utc>) -> Result<(Option<i64>, Vec<i64>), StoreError> {
        let in_call = self
            .conn
            .query_row(
                "SELECT id FROM appointments WHERE status = 'in_call' ORDER BY updated_at DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM appointments WHERE status = 'checked_in' AND updated_at >= ?1 ORDER BY id",
        )?;
        let checked_in =
            stmt.query_map(params![ts(now - Duration::hours(12))], |r| r.get(0))?.collect::<Result<Vec<i64>, _>>()?;
        Ok((in_call, checked_in))
    }

    // ---- audit ----

    /// Records who did what, inside the transaction of the change it describes. Only the mutators above call it, so
    /// every change has exactly one entry in one format. `detail` must not hold secrets; patient names belong only in
    /// the tables above.
    fn audit(
        &self,
        actor: Actor,
        action: &str,
        target: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ts(now), actor.to_string(), action, target, detail],
        )?;
        Ok(())
    }

    pub fn recent_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt.query_map([limit], |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- maintenance ----

    pub(super) fn integrity_problems(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let line = row?;
            if line != "ok" {
                problems.push(line);
            }
        }
        let mut stmt = self.conn.prepare("PRAGMA foreign_key_check")?;
        for row in stmt.query_map([], |r| {
            Ok(format!("foreign key broken in {} row {:?}", r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })? {
            problems.push(row?);
        }
        Ok(problems)
    }

    pub fn schema_version_now(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Row counts per table: what tests and `db check` compare.
    pub fn table_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut out = Vec::new();
        for table in TABLES {
            let n: i64 = self.conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
            out.push((table.to_string(), n));
        }
        Ok(out)
    }
}
