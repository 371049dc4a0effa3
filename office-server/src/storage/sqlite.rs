//! The SQLite backend: one writer connection behind a mutex (SQLite has one writer anyway, and
//! waiting on a mutex is cheaper than on `SQLITE_BUSY`), a small pool of readers, WAL mode.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use rusqlite_migration::{M, Migrations};
use shared_model::{
    NamedRef, Pairing, PairingEndReason, PairingStatus, Rating, RejectReason, Visit, VisitOutcome,
};
use uuid::Uuid;

use super::*;

const MIGRATIONS: &[&str] = &[include_str!("../../migrations/0001_initial.sql")];

/// How many read connections the pool keeps.
const READERS: u32 = 4;

pub struct SqliteStorage {
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
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
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> StorageResult<Self> {
        let mut writer = Connection::open(path)?;
        configure_connection(&writer)?;
        migrations().to_latest(&mut writer)?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_init(|conn| {
                conn.busy_timeout(Duration::from_secs(5))?;
                conn.pragma_update(None, "foreign_keys", "ON")
            });
        let readers = r2d2::Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .build(manager)?;
        Ok(Self {
            writer: Mutex::new(writer),
            readers,
        })
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

    fn ingest(&self, sync: &IngestBatch<'_>) -> StorageResult<Vec<VisitOutcome>> {
        self.write(|tx| {
            let received_at = ms(sync.received_at);
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
            Ok(outcomes)
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
