//! The tablet's database: credential, pairing, the visit in progress, the outbox of finished
//! visits, and the queue of recordings to upload.
//!
//! One SQLite file (bundled SQLite, WAL, `synchronous=FULL`, migrations in
//! `kiosk-core/migrations/` run by rusqlite_migration). The API is blocking: call it from
//! `spawn_blocking` or a thread of its own. [`Store`] is `Send + Sync`; one connection behind a
//! mutex serialises the work, which is a handful of small transactions a minute on a tablet.
//!
//! What stays on the tablet, and for how long:
//! - a finished visit is one `outbox` row (the rating and its outbox entry are the same row, so
//!   they are written together by construction) until the server answers `stored` or
//!   `already_stored`; then the row is deleted;
//! - a visit the server rejects moves to `rejected_visits` and stays there, counted;
//! - a Плохо visit with a recording also has a tiny `awaiting_recording` row from
//!   [`Store::finish_visit`] until its recording is uploaded or given up, so that
//!   [`Store::visit_wants_recording`] still answers after the visit itself left the outbox;
//! - the recording file is the caller's: the sync loop deletes it after the server confirmed its
//!   checksum, then calls [`Store::recording_done`].

use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use ed25519_dalek::SigningKey;
use jiff::Timestamp;
use rand::TryRng;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use rusqlite_migration::Migrations;
use shared_model::{
    EnrolmentStarted, FeedbackLinks, Pairing, Rating, Visit, VisitAck, VisitOutcome,
};
use sqlite_db::{OpenError, Writer, millis as ms};
use uuid::Uuid;

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_feedback_links.sql"),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("tablet database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("tablet database: {0}")]
    Open(#[from] OpenError),
    #[error("the tablet database holds an unreadable value: {0}")]
    Corrupt(String),
    #[error("the recording path {0:?} is not UTF-8")]
    PathNotUtf8(PathBuf),
    /// Only a visit finished as Плохо with `has_recording` takes a recording, and only until
    /// its recording is done or given up.
    #[error("visit {0} takes no recording")]
    RecordingNotWanted(Uuid),
    #[error("the operating system's random generator failed: {0}")]
    Random(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// This tablet's device credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub tablet_id: i64,
    pub tablet_name: String,
    pub device_token: String,
}

impl std::fmt::Debug for Credentials {
    // The token is a secret: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tablet_id", &self.tablet_id)
            .field("tablet_name", &self.tablet_name)
            .field("device_token", &"<secret>")
            .finish()
    }
}

/// A visit started and not yet finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveVisit {
    pub id: Uuid,
    pub pairing_id: Uuid,
    pub service_id: i64,
    pub started_at: Timestamp,
}

/// What waits on the tablet, for the staff panel and the health report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Finished visits not yet acknowledged by the server.
    pub queued: u32,
    /// Visits the server refused for good, kept aside.
    pub rejected: u32,
    /// Encoded recordings waiting for upload.
    pub recordings_pending: u32,
    /// Recordings given up (refused by the server, or their file was lost).
    pub recordings_dropped: u32,
}

/// An encoded recording of a Плохо visit, waiting for upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecording {
    pub visit_id: Uuid,
    pub path: PathBuf,
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
}

/// A visit the server refused, as kept aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedVisit {
    pub visit: Visit,
    /// The server's reason code (`unknown_pairing`, `conflict`, …).
    pub reason: String,
    pub message: String,
    pub rejected_at: Timestamp,
}

/// A recording given up, as counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedRecording {
    pub visit_id: Uuid,
    /// A short code: `checksum_mismatch`, `invalid_recording`, `file_missing`, …
    pub reason: String,
    pub dropped_at: Timestamp,
}

/// What [`Store::apply_acks`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AckSummary {
    /// Visits removed from the outbox because the server holds them.
    pub removed: usize,
    /// Visits moved aside because the server refused them.
    pub rejected: usize,
    /// Acknowledgements for ids that were not in the outbox (a repeated answer).
    pub unknown: usize,
}

/// One connection (the project's [`Writer`]) serialises the work: a handful of small
/// transactions a minute on a tablet.
pub struct Store {
    db: Writer,
}

/// The migrations of the tablet database.
pub fn migrations() -> Migrations<'static> {
    sqlite_db::migrations(MIGRATIONS)
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<Store> {
        let db = sqlite_db::open_writer(path, MIGRATIONS)?;
        tracing::debug!(path = %path.display(), "tablet store open");
        Ok(Store { db })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.db.lock()
    }

    fn write<T>(&self, work: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        self.db.write(work)
    }

    // ---- provisioning ----

    pub fn credentials(&self) -> StoreResult<Option<Credentials>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT tablet_id, tablet_name, device_token FROM credentials WHERE id = 1",
                [],
                |row| {
                    Ok(Credentials {
                        tablet_id: row.get(0)?,
                        tablet_name: row.get(1)?,
                        device_token: row.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Keeps the credential of an approved enrolment, and closes the pending enrolment.
    pub fn save_credentials(&self, c: &Credentials) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO credentials (id, tablet_id, tablet_name, device_token)
                 VALUES (1, ?1, ?2, ?3)",
                params![c.tablet_id, c.tablet_name, c.device_token],
            )?;
            tx.execute("DELETE FROM pending_enrolment", [])?;
            // A new credential may name another tablet: its links are learnt again.
            tx.execute(
                "UPDATE feedback_signing SET base_url = NULL, tablet_id = NULL",
                [],
            )?;
            Ok(())
        })
    }

    /// After the server refused the credential (401). The outbox, rejected visits and queued
    /// recordings stay; the pairing too (the caller decides, the server has ended it).
    pub fn forget_credentials(&self) -> StoreResult<()> {
        self.conn().execute("DELETE FROM credentials", [])?;
        Ok(())
    }

    /// Forgets the credential only if it is still `device_token` (the one the server refused),
    /// so that a credential stored meanwhile by a new enrolment survives. True if forgotten.
    pub fn forget_credentials_if(&self, device_token: &str) -> StoreResult<bool> {
        let deleted = self.conn().execute(
            "DELETE FROM credentials WHERE device_token = ?1",
            [device_token],
        )?;
        Ok(deleted > 0)
    }

    pub fn pending_enrolment(&self) -> StoreResult<Option<EnrolmentStarted>> {
        let row = self
            .conn()
            .query_row(
                "SELECT enrolment_id, code, expires_at FROM pending_enrolment WHERE id = 1",
                [],
                |row| {
                    Ok((
                        row.get::<_, Uuid>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(enrolment_id, code, expires_at)| {
            Ok(EnrolmentStarted {
                enrolment_id,
                code,
                expires_at: instant(expires_at)?,
            })
        })
        .transpose()
    }

    pub fn save_pending_enrolment(&self, e: &EnrolmentStarted) -> StoreResult<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO pending_enrolment (id, enrolment_id, code, expires_at)
             VALUES (1, ?1, ?2, ?3)",
            params![e.enrolment_id, e.code, ms(e.expires_at)],
        )?;
        Ok(())
    }

    pub fn clear_pending_enrolment(&self) -> StoreResult<()> {
        self.conn().execute("DELETE FROM pending_enrolment", [])?;
        Ok(())
    }

    // ---- pairing ----

    pub fn pairing(&self) -> StoreResult<Option<Pairing>> {
        let json: Option<String> = self
            .conn()
            .query_row("SELECT pairing FROM pairing WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("pairing: {e}")))
        })
        .transpose()
    }

    pub fn save_pairing(&self, p: &Pairing) -> StoreResult<()> {
        let json =
            serde_json::to_string(p).map_err(|e| StoreError::Corrupt(format!("pairing: {e}")))?;
        self.conn().execute(
            "INSERT OR REPLACE INTO pairing (id, pairing) VALUES (1, ?1)",
            [json],
        )?;
        Ok(())
    }

    pub fn clear_pairing(&self) -> StoreResult<()> {
        self.conn().execute("DELETE FROM pairing", [])?;
        Ok(())
    }

    // ---- visits ----

    /// Records the visit in progress (replacing any other: there is one desk, one visit).
    pub fn begin_visit(&self, v: &ActiveVisit) -> StoreResult<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO active_visit (id, visit_id, pairing_id, service_id, started_at)
             VALUES (1, ?1, ?2, ?3, ?4)",
            params![v.id, v.pairing_id, v.service_id, ms(v.started_at)],
        )?;
        Ok(())
    }

    pub fn active_visit(&self) -> StoreResult<Option<ActiveVisit>> {
        let row = self
            .conn()
            .query_row(
                "SELECT visit_id, pairing_id, service_id, started_at FROM active_visit WHERE id = 1",
                [],
                |row| {
                    Ok((
                        row.get::<_, Uuid>(0)?,
                        row.get::<_, Uuid>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(id, pairing_id, service_id, started_at)| {
            Ok(ActiveVisit {
                id,
                pairing_id,
                service_id,
                started_at: instant(started_at)?,
            })
        })
        .transpose()
    }

    /// Writes the finished visit (rated or not) as its outbox entry, notes that it awaits its
    /// recording if it is Плохо with `has_recording`, and clears the active visit if it is this
    /// one: one transaction, `synchronous=FULL`. Instants are kept to the millisecond, as the
    /// server keeps them.
    ///
    /// Idempotent for the same id while the visit is in the outbox or set aside. Called again
    /// after the server acknowledged it, the visit is queued once more and the server answers
    /// `already_stored`: harmless.
    pub fn finish_visit(&self, visit: &Visit) -> StoreResult<()> {
        self.write(|tx| insert_finished(tx, visit))
    }

    /// [`Store::finish_visit`] for many visits in one transaction (imports, benchmarks).
    pub fn finish_visits(&self, visits: &[Visit]) -> StoreResult<()> {
        self.write(|tx| {
            visits
                .iter()
                .try_for_each(|visit| insert_finished(tx, visit))
        })
    }

    /// The oldest `limit` visits of the outbox, oldest first.
    pub fn outbox_batch(&self, limit: usize) -> StoreResult<Vec<Visit>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT visit_id, pairing_id, service_id, started_at, ended_at, rating, has_recording
             FROM outbox ORDER BY seq LIMIT ?1",
        )?;
        let rows = statement
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], visit_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(VisitRow::into_visit).collect()
    }

    /// Applies the server's answer to a sync: a visit it holds (`stored`, `already_stored`)
    /// leaves the outbox; a visit it refused moves aside with the reason, is counted and never
    /// resent, and gives up its recording. Only these explicit answers remove a visit from the
    /// outbox. Ids not in the outbox are ignored (a repeated answer).
    pub fn apply_acks(&self, acks: &[VisitAck]) -> StoreResult<AckSummary> {
        let now = ms(Timestamp::now());
        self.write(|tx| {
            let mut summary = AckSummary::default();
            let mut delete = tx.prepare_cached("DELETE FROM outbox WHERE visit_id = ?1")?;
            let mut set_aside = tx.prepare_cached(
                "INSERT OR REPLACE INTO rejected_visits
                    (visit_id, pairing_id, service_id, started_at, ended_at, rating,
                     has_recording, reason, message, rejected_at)
                 SELECT visit_id, pairing_id, service_id, started_at, ended_at, rating,
                        has_recording, ?2, ?3, ?4
                 FROM outbox WHERE visit_id = ?1",
            )?;
            let mut no_recording =
                tx.prepare_cached("DELETE FROM awaiting_recording WHERE visit_id = ?1")?;
            for ack in acks {
                match &ack.outcome {
                    VisitOutcome::Stored | VisitOutcome::AlreadyStored => {
                        if delete.execute([ack.id])? > 0 {
                            summary.removed += 1;
                        } else {
                            summary.unknown += 1;
                        }
                    }
                    VisitOutcome::Rejected { reason, message } => {
                        let reason = reject_reason(reason);
                        if set_aside.execute(params![ack.id, reason, message, now])? > 0 {
                            delete.execute([ack.id])?;
                            // The server will never take a recording of a visit it does not
                            // hold; the sync loop discards the file.
                            no_recording.execute([ack.id])?;
                            summary.rejected += 1;
                            tracing::warn!(visit = %ack.id, %reason, %message, "visit rejected by the server; kept aside");
                        } else {
                            summary.unknown += 1;
                        }
                    }
                }
            }
            Ok(summary)
        })
    }

    pub fn counts(&self) -> StoreResult<OutboxCounts> {
        let conn = self.conn();
        let (queued, rejected, recordings_pending, recordings_dropped) = conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM rejected_visits),
                        (SELECT count(*) FROM recordings), (SELECT count(*) FROM dropped_recordings)",
            )?
            .query_row([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })?;
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(OutboxCounts {
            queued: count(queued),
            rejected: count(rejected),
            recordings_pending: count(recordings_pending),
            recordings_dropped: count(recordings_dropped),
        })
    }

    /// The visits the server refused, newest first, for the staff panel.
    pub fn rejected_visits(&self) -> StoreResult<Vec<RejectedVisit>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT visit_id, pairing_id, service_id, started_at, ended_at, rating, has_recording,
                    reason, message, rejected_at
             FROM rejected_visits ORDER BY rejected_at DESC, visit_id",
        )?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    visit_row(row)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, String>(8)?,
                    row.get::<_, i64>(9)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(visit, reason, message, rejected_at)| {
                Ok(RejectedVisit {
                    visit: visit.into_visit()?,
                    reason,
                    message,
                    rejected_at: instant(rejected_at)?,
                })
            })
            .collect()
    }

    // ---- recordings ----

    /// Queues the encoded recording of a visit finished as Плохо with `has_recording`
    /// (replacing an earlier file of the same visit, e.g. re-encoded after a crash). Refused
    /// with [`StoreError::RecordingNotWanted`] for any other visit, or once the visit's
    /// recording is done or given up: the caller then deletes the file.
    pub fn queue_recording(&self, r: &QueuedRecording) -> StoreResult<()> {
        let path = r
            .path
            .to_str()
            .ok_or_else(|| StoreError::PathNotUtf8(r.path.clone()))?;
        let size = i64::try_from(r.size_bytes)
            .map_err(|_| StoreError::Corrupt(format!("recording size {}", r.size_bytes)))?;
        let now = ms(Timestamp::now());
        self.write(|tx| {
            if !awaits_recording(tx, r.visit_id)? {
                return Err(StoreError::RecordingNotWanted(r.visit_id));
            }
            tx.execute(
                "INSERT OR REPLACE INTO recordings (visit_id, path, size_bytes, sha256, queued_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.visit_id, path, size, r.sha256.to_ascii_lowercase(), now],
            )?;
            Ok(())
        })
    }

    /// Recordings whose visit the server already holds (it left the outbox acknowledged), in
    /// the order they were queued: the server takes a recording only for a visit it knows.
    pub fn recordings_to_upload(&self) -> StoreResult<Vec<QueuedRecording>> {
        self.recordings_where(
            "NOT EXISTS (SELECT 1 FROM outbox o WHERE o.visit_id = r.visit_id)
             AND NOT EXISTS (SELECT 1 FROM rejected_visits x WHERE x.visit_id = r.visit_id)",
        )
    }

    /// Recordings whose visit the server rejected: they can never be uploaded. The caller
    /// deletes each file, then calls [`Store::drop_recording`].
    pub fn recordings_to_discard(&self) -> StoreResult<Vec<QueuedRecording>> {
        self.recordings_where(
            "EXISTS (SELECT 1 FROM rejected_visits x WHERE x.visit_id = r.visit_id)",
        )
    }

    fn recordings_where(&self, condition: &str) -> StoreResult<Vec<QueuedRecording>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!(
            "SELECT visit_id, path, size_bytes, sha256 FROM recordings r
             WHERE {condition} ORDER BY queued_at, visit_id"
        ))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, Uuid>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(visit_id, path, size, sha256)| {
                Ok(QueuedRecording {
                    visit_id,
                    path: PathBuf::from(path),
                    size_bytes: u64::try_from(size)
                        .map_err(|_| StoreError::Corrupt(format!("recording size {size}")))?,
                    sha256,
                })
            })
            .collect()
    }

    /// The server confirmed the recording's checksum: forgets it. The caller deletes the file
    /// first (a crash in between leaves a row whose upload the server already confirms).
    pub fn recording_done(&self, visit_id: Uuid) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM recordings WHERE visit_id = ?1", [visit_id])?;
            tx.execute(
                "DELETE FROM awaiting_recording WHERE visit_id = ?1",
                [visit_id],
            )?;
            Ok(())
        })
    }

    /// Gives a recording up for good (`reason` is a short code for the staff panel): it is
    /// counted, never retried, and the visit no longer wants one. The caller deletes the file.
    pub fn drop_recording(&self, visit_id: Uuid, reason: &str) -> StoreResult<()> {
        let now = ms(Timestamp::now());
        self.write(|tx| {
            tx.execute("DELETE FROM recordings WHERE visit_id = ?1", [visit_id])?;
            tx.execute(
                "DELETE FROM awaiting_recording WHERE visit_id = ?1",
                [visit_id],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO dropped_recordings (visit_id, reason, dropped_at)
                 VALUES (?1, ?2, ?3)",
                params![visit_id, reason, now],
            )?;
            Ok(())
        })?;
        tracing::warn!(visit = %visit_id, reason, "recording given up");
        Ok(())
    }

    /// The recordings given up, newest first, for the staff panel.
    pub fn dropped_recordings(&self) -> StoreResult<Vec<DroppedRecording>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(
            "SELECT visit_id, reason, dropped_at FROM dropped_recordings
             ORDER BY dropped_at DESC, visit_id",
        )?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, Uuid>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(visit_id, reason, dropped_at)| {
                Ok(DroppedRecording {
                    visit_id,
                    reason,
                    dropped_at: instant(dropped_at)?,
                })
            })
            .collect()
    }

    /// Whether the visit was finished as Плохо with `has_recording` and its recording has not
    /// been uploaded or given up yet (crash recovery of audio spools asks this).
    pub fn visit_wants_recording(&self, visit_id: Uuid) -> StoreResult<bool> {
        let conn = self.conn();
        Ok(conn
            .prepare_cached("SELECT 1 FROM awaiting_recording WHERE visit_id = ?1")?
            .query_row([visit_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    // ---- feedback links ----

    /// The key that signs this tablet's feedback links, made (from the operating system's
    /// random source) and kept the first time it is asked for.
    pub fn feedback_signing_key(&self) -> StoreResult<SigningKey> {
        self.write(|tx| {
            let stored: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT secret FROM feedback_signing WHERE id = 1",
                    [],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(secret) = stored {
                let secret: [u8; 32] = secret.try_into().map_err(|_| {
                    StoreError::Corrupt("the feedback signing key is not 32 bytes".into())
                })?;
                return Ok(SigningKey::from_bytes(&secret));
            }
            let mut secret = [0u8; 32];
            rand::rngs::SysRng
                .try_fill_bytes(&mut secret)
                .map_err(|e| StoreError::Random(e.to_string()))?;
            tx.execute(
                "INSERT INTO feedback_signing (id, secret) VALUES (1, ?1)",
                [&secret[..]],
            )?;
            Ok(SigningKey::from_bytes(&secret))
        })
    }

    /// Where the feedback links lead, as the server last said; `None` until it has (or when it
    /// has no public address).
    pub fn feedback_links(&self) -> StoreResult<Option<FeedbackLinks>> {
        let row: Option<(Option<String>, Option<i64>)> = self
            .conn()
            .query_row(
                "SELECT base_url, tablet_id FROM feedback_signing WHERE id = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        Ok(match row {
            Some((Some(base_url), Some(tablet_id))) => Some(FeedbackLinks {
                base_url,
                tablet_id,
            }),
            _ => None,
        })
    }

    /// Keeps what the server's answer to a sync said about the links (the key exists by then:
    /// it was sent with the sync).
    pub fn set_feedback_links(&self, links: Option<&FeedbackLinks>) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE feedback_signing SET base_url = ?1, tablet_id = ?2 WHERE id = 1",
            params![
                links.map(|l| l.base_url.as_str()),
                links.map(|l| l.tablet_id)
            ],
        )?;
        Ok(())
    }

    // ---- sync state ----

    pub fn last_sync(&self) -> StoreResult<Option<Timestamp>> {
        let millis: Option<Option<i64>> = self
            .conn()
            .query_row("SELECT last_sync FROM sync_state WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?;
        millis.flatten().map(instant).transpose()
    }

    pub fn set_last_sync(&self, at: Timestamp) -> StoreResult<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO sync_state (id, last_sync) VALUES (1, ?1)",
            [ms(at)],
        )?;
        Ok(())
    }
}

fn insert_finished(tx: &Transaction<'_>, visit: &Visit) -> StoreResult<()> {
    let set_aside = tx
        .prepare_cached("SELECT 1 FROM rejected_visits WHERE visit_id = ?1")?
        .query_row([visit.id], |_| Ok(()))
        .optional()?
        .is_some();
    if !set_aside {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO outbox
                (visit_id, pairing_id, service_id, started_at, ended_at, rating, has_recording)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            visit.id,
            visit.pairing_id,
            visit.service_id,
            ms(visit.started_at),
            ms(visit.ended_at),
            visit.rating.map(Rating::score),
            visit.has_recording,
        ])?;
        if visit.rating == Some(Rating::Bad) && visit.has_recording {
            let given_up = tx
                .prepare_cached("SELECT 1 FROM dropped_recordings WHERE visit_id = ?1")?
                .query_row([visit.id], |_| Ok(()))
                .optional()?
                .is_some();
            if !given_up {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO awaiting_recording (visit_id) VALUES (?1)",
                )?
                .execute([visit.id])?;
            }
        }
    }
    tx.prepare_cached("DELETE FROM active_visit WHERE visit_id = ?1")?
        .execute([visit.id])?;
    Ok(())
}

fn awaits_recording(tx: &Transaction<'_>, visit_id: Uuid) -> StoreResult<bool> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM awaiting_recording WHERE visit_id = ?1")?
        .query_row([visit_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// A visit's columns as read, checked when turned into a [`Visit`].
struct VisitRow {
    id: Uuid,
    pairing_id: Uuid,
    service_id: i64,
    started_at: i64,
    ended_at: i64,
    rating: Option<i64>,
    has_recording: bool,
}

/// Reads the first seven columns: id, pairing, service, start, end, rating, has_recording.
fn visit_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<VisitRow> {
    Ok(VisitRow {
        id: row.get(0)?,
        pairing_id: row.get(1)?,
        service_id: row.get(2)?,
        started_at: row.get(3)?,
        ended_at: row.get(4)?,
        rating: row.get(5)?,
        has_recording: row.get(6)?,
    })
}

impl VisitRow {
    fn into_visit(self) -> StoreResult<Visit> {
        let rating = self
            .rating
            .map(|score| {
                u8::try_from(score)
                    .ok()
                    .and_then(|score| Rating::try_from(score).ok())
                    .ok_or_else(|| StoreError::Corrupt(format!("rating {score}")))
            })
            .transpose()?;
        Ok(Visit {
            id: self.id,
            pairing_id: self.pairing_id,
            service_id: self.service_id,
            started_at: instant(self.started_at)?,
            ended_at: instant(self.ended_at)?,
            rating,
            has_recording: self.has_recording,
        })
    }
}

fn reject_reason(reason: &shared_model::RejectReason) -> String {
    // The wire name (snake_case), so the staff panel and the server speak of the same thing.
    match serde_json::to_value(reason) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{reason:?}"),
    }
}

fn instant(millis: i64) -> StoreResult<Timestamp> {
    sqlite_db::instant(millis).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_uses_the_durable_setup() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("tablet.sqlite3")).unwrap();
        let synchronous: i64 = store
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "2 is FULL");
    }

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
    }
}
