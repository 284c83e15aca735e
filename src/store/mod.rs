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
    NoteRevision, Patient, TABLES, ts,
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
    #[error("backup to {path}: {reason}")]
    Backup { path: PathBuf, reason: String },
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
    // FULL, not WAL's usual NORMAL: a commit is on the card before the API answers, so a power cut (common where
    // the kiosks stand) loses nothing that was acknowledged. One fsync per commit: 2.5 ms on the development
    // machine's disk; the kiosk writes a few rows a minute.
    conn.pragma_update(None, "synchronous", "FULL")?;
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

    /// Writes a consistent copy of the live database to `dest`, which must not exist yet.
    ///
    /// `VACUUM INTO` a file beside `dest` (`<name>.partial-<pid>`): one read transaction, so the copy is the snapshot
    /// of one moment, and writers neither wait for it nor restart it (SQLite's page-by-page online backup starts
    /// over after every write by another connection, and never finished under ~1,000 writes/s). The copy is then
    /// checked (`integrity_check`, the schema version, its tables), synced, and only then linked to `dest` (a hard
    /// link, so an existing file is never replaced) and the partial name removed. A backup killed on the way leaves
    /// only the `.partial-` file, which nothing takes for a backup; a later backup removes its own leftovers only.
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        let fail = |reason: String| StoreError::Backup { path: dest.to_path_buf(), reason };
        let name = dest.file_name().ok_or_else(|| fail("not a file name".into()))?;
        let mut partial_name = name.to_os_string();
        partial_name.push(format!(".partial-{}", std::process::id()));
        let partial = dest.with_file_name(partial_name);
        let partial_str = partial.to_str().ok_or_else(|| fail("the path is not UTF-8".into()))?.to_string();
        if dest.exists() {
            return Err(fail("exists already".into()));
        }
        let _ = std::fs::remove_file(&partial);
        let result = self.write_checked_copy(&partial, &partial_str).and_then(|()| {
            std::fs::hard_link(&partial, dest).map_err(|e| fail(e.to_string()))?;
            if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| fail(e.to_string()))?;
            }
            Ok(())
        });
        let _ = std::fs::remove_file(&partial);
        result
    }

    fn write_checked_copy(&self, partial: &Path, partial_str: &str) -> Result<(), StoreError> {
        let fail = |reason: String| StoreError::Backup { path: partial.to_path_buf(), reason };
        let src = open_connection(&self.inner.path)?;
        src.execute("VACUUM INTO ?1", [partial_str])?;
        let copy = Connection::open_with_flags(partial, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|source| StoreError::Open { path: partial.to_path_buf(), source })?;
        let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(fail(format!("the copy fails its integrity check: {check}")));
        }
        let version: i64 = copy.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let tables: i64 =
            copy.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))?;
        let live: i64 = src.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != live || tables == 0 {
            return Err(fail(format!("the copy has schema version {version} and {tables} tables (live: {live})")));
        }
        drop(copy);
        std::fs::File::open(partial).and_then(|f| f.sync_all()).map_err(|e| fail(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_syncs_each_commit_before_it_returns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_in(dir.path()).expect("open");
        // 2 = FULL: the WAL is synced at every commit, so an acknowledged write survives a power cut too.
        let level: i64 = lock(&store.inner.writer).query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("pragma");
        assert_eq!(level, 2);
        let reader = open_connection(&dir.path().join(DB_FILE)).expect("reader");
        let level: i64 = reader.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("pragma");
        assert_eq!(level, 2);
    }
}
