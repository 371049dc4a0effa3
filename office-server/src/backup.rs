//! Backups of a data directory while the server runs, restoring one, and pruning old ones.
//!
//! A backup is a directory `backup-YYYYMMDDTHHMMSSZ` (its UTC start) under the destination:
//! the database as `office.sqlite3` — a consistent snapshot taken without stopping ingest —,
//! the recordings that snapshot refers to under `recordings/`, and `SHA256SUMS` over every
//! file in the format `sha256sum -c` reads. It is written as `<name>.partial` and renamed once
//! whole and on disk, so a backup under its final name is complete.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::recordings::{file_name, sha256_of};
use crate::storage::StorageError;
use crate::storage::maintenance::{mark_purged_in_copy, purged_at, recording_rows, snapshot};

const DATABASE: &str = "office.sqlite3";
const RECORDINGS: &str = "recordings";
const SUMS: &str = "SHA256SUMS";
const PREFIX: &str = "backup-";
const PARTIAL: &str = ".partial";
/// The UTC instant in a backup's name (then a `Z`).
const NAME_TIME: &str = "%Y%m%dT%H%M%S";
/// How much a backup writes before it has the disk take it. A commit's flush waits behind
/// whatever the disk was given before it: flushed in steps of this, a sync waits behind a
/// step at most (tens of milliseconds), where the snapshot's own flush at its end made one
/// wait 250–400 ms behind 1.4 GB.
const FLUSH_EVERY: u64 = 16 * 1024 * 1024;
/// How often the snapshot's growth is looked at.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0} is not empty; a backup is restored into a new data directory only")]
    NotEmpty(PathBuf),
    #[error("{0} is not a backup: it has no {SUMS}")]
    NotABackup(PathBuf),
    #[error("the backup is damaged, nothing was restored: {}", .0.join("; "))]
    Damaged(Vec<String>),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a data directory keeps what a backup copies.
#[derive(Debug, Clone)]
pub struct DataPaths {
    pub database: PathBuf,
    pub recordings: PathBuf,
}

impl DataPaths {
    pub fn of(config: &crate::Config) -> Self {
        Self {
            database: config.database_path(),
            recordings: config.recordings_dir(),
        }
    }
}

/// What a backup holds, and what it could not.
#[derive(Debug, Default)]
pub struct BackupReport {
    pub path: PathBuf,
    pub recordings: u64,
    pub bytes: u64,
    /// Recordings the retention rule deleted while the backup ran: marked so in the copy too.
    pub purged_meanwhile: u64,
    /// Recordings the database has whose files are missing or differ: the backup holds their
    /// rows as they are, and `office-server check` names the same problems.
    pub problems: Vec<String>,
}

/// Backs up `data` into a new directory under `to`; `progress(done, total)` is told after
/// each recording.
pub fn backup(
    data: &DataPaths,
    to: &Path,
    now: Timestamp,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BackupReport, BackupError> {
    let name = format!("{PREFIX}{}Z", now.strftime(NAME_TIME));
    let partial = to.join(format!("{name}{PARTIAL}"));
    let written = write_backup(data, to, &name, &partial, progress);
    if written.is_err() {
        // A failed backup must not leave recordings behind, to outlive their retention.
        let _ = fs::remove_dir_all(&partial);
    }
    written
}

fn write_backup(
    data: &DataPaths,
    to: &Path,
    name: &str,
    partial: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BackupReport, BackupError> {
    let done = to.join(name);
    let copies = partial.join(RECORDINGS);
    fs::create_dir_all(&copies).map_err(io_at(&copies))?;
    let database = partial.join(DATABASE);
    let mut writes = PacedWrites::on(partial)?;
    snapshot_paced(&data.database, &database, &mut writes)?;

    let mut report = BackupReport::default();
    let mut sums = vec![(sha256_of_file(&database)?, DATABASE.to_string())];
    let rows: Vec<_> = recording_rows(&database)?
        .into_iter()
        .filter(|row| !row.purged)
        .collect();
    let total = rows.len() as u64;
    let mut purged = Vec::new();
    for (copied, row) in rows.iter().enumerate() {
        let name = file_name(row.visit_id);
        let original = data.recordings.join(&name);
        match copy_hashing(&original, &copies.join(&name)) {
            Ok((size, sha256)) => {
                writes.wrote(size)?;
                if sha256 != row.sha256 || size != row.size_bytes {
                    report.problems.push(format!(
                        "recording of visit {}: the file differs from the database's record \
                         ({size} bytes, SHA-256 {sha256})",
                        row.visit_id
                    ));
                }
                report.recordings += 1;
                report.bytes += size;
                sums.push((sha256, format!("{RECORDINGS}/{name}")));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match purged_at(&data.database, row.visit_id)? {
                    Some(at) => purged.push((row.visit_id, at)),
                    None => report.problems.push(format!(
                        "recording of visit {}: the file {} is missing",
                        row.visit_id,
                        original.display()
                    )),
                }
            }
            Err(source) => {
                return Err(BackupError::Io {
                    path: original,
                    source,
                });
            }
        }
        progress(copied as u64 + 1, total);
    }
    if !purged.is_empty() {
        mark_purged_in_copy(&database, &purged)?;
        report.purged_meanwhile = purged.len() as u64;
        sums[0].0 = sha256_of_file(&database)?;
    }
    let sums_path = partial.join(SUMS);
    let text: String = sums
        .iter()
        .map(|(sha, file)| format!("{sha}  {file}\n"))
        .collect();
    fs::write(&sums_path, text.as_bytes()).map_err(io_at(&sums_path))?;
    // Everything on disk before the name says the backup is whole.
    sync_file_system(partial)?;
    fs::rename(partial, &done).map_err(io_at(&done))?;
    sync_dir(to)?;
    report.path = done;
    Ok(report)
}

/// The backup's writes, flushed to its disk every [`FLUSH_EVERY`] bytes — by `syncfs`, one
/// for many files: a flush per file of thousands competed with ingest's own flushes.
struct PacedWrites {
    dir: File,
    path: PathBuf,
    unflushed: u64,
}

impl PacedWrites {
    fn on(dir: &Path) -> Result<Self, BackupError> {
        Ok(Self {
            dir: File::open(dir).map_err(io_at(dir))?,
            path: dir.to_path_buf(),
            unflushed: 0,
        })
    }

    /// Counts `bytes` more written; flushes once they add up to a step.
    fn wrote(&mut self, bytes: u64) -> Result<(), BackupError> {
        self.unflushed += bytes;
        if self.unflushed >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BackupError> {
        rustix::fs::syncfs(&self.dir)
            .map_err(io::Error::from)
            .map_err(io_at(&self.path))?;
        self.unflushed = 0;
        Ok(())
    }
}

/// The snapshot, flushed in steps while SQLite writes it: `VACUUM INTO` is one statement, so
/// a second thread follows the copy's size and flushes each step it grows by.
fn snapshot_paced(source: &Path, dest: &Path, writes: &mut PacedWrites) -> Result<(), BackupError> {
    let finished = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let follower = scope.spawn(|| -> Result<(), BackupError> {
            let mut counted = 0;
            while !finished.load(std::sync::atomic::Ordering::Acquire) {
                let size = fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
                writes.wrote(size.saturating_sub(counted))?;
                counted = counted.max(size);
                std::thread::sleep(FOLLOW_EVERY);
            }
            Ok(())
        });
        let snapshot = snapshot(source, dest);
        finished.store(true, std::sync::atomic::Ordering::Release);
        let followed = follower.join().unwrap_or_else(|_| {
            Err(BackupError::Io {
                path: dest.to_path_buf(),
                source: io::Error::other("the thread flushing the snapshot panicked"),
            })
        });
        snapshot?;
        followed
    })
}

/// Copies `from` to `to` (a new file), hashing what it copies. It is flushed with the others
/// ([`PacedWrites`]), not alone.
fn copy_hashing(from: &Path, to: &Path) -> io::Result<(u64, String)> {
    let mut input = File::open(from)?;
    let mut output = File::create_new(to)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        output.write_all(&buf[..n])?;
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

fn sha256_of_file(path: &Path) -> Result<String, BackupError> {
    let mut file = File::open(path).map_err(io_at(path))?;
    sha256_of(&mut file).map_err(io_at(path))
}

/// Flushes the file system holding `path`: every file written there, and the directories.
fn sync_file_system(path: &Path) -> Result<(), BackupError> {
    let dir = File::open(path).map_err(io_at(path))?;
    rustix::fs::syncfs(&dir)
        .map_err(io::Error::from)
        .map_err(io_at(path))
}

fn sync_dir(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io_at(path))
}

/// What a restore put in place.
#[derive(Debug)]
pub struct RestoreReport {
    pub files: u64,
    pub bytes: u64,
}

/// Restores the backup at `from` into `data_dir`, which must be new or empty. Every file is
/// checked against `SHA256SUMS` first, so a damaged backup restores nothing; the files are
/// copied into a sibling directory and renamed into place at the end.
pub fn restore(from: &Path, data_dir: &Path) -> Result<RestoreReport, BackupError> {
    if fs::read_dir(data_dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(BackupError::NotEmpty(data_dir.to_path_buf()));
    }
    let sums_path = from.join(SUMS);
    let sums = match fs::read_to_string(&sums_path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BackupError::NotABackup(from.to_path_buf()));
        }
        Err(source) => {
            return Err(BackupError::Io {
                path: sums_path,
                source,
            });
        }
    };
    let mut files = Vec::new();
    let mut damage = Vec::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let Some((sha, file)) = line.split_once("  ") else {
            damage.push(format!("{SUMS}: the line {line:?} is not «sha256  file»"));
            continue;
        };
        if !is_backup_file(file) {
            damage.push(format!("{SUMS} names {file:?}, which no backup holds"));
            continue;
        }
        match sha256_of_file(&from.join(file)) {
            Ok(actual) if actual == sha => files.push(file.to_string()),
            Ok(_) => damage.push(format!("{file}: its SHA-256 differs from {SUMS}")),
            Err(e) => damage.push(format!("{file}: {e}")),
        }
    }
    if !files.iter().any(|f| f == DATABASE) {
        damage.push(format!("{SUMS} does not list {DATABASE}"));
    }
    if !damage.is_empty() {
        return Err(BackupError::Damaged(damage));
    }

    let parent = data_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_at(parent))?;
    let dir_name = data_dir
        .file_name()
        .map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
    let staging = parent.join(format!(".{dir_name}.restoring"));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_at(&staging))?;
    }
    let recordings = staging.join(RECORDINGS);
    fs::create_dir_all(&recordings).map_err(io_at(&recordings))?;
    let mut report = RestoreReport { files: 0, bytes: 0 };
    for file in &files {
        let target = staging.join(file);
        let (size, _) = copy_hashing(&from.join(file), &target).map_err(io_at(&target))?;
        report.files += 1;
        report.bytes += size;
    }
    sync_file_system(&staging)?;
    if data_dir.exists() {
        fs::remove_dir(data_dir).map_err(io_at(data_dir))?;
    }
    fs::rename(&staging, data_dir).map_err(io_at(data_dir))?;
    sync_dir(parent)?;
    Ok(report)
}

/// The files a backup holds: the database and `recordings/<visit>.3gpp`. Anything else in a
/// `SHA256SUMS` (a path that climbs out, say) is refused.
fn is_backup_file(file: &str) -> bool {
    file == DATABASE
        || file
            .strip_prefix("recordings/")
            .and_then(|name| name.strip_suffix(".3gpp"))
            .and_then(|id| id.parse::<Uuid>().ok())
            .is_some_and(|id| format!("{RECORDINGS}/{}", file_name(id)) == file)
}

/// A finished backup under a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBackup {
    pub path: PathBuf,
    pub taken_at: Timestamp,
}

/// The finished backups under `to`, newest first.
pub fn list(to: &Path) -> io::Result<Vec<StoredBackup>> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(to) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(time) = name.strip_prefix(PREFIX).and_then(|n| n.strip_suffix('Z')) else {
            continue;
        };
        let taken_at = jiff::civil::DateTime::strptime(NAME_TIME, time)
            .and_then(|t| t.to_zoned_datetime(jiff::tz::TimeZone::UTC))
            .map(|z| z.timestamp());
        if let Ok(taken_at) = taken_at {
            found.push(StoredBackup {
                path: entry.path(),
                taken_at,
            });
        }
    }
    found.sort_by_key(|b| std::cmp::Reverse(b.taken_at));
    Ok(found)
}

/// Deletes the backups under `to` beyond the newest `keep`, and every one taken before
/// `oldest` — the recordings' retention: a backup must not keep audio longer than the server
/// may. Also the unfinished copies a killed backup left (untouched for a day: one being
/// written now is younger), which hold recordings too. Returns what it deleted.
pub fn prune(to: &Path, keep: usize, oldest: Timestamp) -> io::Result<Vec<PathBuf>> {
    let mut deleted = Vec::new();
    for (index, stored) in list(to)?.into_iter().enumerate() {
        if index >= keep || stored.taken_at < oldest {
            fs::remove_dir_all(&stored.path)?;
            deleted.push(stored.path);
        }
    }
    let abandoned = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
    for entry in fs::read_dir(to)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(PREFIX)
            && name.ends_with(PARTIAL)
            && entry.metadata()?.modified()? < abandoned
        {
            fs::remove_dir_all(entry.path())?;
            deleted.push(entry.path());
        }
    }
    Ok(deleted)
}

/// One scheduled backup: taken into `backup.dir`, then the old ones pruned.
fn take_scheduled(shared: &crate::app::Shared) -> Result<(BackupReport, usize), BackupError> {
    let settings = &shared.config.backup;
    let now = Timestamp::now();
    let report = backup(
        &DataPaths::of(&shared.config),
        &settings.dir,
        now,
        &mut |_, _| {},
    )?;
    let oldest = now
        .checked_sub(jiff::SignedDuration::from_hours(
            24 * i64::from(shared.config.retention_days),
        ))
        .unwrap_or(Timestamp::MIN);
    let keep = usize::try_from(settings.keep).unwrap_or(usize::MAX);
    let pruned = prune(&settings.dir, keep, oldest).map_err(io_at(&settings.dir))?;
    Ok((report, pruned.len()))
}

/// The server's daily backups, while it runs: each at `backup.time` in the office's zone,
/// every outcome logged (a failure as an error, to try again the next day).
pub async fn scheduled(state: crate::app::AppState) {
    let time = state.config.backup.time;
    let mut due = crate::workday::next_time_of_day(Timestamp::now(), time, &state.zone);
    loop {
        // Looked at every minute at most, so a clock set forward or back is noticed.
        let wait = due.duration_since(Timestamp::now()).clamp(
            jiff::SignedDuration::ZERO,
            jiff::SignedDuration::from_secs(60),
        );
        tokio::time::sleep(std::time::Duration::try_from(wait).unwrap_or_default()).await;
        let now = Timestamp::now();
        if now < due {
            continue;
        }
        match state.blocking(take_scheduled).await {
            Ok(Ok((report, pruned))) if report.problems.is_empty() => tracing::info!(
                path = %report.path.display(),
                recordings = report.recordings,
                bytes = report.bytes,
                pruned,
                "scheduled backup written"
            ),
            Ok(Ok((report, pruned))) => tracing::error!(
                path = %report.path.display(),
                recordings = report.recordings,
                problems = ?report.problems,
                pruned,
                "scheduled backup written, but recordings are missing or differ; run office-server check"
            ),
            Ok(Err(error)) => {
                tracing::error!(%error, "scheduled backup failed; next try tomorrow");
                tell_admins(&state, now, error.to_string()).await;
            }
            Err(error) => {
                tracing::error!(%error, "scheduled backup panicked");
                tell_admins(&state, now, error.to_string()).await;
            }
        }
        due = crate::workday::next_time_of_day(Timestamp::now(), time, &state.zone);
    }
}

/// Queues the administrators' e-mail about a failed scheduled backup, when mail is on.
async fn tell_admins(state: &crate::app::AppState, at: Timestamp, error: String) {
    if !state.config.mail.enabled() {
        return;
    }
    let queued = state
        .blocking(move |s| {
            let mail = crate::ops::notices::backup_failed(s, at, &error)?;
            s.storage.queue_mail(&mail)
        })
        .await;
    match queued {
        Ok(Ok(_)) => state.mail_wake.notify_one(),
        Ok(Err(error)) => tracing::warn!(%error, "cannot queue the failed backup's e-mail"),
        Err(error) => tracing::warn!(%error, "queuing the failed backup's e-mail panicked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_database_and_recordings_can_be_restored() {
        let id = Uuid::now_v7();
        assert!(is_backup_file("office.sqlite3"));
        assert!(is_backup_file(&format!("recordings/{id}.3gpp")));
        for bad in [
            "../office.sqlite3".to_string(),
            format!("recordings/../../{id}.3gpp"),
            format!("recordings/{}.3gpp", id.simple()),
            "/etc/passwd".into(),
            "SHA256SUMS".into(),
        ] {
            assert!(!is_backup_file(&bad), "{bad}");
        }
    }
}
