//! The SQLite backend: one writer connection behind a mutex (SQLite has one writer anyway, and
//! waiting on a mutex is cheaper than on `SQLITE_BUSY`), a small pool of readers, WAL mode.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use rusqlite_migration::{M, Migrations};
use shared_model::{
    NamedRef, Pairing, PairingEndReason, PairingStatus, Rating, RejectReason, Visit, VisitOutcome,
};
use uuid::Uuid;

use super::*;
use crate::reports::{PeriodKeys, visit_instant_ms};

const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_initial.sql"),
    include_str!("../../migrations/0002_dashboard.sql"),
];

/// How many read connections the pool keeps.
const READERS: u32 = 4;

pub struct SqliteStorage {
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    /// The office's time zone: the report totals are kept in its calendar.
    zone: TimeZone,
}

/// The migrations, for the server and for benchmarks that need the same schema.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// Pragmas every connection gets. `synchronous=FULL`: an acknowledged visit survives power loss.
pub fn configure_connection(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl SqliteStorage {
    /// Opens (creating if needed) the database file and brings its schema up to date. The report
    /// totals are kept in the calendar of `zone`; if they were computed in another time zone
    /// (or before the totals existed), they are rebuilt from the visits.
    pub fn open(path: &Path, zone: TimeZone) -> StorageResult<Self> {
        let mut writer = Connection::open(path)?;
        configure_connection(&writer)?;
        writer.set_prepared_statement_cache_capacity(64);
        migrations().to_latest(&mut writer)?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_init(|conn| {
                conn.busy_timeout(Duration::from_secs(5))?;
                conn.set_prepared_statement_cache_capacity(64);
                conn.pragma_update(None, "foreign_keys", "ON")
            });
        let readers = r2d2::Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .build(manager)?;
        let storage = Self {
            writer: Mutex::new(writer),
            readers,
            zone,
        };
        let zone_name = zone_name(&storage.zone);
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

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written transaction behind
        // (rusqlite rolls back on drop), so a poisoned lock is still safe to use.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn reader(&self) -> StorageResult<r2d2::PooledConnection<SqliteConnectionManager>> {
        Ok(self.readers.get()?)
    }

    fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let value = work(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Renames one directory row with `update` (`?1` the name, `?2` the id): a taken name is
    /// [`StorageError::AlreadyExists`], a missing row [`StorageError::NotFound`], both `what`.
    fn rename_row(
        &self,
        update: &str,
        what: &'static str,
        id: i64,
        name: &str,
    ) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx
                .execute(update, params![name, id])
                .map_err(unique(what))?;
            changed_one(changed, what)
        })
    }
}

fn ms(ts: Timestamp) -> i64 {
    ts.as_millisecond()
}

fn instant(millis: i64) -> StorageResult<Timestamp> {
    Timestamp::from_millisecond(millis)
        .map_err(|e| StorageError::Corrupt(format!("instant {millis}: {e}")))
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

fn role_from_row(
    role: &str,
    department_id: Option<i64>,
    section_id: Option<i64>,
    employee_id: Option<i64>,
) -> StorageResult<Role> {
    match (role, department_id, section_id, employee_id) {
        ("admin", ..) => Ok(Role::Admin),
        ("observer", ..) => Ok(Role::Observer),
        ("head", Some(id), None, _) => Ok(Role::Head {
            scope: Scope::Department(id),
        }),
        ("head", None, Some(id), _) => Ok(Role::Head {
            scope: Scope::Section(id),
        }),
        ("specialist", _, _, Some(employee_id)) => Ok(Role::Specialist { employee_id }),
        _ => Err(StorageError::Corrupt(format!("account role {role}"))),
    }
}

const ACCOUNT_COLUMNS: &str =
    "a.id, a.login, a.display_name, a.role, a.department_id, a.section_id, a.employee_id";

fn account_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    let role: String = row.get(3)?;
    let role = role_from_row(&role, row.get(4)?, row.get(5)?, row.get(6)?).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Account {
        id: row.get(0)?,
        login: row.get(1)?,
        display_name: row.get(2)?,
        role,
    })
}

/// Reads a pairing with its names and services.
fn load_pairing(conn: &Connection, id: Uuid) -> StorageResult<Option<PairingRecord>> {
    let row = conn
        .query_row(
            "SELECT p.tablet_id, p.employee_id, e.full_name, p.section_id, s.name,
                    p.department_id, d.name, p.started_at, p.ends_at, p.ended_at
             FROM pairings p
             JOIN employees e ON e.id = p.employee_id
             JOIN sections s ON s.id = p.section_id
             JOIN departments d ON d.id = p.department_id
             WHERE p.id = ?1",
            [id],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    NamedRef {
                        id: row.get(1)?,
                        name: row.get(2)?,
                    },
                    NamedRef {
                        id: row.get(3)?,
                        name: row.get(4)?,
                    },
                    NamedRef {
                        id: row.get(5)?,
                        name: row.get(6)?,
                    },
                    row.get::<_, i64>(7)?,
                    row.get::<_, i64>(8)?,
                    row.get::<_, Option<i64>>(9)?,
                ))
            },
        )
        .optional()?;
    let Some((tablet_id, employee, section, department, started_at, ends_at, ended_at)) = row
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT sv.id, sv.name FROM pairing_services ps JOIN services sv ON sv.id = ps.service_id
         WHERE ps.pairing_id = ?1 ORDER BY ps.position",
    )?;
    let services = stmt
        .query_map([id], |row| {
            Ok(NamedRef {
                id: row.get(0)?,
                name: row.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some(PairingRecord {
        pairing: Pairing {
            id,
            employee,
            section,
            department,
            services,
            started_at: instant(started_at)?,
            ends_at: instant(ends_at)?,
        },
        tablet_id,
        ended_at: optional_instant(ended_at)?,
    }))
}

/// expires_at, tablet_id, tablet name, confirmed_at, revoked_at.
type EnrolmentRow = (i64, Option<i64>, Option<String>, Option<i64>, Option<i64>);

/// What a sync needs to know about a pairing to accept a visit under it.
struct PairingForIngest {
    tablet_id: i64,
    employee_id: i64,
    section_id: i64,
    department_id: i64,
    services: Vec<i64>,
}

fn pairing_for_ingest(tx: &Transaction<'_>, id: Uuid) -> StorageResult<Option<PairingForIngest>> {
    let row = tx
        .prepare_cached(
            "SELECT tablet_id, employee_id, section_id, department_id FROM pairings WHERE id = ?1",
        )?
        .query_row([id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    let Some((tablet_id, employee_id, section_id, department_id)) = row else {
        return Ok(None);
    };
    let services = tx
        .prepare_cached("SELECT service_id FROM pairing_services WHERE pairing_id = ?1")?
        .query_map([id], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(Some(PairingForIngest {
        tablet_id,
        employee_id,
        section_id,
        department_id,
        services,
    }))
}

fn visit_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Visit, i64, i64)> {
    let rating: Option<u8> = row.get(5)?;
    let rating = rating.map(Rating::try_from).transpose().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Integer, Box::new(e))
    })?;
    let started: i64 = row.get(3)?;
    let ended: i64 = row.get(4)?;
    Ok((
        Visit {
            id: row.get(0)?,
            pairing_id: row.get(1)?,
            service_id: row.get(2)?,
            started_at: Timestamp::UNIX_EPOCH,
            ended_at: Timestamp::UNIX_EPOCH,
            rating,
            has_recording: row.get(6)?,
        },
        started,
        ended,
    ))
}

const VISIT_COLUMNS: &str =
    "id, pairing_id, service_id, started_at, ended_at, rating, has_recording";

fn finish_visit((mut visit, started, ended): (Visit, i64, i64)) -> StorageResult<Visit> {
    visit.started_at = instant(started)?;
    visit.ended_at = instant(ended)?;
    Ok(visit)
}

/// The visit as it reads back: instants are kept to the millisecond.
fn at_stored_precision(visit: &Visit) -> Visit {
    let truncate = |ts: Timestamp| Timestamp::from_millisecond(ts.as_millisecond()).unwrap_or(ts);
    Visit {
        started_at: truncate(visit.started_at),
        ended_at: truncate(visit.ended_at),
        ..visit.clone()
    }
}

/// Why a visit cannot be stored, judged before it touches the database.
fn check_visit_alone(visit: &Visit) -> Option<(RejectReason, String)> {
    if visit.ended_at < visit.started_at {
        return Some((
            RejectReason::InvalidInterval,
            "the visit ends before it starts".into(),
        ));
    }
    if visit.has_recording && visit.rating != Some(Rating::Bad) {
        return Some((
            RejectReason::RecordingNotAllowed,
            "only a visit rated Плохо may keep a recording".into(),
        ));
    }
    None
}

/// The name the totals' time zone is recorded under.
fn zone_name(zone: &TimeZone) -> String {
    zone.iana_name().map_or_else(
        || format!("{:?}", zone.to_fixed_offset().ok()),
        str::to_string,
    )
}

type TotalsKey = (i64, i64, i64, i64, i64, i64);
type SectionKey = (i64, i64, i64, i64);

/// Report totals to add: visits are counted in memory and written with one upsert per key, so a
/// batch of a hundred visits of one specialist costs a handful of writes, not hundreds.
#[derive(Default)]
pub struct TotalsAccumulator {
    totals: HashMap<TotalsKey, Tally>,
    sections: HashMap<SectionKey, Tally>,
}

impl TotalsAccumulator {
    /// Counts one visit (rating score 3, 2, 1 or none) at every level of its office-local date.
    pub fn add(
        &mut self,
        keys: &PeriodKeys,
        department_id: i64,
        section_id: i64,
        employee_id: i64,
        service_id: i64,
        score: Option<u8>,
    ) {
        let one = Tally::one(score);
        for level in Level::ALL {
            let period = keys.key(level);
            self.totals
                .entry((
                    level.code(),
                    period,
                    department_id,
                    section_id,
                    employee_id,
                    service_id,
                ))
                .or_default()
                .add(&one);
            self.sections
                .entry((level.code(), period, department_id, section_id))
                .or_default()
                .add(&one);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
    }

    /// Adds the counted visits to the stored totals and empties the accumulator.
    pub fn flush(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let mut totals = conn.prepare_cached(
            "INSERT INTO report_totals (level, period, department_id, section_id, employee_id,
                                        service_id, visits, good, medium, bad)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (level, period, department_id, section_id, employee_id, service_id)
             DO UPDATE SET visits = visits + excluded.visits, good = good + excluded.good,
                           medium = medium + excluded.medium, bad = bad + excluded.bad",
        )?;
        for ((level, period, department, section, employee, service), t) in self.totals.drain() {
            totals.execute(params![
                level, period, department, section, employee, service, t.visits, t.good, t.medium,
                t.bad
            ])?;
        }
        let mut sections = conn.prepare_cached(
            "INSERT INTO report_section_totals (level, period, department_id, section_id,
                                                visits, good, medium, bad)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (level, period, department_id, section_id)
             DO UPDATE SET visits = visits + excluded.visits, good = good + excluded.good,
                           medium = medium + excluded.medium, bad = bad + excluded.bad",
        )?;
        for ((level, period, department, section), t) in self.sections.drain() {
            sections.execute(params![
                level, period, department, section, t.visits, t.good, t.medium, t.bad
            ])?;
        }
        Ok(())
    }
}

/// Records the time zone the totals are kept in.
pub fn set_totals_zone(conn: &Connection, zone: &TimeZone) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO report_meta (key, value) VALUES ('time_zone', ?1)",
        [zone_name(zone)],
    )?;
    Ok(())
}

const BAD_VISIT_SELECT: &str = "
    SELECT v.id, v.department_id, v.section_id, s.name, v.employee_id, e.full_name, v.service_id,
           sv.name, v.ended_at - v.clock_offset_ms, v.has_recording, r.visit_id IS NOT NULL,
           r.duration_ms, r.purged_at, vd.correct, vd.comment, vd.account_id, a.display_name,
           vd.decided_at
    FROM visits v
    JOIN sections s ON s.id = v.section_id
    JOIN employees e ON e.id = v.employee_id
    JOIN services sv ON sv.id = v.service_id
    LEFT JOIN recordings r ON r.visit_id = v.id
    LEFT JOIN verdicts vd ON vd.visit_id = v.id
    LEFT JOIN accounts a ON a.id = vd.account_id";

fn bad_visit_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<BadVisitRow> {
    Ok(BadVisitRow {
        visit_id: row.get(0)?,
        department_id: row.get(1)?,
        section_id: row.get(2)?,
        section_name: row.get(3)?,
        employee_id: row.get(4)?,
        employee_name: row.get(5)?,
        service_id: row.get(6)?,
        service_name: row.get(7)?,
        rated_at: row.get(8)?,
        has_recording: row.get(9)?,
        stored: row.get(10)?,
        duration_ms: row.get(11)?,
        purged_at: row.get(12)?,
        correct: row.get(13)?,
        comment: row.get(14)?,
        decided_by_id: row.get(15)?,
        decided_by: row.get(16)?,
        decided_at: row.get(17)?,
    })
}

struct BadVisitRow {
    visit_id: Uuid,
    department_id: i64,
    section_id: i64,
    section_name: String,
    employee_id: i64,
    employee_name: String,
    service_id: i64,
    service_name: String,
    rated_at: i64,
    has_recording: bool,
    stored: bool,
    duration_ms: Option<u64>,
    purged_at: Option<i64>,
    correct: Option<bool>,
    comment: Option<String>,
    decided_by_id: Option<i64>,
    decided_by: Option<String>,
    decided_at: Option<i64>,
}

impl BadVisitRow {
    fn finish(self) -> StorageResult<BadVisit> {
        let recording = match (self.stored, self.purged_at, self.duration_ms) {
            (true, Some(at), _) => RecordingState::Purged { at: instant(at)? },
            (true, None, duration) => RecordingState::Stored {
                duration_ms: duration.unwrap_or(0),
            },
            (false, ..) if self.has_recording => RecordingState::Pending,
            (false, ..) => RecordingState::Missing,
        };
        let verdict = match (self.correct, self.decided_by_id, self.decided_at) {
            (Some(correct), Some(account_id), Some(at)) => Some(Verdict {
                correct,
                comment: self.comment.unwrap_or_default(),
                account_id,
                decided_by: self.decided_by.unwrap_or_default(),
                decided_at: instant(at)?,
            }),
            _ => None,
        };
        Ok(BadVisit {
            visit_id: self.visit_id,
            department_id: self.department_id,
            section_id: self.section_id,
            section_name: self.section_name,
            employee_id: self.employee_id,
            employee_name: self.employee_name,
            service_id: self.service_id,
            service_name: self.service_name,
            rated_at: instant(self.rated_at)?,
            recording,
            verdict,
        })
    }
}

/// The ratings of an employee in a window: the latest 500 at most, which no real desk reaches
/// in minutes but which bounds the work of a pathological backlog.
const WINDOW_COUNT: &str = "
    SELECT count(*), coalesce(sum(rating = 1), 0) FROM (
        SELECT rating FROM visits
        WHERE employee_id = ?1 AND ended_at - clock_offset_ms > ?2
          AND ended_at - clock_offset_ms <= ?3 AND rating IS NOT NULL
        ORDER BY ended_at - clock_offset_ms DESC LIMIT 500)";

const ALERT_SELECT: &str = "
    SELECT al.id, al.employee_id, e.full_name, al.section_id, s.name, al.department_id,
           al.window_start, al.window_end, al.rated, al.bad, al.raised_at, al.acknowledged_at,
           a.display_name
    FROM alerts al
    JOIN employees e ON e.id = al.employee_id
    JOIN sections s ON s.id = al.section_id
    LEFT JOIN accounts a ON a.id = al.acknowledged_by";

type AlertRow = (
    i64,
    i64,
    String,
    i64,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn alert_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
    ))
}

fn finish_alert(r: AlertRow) -> StorageResult<Alert> {
    Ok(Alert {
        id: r.0,
        employee_id: r.1,
        employee_name: r.2,
        section_id: r.3,
        section_name: r.4,
        department_id: r.5,
        window_start: instant(r.6)?,
        window_end: instant(r.7)?,
        rated: r.8,
        bad: r.9,
        raised_at: instant(r.10)?,
        acknowledged_at: optional_instant(r.11)?,
        acknowledged_by: r.12,
    })
}

fn load_alert(conn: &Connection, id: i64) -> StorageResult<Option<Alert>> {
    conn.prepare_cached(&format!("{ALERT_SELECT} WHERE al.id = ?1"))?
        .query_row([id], alert_from_row)
        .optional()?
        .map(finish_alert)
        .transpose()
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
    fn create_department(&self, name: &str) -> StorageResult<i64> {
        self.write(|tx| {
            tx.execute("INSERT INTO departments (name) VALUES (?1)", [name])
                .map_err(unique("department"))?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn create_section(&self, department_id: i64, name: &str) -> StorageResult<i64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO sections (department_id, name) VALUES (?1, ?2)",
                params![department_id, name],
            )
            .map_err(unique("section"))?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn create_employee(
        &self,
        section_id: i64,
        full_name: &str,
        position: &str,
    ) -> StorageResult<i64> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO employees (section_id, full_name, position) VALUES (?1, ?2, ?3)",
                params![section_id, full_name, position],
            )
            .map_err(unique("employee"))?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn create_service(&self, name: &str) -> StorageResult<i64> {
        self.write(|tx| {
            tx.execute("INSERT INTO services (name) VALUES (?1)", [name])
                .map_err(unique("service"))?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn set_section_services(&self, section_id: i64, service_ids: &[i64]) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM section_services WHERE section_id = ?1",
                [section_id],
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO section_services (section_id, service_id, position) VALUES (?1, ?2, ?3)",
            )?;
            for (position, service_id) in service_ids.iter().enumerate() {
                insert
                    .execute(params![section_id, service_id, position as i64])
                    .map_err(unique("section or service"))?;
            }
            Ok(())
        })
    }

    fn directory(&self) -> StorageResult<Directory> {
        let conn = self.reader()?;
        let services = conn
            .prepare("SELECT id, name FROM services ORDER BY name")?
            .query_map([], |row| {
                Ok(ServiceEntry {
                    id: row.get(0)?,
                    name: row.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut departments = conn
            .prepare("SELECT id, name FROM departments ORDER BY name")?
            .query_map([], |row| {
                Ok(DepartmentEntry {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    sections: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut sections_stmt =
            conn.prepare("SELECT id, name FROM sections WHERE department_id = ?1 ORDER BY name")?;
        let mut employees_stmt = conn.prepare(
            "SELECT id, full_name, position FROM employees WHERE section_id = ?1 ORDER BY full_name",
        )?;
        let mut services_stmt = conn.prepare(
            "SELECT service_id FROM section_services WHERE section_id = ?1 ORDER BY position",
        )?;
        for department in &mut departments {
            let sections = sections_stmt
                .query_map([department.id], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
            for (id, name) in sections {
                let employees = employees_stmt
                    .query_map([id], |row| {
                        Ok(EmployeeEntry {
                            id: row.get(0)?,
                            full_name: row.get(1)?,
                            position: row.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let service_ids = services_stmt
                    .query_map([id], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()?;
                department.sections.push(SectionEntry {
                    id,
                    name,
                    employees,
                    service_ids,
                });
            }
        }
        Ok(Directory {
            departments,
            services,
        })
    }

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

    fn create_account(&self, account: &NewAccount) -> StorageResult<i64> {
        let (department_id, section_id, employee_id) = match account.role {
            Role::Head {
                scope: Scope::Department(id),
            } => (Some(id), None, None),
            Role::Head {
                scope: Scope::Section(id),
            } => (None, Some(id), None),
            Role::Specialist { employee_id } => (None, None, Some(employee_id)),
            Role::Admin | Role::Observer => (None, None, None),
        };
        self.write(|tx| {
            tx.execute(
                "INSERT INTO accounts (login, display_name, password_hash, role, department_id,
                                       section_id, employee_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    account.login,
                    account.display_name,
                    account.password_hash,
                    account.role.name(),
                    department_id,
                    section_id,
                    employee_id,
                    ms(account.created_at)
                ],
            )
            .map_err(|e| match unique("account")(e) {
                StorageError::NotFound(_) => {
                    StorageError::NotFound("department, section or employee")
                }
                other => other,
            })?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn account_credentials(&self, login: &str) -> StorageResult<Option<(Account, String)>> {
        let conn = self.reader()?;
        let found = conn
            .query_row(
                &format!(
                    "SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM accounts a WHERE a.login = ?1"
                ),
                [login],
                |row| Ok((account_from_row(row)?, row.get::<_, String>(7)?)),
            )
            .optional()?;
        Ok(found)
    }

    fn create_session(
        &self,
        token_hash: &[u8; 32],
        account_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StorageResult<()> {
        self.write(|tx| {
            // Sessions that have run out are of no use to anyone: sweep them on the way.
            tx.execute("DELETE FROM sessions WHERE expires_at <= ?1", [ms(now)])?;
            tx.execute(
                "INSERT INTO sessions (token_hash, account_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![&token_hash[..], account_id, ms(now), ms(expires_at)],
            )?;
            Ok(())
        })
    }

    fn session_account(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<Account>> {
        let conn = self.reader()?;
        let found = conn
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM sessions s JOIN accounts a ON a.id = s.account_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2"
            ))?
            .query_row(params![&token_hash[..], ms(now)], account_from_row)
            .optional()?;
        Ok(found)
    }

    fn delete_session(&self, token_hash: &[u8; 32]) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                [&token_hash[..]],
            )?;
            Ok(())
        })
    }

    fn create_enrolment(&self, enrolment: &NewEnrolment) -> StorageResult<()> {
        self.write(|tx| {
            // Expired, unapproved codes free their code for reuse.
            tx.execute(
                "DELETE FROM enrolments WHERE tablet_id IS NULL AND expires_at <= ?1",
                [ms(enrolment.created_at)],
            )?;
            tx.execute(
                "INSERT INTO enrolments (id, code, device_description, app_version, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    enrolment.id,
                    enrolment.code,
                    enrolment.device_description,
                    enrolment.app_version,
                    ms(enrolment.created_at),
                    ms(enrolment.expires_at)
                ],
            )
            .map_err(unique("enrolment code"))?;
            Ok(())
        })
    }

    fn approve_enrolment(
        &self,
        code: &str,
        tablet_name: &str,
        now: Timestamp,
    ) -> StorageResult<i64> {
        self.write(|tx| {
            let enrolment: Option<(Uuid, String)> = tx
                .query_row(
                    "SELECT id, device_description FROM enrolments
                     WHERE code = ?1 AND tablet_id IS NULL AND expires_at > ?2",
                    params![code, ms(now)],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((enrolment_id, description)) = enrolment else {
                return Err(StorageError::NotFound("enrolment code"));
            };
            tx.execute(
                "INSERT INTO tablets (name, device_description, enrolled_at) VALUES (?1, ?2, ?3)",
                params![tablet_name, description, ms(now)],
            )?;
            let tablet_id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE enrolments SET tablet_id = ?1 WHERE id = ?2",
                params![tablet_id, enrolment_id],
            )?;
            Ok(tablet_id)
        })
    }

    fn enrolment_state(&self, id: Uuid, now: Timestamp) -> StorageResult<Option<EnrolmentState>> {
        let conn = self.reader()?;
        let row: Option<EnrolmentRow> = conn
            .query_row(
                "SELECT e.expires_at, e.tablet_id, t.name, t.confirmed_at, t.revoked_at
                 FROM enrolments e LEFT JOIN tablets t ON t.id = e.tablet_id WHERE e.id = ?1",
                [id],
                |row| {
                    Ok((
                        row.get(0)?,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    ))
                },
            )
            .optional()?;
        Ok(
            row.map(|(expires_at, tablet_id, name, confirmed_at, revoked_at)| {
                match (tablet_id, name, confirmed_at, revoked_at) {
                    (Some(tablet_id), Some(tablet_name), None, None) => EnrolmentState::Approved {
                        tablet_id,
                        tablet_name,
                    },
                    (None, ..) if expires_at > ms(now) => EnrolmentState::Pending {
                        // An expiry written by this server always converts back.
                        expires_at: Timestamp::from_millisecond(expires_at).unwrap_or(now),
                    },
                    _ => EnrolmentState::Closed,
                }
            }),
        )
    }

    fn issue_tablet_token(&self, tablet_id: i64, token_hash: &[u8; 32]) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE tablets SET token_hash = ?1
                 WHERE id = ?2 AND confirmed_at IS NULL AND revoked_at IS NULL",
                params![&token_hash[..], tablet_id],
            )?;
            if changed == 0 {
                return Err(StorageError::NotFound("unconfirmed tablet"));
            }
            Ok(())
        })
    }

    fn authenticate_tablet(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<TabletIdentity>> {
        let found: Option<(i64, String, bool)> = {
            let conn = self.reader()?;
            conn.prepare_cached(
                "SELECT id, name, confirmed_at IS NOT NULL FROM tablets
                 WHERE token_hash = ?1 AND revoked_at IS NULL",
            )?
            .query_row([&token_hash[..]], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?
        };
        let Some((id, name, confirmed)) = found else {
            return Ok(None);
        };
        if !confirmed {
            // First use: the credential has reached the tablet, so no new one may be issued.
            self.write(|tx| {
                tx.execute(
                    "UPDATE tablets SET confirmed_at = ?1 WHERE id = ?2 AND confirmed_at IS NULL",
                    params![ms(now), id],
                )?;
                Ok(())
            })?;
        }
        Ok(Some(TabletIdentity { id, name }))
    }

    fn revoke_tablet(&self, tablet_id: i64, now: Timestamp) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE tablets SET revoked_at = ?1, token_hash = NULL
                 WHERE id = ?2 AND revoked_at IS NULL",
                params![ms(now), tablet_id],
            )?;
            if changed == 0 {
                return Err(StorageError::NotFound("tablet"));
            }
            tx.execute(
                "UPDATE pairings SET ended_at = ?1, end_reason = ?2
                 WHERE tablet_id = ?3 AND ended_at IS NULL",
                params![ms(now), PairingEndReason::TabletRevoked.as_str(), tablet_id],
            )?;
            Ok(())
        })
    }

    fn tablets(&self) -> StorageResult<Vec<TabletInfo>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(
            "SELECT id, name, device_description, enrolled_at, revoked_at, last_seen_at,
                    app_version, queue_length, recordings_pending, free_storage_bytes,
                    microphone, clock_offset_ms
             FROM tablets ORDER BY name, id",
        )?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                    row.get::<_, Option<i64>>(5)?,
                    row.get::<_, Option<String>>(6)?,
                    row.get::<_, Option<i64>>(7)?,
                    row.get::<_, Option<i64>>(8)?,
                    row.get::<_, Option<i64>>(9)?,
                    row.get::<_, Option<String>>(10)?,
                    row.get::<_, Option<i64>>(11)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|r| {
                Ok(TabletInfo {
                    id: r.0,
                    name: r.1,
                    device_description: r.2,
                    enrolled_at: instant(r.3)?,
                    revoked_at: optional_instant(r.4)?,
                    last_seen_at: optional_instant(r.5)?,
                    app_version: r.6,
                    queue_length: r.7,
                    recordings_pending: r.8,
                    free_storage_bytes: r.9,
                    microphone: r.10,
                    clock_offset_ms: r.11,
                })
            })
            .collect()
    }

    fn create_pairing_request(&self, request: &NewPairingRequest) -> StorageResult<()> {
        self.write(|tx| {
            // Open codes that expired free their code; requests that led to a pairing stay.
            tx.execute(
                "DELETE FROM pairing_requests WHERE pairing_id IS NULL AND expires_at <= ?1",
                [ms(request.created_at)],
            )?;
            tx.execute(
                "INSERT INTO pairing_requests (id, tablet_id, code, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    request.id,
                    request.tablet_id,
                    request.code,
                    ms(request.created_at),
                    ms(request.expires_at)
                ],
            )
            .map_err(unique("pairing code"))?;
            Ok(())
        })
    }

    fn pairing_request_state(
        &self,
        request_id: Uuid,
        tablet_id: i64,
        now: Timestamp,
    ) -> StorageResult<Option<PairingRequestState>> {
        let conn = self.reader()?;
        let row: Option<(i64, Option<Uuid>)> = conn
            .query_row(
                "SELECT expires_at, pairing_id FROM pairing_requests WHERE id = ?1 AND tablet_id = ?2",
                params![request_id, tablet_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            None => None,
            Some((_, Some(pairing_id))) => Some(PairingRequestState::Paired { pairing_id }),
            Some((expires_at, None)) if expires_at > ms(now) => {
                Some(PairingRequestState::Pending {
                    expires_at: instant(expires_at)?,
                })
            }
            Some(_) => Some(PairingRequestState::Expired),
        })
    }

    fn claim_pairing_code(&self, claim: &PairingClaim) -> StorageResult<Pairing> {
        self.write(|tx| {
            let request: Option<(Uuid, i64)> = tx
                .query_row(
                    "SELECT r.id, r.tablet_id FROM pairing_requests r
                     JOIN tablets t ON t.id = r.tablet_id AND t.revoked_at IS NULL
                     WHERE r.code = ?1 AND r.pairing_id IS NULL AND r.expires_at > ?2",
                    params![claim.code, ms(claim.now)],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((request_id, tablet_id)) = request else {
                return Err(StorageError::NotFound("pairing code"));
            };
            let place: Option<(i64, i64)> = tx
                .query_row(
                    "SELECT e.section_id, s.department_id FROM employees e
                     JOIN sections s ON s.id = e.section_id WHERE e.id = ?1",
                    [claim.employee_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((section_id, department_id)) = place else {
                return Err(StorageError::NotFound("employee"));
            };
            tx.execute(
                "UPDATE pairings SET ended_at = ?1, end_reason = ?2
                 WHERE tablet_id = ?3 AND ended_at IS NULL AND ends_at > ?1",
                params![ms(claim.now), PairingEndReason::Replaced.as_str(), tablet_id],
            )?;
            tx.execute(
                "INSERT INTO pairings (id, tablet_id, employee_id, section_id, department_id, started_at, ends_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    claim.pairing_id,
                    tablet_id,
                    claim.employee_id,
                    section_id,
                    department_id,
                    ms(claim.now),
                    ms(claim.ends_at)
                ],
            )?;
            tx.execute(
                "INSERT INTO pairing_services (pairing_id, service_id, position)
                 SELECT ?1, service_id, position FROM section_services WHERE section_id = ?2",
                params![claim.pairing_id, section_id],
            )?;
            tx.execute(
                "UPDATE pairing_requests SET pairing_id = ?1 WHERE id = ?2",
                params![claim.pairing_id, request_id],
            )?;
            load_pairing(tx, claim.pairing_id)?
                .map(|record| record.pairing)
                .ok_or(StorageError::NotFound("pairing"))
        })
    }

    fn pairing(&self, id: Uuid) -> StorageResult<Option<PairingRecord>> {
        let conn = self.reader()?;
        load_pairing(&conn, id)
    }

    fn tablet_pairing_status(
        &self,
        tablet_id: i64,
        now: Timestamp,
    ) -> StorageResult<PairingStatus> {
        let conn = self.reader()?;
        let latest: Option<(Uuid, i64, Option<i64>, Option<String>)> = conn
            .prepare_cached(
                "SELECT id, ends_at, ended_at, end_reason FROM pairings
                 WHERE tablet_id = ?1 ORDER BY started_at DESC LIMIT 1",
            )?
            .query_row([tablet_id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()?;
        let Some((id, ends_at, ended_at, end_reason)) = latest else {
            return Ok(PairingStatus::None);
        };
        match (ended_at, end_reason) {
            (Some(ended_at), Some(reason)) => Ok(PairingStatus::Ended {
                pairing_id: id,
                reason: PairingEndReason::parse(&reason)
                    .ok_or_else(|| StorageError::Corrupt(format!("pairing end reason {reason}")))?,
                ended_at: instant(ended_at)?,
            }),
            _ if ends_at <= ms(now) => Ok(PairingStatus::Ended {
                pairing_id: id,
                reason: PairingEndReason::WorkdayOver,
                ended_at: instant(ends_at)?,
            }),
            _ => {
                let record = load_pairing(&conn, id)?.ok_or(StorageError::NotFound("pairing"))?;
                Ok(PairingStatus::Active {
                    pairing: record.pairing,
                })
            }
        }
    }

    fn active_pairings_of_employee(
        &self,
        employee_id: i64,
        now: Timestamp,
    ) -> StorageResult<Vec<Pairing>> {
        let conn = self.reader()?;
        let ids = conn
            .prepare_cached(
                "SELECT id FROM pairings
                 WHERE employee_id = ?1 AND ended_at IS NULL AND ends_at > ?2
                 ORDER BY started_at",
            )?
            .query_map(params![employee_id, ms(now)], |row| row.get::<_, Uuid>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut pairings = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = load_pairing(&conn, id)? {
                pairings.push(record.pairing);
            }
        }
        Ok(pairings)
    }

    fn end_pairing(
        &self,
        id: Uuid,
        reason: PairingEndReason,
        now: Timestamp,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE pairings SET ended_at = ?1, end_reason = ?2
                 WHERE id = ?3 AND ended_at IS NULL AND ends_at > ?1",
                params![ms(now), reason.as_str(), id],
            )?;
            Ok(changed > 0)
        })
    }

    fn ingest_visits(&self, sync: &IngestBatch<'_>) -> StorageResult<Ingested> {
        self.write(|tx| {
            let received_at = ms(sync.received_at);
            let mut totals = TotalsAccumulator::default();
            let mut newly_stored = Vec::new();
            let mut pairings: HashMap<Uuid, Option<PairingForIngest>> = HashMap::new();
            let mut existing = tx.prepare_cached(&format!(
                "SELECT {VISIT_COLUMNS} FROM visits WHERE id = ?1"
            ))?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO visits (id, pairing_id, tablet_id, employee_id, section_id, department_id,
                                     service_id, started_at, ended_at, rating, has_recording,
                                     received_at, clock_offset_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            let mut outcomes = Vec::with_capacity(sync.visits.len());
            for visit in sync.visits {
                let stored = existing
                    .query_row([visit.id], visit_from_row)
                    .optional()?
                    .map(finish_visit)
                    .transpose()?;
                let outcome = match stored {
                    Some(stored) if stored == at_stored_precision(visit) => {
                        VisitOutcome::AlreadyStored
                    }
                    Some(_) => VisitOutcome::Rejected {
                        reason: RejectReason::Conflict,
                        message: "a different visit with this id is already stored".into(),
                    },
                    None => {
                        if let Entry::Vacant(slot) = pairings.entry(visit.pairing_id) {
                            slot.insert(pairing_for_ingest(tx, visit.pairing_id)?);
                        }
                        let pairing = pairings
                            .get(&visit.pairing_id)
                            .and_then(Option::as_ref)
                            .filter(|p| p.tablet_id == sync.tablet_id);
                        match (pairing, check_visit_alone(visit)) {
                            (_, Some((reason, message))) => VisitOutcome::Rejected { reason, message },
                            (None, None) => VisitOutcome::Rejected {
                                reason: RejectReason::UnknownPairing,
                                message: "this tablet was never issued that pairing".into(),
                            },
                            (Some(p), None) if !p.services.contains(&visit.service_id) => {
                                VisitOutcome::Rejected {
                                    reason: RejectReason::UnknownService,
                                    message: format!(
                                        "service {} was not offered under this pairing",
                                        visit.service_id
                                    ),
                                }
                            }
                            (Some(p), None) => {
                                insert.execute(params![
                                    visit.id,
                                    visit.pairing_id,
                                    sync.tablet_id,
                                    p.employee_id,
                                    p.section_id,
                                    p.department_id,
                                    visit.service_id,
                                    ms(visit.started_at),
                                    ms(visit.ended_at),
                                    visit.rating.map(Rating::score),
                                    visit.has_recording,
                                    received_at,
                                    sync.clock_offset_ms
                                ])?;
                                let at_ms =
                                    visit_instant_ms(ms(visit.ended_at), sync.clock_offset_ms);
                                let at = Timestamp::from_millisecond(at_ms)
                                    .unwrap_or(visit.ended_at);
                                let score = visit.rating.map(Rating::score);
                                totals.add(
                                    &PeriodKeys::at(at, &self.zone),
                                    p.department_id,
                                    p.section_id,
                                    p.employee_id,
                                    visit.service_id,
                                    score,
                                );
                                newly_stored.push(VisitPlace {
                                    visit_id: visit.id,
                                    department_id: p.department_id,
                                    section_id: p.section_id,
                                    employee_id: p.employee_id,
                                    rating: score,
                                    at,
                                });
                                VisitOutcome::Stored
                            }
                        }
                    }
                };
                outcomes.push(outcome);
            }
            let health = sync.health;
            tx.execute(
                "UPDATE tablets SET last_seen_at = ?1, app_version = ?2, queue_length = ?3,
                        recordings_pending = ?4, free_storage_bytes = ?5, microphone = ?6,
                        clock_offset_ms = ?7
                 WHERE id = ?8",
                params![
                    received_at,
                    health.app_version,
                    health.queue_length,
                    health.recordings_pending,
                    i64::try_from(health.free_storage_bytes).unwrap_or(i64::MAX),
                    health.microphone.as_str(),
                    sync.clock_offset_ms,
                    sync.tablet_id
                ],
            )?;
            tx.execute(
                "INSERT INTO sync_log (tablet_id, received_at, clock_offset_ms, visits)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    sync.tablet_id,
                    received_at,
                    sync.clock_offset_ms,
                    sync.visits.len() as i64
                ],
            )?;
            totals.flush(tx)?;
            Ok(Ingested {
                outcomes,
                stored: newly_stored,
            })
        })
    }

    fn visit_of_tablet(&self, visit_id: Uuid, tablet_id: i64) -> StorageResult<Option<Visit>> {
        let conn = self.reader()?;
        conn.prepare_cached(&format!(
            "SELECT {VISIT_COLUMNS} FROM visits WHERE id = ?1 AND tablet_id = ?2"
        ))?
        .query_row(params![visit_id, tablet_id], visit_from_row)
        .optional()?
        .map(finish_visit)
        .transpose()
    }

    fn recording_upload(&self, visit_id: Uuid) -> StorageResult<Option<UploadPromise>> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT size_bytes, sha256 FROM recording_uploads WHERE visit_id = ?1",
                [visit_id],
                |row| {
                    Ok(UploadPromise {
                        size_bytes: row.get(0)?,
                        sha256: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn begin_recording_upload(
        &self,
        visit_id: Uuid,
        promise: &UploadPromise,
        now: Timestamp,
    ) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO recording_uploads (visit_id, size_bytes, sha256, started_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![visit_id, promise.size_bytes, promise.sha256, ms(now)],
            )?;
            Ok(())
        })
    }

    fn abandon_recording_upload(&self, visit_id: Uuid) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM recording_uploads WHERE visit_id = ?1",
                [visit_id],
            )?;
            Ok(())
        })
    }

    fn complete_recording(&self, visit_id: Uuid, recording: &StoredRecording) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO recordings (visit_id, size_bytes, sha256, duration_ms, stored_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    visit_id,
                    recording.size_bytes,
                    recording.sha256,
                    recording.duration_ms,
                    ms(recording.stored_at)
                ],
            )
            .map_err(unique("recording"))?;
            tx.execute(
                "DELETE FROM recording_uploads WHERE visit_id = ?1",
                [visit_id],
            )?;
            Ok(())
        })
    }

    fn recording(&self, visit_id: Uuid) -> StorageResult<Option<StoredRecording>> {
        let conn = self.reader()?;
        let row: Option<(u64, String, u64, i64)> = conn
            .query_row(
                "SELECT size_bytes, sha256, duration_ms, stored_at FROM recordings WHERE visit_id = ?1",
                [visit_id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        row.map(|(size_bytes, sha256, duration_ms, stored_at)| {
            Ok(StoredRecording {
                size_bytes,
                sha256,
                duration_ms,
                stored_at: instant(stored_at)?,
            })
        })
        .transpose()
    }

    fn totals(
        &self,
        filter: &ReportFilter,
        group: GroupBy,
        span: PeriodSpan,
    ) -> StorageResult<Vec<(i64, Tally)>> {
        // Per-section totals answer whatever does not need the employee or the service.
        let by_section = filter.employee_id.is_none()
            && filter.service_id.is_none()
            && !matches!(group, GroupBy::Employee | GroupBy::Service);
        let key = match group {
            GroupBy::Department => "department_id",
            GroupBy::Section => "section_id",
            GroupBy::Employee => "employee_id",
            GroupBy::Service => "service_id",
            GroupBy::Period => "period",
            GroupBy::Total => "0",
        };
        let sql = if by_section {
            format!(
                "SELECT {key}, sum(visits), sum(good), sum(medium), sum(bad)
                 FROM report_section_totals
                 WHERE level = ?1 AND period BETWEEN ?2 AND ?3
                   AND (?4 IS NULL OR department_id = ?4) AND (?5 IS NULL OR section_id = ?5)
                 GROUP BY 1"
            )
        } else {
            format!(
                "SELECT {key}, sum(visits), sum(good), sum(medium), sum(bad)
                 FROM report_totals
                 WHERE level = ?1 AND period BETWEEN ?2 AND ?3
                   AND (?4 IS NULL OR department_id = ?4) AND (?5 IS NULL OR section_id = ?5)
                   AND (?6 IS NULL OR employee_id = ?6) AND (?7 IS NULL OR service_id = ?7)
                 GROUP BY 1"
            )
        };
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut bind = vec![
            rusqlite::types::Value::Integer(span.level.code()),
            rusqlite::types::Value::Integer(span.from),
            rusqlite::types::Value::Integer(span.to),
        ];
        let optional = |id: Option<i64>| {
            id.map_or(
                rusqlite::types::Value::Null,
                rusqlite::types::Value::Integer,
            )
        };
        bind.push(optional(filter.department_id));
        bind.push(optional(filter.section_id));
        if !by_section {
            bind.push(optional(filter.employee_id));
            bind.push(optional(filter.service_id));
        }
        let rows = stmt
            .query_map(rusqlite::params_from_iter(bind), |row| {
                Ok((
                    row.get(0)?,
                    Tally {
                        visits: row.get(1)?,
                        good: row.get(2)?,
                        medium: row.get(3)?,
                        bad: row.get(4)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn rebuild_totals(&self) -> StorageResult<u64> {
        self.write(|tx| {
            tx.execute("DELETE FROM report_totals", [])?;
            tx.execute("DELETE FROM report_section_totals", [])?;
            let mut totals = TotalsAccumulator::default();
            let mut stmt = tx.prepare(
                "SELECT department_id, section_id, employee_id, service_id,
                        ended_at - clock_offset_ms, rating
                 FROM visits",
            )?;
            let mut rows = stmt.query([])?;
            let mut count = 0u64;
            while let Some(row) = rows.next()? {
                let at: i64 = row.get(4)?;
                let keys = PeriodKeys::at(instant(at)?, &self.zone);
                totals.add(
                    &keys,
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(5)?,
                );
                count += 1;
            }
            drop(rows);
            drop(stmt);
            totals.flush(tx)?;
            set_totals_zone(tx, &self.zone)?;
            Ok(count)
        })
    }

    fn bad_visits(&self, query: &BadVisitQuery) -> StorageResult<Vec<BadVisit>> {
        let conn = self.reader()?;
        let f = &query.filter;
        let mut stmt = conn.prepare_cached(&format!(
            "{BAD_VISIT_SELECT}
             WHERE v.rating = 1
               AND (?1 IS NULL OR v.department_id = ?1) AND (?2 IS NULL OR v.section_id = ?2)
               AND (?3 IS NULL OR v.employee_id = ?3) AND (?4 IS NULL OR v.service_id = ?4)
               AND (?5 = 0 OR vd.visit_id IS NULL)
             ORDER BY v.ended_at - v.clock_offset_ms DESC, v.id DESC
             LIMIT ?6 OFFSET ?7"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    f.department_id,
                    f.section_id,
                    f.employee_id,
                    f.service_id,
                    query.undecided_only,
                    query.limit,
                    query.offset
                ],
                bad_visit_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(BadVisitRow::finish).collect()
    }

    fn bad_visit(&self, visit_id: Uuid) -> StorageResult<Option<BadVisit>> {
        let conn = self.reader()?;
        conn.prepare_cached(&format!(
            "{BAD_VISIT_SELECT} WHERE v.id = ?1 AND v.rating = 1"
        ))?
        .query_row([visit_id], bad_visit_from_row)
        .optional()?
        .map(BadVisitRow::finish)
        .transpose()
    }

    fn record_verdict(
        &self,
        visit_id: Uuid,
        account_id: i64,
        correct: bool,
        comment: &str,
        now: Timestamp,
    ) -> StorageResult<()> {
        self.write(|tx| {
            let bad: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM visits WHERE id = ?1 AND rating = 1",
                    [visit_id],
                    |row| row.get(0),
                )
                .optional()?;
            if bad.is_none() {
                return Err(StorageError::NotFound("visit rated Плохо"));
            }
            tx.execute(
                "INSERT OR REPLACE INTO verdicts (visit_id, correct, comment, account_id, decided_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![visit_id, correct, comment, account_id, ms(now)],
            )?;
            Ok(())
        })
    }

    fn log_audit(&self, event: &AuditEvent) -> StorageResult<bool> {
        self.write(|tx| {
            let changed = tx.execute(
                "INSERT OR IGNORE INTO audit_log (at, account_id, action, visit_id, session_tag, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    ms(event.at),
                    event.account_id,
                    event.action.as_str(),
                    event.visit_id,
                    event.session_tag,
                    event.detail
                ],
            )?;
            Ok(changed > 0)
        })
    }

    fn audit_log(&self, limit: u32, before: Option<i64>) -> StorageResult<Vec<AuditEntry>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT l.id, l.at, a.login, a.display_name, l.action, l.visit_id, l.detail
             FROM audit_log l JOIN accounts a ON a.id = l.account_id
             WHERE (?1 IS NULL OR l.id < ?1)
             ORDER BY l.id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![before, limit], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, Option<Uuid>>(5)?,
                    row.get::<_, String>(6)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(id, at, login, name, action, visit_id, detail)| {
                Ok(AuditEntry {
                    id,
                    at: instant(at)?,
                    account_login: login,
                    account_name: name,
                    action: AuditAction::parse(&action)
                        .ok_or_else(|| StorageError::Corrupt(format!("audit action {action}")))?,
                    visit_id,
                    detail,
                })
            })
            .collect()
    }

    fn check_bad_share(
        &self,
        employee_id: i64,
        window_end: Timestamp,
        rule: &AlertRule,
        now: Timestamp,
    ) -> StorageResult<Option<Alert>> {
        let end = ms(window_end);
        let start = end.saturating_sub(rule.window.as_millis().clamp(0, i64::MAX.into()) as i64);
        let crosses = |conn: &Connection| -> StorageResult<Option<(i64, i64)>> {
            let (rated, bad): (i64, i64) = conn
                .prepare_cached(WINDOW_COUNT)?
                .query_row(params![employee_id, start, end], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?;
            let crossed = rated >= rule.min_ratings.max(1)
                && (bad as f64) * 100.0 >= rule.bad_share_percent * rated as f64;
            Ok(crossed.then_some((rated, bad)))
        };
        // Most checks find nothing: look on a reader first, take the writer only to raise.
        let reader = self.reader()?;
        let quiet = crosses(&reader)?.is_none();
        drop(reader);
        if quiet {
            return Ok(None);
        }
        let id = self.write(|tx| {
            let Some((rated, bad)) = crosses(tx)? else {
                return Ok(None);
            };
            let covered: Option<i64> = tx
                .prepare_cached(
                    "SELECT id FROM alerts
                     WHERE employee_id = ?1 AND window_end > ?2 AND window_start < ?3 LIMIT 1",
                )?
                .query_row(params![employee_id, start, end], |row| row.get(0))
                .optional()?;
            if covered.is_some() {
                return Ok(None);
            }
            let (section_id, department_id): (i64, i64) = tx
                .prepare_cached(
                    "SELECT section_id, department_id FROM visits
                     WHERE employee_id = ?1 AND ended_at - clock_offset_ms > ?2
                       AND ended_at - clock_offset_ms <= ?3
                     ORDER BY ended_at - clock_offset_ms DESC LIMIT 1",
                )?
                .query_row(params![employee_id, start, end], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?;
            tx.execute(
                "INSERT INTO alerts (employee_id, section_id, department_id, window_start,
                                     window_end, rated, bad, raised_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    employee_id,
                    section_id,
                    department_id,
                    start,
                    end,
                    rated,
                    bad,
                    ms(now)
                ],
            )?;
            Ok(Some(tx.last_insert_rowid()))
        })?;
        match id {
            Some(id) => self.alert(id),
            None => Ok(None),
        }
    }

    fn alerts(
        &self,
        filter: &ReportFilter,
        open_only: bool,
        limit: u32,
    ) -> StorageResult<Vec<Alert>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "{ALERT_SELECT}
             WHERE (?1 IS NULL OR al.department_id = ?1) AND (?2 IS NULL OR al.section_id = ?2)
               AND (?3 IS NULL OR al.employee_id = ?3) AND (?4 = 0 OR al.acknowledged_at IS NULL)
             ORDER BY al.raised_at DESC, al.id DESC LIMIT ?5"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    filter.department_id,
                    filter.section_id,
                    filter.employee_id,
                    open_only,
                    limit
                ],
                alert_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(finish_alert).collect()
    }

    fn alert(&self, id: i64) -> StorageResult<Option<Alert>> {
        let conn = self.reader()?;
        load_alert(&conn, id)
    }

    fn acknowledge_alert(&self, id: i64, account_id: i64, now: Timestamp) -> StorageResult<bool> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE alerts SET acknowledged_at = ?1, acknowledged_by = ?2
                 WHERE id = ?3 AND acknowledged_at IS NULL",
                params![ms(now), account_id, id],
            )?;
            Ok(changed > 0)
        })
    }

    fn recordings_rated_before(
        &self,
        rated_before: Timestamp,
        limit: u32,
    ) -> StorageResult<Vec<Uuid>> {
        let conn = self.reader()?;
        let ids = conn
            .prepare_cached(
                "SELECT r.visit_id FROM recordings r JOIN visits v ON v.id = r.visit_id
                 WHERE r.purged_at IS NULL AND v.ended_at - v.clock_offset_ms < ?1
                 LIMIT ?2",
            )?
            .query_map(params![ms(rated_before), limit], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<Uuid>>>()?;
        Ok(ids)
    }

    fn mark_recording_purged(&self, visit_id: Uuid, now: Timestamp) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE recordings SET purged_at = ?1 WHERE visit_id = ?2 AND purged_at IS NULL",
                params![ms(now), visit_id],
            )?;
            Ok(())
        })
    }

    fn rename_department(&self, id: i64, name: &str) -> StorageResult<()> {
        self.rename_row(
            "UPDATE departments SET name = ?1 WHERE id = ?2",
            "department",
            id,
            name,
        )
    }

    fn rename_section(&self, id: i64, name: &str) -> StorageResult<()> {
        self.rename_row(
            "UPDATE sections SET name = ?1 WHERE id = ?2",
            "section",
            id,
            name,
        )
    }

    fn update_employee(
        &self,
        id: i64,
        section_id: i64,
        full_name: &str,
        position: &str,
    ) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE employees SET section_id = ?1, full_name = ?2, position = ?3 WHERE id = ?4",
                    params![section_id, full_name, position, id],
                )
                .map_err(unique("section"))?;
            changed_one(changed, "employee")
        })
    }

    fn rename_service(&self, id: i64, name: &str) -> StorageResult<()> {
        self.rename_row(
            "UPDATE services SET name = ?1 WHERE id = ?2",
            "service",
            id,
            name,
        )
    }

    fn rename_tablet(&self, id: i64, name: &str) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE tablets SET name = ?1 WHERE id = ?2",
                params![name, id],
            )?;
            changed_one(changed, "tablet")
        })
    }

    fn accounts(&self) -> StorageResult<Vec<AccountSummary>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare(&format!(
                "SELECT {ACCOUNT_COLUMNS}, a.created_at FROM accounts a ORDER BY a.login"
            ))?
            .query_map([], |row| {
                Ok((account_from_row(row)?, row.get::<_, i64>(7)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(account, created_at)| {
                Ok(AccountSummary {
                    account,
                    created_at: instant(created_at)?,
                })
            })
            .collect()
    }

    fn set_password(&self, account_id: i64, password_hash: &str) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE accounts SET password_hash = ?1 WHERE id = ?2",
                params![password_hash, account_id],
            )?;
            changed_one(changed, "account")?;
            tx.execute("DELETE FROM sessions WHERE account_id = ?1", [account_id])?;
            Ok(())
        })
    }

    fn checkpoint(&self) -> StorageResult<()> {
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
