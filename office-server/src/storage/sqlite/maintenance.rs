//! What the SQLite backend offers the administrator's commands besides serving: a consistent
//! copy of the database while a server writes it, and the checks of `office-server check`.
//! Each works on a database file by path through its own connection, so it runs beside a
//! serving process as well as on a stopped one.

use std::collections::HashMap;
use std::path::Path;

use jiff::tz::TimeZone;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use uuid::Uuid;

use super::reports::{SectionKey, TotalsKey, count_visits};
use crate::reports::Tally;
use crate::storage::{StorageError, StorageResult};

fn open_read_only(path: &Path) -> StorageResult<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    sqlite_db::configure_reader(&conn)?;
    Ok(conn)
}

/// Writes a consistent copy of the database at `source` into `dest` (a new file) while the
/// server keeps writing. `VACUUM INTO` runs in one read transaction on a read-only
/// connection: in WAL mode a reader never blocks the writer, so ingest does not wait for it
/// (unlike the online backup API from a second connection, which restarts at every write).
/// The copy is compact and holds no log of its own.
pub fn snapshot(source: &Path, dest: &Path) -> StorageResult<()> {
    let conn = open_read_only(source)?;
    let dest = dest
        .to_str()
        .ok_or_else(|| StorageError::Corrupt(format!("the path {dest:?} is not UTF-8")))?;
    conn.execute("VACUUM INTO ?1", [dest])?;
    Ok(())
}

/// A recording the database knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingRow {
    pub visit_id: Uuid,
    pub size_bytes: u64,
    pub sha256: String,
    /// The retention rule has deleted its file (the row stays, marked).
    pub purged: bool,
}

/// Every recording of the database at `path`, purged ones too.
pub fn recording_rows(path: &Path) -> StorageResult<Vec<RecordingRow>> {
    let conn = open_read_only(path)?;
    let mut stmt = conn.prepare(
        "SELECT visit_id, size_bytes, sha256, purged_at IS NOT NULL FROM recordings
         ORDER BY visit_id",
    )?;
    let rows = stmt
        .query_map([], |row| {
            Ok(RecordingRow {
                visit_id: row.get(0)?,
                size_bytes: row.get(1)?,
                sha256: row.get(2)?,
                purged: row.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// When the retention rule purged the recording of `visit_id` in the database at `path`
/// (`None`: it has not, or there is no such recording).
pub fn purged_at(path: &Path, visit_id: Uuid) -> StorageResult<Option<i64>> {
    let conn = open_read_only(path)?;
    Ok(conn
        .query_row(
            "SELECT purged_at FROM recordings WHERE visit_id = ?1",
            [visit_id],
            |row| row.get::<_, Option<i64>>(0),
        )
        .optional()?
        .flatten())
}

/// Marks recordings purged in a backup's own copy of the database, as the retention rule
/// marked them in the server's while the backup ran (their analysis goes with them).
pub fn mark_purged_in_copy(path: &Path, purged: &[(Uuid, i64)]) -> StorageResult<()> {
    let mut conn = Connection::open(path)?;
    let tx = conn.transaction()?;
    for (visit_id, at) in purged {
        tx.execute(
            "UPDATE recordings SET purged_at = ?1 WHERE visit_id = ?2",
            params![at, visit_id],
        )?;
        tx.execute(
            "DELETE FROM recording_analysis WHERE visit_id = ?1",
            [visit_id],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// What SQLite's own checks find wrong: `integrity_check` (pages, indexes, constraints) and
/// `foreign_key_check`, one line per problem; empty when the file is sound.
pub fn integrity_problems(path: &Path) -> StorageResult<Vec<String>> {
    let conn = open_read_only(path)?;
    let mut problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter(|line| line != "ok")
        .collect();
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    let broken = stmt.query_map([], |row| {
        Ok(format!(
            "row {} of {} refers to a missing row of {}",
            row.get::<_, Option<i64>>(1)?
                .map_or_else(|| "?".to_string(), |id| id.to_string()),
            row.get::<_, String>(0)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    for line in broken {
        problems.push(line?);
    }
    Ok(problems)
}

/// A stored report total that differs from what the visits add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalsMismatch {
    /// `report_totals` or `report_section_totals`.
    pub table: &'static str,
    /// The row's key, named: e.g. `level 0, period 20261201, department 1, section 2, …`.
    pub key: String,
    pub stored: Tally,
    pub counted: Tally,
}

/// The report totals of the database at `path` against its visits, counted in `zone`'s
/// calendar (the office's), in one read transaction; returns how many visits were counted.
pub fn totals_mismatches(
    path: &Path,
    zone: &TimeZone,
) -> StorageResult<(u64, Vec<TotalsMismatch>)> {
    let mut conn = open_read_only(path)?;
    // One snapshot for both sides, so a sync landing meanwhile cannot look like a mismatch.
    let tx = conn.transaction()?;
    let (counted, visits) = count_visits(&tx, zone)?;
    let (totals, sections) = counted.into_parts();
    let mut mismatches = Vec::new();

    let stored_totals: HashMap<TotalsKey, Tally> = tx
        .prepare(
            "SELECT level, period, department_id, section_id, employee_id, service_id,
                    visits, good, medium, bad FROM report_totals",
        )?
        .query_map([], |row| {
            Ok((
                (
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ),
                tally(row, 6)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let name = |k: &TotalsKey| {
        format!(
            "level {}, period {}, department {}, section {}, employee {}, service {}",
            k.0, k.1, k.2, k.3, k.4, k.5
        )
    };
    compare(
        "report_totals",
        &stored_totals,
        &totals,
        name,
        &mut mismatches,
    );

    let stored_sections: HashMap<SectionKey, Tally> = tx
        .prepare(
            "SELECT level, period, department_id, section_id, visits, good, medium, bad
             FROM report_section_totals",
        )?
        .query_map([], |row| {
            Ok((
                (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?),
                tally(row, 4)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let name = |k: &SectionKey| {
        format!(
            "level {}, period {}, department {}, section {}",
            k.0, k.1, k.2, k.3
        )
    };
    compare(
        "report_section_totals",
        &stored_sections,
        &sections,
        name,
        &mut mismatches,
    );
    Ok((visits, mismatches))
}

fn tally(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Tally> {
    Ok(Tally {
        visits: row.get(first)?,
        good: row.get(first + 1)?,
        medium: row.get(first + 2)?,
        bad: row.get(first + 3)?,
    })
}

/// Every key either side has, where the two differ (a missing row counts as zero).
fn compare<K: std::hash::Hash + Eq + Ord + Copy>(
    table: &'static str,
    stored: &HashMap<K, Tally>,
    counted: &HashMap<K, Tally>,
    name: impl Fn(&K) -> String,
    out: &mut Vec<TotalsMismatch>,
) {
    let mut keys: Vec<K> = stored.keys().chain(counted.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let stored = stored.get(&key).copied().unwrap_or_default();
        let counted = counted.get(&key).copied().unwrap_or_default();
        if stored != counted {
            out.push(TotalsMismatch {
                table,
                key: name(&key),
                stored,
                counted,
            });
        }
    }
}
