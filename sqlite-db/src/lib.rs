//! How this project opens SQLite, in one place for the tablet and the office server.
//!
//! - [`configure`]: the pragmas every connection gets. `synchronous=FULL` with WAL means a
//!   committed transaction survives power loss, which is what "acknowledged" promises.
//! - [`Writer`]: the one connection that writes, behind a mutex. SQLite allows one writer at a
//!   time anyway, and waiting on a mutex is cheaper than retrying on `SQLITE_BUSY`.
//! - [`open_writer`]: opens (creating) a database file, configures it and brings its schema up to
//!   date with the migrations given, which are never edited once landed.
//! - [`Writer::checkpoint_in_background`]: folds the write-ahead log into the database on a
//!   thread of its own rather than in the writer's commits (the office server, where ingest's
//!   commits are the bottleneck and the machine has a second core).
//! - [`Writer::write_unsynced`] + [`LogSync`]: a commit that does not wait for the disk, made
//!   durable by a flush of the log on another thread (ingest's group commit acknowledges a
//!   sync only after that flush).
//! - [`millis`] / [`instant`]: instants are stored as Unix milliseconds.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
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
    #[error("cannot start the checkpoint thread: {0}")]
    Thread(std::io::Error),
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
    /// Told of every commit when checkpoints run in the background.
    commits: Option<Arc<Commits>>,
}

impl Writer {
    pub fn new(conn: Connection) -> Self {
        Self {
            conn: Mutex::new(conn),
            commits: None,
        }
    }

    /// Stops the writer checkpointing in its own commits (SQLite's automatic checkpoint, every
    /// 1000 pages, copies them into the database and fsyncs it while the committing thread
    /// waits) and runs the checkpoints on a thread of its own, on its own connection to the
    /// database at `path`, until the returned handle is dropped. See [`BackgroundCheckpoints`].
    pub fn checkpoint_in_background(
        &mut self,
        path: &Path,
        settings: CheckpointSettings,
    ) -> Result<BackgroundCheckpoints, OpenError> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        self.lock().pragma_update(None, "wal_autocheckpoint", 0)?;
        let commits = Arc::new(Commits::default());
        self.commits = Some(Arc::clone(&commits));
        let thread = std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn({
                let commits = Arc::clone(&commits);
                move || checkpoint_loop(&conn, &commits, settings)
            })
            .map_err(OpenError::Thread)?;
        Ok(BackgroundCheckpoints {
            commits,
            thread: Some(thread),
        })
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
        self.committed(conn);
        Ok(value)
    }

    /// Like [`write`](Self::write), but the commit does not wait for the disk: this one
    /// transaction runs with `synchronous=NORMAL`, so its pages are in the log, in order, but
    /// maybe not yet on the disk. They are durable once a [`LogSync::sync`] that began after
    /// this returned has returned; nothing may be acknowledged before. (A power cut loses such
    /// a commit and everything after it in the log, never part of one, and never one before.)
    pub fn write_unsynced<T, E>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let conn = self.lock();
        let unsynced = Unsynced::set(&conn)?;
        let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
        let value = work(&tx)?;
        tx.commit()?;
        drop(unsynced);
        self.committed(conn);
        Ok(value)
    }

    /// After a commit: a catch-up checkpoint if one is wanted, and the checkpointer told.
    fn committed(&self, conn: MutexGuard<'_, Connection>) {
        if let Some(commits) = &self.commits {
            if commits.catch_up.swap(false, Ordering::Relaxed) {
                // Few pages: the background checkpoint has just copied the rest.
                if let Err(error) = checkpoint(&conn, "PASSIVE") {
                    tracing::warn!(%error, "checkpointing after a commit failed");
                }
            }
            drop(conn);
            commits.committed();
        }
    }
}

/// `synchronous=NORMAL` on the writer until dropped, then `FULL` again — also when the work in
/// between fails or panics, so that no other write is left without its flush.
struct Unsynced<'c>(&'c Connection);

impl<'c> Unsynced<'c> {
    fn set(conn: &'c Connection) -> rusqlite::Result<Self> {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Self(conn))
    }
}

impl Drop for Unsynced<'_> {
    fn drop(&mut self) {
        if let Err(error) = self.0.pragma_update(None, "synchronous", "FULL") {
            // Changing the setting touches no file; should it fail all the same, the writer
            // must not go on committing without flushes.
            panic!("cannot set synchronous=FULL again on the writer: {error}");
        }
    }
}

/// Flushes a database's write-ahead log to the disk: what makes the commits of
/// [`Writer::write_unsynced`] durable.
pub struct LogSync {
    log: std::fs::File,
}

impl LogSync {
    /// The log of the database at `path` (which the writer has open, in WAL mode).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut log = path.as_os_str().to_owned();
        log.push("-wal");
        Ok(Self {
            log: std::fs::File::open(log)?,
        })
    }

    /// Returns once everything written to the log before the call is on the disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.log.sync_data()
    }
}

/// When the background checkpointer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointSettings {
    /// After a checkpoint the thread waits this long before the next, so that one checkpoint
    /// takes the pages of many commits.
    pub pause: Duration,
    /// A log of this many pages or more is made to start again even under constant writing
    /// (see [`BackgroundCheckpoints`]), so that it cannot grow without end.
    pub restart_pages: i64,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        Self {
            pause: Duration::from_millis(100),
            restart_pages: 10_000,
        }
    }
}

/// The background checkpointer's thread; dropping this stops it.
///
/// A passive checkpoint copies the log's pages into the database without holding the writer
/// back; the log starts again from its beginning at the next commit after a checkpoint that
/// took all of it. Under constant writing that moment may not come, so once the log is past
/// [`CheckpointSettings::restart_pages`] the writer itself, after its next commit, copies the
/// few pages added meanwhile, as SQLite's own checkpoint would.
/// Writes made on [`Writer::lock`] outside [`Writer::write`] are taken by the next
/// checkpoint after a commit through it.
pub struct BackgroundCheckpoints {
    commits: Arc<Commits>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for BackgroundCheckpoints {
    fn drop(&mut self) {
        self.commits.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How many commits there have been, and whether the checkpointer should stop.
#[derive(Default)]
struct Commits {
    state: Mutex<(u64, bool)>,
    changed: Condvar,
    /// The log is long: the writer checkpoints after its next commit.
    catch_up: AtomicBool,
}

impl Commits {
    fn guard(&self) -> MutexGuard<'_, (u64, bool)> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn committed(&self) {
        self.guard().0 += 1;
        self.changed.notify_one();
    }

    fn stop(&self) {
        self.guard().1 = true;
        self.changed.notify_one();
    }

    /// Waits for a commit after the `seen`th; the new count, or none when told to stop.
    fn wait_after(&self, seen: u64) -> Option<u64> {
        let mut state = self.guard();
        while state.0 == seen && !state.1 {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        (!state.1).then_some(state.0)
    }

    /// Waits `pause`, or less if told to stop meanwhile; whether to go on.
    fn rest(&self, pause: Duration) -> bool {
        let (state, _) = self
            .changed
            .wait_timeout_while(self.guard(), pause, |state| !state.1)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        !state.1
    }
}

fn checkpoint_loop(conn: &Connection, commits: &Commits, settings: CheckpointSettings) {
    let mut seen = 0;
    while let Some(count) = commits.wait_after(seen) {
        seen = count;
        match checkpoint(conn, "PASSIVE") {
            Ok((_, log, _)) if log >= settings.restart_pages => {
                commits.catch_up.store(true, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "a background checkpoint failed"),
        }
        if !commits.rest(settings.pause) {
            return;
        }
    }
}

/// Runs a checkpoint of `mode`: whether it was blocked, the pages in the log, the pages
/// copied into the database.
fn checkpoint(conn: &Connection, mode: &'static str) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })
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
    fn an_unsynced_write_commits_and_leaves_the_writer_synchronous_full() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let writer = open_writer(&path, FILES).unwrap();
        let synchronous = |writer: &Writer| -> i64 {
            writer
                .lock()
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        writer
            .write_unsynced(|tx| tx.execute("INSERT INTO t (v) VALUES ('a')", []))
            .unwrap();
        assert_eq!(synchronous(&writer), 2, "FULL again after a commit");
        let failed: Result<(), rusqlite::Error> = writer.write_unsynced(|tx| {
            tx.execute("INSERT INTO t (v) VALUES ('b')", [])?;
            tx.execute("INSERT INTO t (v) VALUES (NULL)", [])?;
            Ok(())
        });
        assert!(failed.is_err());
        assert_eq!(synchronous(&writer), 2, "FULL again after a failure");
        let values: Vec<String> = writer
            .lock()
            .prepare("SELECT v FROM t")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(values, ["a"]);
        LogSync::open(&path).unwrap().sync().unwrap();
        assert!(LogSync::open(&dir.path().join("none.sqlite3")).is_err());
    }

    fn blob_writer(dir: &Path) -> (std::path::PathBuf, Writer) {
        let path = dir.join("db.sqlite3");
        let writer = open_writer(&path, FILES).unwrap();
        writer
            .lock()
            .execute_batch("CREATE TABLE blobs (b BLOB NOT NULL)")
            .unwrap();
        (path, writer)
    }

    fn write_blobs(writer: &Writer, commits: usize) {
        for _ in 0..commits {
            writer
                .write(|tx| tx.execute("INSERT INTO blobs VALUES (zeroblob(8000))", []))
                .unwrap();
        }
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn background_checkpoints_copy_the_log_into_the_database_without_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut writer) = blob_writer(dir.path());
        let settings = CheckpointSettings {
            pause: Duration::from_millis(5),
            ..CheckpointSettings::default()
        };
        let _checkpoints = writer.checkpoint_in_background(&path, settings).unwrap();
        let automatic: i64 = writer
            .lock()
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(automatic, 0, "the writer no longer checkpoints itself");
        let before = size(&path);
        // 125 commits of two pages each: far below SQLite's own 1000-page checkpoint.
        write_blobs(&writer, 125);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size(&path) < before + 125 * 8000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file stays at {} bytes",
                size(&path)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn under_constant_writing_the_log_is_restarted_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut writer) = blob_writer(dir.path());
        let settings = CheckpointSettings {
            pause: Duration::from_millis(1),
            restart_pages: 100,
        };
        let checkpoints = writer.checkpoint_in_background(&path, settings).unwrap();
        // 2,000 commits of two pages: 16 MB of log if it never started again.
        write_blobs(&writer, 2000);
        drop(checkpoints);
        let log = size(&dir.path().join("db.sqlite3-wal"));
        assert!(log < 4 << 20, "the log grew to {log} bytes");
        let rows: i64 = writer
            .lock()
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2000);
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
