//! Sync ingest with group commit.
//!
//! Every sync is one job for the committer, a thread of its own that owns the write side of
//! ingest: it takes every job waiting for it (up to [`GroupCommit::max_visits`], lingering up
//! to [`GroupCommit::max_wait`] for more) into one transaction and commits it without waiting
//! for the disk ([`Writer::write_unsynced`]). A second thread, the log syncer, then flushes the
//! log once for every commit made since its last flush and only then answers their jobs: the
//! committer works on the next group while the disk makes the last one durable, and nothing is
//! acknowledged before it is on the disk. If a flush fails, its jobs are answered with an
//! error and ingest stops (after a failed fsync the kernel may have dropped those pages).
//!
//! The jobs of a group are judged in their order, each seeing what the ones before it stored,
//! exactly as if they had come one after another. If anything in a group fails, the group is
//! rolled back and each job is run again alone, in a transaction of its own: one bad request
//! never fails its neighbours, and no job is answered for a write that is not on disk.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use shared_model::{Rating, TabletHealth};
use sqlite_db::{LogSync, Writer};
use uuid::Uuid;

use super::reports::TotalsAccumulator;
use super::visits::{VISIT_COLUMNS, VisitRow};
use super::{instant, ms};
use crate::domain::acceptance::{Judgement, LONGEST_VISIT, PairingFacts, StoredVisit, VisitFacts};
use crate::reports::{PeriodKeys, visit_instant_ms};
use crate::storage::*;

/// The statement that stores an accepted visit. A visit whose id is already stored is left as
/// it is (no row changes): ingest then reads the stored one and judges the visit by its id.
pub const INSERT_VISIT: &str =
    "INSERT INTO visits (id, pairing_id, tablet_id, employee_id, section_id, department_id,
                     service_id, started_at, ended_at, rating, has_recording, received_at,
                     clock_offset_ms)
 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
 ON CONFLICT (id) DO NOTHING";

/// At most this many stored visits of a tablet are held in memory for the overlap check of one
/// sync; a sync reaching back over more is checked with one index probe per visit instead.
const NEIGHBOURS_HELD: usize = 1000;

/// Records a syncing tablet's health and clock offset, and logs the sync: the writes every
/// sync makes besides its visits (public so that the ingest benchmark writes exactly these).
pub fn record_sync(
    conn: &Connection,
    tablet_id: i64,
    received_at_ms: i64,
    clock_offset_ms: i64,
    health: &TabletHealth,
    visits: usize,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE tablets SET last_seen_at = ?1, app_version = ?2, queue_length = ?3,
            recordings_pending = ?4, free_storage_bytes = ?5, microphone = ?6,
            clock_offset_ms = ?7
         WHERE id = ?8",
    )?
    .execute(params![
        received_at_ms,
        health.app_version,
        health.queue_length,
        health.recordings_pending,
        i64::try_from(health.free_storage_bytes).unwrap_or(i64::MAX),
        health.microphone.as_str(),
        clock_offset_ms,
        tablet_id
    ])?;
    conn.prepare_cached(
        "INSERT INTO sync_log (tablet_id, received_at, clock_offset_ms, visits)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        tablet_id,
        received_at_ms,
        clock_offset_ms,
        visits as i64
    ])?;
    Ok(())
}

/// How the committer groups syncs into one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommit {
    /// At most this many visits in one commit (a sync larger than this is committed alone).
    pub max_visits: usize,
    /// How long the committer waits for more syncs once it holds one. Zero: it takes only
    /// those already waiting — the ones that arrived while the previous commit ran.
    pub max_wait: Duration,
    /// How many syncs may wait for the committer; more wait to be queued.
    pub queue: usize,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            max_visits: 5000,
            max_wait: Duration::ZERO,
            queue: 256,
        }
    }
}

/// What the committer has done since the storage was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Transactions committed (a group, or a job run alone after its group failed).
    pub commits: u64,
    /// Syncs answered from those commits.
    pub syncs: u64,
    /// Groups that failed and were run again job by job.
    pub regrouped: u64,
    /// The most visits one commit held.
    pub largest_commit_visits: u64,
}

#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    syncs: AtomicU64,
    regrouped: AtomicU64,
    largest_commit_visits: AtomicU64,
}

impl Counters {
    fn committed(&self, syncs: usize, visits: usize) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.syncs.fetch_add(syncs as u64, Ordering::Relaxed);
        self.largest_commit_visits
            .fetch_max(visits as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> CommitStats {
        CommitStats {
            commits: self.commits.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            regrouped: self.regrouped.load(Ordering::Relaxed),
            largest_commit_visits: self.largest_commit_visits.load(Ordering::Relaxed),
        }
    }
}

/// One sync waiting for the committer, and where its answer goes.
struct Job {
    sync: IngestBatch,
    judge: Arc<Judge>,
    answer: SyncSender<StorageResult<Ingested>>,
}

/// Commits whose jobs are answered once the log is flushed.
type Unflushed = Vec<(SyncSender<StorageResult<Ingested>>, Ingested)>;

/// The committer thread and the queue to it.
pub(super) struct Committer {
    jobs: Mutex<Option<SyncSender<Job>>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Committer {
    pub(super) fn start(
        writer: Arc<Writer>,
        log: LogSync,
        zone: TimeZone,
        grouping: GroupCommit,
    ) -> StorageResult<Self> {
        let (jobs, queue) = mpsc::sync_channel(grouping.queue.max(1));
        // As many commits wait for the flush as there are jobs waiting: bounded by the queue.
        let (unflushed, flush_queue) = mpsc::channel::<Unflushed>();
        let counters = Arc::new(Counters::default());
        let stopped = Arc::new(AtomicBool::new(false));
        let syncer = std::thread::Builder::new()
            .name("ingest-log-sync".into())
            .spawn({
                let stopped = Arc::clone(&stopped);
                move || flush_and_answer(&log, &flush_queue, &stopped)
            })?;
        let thread = std::thread::Builder::new()
            .name("ingest-commit".into())
            .spawn({
                let counters = Arc::clone(&counters);
                move || {
                    run(
                        &writer, &zone, grouping, &queue, &unflushed, &stopped, &counters,
                    );
                    // The syncer answers what it holds, then ends.
                    drop(unflushed);
                    let _ = syncer.join();
                }
            })?;
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
            thread: Some(thread),
            counters,
        })
    }

    /// Hands the sync to the committer and waits for its answer, which comes once its commit is
    /// on the disk.
    pub(super) fn ingest(&self, sync: IngestBatch, judge: Arc<Judge>) -> StorageResult<Ingested> {
        let (answer, answered) = mpsc::sync_channel(1);
        let jobs = self
            .jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or(StorageError::IngestStopped)?;
        jobs.send(Job {
            sync,
            judge,
            answer,
        })
        .map_err(|_| StorageError::IngestStopped)?;
        answered.recv().map_err(|_| StorageError::IngestStopped)?
    }

    pub(super) fn stats(&self) -> CommitStats {
        self.counters.snapshot()
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has answered what it holds.
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The log syncer: one flush for every commit waiting, then their answers.
fn flush_and_answer(log: &LogSync, queue: &Receiver<Unflushed>, stopped: &AtomicBool) {
    while let Ok(first) = queue.recv() {
        let mut commits = vec![first];
        commits.extend(queue.try_iter());
        match log.sync() {
            Ok(()) => {
                for (answer, ingested) in commits.into_iter().flatten() {
                    let _ = answer.send(Ok(ingested));
                }
            }
            Err(error) => {
                stopped.store(true, Ordering::SeqCst);
                tracing::error!(%error, "flushing the database log failed; ingest stops");
                for (answer, _) in commits.into_iter().flatten() {
                    let _ = answer.send(Err(StorageError::IngestStopped));
                }
            }
        }
    }
}

fn run(
    writer: &Writer,
    zone: &TimeZone,
    grouping: GroupCommit,
    queue: &Receiver<Job>,
    unflushed: &mpsc::Sender<Unflushed>,
    stopped: &AtomicBool,
    counters: &Counters,
) {
    let mut held_over: Option<Job> = None;
    loop {
        let first = match held_over.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut visits = first.sync.visits.len();
        let mut group = vec![first];
        let deadline = Instant::now() + grouping.max_wait;
        while visits < grouping.max_visits {
            let next = if grouping.max_wait.is_zero() {
                queue
                    .try_recv()
                    .map_err(|e| e == TryRecvError::Disconnected)
            } else {
                queue
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .map_err(|e| e == RecvTimeoutError::Disconnected)
            };
            let Ok(job) = next else { break };
            if visits + job.sync.visits.len() > grouping.max_visits {
                held_over = Some(job);
                break;
            }
            visits += job.sync.visits.len();
            group.push(job);
        }
        if stopped.load(Ordering::SeqCst) {
            for job in group {
                let _ = job.answer.send(Err(StorageError::IngestStopped));
            }
            continue;
        }
        let committed = commit_group(writer, zone, group, visits, counters);
        if !committed.is_empty() && unflushed.send(committed).is_err() {
            // The syncer has gone (it cannot panic); the jobs' senders drop unanswered, which
            // their callers see as a stopped ingest.
            tracing::error!("the ingest log syncer has stopped");
        }
    }
}

/// Commits the group in one transaction; if that fails, runs each job alone. Answers the
/// jobs that failed, and returns the others' answers, for after the log's flush.
fn commit_group(
    writer: &Writer,
    zone: &TimeZone,
    group: Vec<Job>,
    visits: usize,
    counters: &Counters,
) -> Unflushed {
    if group.len() > 1 {
        match store(writer, zone, &group) {
            Ok(Ok(all)) => {
                counters.committed(group.len(), visits);
                return group.into_iter().map(|job| job.answer).zip(all).collect();
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, syncs = group.len(), "a grouped commit failed; each sync is stored alone");
            }
            Err(_) => {
                tracing::error!(
                    syncs = group.len(),
                    "a grouped commit panicked; each sync is stored alone"
                );
            }
        }
        counters.regrouped.fetch_add(1, Ordering::Relaxed);
    }
    let mut committed = Vec::with_capacity(group.len());
    for job in group {
        let answer = match store(writer, zone, std::slice::from_ref(&job)) {
            Ok(answer) => {
                answer.and_then(|one| one.into_iter().next().ok_or(StorageError::IngestStopped))
            }
            Err(_) => {
                tracing::error!(tablet_id = job.sync.tablet_id, "storing a sync panicked");
                Err(StorageError::IngestStopped)
            }
        };
        match answer {
            Ok(ingested) => {
                counters.committed(1, job.sync.visits.len());
                committed.push((job.answer, ingested));
            }
            Err(error) => {
                let _ = job.answer.send(Err(error));
            }
        }
    }
    committed
}

/// Stores `jobs` in one transaction, with one totals flush; a panic inside is caught (and the
/// transaction rolled back) so that the committer lives on.
fn store(
    writer: &Writer,
    zone: &TimeZone,
    jobs: &[Job],
) -> std::thread::Result<StorageResult<Vec<Ingested>>> {
    catch_unwind(AssertUnwindSafe(|| {
        writer.write_unsynced(|tx| {
            let mut totals = TotalsAccumulator::default();
            // Feedback that came before its visit is rare: the new visits are looked up for it
            // only when there is some.
            let feedback_waiting = super::feedback::any_waiting(tx)?;
            let ingested = jobs
                .iter()
                .map(|job| {
                    let judge = job.judge.as_ref();
                    ingest_one(tx, zone, &job.sync, judge, &mut totals, feedback_waiting)
                })
                .collect::<StorageResult<Vec<_>>>()?;
            totals.flush(tx)?;
            Ok::<_, StorageError>(ingested)
        })
    }))
}

/// One sync inside an open transaction: judges each visit and writes what was decided; counts
/// what it stores into `totals`, which the caller writes before the commit.
///
/// Most visits are new, so each is first judged as new and, if accepted, inserted; only a
/// visit the insert finds already stored (or one judged not to be stored) is read back and
/// judged by its id, as the rule wants. The overlap check reads the tablet's stored visits
/// near the sync's once ([`Neighbours`]) rather than probing the index for every visit.
fn ingest_one(
    tx: &Transaction<'_>,
    zone: &TimeZone,
    sync: &IngestBatch,
    judge: &Judge,
    totals: &mut TotalsAccumulator,
    feedback_waiting: bool,
) -> StorageResult<Ingested> {
    let received_at = ms(sync.received_at);
    let mut newly_stored = Vec::new();
    let mut pairings: HashMap<Uuid, Option<PairingFacts>> = HashMap::new();
    let mut insert = tx.prepare_cached(INSERT_VISIT)?;
    let mut neighbours = Neighbours::load(tx, sync)?;
    let mut outcomes = Vec::with_capacity(sync.visits.len());
    for visit in &sync.visits {
        if let Entry::Vacant(slot) = pairings.entry(visit.pairing_id) {
            slot.insert(pairing_facts(tx, visit.pairing_id)?);
        }
        let mut as_new = VisitFacts {
            tablet_id: sync.tablet_id,
            visit,
            stored: None,
            pairing: pairings.get(&visit.pairing_id).and_then(Option::as_ref),
            received_at: sync.received_at,
            clock_offset_ms: sync.clock_offset_ms,
            overlaps: false,
        };
        let span = as_new.corrected();
        as_new.overlaps = neighbours.overlaps(tx, sync.tablet_id, span)?;
        let mut judgement = judge(&as_new);
        let inserted = match &judgement {
            Judgement::Store(place) => {
                insert.execute(params![
                    visit.id,
                    visit.pairing_id,
                    sync.tablet_id,
                    place.employee_id,
                    place.section_id,
                    place.department_id,
                    visit.service_id,
                    ms(visit.started_at),
                    ms(visit.ended_at),
                    visit.rating.map(Rating::score),
                    visit.has_recording,
                    received_at,
                    sync.clock_offset_ms
                ])? == 1
            }
            _ => false,
        };
        if !inserted {
            // A visit already stored is judged by its id alone.
            match stored_visit(tx, visit.id)? {
                Some(stored) => {
                    judgement = judge(&VisitFacts {
                        stored: Some(&stored),
                        ..as_new
                    });
                }
                None if matches!(judgement, Judgement::Store(_)) => {
                    return Err(StorageError::Corrupt(format!(
                        "visit {} was neither inserted nor found stored",
                        visit.id
                    )));
                }
                None => {}
            }
        }
        if let (true, Judgement::Store(place)) = (inserted, &judgement) {
            neighbours.stored(span);
            let score = visit.rating.map(Rating::score);
            let at_ms = visit_instant_ms(ms(visit.ended_at), sync.clock_offset_ms);
            let at = Timestamp::from_millisecond(at_ms).unwrap_or(visit.ended_at);
            totals.add(
                &PeriodKeys::at(at, zone),
                place.department_id,
                place.section_id,
                place.employee_id,
                visit.service_id,
                score,
            );
            if feedback_waiting {
                super::feedback::join_waiting(tx, zone, visit.id, sync.received_at)?;
            }
            newly_stored.push(VisitPlace {
                visit_id: visit.id,
                department_id: place.department_id,
                section_id: place.section_id,
                employee_id: place.employee_id,
                rating: score,
                at,
            });
        }
        outcomes.push(judgement.outcome());
    }
    record_sync(
        tx,
        sync.tablet_id,
        received_at,
        sync.clock_offset_ms,
        &sync.health,
        sync.visits.len(),
    )?;
    Ok(Ingested {
        outcomes,
        stored: newly_stored,
    })
}

/// The visit stored under `id`, if there is one.
fn stored_visit(tx: &Transaction<'_>, id: Uuid) -> StorageResult<Option<StoredVisit>> {
    tx.prepare_cached(&format!("SELECT {VISIT_COLUMNS} FROM visits WHERE id = ?1"))?
        .query_row([id], VisitRow::read)
        .optional()?
        .map(|row| {
            Ok(StoredVisit {
                visit: row.visit()?,
                tablet_id: row.tablet_id,
            })
        })
        .transpose()
}

/// The syncing tablet's stored visits that the sync's visits could overlap, as corrected
/// intervals in milliseconds, with the ones the sync stores added as it goes; or, if the sync
/// reaches back over more than [`NEIGHBOURS_HELD`] of them, nothing held and one index probe
/// per visit.
enum Neighbours {
    Held(Vec<(i64, i64)>),
    Probe,
}

impl Neighbours {
    fn load(tx: &Transaction<'_>, sync: &IngestBatch) -> StorageResult<Self> {
        let offset = SignedDuration::from_millis(sync.clock_offset_ms);
        let corrected = |at: Timestamp| ms(at.checked_sub(offset).unwrap_or(at));
        let bounds = sync
            .visits
            .iter()
            .fold(None, |bounds: Option<(i64, i64)>, v| {
                let (a, b) = (corrected(v.started_at), corrected(v.ended_at));
                let (low, high) = (a.min(b), a.max(b));
                Some(bounds.map_or((low, high), |(l, h)| (l.min(low), h.max(high))))
            });
        let Some((from, to)) = bounds else {
            return Ok(Self::Held(Vec::new()));
        };
        // A stored visit lasts at most LONGEST_VISIT, so one that starts by `to` ends by
        // `to + LONGEST_VISIT`: the index range stays as narrow as the sync.
        let longest = LONGEST_VISIT.as_millis() as i64;
        let spans = tx
            .prepare_cached(
                "SELECT started_at - clock_offset_ms, ended_at - clock_offset_ms FROM visits
                 WHERE tablet_id = ?1 AND ended_at - clock_offset_ms BETWEEN ?2 AND ?3
                   AND started_at - clock_offset_ms <= ?4
                 LIMIT ?5",
            )?
            .query_map(
                params![
                    sync.tablet_id,
                    from,
                    to.saturating_add(longest),
                    to,
                    NEIGHBOURS_HELD as i64 + 1
                ],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?
            .collect::<rusqlite::Result<Vec<(i64, i64)>>>()?;
        Ok(if spans.len() > NEIGHBOURS_HELD {
            Self::Probe
        } else {
            Self::Held(spans)
        })
    }

    /// Whether a stored visit of the tablet overlaps `[start, end]` in corrected time. Closed
    /// intervals: two visits at the same instant overlap, however short.
    fn overlaps(
        &self,
        tx: &Transaction<'_>,
        tablet_id: i64,
        (start, end): (Timestamp, Timestamp),
    ) -> StorageResult<bool> {
        match self {
            Self::Held(spans) => {
                let (start, end) = (ms(start), ms(end));
                Ok(spans.iter().any(|&(s, e)| s <= end && e >= start))
            }
            Self::Probe => overlaps_stored(tx, tablet_id, (start, end)),
        }
    }

    /// Adds a visit the sync has just stored.
    fn stored(&mut self, (start, end): (Timestamp, Timestamp)) {
        if let Self::Held(spans) = self {
            spans.push((ms(start), ms(end)));
        }
    }
}

/// What the acceptance rule needs to know of a pairing.
fn pairing_facts(tx: &Transaction<'_>, id: Uuid) -> StorageResult<Option<PairingFacts>> {
    let row = tx
        .prepare_cached(
            "SELECT tablet_id, employee_id, section_id, department_id, started_at,
                    end_acknowledged_at
             FROM pairings WHERE id = ?1",
        )?
        .query_row([id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Option<i64>>(5)?,
            ))
        })
        .optional()?;
    let Some((tablet_id, employee_id, section_id, department_id, started_at, acknowledged)) = row
    else {
        return Ok(None);
    };
    let services = tx
        .prepare_cached("SELECT service_id FROM pairing_services WHERE pairing_id = ?1")?
        .query_map([id], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(Some(PairingFacts {
        tablet_id,
        employee_id,
        section_id,
        department_id,
        services,
        started_at: instant(started_at)?,
        end_acknowledged_at: acknowledged.map(instant).transpose()?,
    }))
}

/// Whether a stored visit of the tablet overlaps `[start, end]` in corrected time. Closed
/// intervals: two visits at the same instant overlap, however short.
fn overlaps_stored(
    tx: &Transaction<'_>,
    tablet_id: i64,
    (start, end): (Timestamp, Timestamp),
) -> StorageResult<bool> {
    // A tablet's stored visits never overlap one another (this rule keeps them so), so sorted
    // by end they are sorted by start too: the first to end at or after `start` is the only one
    // that can overlap, and one index probe finds it however many visits the tablet has.
    let next_start: Option<i64> = tx
        .prepare_cached(
            "SELECT started_at - clock_offset_ms FROM visits
             WHERE tablet_id = ?1 AND ended_at - clock_offset_ms >= ?2
             ORDER BY ended_at - clock_offset_ms LIMIT 1",
        )?
        .query_row(params![tablet_id, ms(start)], |row| row.get(0))
        .optional()?;
    Ok(next_start.is_some_and(|next_start| next_start <= ms(end)))
}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use shared_model::{MicrophoneState, TabletHealth, Visit, VisitOutcome};

    use super::*;
    use crate::domain::acceptance::{self, Acceptance};
    use crate::storage::sqlite::SqliteStorage;

    /// A database with `tablets` tablets, each paired (pairing `i` on tablet `i + 1`).
    fn fixture(
        grouping: GroupCommit,
        tablets: i64,
    ) -> (tempfile::TempDir, SqliteStorage, Vec<Uuid>) {
        let dir = tempfile::tempdir().unwrap();
        let storage =
            SqliteStorage::open_with(&dir.path().join("office.sqlite3"), TimeZone::UTC, grouping)
                .unwrap();
        let started = ms(Timestamp::now()) - 3_600_000;
        let pairings: Vec<Uuid> = (0..tablets).map(|_| Uuid::now_v7()).collect();
        storage
            .writer
            .write(|tx| {
                tx.execute_batch(
                    "INSERT INTO departments (id, name) VALUES (1, 'd');
                     INSERT INTO sections (id, department_id, name) VALUES (1, 1, 's');
                     INSERT INTO services (id, name) VALUES (1, 'service');
                     INSERT INTO section_services VALUES (1, 1, 0);",
                )?;
                for (index, pairing) in pairings.iter().enumerate() {
                    let id = index as i64 + 1;
                    tx.execute(
                        "INSERT INTO employees (id, section_id, full_name) VALUES (?1, 1, 'e')",
                        [id],
                    )?;
                    tx.execute(
                        "INSERT INTO tablets (id, name, device_description, enrolled_at)
                         VALUES (?1, 't', 't', 0)",
                        [id],
                    )?;
                    tx.execute(
                        "INSERT INTO pairings (id, tablet_id, employee_id, section_id,
                                               department_id, started_at, ends_at)
                         VALUES (?1, ?2, ?2, 1, 1, ?3, ?4)",
                        params![pairing, id, started, started + 86_400_000],
                    )?;
                    tx.execute(
                        "INSERT INTO pairing_services VALUES (?1, 1, 0)",
                        params![pairing],
                    )?;
                }
                Ok::<_, StorageError>(())
            })
            .unwrap();
        (dir, storage, pairings)
    }

    fn health() -> TabletHealth {
        TabletHealth {
            app_version: "1".into(),
            queue_length: 0,
            recordings_pending: 0,
            free_storage_bytes: 1 << 30,
            microphone: MicrophoneState::Ok,
        }
    }

    /// `count` visits of one tablet, a second apart from `from` seconds ago, none overlapping.
    fn visits(pairing: Uuid, from: i64, count: i64) -> Vec<Visit> {
        (0..count)
            .map(|n| {
                let at = Timestamp::now() - jiff::SignedDuration::from_secs(from - n);
                Visit {
                    id: Uuid::now_v7(),
                    pairing_id: pairing,
                    service_id: 1,
                    started_at: at,
                    ended_at: at,
                    rating: Some(Rating::Good),
                    has_recording: false,
                }
            })
            .collect()
    }

    fn sync(tablet_id: i64, visits: Vec<Visit>) -> IngestBatch {
        IngestBatch {
            tablet_id,
            received_at: Timestamp::now(),
            clock_offset_ms: 0,
            health: health(),
            visits,
        }
    }

    fn judge() -> Arc<Judge> {
        let rule = Acceptance::default();
        Arc::new(move |facts| acceptance::judge(facts, &rule))
    }

    /// Runs each sync on a thread of its own, all released at once.
    fn at_once(storage: &SqliteStorage, syncs: Vec<IngestBatch>) -> Vec<StorageResult<Ingested>> {
        let barrier = Barrier::new(syncs.len());
        std::thread::scope(|scope| {
            let handles: Vec<_> = syncs
                .into_iter()
                .map(|one| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        storage.ingest(one, judge())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    fn stored_count(storage: &SqliteStorage) -> i64 {
        storage
            .writer
            .lock()
            .query_row("SELECT count(*) FROM visits", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn syncs_waiting_together_share_one_commit_and_are_judged_in_order() {
        let grouping = GroupCommit {
            max_wait: Duration::from_millis(500),
            ..GroupCommit::default()
        };
        let (_dir, storage, pairings) = fixture(grouping, 6);
        let mut syncs: Vec<IngestBatch> = pairings
            .iter()
            .enumerate()
            .map(|(i, p)| sync(i as i64 + 1, visits(*p, 600, 20)))
            .collect();
        // Two syncs of the first tablet carry the same visit: it is stored once, whichever
        // comes first, and the other learns it is already stored.
        let shared = syncs[0].visits[0].clone();
        syncs.push(sync(1, vec![shared.clone()]));
        let answers = at_once(&storage, syncs);
        let outcomes: Vec<&VisitOutcome> = answers
            .iter()
            .flat_map(|a| &a.as_ref().unwrap().outcomes)
            .collect();
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, VisitOutcome::Stored))
            .count();
        assert_eq!(stored, 6 * 20, "{outcomes:?}");
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| matches!(o, VisitOutcome::AlreadyStored))
                .count(),
            1
        );
        assert_eq!(stored_count(&storage), 6 * 20);
        let stats = storage.commit_stats();
        assert_eq!(stats.syncs, 7);
        assert!(stats.commits < 7, "{stats:?}");
        assert_eq!(stats.regrouped, 0);
    }

    #[test]
    fn a_commit_holds_at_most_the_configured_visits() {
        let grouping = GroupCommit {
            max_visits: 250,
            max_wait: Duration::from_millis(500),
            ..GroupCommit::default()
        };
        let (_dir, storage, pairings) = fixture(grouping, 8);
        let syncs = pairings
            .iter()
            .enumerate()
            .map(|(i, p)| sync(i as i64 + 1, visits(*p, 600, 100)))
            .collect();
        for answer in at_once(&storage, syncs) {
            answer.unwrap();
        }
        let stats = storage.commit_stats();
        assert_eq!(stats.syncs, 8);
        assert!(stats.largest_commit_visits <= 250, "{stats:?}");
        assert!(
            stats.commits >= 4,
            "8 syncs of 100 in commits of 200: {stats:?}"
        );
        assert_eq!(stored_count(&storage), 800);
    }

    #[test]
    fn without_a_wait_a_lone_sync_is_committed_at_once() {
        let (_dir, storage, pairings) = fixture(GroupCommit::default(), 1);
        for round in 0..5 {
            let answer = storage
                .ingest(sync(1, visits(pairings[0], 600 - round * 10, 5)), judge())
                .unwrap();
            assert_eq!(answer.stored.len(), 5);
        }
        let stats = storage.commit_stats();
        assert_eq!((stats.commits, stats.syncs), (5, 5));
    }

    #[test]
    fn a_sync_that_fails_fails_alone() {
        let grouping = GroupCommit {
            max_wait: Duration::from_millis(500),
            ..GroupCommit::default()
        };
        let (_dir, storage, pairings) = fixture(grouping, 4);
        let mut syncs: Vec<IngestBatch> = pairings
            .iter()
            .enumerate()
            .map(|(i, p)| sync(i as i64 + 1, visits(*p, 600, 10)))
            .collect();
        // A tablet the database does not know: its sync log row breaks a foreign key.
        syncs.push(sync(99, Vec::new()));
        let answers = at_once(&storage, syncs);
        let failed = answers.iter().filter(|a| a.is_err()).count();
        assert_eq!(failed, 1, "only the broken sync fails");
        for answer in answers.iter().filter_map(|a| a.as_ref().ok()) {
            assert!(
                answer
                    .outcomes
                    .iter()
                    .all(|o| matches!(o, VisitOutcome::Stored)),
                "{:?}",
                answer.outcomes
            );
        }
        assert_eq!(stored_count(&storage), 40);
        assert!(storage.commit_stats().regrouped >= 1);
    }

    fn kinds(answer: &Ingested) -> Vec<&'static str> {
        answer
            .outcomes
            .iter()
            .map(|o| match o {
                VisitOutcome::Stored => "stored",
                VisitOutcome::AlreadyStored => "already",
                VisitOutcome::Rejected {
                    reason: shared_model::RejectReason::Overlapping,
                    ..
                } => "overlaps",
                VisitOutcome::Rejected { .. } => "rejected",
            })
            .collect()
    }

    /// A visit `secs` seconds long, starting `from` seconds ago.
    fn lasting(pairing: Uuid, from: i64, secs: i64) -> Visit {
        let at = Timestamp::now() - jiff::SignedDuration::from_secs(from);
        Visit {
            id: Uuid::now_v7(),
            pairing_id: pairing,
            service_id: 1,
            started_at: at,
            ended_at: at + jiff::SignedDuration::from_secs(secs),
            rating: Some(Rating::Medium),
            has_recording: false,
        }
    }

    #[test]
    fn overlaps_with_earlier_syncs_and_the_same_one_are_refused_and_resent_visits_are_known() {
        let (_dir, storage, pairings) = fixture(GroupCommit::default(), 2);
        let first = lasting(pairings[0], 600, 60);
        let answer = storage
            .ingest(sync(1, vec![first.clone()]), judge())
            .unwrap();
        assert_eq!(kinds(&answer), ["stored"]);

        // Touching the stored visit at its last instant overlaps it (closed intervals); the
        // next second does not; a visit inside one stored earlier in this very sync does; the
        // same interval on the other tablet is its own business.
        let touching = Visit {
            id: Uuid::now_v7(),
            started_at: first.ended_at,
            ended_at: first.ended_at + jiff::SignedDuration::from_secs(10),
            ..first.clone()
        };
        let after = lasting(pairings[0], 400, 100);
        let inside_after = lasting(pairings[0], 350, 10);
        let answer = storage
            .ingest(
                sync(
                    1,
                    vec![touching, after.clone(), inside_after, first.clone()],
                ),
                judge(),
            )
            .unwrap();
        assert_eq!(
            kinds(&answer),
            ["overlaps", "stored", "overlaps", "already"]
        );
        let other_tablet = Visit {
            id: Uuid::now_v7(),
            pairing_id: pairings[1],
            ..first.clone()
        };
        let answer = storage
            .ingest(sync(2, vec![other_tablet]), judge())
            .unwrap();
        assert_eq!(kinds(&answer), ["stored"]);

        // Resent under another clock offset, the stored visits are still known by their ids,
        // and nothing is counted twice.
        let mut resent = sync(1, vec![first, after]);
        resent.clock_offset_ms = 3_600_000;
        let answer = storage.ingest(resent, judge()).unwrap();
        assert_eq!(kinds(&answer), ["already", "already"]);
        assert!(answer.stored.is_empty());
        assert_eq!(stored_count(&storage), 3);
    }

    #[test]
    fn a_sync_reaching_back_over_many_stored_visits_is_judged_the_same() {
        let (_dir, storage, pairings) = fixture(GroupCommit::default(), 1);
        // More stored visits than are held in memory, a second long and two apart, within the
        // pairing's hour.
        let count = NEIGHBOURS_HELD as i64 + 200;
        let history: Vec<Visit> = (0..count)
            .map(|n| lasting(pairings[0], 3_000 - 2 * n, 1))
            .collect();
        for chunk in history.chunks(500) {
            let answer = storage.ingest(sync(1, chunk.to_vec()), judge()).unwrap();
            assert!(kinds(&answer).iter().all(|k| *k == "stored"));
        }
        // The gap between two stored visits is free; a visit across one is not; the oldest
        // and the newest are already stored; a visit after them all is new.
        let gap = Visit {
            id: Uuid::now_v7(),
            started_at: history[10].ended_at + jiff::SignedDuration::from_millis(500),
            ended_at: history[10].ended_at + jiff::SignedDuration::from_millis(900),
            ..history[10].clone()
        };
        let across = Visit {
            id: Uuid::now_v7(),
            started_at: history[500].started_at - jiff::SignedDuration::from_millis(500),
            ended_at: history[500].started_at + jiff::SignedDuration::from_millis(100),
            ..history[500].clone()
        };
        let newest = history.last().unwrap().clone();
        let later = lasting(pairings[0], 10, 1);
        let answer = storage
            .ingest(
                sync(1, vec![history[0].clone(), gap, across, newest, later]),
                judge(),
            )
            .unwrap();
        assert_eq!(
            kinds(&answer),
            ["already", "stored", "overlaps", "already", "stored"]
        );
        assert_eq!(stored_count(&storage), count + 2);
    }
}
