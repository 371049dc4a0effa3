//! Sync ingest with group commit.
//!
//! Every sync is one job for the committer, a thread of its own that owns the write side of
//! ingest: it takes every job waiting for it (up to [`GroupCommit::max_visits`], lingering up
//! to [`GroupCommit::max_wait`] for more) into one transaction, commits it with one fsync, and
//! only then answers each job. The jobs of a group are judged in their order, each seeing what
//! the ones before it stored, exactly as if they had come one after another. If anything in a
//! group fails, the group is rolled back and each job is run again alone, in a transaction of
//! its own: one bad request never fails its neighbours, and no job is answered for a write
//! that is not on disk.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use shared_model::{Rating, TabletHealth};
use sqlite_db::Writer;
use uuid::Uuid;

use super::reports::TotalsAccumulator;
use super::visits::{VISIT_COLUMNS, VisitRow};
use super::{instant, ms};
use crate::domain::acceptance::{Judgement, PairingFacts, StoredVisit, VisitFacts};
use crate::reports::{PeriodKeys, visit_instant_ms};
use crate::storage::*;

/// The statement that stores an accepted visit.
pub const INSERT_VISIT: &str =
    "INSERT INTO visits (id, pairing_id, tablet_id, employee_id, section_id, department_id,
                     service_id, started_at, ended_at, rating, has_recording, received_at,
                     clock_offset_ms)
 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

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

/// The committer thread and the queue to it.
pub(super) struct Committer {
    jobs: Mutex<Option<SyncSender<Job>>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

impl Committer {
    pub(super) fn start(
        writer: Arc<Writer>,
        zone: TimeZone,
        grouping: GroupCommit,
    ) -> StorageResult<Self> {
        let (jobs, queue) = mpsc::sync_channel(grouping.queue.max(1));
        let counters = Arc::new(Counters::default());
        let thread = std::thread::Builder::new()
            .name("ingest-commit".into())
            .spawn({
                let counters = Arc::clone(&counters);
                move || run(&writer, &zone, grouping, &queue, &counters)
            })?;
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
            thread: Some(thread),
            counters,
        })
    }

    /// Hands the sync to the committer and waits for its answer, which comes after the commit.
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

fn run(
    writer: &Writer,
    zone: &TimeZone,
    grouping: GroupCommit,
    queue: &Receiver<Job>,
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
        commit_group(writer, zone, group, visits, counters);
    }
}

/// Commits the group in one transaction and answers each job; if that fails, runs each job
/// alone.
fn commit_group(
    writer: &Writer,
    zone: &TimeZone,
    group: Vec<Job>,
    visits: usize,
    counters: &Counters,
) {
    if group.len() > 1 {
        match store(writer, zone, &group) {
            Ok(Ok(all)) => {
                counters.committed(group.len(), visits);
                for (job, ingested) in group.iter().zip(all) {
                    let _ = job.answer.send(Ok(ingested));
                }
                return;
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
        if answer.is_ok() {
            counters.committed(1, job.sync.visits.len());
        }
        let _ = job.answer.send(answer);
    }
}

/// Stores `jobs` in one transaction, with one totals flush; a panic inside is caught (and the
/// transaction rolled back) so that the committer lives on.
fn store(
    writer: &Writer,
    zone: &TimeZone,
    jobs: &[Job],
) -> std::thread::Result<StorageResult<Vec<Ingested>>> {
    catch_unwind(AssertUnwindSafe(|| {
        writer.write(|tx| {
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
    let mut existing =
        tx.prepare_cached(&format!("SELECT {VISIT_COLUMNS} FROM visits WHERE id = ?1"))?;
    let mut insert = tx.prepare_cached(INSERT_VISIT)?;
    let mut outcomes = Vec::with_capacity(sync.visits.len());
    for visit in &sync.visits {
        let stored = existing
            .query_row([visit.id], VisitRow::read)
            .optional()?
            .map(|row| {
                Ok::<_, StorageError>(StoredVisit {
                    visit: row.visit()?,
                    tablet_id: row.tablet_id,
                })
            })
            .transpose()?;
        if let Entry::Vacant(slot) = pairings.entry(visit.pairing_id) {
            slot.insert(pairing_facts(tx, visit.pairing_id)?);
        }
        let mut facts = VisitFacts {
            tablet_id: sync.tablet_id,
            visit,
            stored: stored.as_ref(),
            pairing: pairings.get(&visit.pairing_id).and_then(Option::as_ref),
            received_at: sync.received_at,
            clock_offset_ms: sync.clock_offset_ms,
            overlaps: false,
        };
        // A visit already stored is judged by its id alone.
        if facts.stored.is_none() {
            facts.overlaps = overlaps_stored(tx, sync.tablet_id, facts.corrected())?;
        }
        let judgement = judge(&facts);
        if let Judgement::Store(place) = &judgement {
            let score = visit.rating.map(Rating::score);
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
                score,
                visit.has_recording,
                received_at,
                sync.clock_offset_ms
            ])?;
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
}
