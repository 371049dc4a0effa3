//! The SQLite backend: the project's one writer ([`sqlite_db::Writer`]) and a small pool of
//! read-only connections beside it, WAL mode. One file per area of the storage traits.

mod accounts;
mod alerts;
mod audit;
mod directory;
mod feedback;
mod ingest;
mod mail;
pub mod maintenance;
mod recordings;
mod reports;
mod sms;
mod tablets;
mod visitors;
mod visits;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, Transaction};
use rusqlite_migration::Migrations;
use sqlite_db::Writer;

pub use ingest::{CommitStats, GroupCommit, INSERT_VISIT, record_sync};
pub use reports::{TotalsAccumulator, set_totals_zone};

use super::*;

const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_initial.sql"),
    include_str!("../../../migrations/0002_dashboard.sql"),
    include_str!("../../../migrations/0003_normal_logins.sql"),
    include_str!("../../../migrations/0004_audit_deliveries.sql"),
    include_str!("../../../migrations/0005_tablet_claims.sql"),
    include_str!("../../../migrations/0006_feedback.sql"),
    include_str!("../../../migrations/0007_feedback_audit.sql"),
    include_str!("../../../migrations/0008_visitor_accounts.sql"),
    include_str!("../../../migrations/0009_result_sms.sql"),
    include_str!("../../../migrations/0010_review.sql"),
    include_str!("../../../migrations/0011_deputies.sql"),
    include_str!("../../../migrations/0012_mail.sql"),
];

/// How many read connections the pool keeps.
const READERS: u32 = 4;

pub struct SqliteStorage {
    writer: Arc<Writer>,
    /// Ingest's group commit; none when the database is open read-only.
    committer: Option<ingest::Committer>,
    /// The write-ahead log's checkpoints; none when the database is open read-only, and
    /// stopped by the last checkpoint at shutdown.
    checkpoints: Mutex<Option<sqlite_db::BackgroundCheckpoints>>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    /// The office's time zone: the report totals are kept in its calendar.
    zone: TimeZone,
}

/// The migrations, for the server and for benchmarks that need the same schema.
pub fn migrations() -> Migrations<'static> {
    sqlite_db::migrations(MIGRATIONS)
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file and brings its schema up to date. The report
    /// totals are kept in the calendar of `zone`; if they were computed in another time zone
    /// (or before the totals existed), they are rebuilt from the visits.
    pub fn open(path: &Path, zone: TimeZone) -> StorageResult<Self> {
        Self::open_with(path, zone, GroupCommit::default())
    }

    /// [`open`](Self::open), with ingest grouped into commits as `grouping` says.
    pub fn open_with(path: &Path, zone: TimeZone, grouping: GroupCommit) -> StorageResult<Self> {
        let mut writer = sqlite_db::open_writer(path, MIGRATIONS)?;
        // Ingest's commits are the server's bottleneck under load: the log is folded into the
        // database on the second core rather than inside them.
        let checkpoints =
            writer.checkpoint_in_background(path, sqlite_db::CheckpointSettings::default())?;
        let log = sqlite_db::LogSync::open(path)?;
        let writer = Arc::new(writer);
        let committer = ingest::Committer::start(Arc::clone(&writer), log, zone.clone(), grouping)?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_init(|conn| {
                conn.set_prepared_statement_cache_capacity(64);
                sqlite_db::configure_reader(conn)
            });
        let readers = r2d2::Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .build(manager)?;
        let storage = Self {
            writer,
            committer: Some(committer),
            checkpoints: Mutex::new(Some(checkpoints)),
            readers,
            zone,
        };
        let zone_name = reports::zone_name(&storage.zone);
        let kept: Option<String> = storage
            .writer()
            .query_row(
                "SELECT value FROM report_meta WHERE key = 'time_zone'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        if kept.as_deref() != Some(zone_name.as_str()) {
            let visits = storage.rebuild_totals()?;
            tracing::info!(
                time_zone = %zone_name,
                previous = ?kept,
                visits,
                "report totals rebuilt for the office time zone"
            );
        }
        Ok(storage)
    }

    /// Opens an existing database beside the server that writes it, to read only: nothing is
    /// migrated or rebuilt, and every write fails. For tests and checks that look at a live
    /// server's data through the same queries the server uses.
    pub fn open_read_only(path: &Path, zone: TimeZone) -> StorageResult<Self> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        sqlite_db::configure_reader(&conn)?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_init(|conn| sqlite_db::configure_reader(conn));
        let readers = r2d2::Pool::builder()
            .max_size(2)
            .min_idle(Some(0))
            .build(manager)?;
        Ok(Self {
            writer: Arc::new(Writer::new(conn)),
            committer: None,
            checkpoints: Mutex::new(None),
            readers,
            zone,
        })
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock()
    }

    fn reader(&self) -> StorageResult<r2d2::PooledConnection<SqliteConnectionManager>> {
        Ok(self.readers.get()?)
    }

    fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        self.writer.write(work)
    }
}

fn ms(ts: Timestamp) -> i64 {
    sqlite_db::millis(ts)
}

fn instant(millis: i64) -> StorageResult<Timestamp> {
    Ok(sqlite_db::instant(millis)?)
}

fn optional_instant(millis: Option<i64>) -> StorageResult<Option<Timestamp>> {
    millis.map(instant).transpose()
}

/// Turns a broken UNIQUE constraint into [`StorageError::AlreadyExists`].
fn unique(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StorageError {
    move |error| match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) if error.to_string().contains("UNIQUE") => {
            StorageError::AlreadyExists(what)
        }
        Some(rusqlite::ErrorCode::ConstraintViolation) => StorageError::NotFound(what),
        _ => StorageError::Database(error),
    }
}

/// Fails with `NotFound(what)` when an UPDATE touched no row.
fn changed_one(changed: usize, what: &'static str) -> StorageResult<()> {
    if changed == 0 {
        Err(StorageError::NotFound(what))
    } else {
        Ok(())
    }
}

impl Storage for SqliteStorage {
    fn counts(&self) -> StorageResult<Counts> {
        let conn = self.reader()?;
        Ok(conn.query_row(
            "SELECT (SELECT count(*) FROM departments), (SELECT count(*) FROM sections),
                    (SELECT count(*) FROM employees), (SELECT count(*) FROM services),
                    (SELECT count(*) FROM accounts), (SELECT count(*) FROM tablets),
                    (SELECT count(*) FROM visits), (SELECT count(*) FROM recordings)",
            [],
            |row| {
                Ok(Counts {
                    departments: row.get(0)?,
                    sections: row.get(1)?,
                    employees: row.get(2)?,
                    services: row.get(3)?,
                    accounts: row.get(4)?,
                    tablets: row.get(5)?,
                    visits: row.get(6)?,
                    recordings: row.get(7)?,
                })
            },
        )?)
    }

    fn checkpoint(&self) -> StorageResult<()> {
        // One running beside it would make this one find the log busy.
        drop(
            self.checkpoints
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take(),
        );
        let conn = self.writer();
        // optimize may write statistics, so it goes first; then the log is folded in.
        conn.execute_batch("PRAGMA optimize")?;
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        if busy != 0 {
            return Err(StorageError::CheckpointBlocked);
        }
        Ok(())
    }
}
