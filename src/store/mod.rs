//! The kiosk's SQLite database: WAL, foreign keys, a busy timeout, versioned migrations.
//!
//! One writer connection (behind a mutex, `BEGIN IMMEDIATE` for every change, so writers queue instead of failing)
//! and a small pool of reader connections (WAL lets them read while a write is in progress). Async callers use
//! [`Store::read`] and [`Store::write`], which run on tokio's blocking pool; the CLI uses the `_blocking` forms.
//! Other processes (the CLI next to a running server) wait on the busy timeout.

mod queries;
mod schema;

pub use queries::{
    Account, Appointment, AppointmentFilter, AuditEntry, CallRecord, Db, NewAccount, NewAppointment, NewPatient,
    Patient, TABLES, ts,
};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::core::{FieldError, TransitionError};

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "medimitra.sqlite3";
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections kept open, and the most async reads that run at once (more would only queue on 2 cores and
/// cost memory: each connection has its own page cache).
const READERS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("database at {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("database schema version {found} is newer than this program knows ({known}); refusing to touch it")]
    TooNew { found: i64, known: i64 },
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Task(String),
}

/// Shared handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The one connection that writes; the mutex makes in-process writers queue rather than hit SQLITE_BUSY.
    writer: Mutex<Connection>,
    /// Idle read connections, reused so a request does not pay for opening one.
    readers: Mutex<Vec<Connection>>,
    /// Bounds concurrent async reads to [`READERS`], so the pool never grows past it.
    read_permits: tokio::sync::Semaphore,
    /// Async writers queue here rather than each holding a blocking thread while waiting for the writer mutex.
    write_permit: tokio::sync::Semaphore,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a connection that is still valid (SQLite rolls back the open
    // transaction when the Transaction guard drops), so a poisoned lock is safe to take over.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub fn open_in(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.to_path_buf(),
            source: rusqlite::Error::InvalidPath(PathBuf::from(e.to_string())),
        })?;
        Self::open(&data_dir.join(DB_FILE))
    }

    /// Opens (creating if needed) the database file at `path` and runs pending migrations.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut writer = open_connection(path)?;
        migrate(&mut writer)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                read_permits: tokio::sync::Semaphore::new(READERS),
                write_permit: tokio::sync::Semaphore::new(1),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema version now in the file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(lock(&self.inner.writer).query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Runs `f` on a read connection, on the calling thread.
    pub fn read_blocking<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = lock(&self.inner.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_connection(&self.inner.path)?,
        };
        let result = f(&Db::new(&conn));
        let mut idle = lock(&self.inner.readers);
        if idle.len() < READERS {
            idle.push(conn);
        }
        result
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction on the writer, on the calling thread. Commits when `f`
    /// returns `Ok`, rolls back otherwise, so a refused change leaves nothing behind.
    pub fn write_blocking<T>(&self, f: impl FnOnce(&Db<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = lock(&self.inner.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&Db::new(&tx))?;
        tx.commit()?;
        Ok(value)
    }

    /// [`read_blocking`](Self::read_blocking) from async code, off the runtime's worker threads.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = self.inner.read_permits.acquire().await.map_err(|e| StoreError::Task(e.to_string()))?;
        let store = self.clone();
        let result = tokio::task::spawn_blocking(move || store.read_blocking(f)).await;
        drop(permit);
        result.map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// [`write_blocking`](Self::write_blocking) from async code, off the runtime's worker threads.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = self.inner.write_permit.acquire().await.map_err(|e| StoreError::Task(e.to_string()))?;
        let store = self.clone();
        let result = tokio::task::spawn_blocking(move || store.write_blocking(f)).await;
        drop(permit);
        result.map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Copies the live database to `dest` with SQLite's online backup (safe while the server runs).
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        let src = open_connection(&self.inner.path)?;
        let mut out = Connection::open(dest).map_err(|source| StoreError::Open { path: dest.to_path_buf(), source })?;
        let backup = rusqlite::backup::Backup::new(&src, &mut out)?;
        backup.run_to_completion(256, Duration::from_millis(5), None)?;
        Ok(())
    }

    /// `PRAGMA integrity_check` and `foreign_key_check`; returns the problems found (empty when healthy).
    pub fn check(&self) -> Result<Vec<String>, StoreError> {
        self.read_blocking(|db| db.integrity_problems())
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = schema::MIGRATIONS.len() as i64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > known {
            return Err(StoreError::TooNew { found: version, known });
        }
        let Some(sql) = schema::MIGRATIONS.get(version as usize) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        tracing::info!(version = version + 1, "database migrated");
    }
}
