//! How this project opens SQLite, in one place for the tablet and the office server.
//!
//! - [`configure`]: the pragmas every connection gets. `synchronous=FULL` with WAL means a
//!   committed transaction survives power loss, which is what "acknowledged" promises.
//! - [`Writer`]: the one connection that writes, behind a mutex. SQLite allows one writer at a
//!   time anyway, and waiting on a mutex is cheaper than retrying on `SQLITE_BUSY`.
//! - [`open_writer`]: opens (creating) a database file, configures it and brings its schema up to
//!   date with the migrations given, which are never edited once landed.
//! - [`millis`] / [`instant`]: instants are stored as Unix milliseconds.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use rusqlite_migration::{M, Migrations};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot bring the database schema up to date: {0}")]
    Migration(#[from] rusqlite_migration::Error),
}

/// How long a connection waits for a lock held by another connection before it gives up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pragmas every read-write connection gets.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL on every transaction: a setting that holds everywhere cannot be forgotten on the
    // one path that writes something acknowledged.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Pragmas a read-only connection (of a pool beside the writer) gets.
pub fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")
}

/// The migrations made of these SQL files, in order.
pub fn migrations(files: &'static [&'static str]) -> Migrations<'static> {
    Migrations::new(files.iter().map(|sql| M::up(sql)).collect())
}

/// Opens (creating if needed) the database at `path` for writing, configured, with its schema
/// brought up to date by `files`.
pub fn open_writer(path: &Path, files: &'static [&'static str]) -> Result<Writer, OpenError> {
    let mut conn = Connection::open(path)?;
    configure(&conn)?;
    conn.set_prepared_statement_cache_capacity(64);
    migrations(files).to_latest(&mut conn)?;
    Ok(Writer::new(conn))
}

/// The one connection that writes.
pub struct Writer {
    conn: Mutex<Connection>,
}

impl Writer {
    pub fn new(conn: Connection) -> Self {
        Self {
            conn: Mutex::new(conn),
        }
    }

    /// The connection, for reads on it or work that manages its own transaction.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave a half-written transaction behind
        // (rusqlite rolls back an unfinished one on drop), so a poisoned lock is safe to use.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction and commits it; an error rolls it back.
    pub fn write<T, E>(&self, work: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = work(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

/// An instant as stored: Unix milliseconds.
pub fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

/// A stored instant that does not convert back.
#[derive(Debug, thiserror::Error)]
#[error("stored instant {millis} is out of range: {source}")]
pub struct BadInstant {
    pub millis: i64,
    source: jiff::Error,
}

/// A stored instant read back.
pub fn instant(millis: i64) -> Result<Timestamp, BadInstant> {
    Timestamp::from_millisecond(millis).map_err(|source| BadInstant { millis, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILES: &[&str] = &["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);"];

    #[test]
    fn a_writer_is_wal_synchronous_full_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let writer = open_writer(&dir.path().join("db.sqlite3"), FILES).unwrap();
        let conn = writer.lock();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        let foreign_keys: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(synchronous, 2, "2 is FULL");
        assert_eq!(foreign_keys, 1);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let writer = open_writer(&dir.path().join("db.sqlite3"), FILES).unwrap();
        let failed: Result<(), rusqlite::Error> = writer.write(|tx| {
            tx.execute("INSERT INTO t (v) VALUES ('a')", [])?;
            tx.execute("INSERT INTO t (v) VALUES (NULL)", [])?;
            Ok(())
        });
        assert!(failed.is_err());
        let rows: i64 = writer
            .lock()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }

    #[test]
    fn a_poisoned_writer_still_writes() {
        let dir = tempfile::tempdir().unwrap();
        let writer =
            std::sync::Arc::new(open_writer(&dir.path().join("db.sqlite3"), FILES).unwrap());
        let poisoner = std::sync::Arc::clone(&writer);
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.lock();
            panic!("poison the lock");
        })
        .join();
        writer
            .write(|tx| tx.execute("INSERT INTO t (v) VALUES ('b')", []).map(|_| ()))
            .unwrap();
    }

    #[test]
    fn instants_round_trip_to_the_millisecond() {
        let at: Timestamp = "2026-12-01T10:00:00.123456Z".parse().unwrap();
        assert_eq!(
            instant(millis(at)).unwrap().as_millisecond(),
            at.as_millisecond()
        );
        assert!(instant(i64::MAX).is_err());
    }
}
