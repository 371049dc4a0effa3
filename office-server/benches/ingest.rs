//! Sync ingest benchmark: the same visits, in batches of 100, along five paths, at each of
//! several numbers of tablets syncing at once (by default 4 and 32).
//!
//! - **HTTP**: the real server in-process (127.0.0.1:0, fresh data directory), that many
//!   enrolled and paired tablets, one client task per tablet POSTing `/api/tablet/sync`
//!   batches one after another, all tablets at once. Every visit must come back `stored`.
//! - **raw, plain insert**: a fresh SQLite file with the server's schema and pragmas
//!   (`migrations`, `sqlite_db::configure`), the same parent rows, and only the visits inserted
//!   with the server's statement, one `BEGIN IMMEDIATE` transaction per batch.
//! - **raw, like for like**: everything ingest writes, with the server's own statements —
//!   the visits, the report totals (`TotalsAccumulator`, counted in memory and upserted once
//!   per transaction), the tablet's health and the sync log — one transaction per batch: the
//!   naive loop a server without group commit would be at best.
//! - **raw, grouped**: the same, with as many batches per transaction as the HTTP run put into
//!   one commit on average (measured, rounded): the naive loop's answer to group commit.
//! - **storage**: `SqliteStorage::ingest` and the pairing status called directly, one batch at
//!   a time, as the sync handler calls them: the server's database work without HTTP.
//!
//! Each phase writes into a fresh database (the disk is flushed with `sync` between phases, so
//! that one phase's writeback does not slow the next one's fsyncs); every phase's database is
//! checked afterwards to hold every visit, and the report totals of the like-for-like loops to
//! count them all. The report gives medians, ratings/s, the ratios and the sync latency. Run
//! `scripts/bench-ingest.sh` or `cargo bench -p office-server --bench ingest`. Environment:
//! `BENCH_VISITS` (default 100000), `BENCH_CLIENTS` (comma-separated levels, default `4,32`),
//! `BENCH_ROUNDS` (default 3).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use office_server::domain::acceptance;
use office_server::reports::{Level, PeriodKeys, visit_instant_ms};
use office_server::storage::{
    CommitStats, INSERT_VISIT, IngestBatch, SqliteStorage, TabletStore, TotalsAccumulator,
    VisitStore, migrations, record_sync,
};
use reqwest::StatusCode;
use rusqlite::{Connection, params};
use shared_model::{Pairing, Rating, SyncBatch, SyncResponse, Visit, VisitOutcome};
use sqlite_db::configure as configure_connection;
use uuid::Uuid;

use test_support::{Tablet, TestServer, env_number, health, spawn_app_with, test_config};

const BATCH: usize = 100;
/// Each tablet's visits lie a minute apart from its pairing on, so they reach weeks past the
/// server's clock; the acceptance rule's slack is widened to take them (the rule's cost does
/// not depend on it).
const CLOCK_SLACK_SECS: u64 = 60 * 24 * 3600;
const RATINGS: [Option<Rating>; 4] = [
    Some(Rating::Good),
    Some(Rating::Medium),
    Some(Rating::Bad),
    None,
];
/// The office time zone of the bench's databases (the server's default).
const ZONE: &str = "Asia/Yekaterinburg";

/// One batch of visits and the index of the tablet that sends it.
struct Batch {
    client: usize,
    visits: Vec<Visit>,
}

/// What one HTTP run measured.
struct HttpRun {
    elapsed: Duration,
    /// Wall time of every sync request, client side.
    latencies: Vec<Duration>,
    /// CPU time of the whole process (server and clients) during the run, if readable.
    cpu: Option<Duration>,
    /// How the server grouped the syncs into commits.
    commits: CommitStats,
}

/// One round at one level: the same visits through each path, each into a fresh database.
struct Round {
    plain: Duration,
    like: Duration,
    grouped: Duration,
    /// Batches per transaction of the grouped raw loop.
    group: usize,
    storage: Duration,
    http: HttpRun,
}

fn main() {
    let total = env_number("BENCH_VISITS", 100_000);
    let rounds = env_number("BENCH_ROUNDS", 3);
    let levels: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .unwrap_or_else(|_| "4,32".into())
        .split(',')
        .map(|level| {
            level
                .trim()
                .parse()
                .expect("BENCH_CLIENTS: comma-separated numbers of tablets")
        })
        .collect();
    assert!(total > 0, "BENCH_VISITS must be positive");
    assert!(rounds > 0, "BENCH_ROUNDS must be positive");
    assert!(
        levels.iter().all(|&n| n > 0),
        "BENCH_CLIENTS must be positive"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let zone = TimeZone::get(ZONE).expect("office time zone");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    println!(
        "sync ingest: {total} visits in batches of {BATCH}, {levels:?} concurrent tablets, \
         {rounds} rounds, {cores} cores"
    );
    let probe_dir = tempfile::tempdir().expect("temporary directory for the fsync probe");
    println!(
        "disk: 4 KiB append + fdatasync takes {:.2} ms (median of 200)",
        fsync_probe(&probe_dir.path().join("probe")) * 1000.0
    );
    drop(probe_dir);
    print_load("at start");
    let mut results: Vec<Vec<Round>> = levels.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (level, &clients) in levels.iter().enumerate() {
            let result = one_round(&runtime, &zone, total, clients);
            println!(
                "round {round}, {clients} tablets: plain {:.0}/s, like for like {:.0}/s, \
                 grouped by {} {:.0}/s, storage {:.0}/s, HTTP {:.0}/s",
                rate(total, result.plain),
                rate(total, result.like),
                result.group,
                rate(total, result.grouped),
                rate(total, result.storage),
                rate(total, result.http.elapsed)
            );
            results[level].push(result);
        }
    }
    drop(runtime);
    print_load("at the end");
    for (clients, rounds) in levels.iter().zip(results) {
        report(total, *clients, cores, &rounds);
    }
}

fn one_round(
    runtime: &tokio::runtime::Runtime,
    zone: &TimeZone,
    total: usize,
    clients: usize,
) -> Round {
    let (app, tablets, pairings) = runtime.block_on(async {
        let app = spawn_app_with(|config| {
            // Setting up 32 tablets from one address takes more than a minute's enrolments,
            // sign-ins and pairings.
            config.throttle.enrolment_per_address = 1000;
            config.throttle.sign_in_per_address = 1000;
            config.throttle.pairing_per_address = 1000;
            config.tablets.clock_slack_secs = CLOCK_SLACK_SECS;
        })
        .await;
        let (tablets, pairings) = pair_tablets(&app, clients).await;
        (app, tablets, pairings)
    });
    let batches = make_batches(total, &pairings);

    settle();
    let http = runtime.block_on(async {
        let http = http_ingest(tablets, &batches, app.storage()).await;
        let counted = count_visits(&test_config(&app.data_dir).database_path());
        assert_eq!(counted, total, "visits in the server's database");
        app.stop().await;
        http
    });
    // The naive loop grouped as the server grouped, on average.
    let group = (http.commits.syncs as f64 / http.commits.commits.max(1) as f64)
        .round()
        .max(1.0) as usize;

    let raw = |what: &str, run: &dyn Fn(&Path) -> Duration, check_totals: bool| {
        settle();
        let dir = tempfile::tempdir().expect("temporary directory for a raw database");
        let path = dir.path().join(format!("{what}.sqlite3"));
        let elapsed = run(&path);
        assert_eq!(count_visits(&path), total, "visits in the {what} database");
        if check_totals {
            assert_eq!(
                counted_in_totals(&path),
                total,
                "visits in the {what} totals"
            );
        }
        elapsed
    };
    let plain = raw(
        "plain",
        &|path| plain_ingest(path, &pairings, &batches),
        false,
    );
    let like = raw(
        "like-for-like",
        &|path| like_for_like_ingest(path, zone, &pairings, &batches, 1),
        true,
    );
    let grouped = raw(
        "grouped",
        &|path| like_for_like_ingest(path, zone, &pairings, &batches, group),
        true,
    );
    let storage = raw(
        "storage",
        &|path| storage_ingest(path, zone, &pairings, &batches),
        true,
    );
    Round {
        plain,
        like,
        grouped,
        group,
        storage,
        http,
    }
}

fn print_load(when: &str) {
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        // Other work on the machine shows in every figure.
        let minute = load.split_whitespace().next().unwrap_or("?");
        println!("load average (1 min) {when}: {minute}");
    }
}

fn rate(visits: usize, elapsed: Duration) -> f64 {
    visits as f64 / elapsed.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Writes dirty pages out, so that one phase's writeback does not land on the next one's
/// fsyncs. Best effort: without a `sync` program the phases simply run back to back.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

/// Median seconds of a 4 KiB append followed by `fdatasync`, like a small WAL commit: the
/// floor under every commit with `synchronous=FULL`, and the figure that varies most between
/// machines (and on a shared VM, between minutes).
fn fsync_probe(path: &Path) -> f64 {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("create the fsync probe file");
    let block = [0u8; 4096];
    let mut times: Vec<f64> = (0..200)
        .map(|_| {
            let start = Instant::now();
            file.write_all(&block).expect("write the fsync probe");
            file.sync_data().expect("fdatasync the fsync probe");
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (Linux only).
fn process_cpu() -> Option<Duration> {
    // USER_HZ, the unit of utime and stime, is 100 on every Linux architecture in use.
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces: state is
    // field 3 of the line, utime field 14, stime field 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SECOND,
    ))
}

fn report(total: usize, clients: usize, cores: usize, rounds: &[Round]) {
    let rates = |pick: &dyn Fn(&Round) -> Duration| -> Vec<f64> {
        rounds.iter().map(|r| rate(total, pick(r))).collect()
    };
    let plain = rates(&|r| r.plain);
    let like = rates(&|r| r.like);
    let grouped = rates(&|r| r.grouped);
    let storage = rates(&|r| r.storage);
    let http = rates(&|r| r.http.elapsed);
    let ratio = |of: &[f64]| -> (f64, String) {
        let per_round: Vec<f64> = http.iter().zip(of).map(|(h, r)| h / r).collect();
        let text = per_round
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        (median(per_round), text)
    };
    let line = |name: &str, values: &[f64]| {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(0.0, f64::max);
        println!(
            "| {name:<44} | {:>10.0} | {low:>8.0} – {high:<8.0} |",
            median(values.to_vec())
        );
    };
    let groups: Vec<usize> = rounds.iter().map(|r| r.group).collect();
    println!();
    println!(
        "{clients} tablets at once — ratings/s, median of {} rounds, {cores} cores:",
        rounds.len()
    );
    println!("| path                                         |  ratings/s | range (all rounds)  |");
    println!("|----------------------------------------------|-----------:|---------------------|");
    line("raw, plain insert, 1 transaction a batch", &plain);
    line("raw, like for like, 1 transaction a batch", &like);
    line(
        &format!("raw, like for like, grouped by {groups:?}"),
        &grouped,
    );
    line("SqliteStorage::ingest, no HTTP, 1 at a time", &storage);
    line(&format!("HTTP /api/tablet/sync, {clients} tablets"), &http);
    println!();
    let (to_plain, to_plain_rounds) = ratio(&plain);
    let (to_like, to_like_rounds) = ratio(&like);
    let (to_grouped, to_grouped_rounds) = ratio(&grouped);
    println!("HTTP / raw plain: {to_plain:.2} (per round: {to_plain_rounds})");
    println!("HTTP / raw like for like: {to_like:.2} (per round: {to_like_rounds})");
    println!("HTTP / raw grouped: {to_grouped:.2} (per round: {to_grouped_rounds})");
    let mut latencies: Vec<Duration> = rounds
        .iter()
        .flat_map(|r| r.http.latencies.iter().copied())
        .collect();
    latencies.sort();
    let percentile = |p: f64| {
        let index = ((latencies.len() - 1) as f64 * p).round() as usize;
        latencies[index].as_secs_f64() * 1000.0
    };
    println!(
        "sync request latency (ms): p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
        percentile(0.5),
        percentile(0.9),
        percentile(0.99),
        percentile(1.0)
    );
    let commits: u64 = rounds.iter().map(|r| r.http.commits.commits).sum();
    let syncs: u64 = rounds.iter().map(|r| r.http.commits.syncs).sum();
    let largest = rounds
        .iter()
        .map(|r| r.http.commits.largest_commit_visits)
        .max()
        .unwrap_or(0);
    println!(
        "server commits: {:.2} syncs a commit on average, at most {largest} visits in one",
        syncs as f64 / commits.max(1) as f64
    );
    let busy: Vec<f64> = rounds
        .iter()
        .filter_map(|r| {
            let cpu = r.http.cpu?.as_secs_f64();
            Some(cpu / (r.http.elapsed.as_secs_f64() * cores as f64))
        })
        .collect();
    if !busy.is_empty() {
        println!(
            "CPU busy during HTTP runs (server and clients): {:.0}% of {cores} cores",
            median(busy) * 100.0
        );
    }
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "goals: >= 10000 ratings/s over HTTP: {}; HTTP >= 1.0 of raw like for like: {}; \
         HTTP >= 0.7 of raw grouped: {}",
        verdict(median(http) >= 10_000.0),
        verdict(to_like >= 1.0),
        verdict(to_grouped >= 0.7)
    );
}

/// Enrols `count` tablets and pairs each to a different specialist (a specialist works at one
/// tablet at a time), adding employees to the demo organisation where it has too few.
async fn pair_tablets(app: &TestServer, count: usize) -> (Vec<Tablet>, Vec<Pairing>) {
    let admin = app.admin().await;
    let mut employees: Vec<i64> = app
        .directory
        .departments
        .iter()
        .flat_map(|d| &d.sections)
        .flat_map(|s| &s.employees)
        .map(|e| e.id)
        .collect();
    let section = app
        .directory
        .departments
        .iter()
        .flat_map(|d| &d.sections)
        .find(|s| !s.service_ids.is_empty())
        .expect("a section that offers services")
        .id;
    while employees.len() < count {
        let n = employees.len() + 1;
        employees.push(
            app.storage()
                .create_employee(section, &format!("Сотрудник {n}"), "специалист")
                .expect("an employee for the bench"),
        );
    }
    let mut tablets = Vec::with_capacity(count);
    let mut pairings = Vec::with_capacity(count);
    for (index, &employee_id) in employees.iter().take(count).enumerate() {
        let tablet = app
            .enrol_tablet(&admin, &format!("Окно {}", index + 1))
            .await;
        let specialist = app.specialist(&admin, employee_id).await;
        let pairing = app.pair(&tablet, &specialist).await;
        tablets.push(tablet);
        pairings.push(pairing);
    }
    (tablets, pairings)
}

/// `total` visits in batches of [`BATCH`], handed out to the tablets in turn; ratings cycle
/// through Good, Medium, Bad and none, services through the pairing's services. Each tablet's
/// visits follow one another a minute apart, 30 seconds each, ending before now: no two
/// overlap, as at a real desk.
fn make_batches(total: usize, pairings: &[Pairing]) -> Vec<Batch> {
    let first = pairings
        .iter()
        .map(|p| p.started_at)
        .max()
        .unwrap_or_else(Timestamp::now)
        + SignedDuration::from_mins(1);
    let mut next: Vec<i64> = vec![0; pairings.len()];
    let mut batches = Vec::with_capacity(total.div_ceil(BATCH));
    let mut made = 0;
    while made < total {
        let client = batches.len() % pairings.len();
        let pairing = &pairings[client];
        let size = BATCH.min(total - made);
        let visits = (made..made + size)
            .map(|n| {
                let rating = RATINGS[n % RATINGS.len()];
                let ended_at = first + SignedDuration::from_mins(next[client]);
                next[client] += 1;
                Visit {
                    id: Uuid::now_v7(),
                    pairing_id: pairing.id,
                    service_id: pairing.services[n % pairing.services.len()].id,
                    started_at: ended_at - SignedDuration::from_secs(30),
                    ended_at,
                    rating,
                    has_recording: rating == Some(Rating::Bad),
                }
            })
            .collect();
        batches.push(Batch { client, visits });
        made += size;
    }
    batches
}

/// Every tablet sends its batches one after another, all tablets at once. Returns when every
/// batch has been acknowledged.
async fn http_ingest(
    tablets: Vec<Tablet>,
    batches: &[Batch],
    storage: &dyn office_server::storage::Storage,
) -> HttpRun {
    let mut queues: Vec<Vec<Vec<Visit>>> = tablets.iter().map(|_| Vec::new()).collect();
    for batch in batches {
        queues[batch.client].push(batch.visits.clone());
    }
    let commits_before = storage.commit_stats();
    let cpu_before = process_cpu();
    let start = Instant::now();
    let tasks: Vec<_> = tablets
        .into_iter()
        .zip(queues)
        .map(|(tablet, queue)| tokio::spawn(send_batches(tablet, queue)))
        .collect();
    let mut latencies = Vec::with_capacity(batches.len());
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let elapsed = start.elapsed();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let after = storage.commit_stats();
    HttpRun {
        elapsed,
        latencies,
        cpu,
        commits: CommitStats {
            commits: after.commits - commits_before.commits,
            syncs: after.syncs - commits_before.syncs,
            regrouped: after.regrouped - commits_before.regrouped,
            largest_commit_visits: after.largest_commit_visits,
        },
    }
}

async fn send_batches(tablet: Tablet, queue: Vec<Vec<Visit>>) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(queue.len());
    for visits in queue {
        let sent = Instant::now();
        let count = visits.len();
        let ids: Vec<Uuid> = visits.iter().map(|v| v.id).collect();
        let batch = SyncBatch {
            sent_at: Timestamp::now(),
            health: health(),
            visits,
            feedback_key: None,
        };
        let response = tablet
            .post("/api/tablet/sync")
            .json(&batch)
            .send()
            .await
            .expect("sync request");
        let status = response.status();
        if status != StatusCode::OK {
            let body = response.text().await.unwrap_or_default();
            panic!("sync answered {status}: {body}");
        }
        let answer: SyncResponse = response.json().await.expect("sync response");
        latencies.push(sent.elapsed());
        assert_eq!(answer.results.len(), count, "one result per visit");
        for (ack, id) in answer.results.iter().zip(&ids) {
            assert_eq!(ack.id, *id, "results in the batch's order");
            assert!(
                matches!(ack.outcome, VisitOutcome::Stored),
                "visit {id} not stored: {:?}",
                ack.outcome
            );
        }
    }
    latencies
}

/// Per pairing, the columns the server looks up before it inserts a visit: tablet, employee,
/// section, department.
type Placed = HashMap<Uuid, (i64, i64, i64, i64)>;

/// A fresh raw database with the server's schema, pragmas and the visits' parent rows.
/// Returns it and where each pairing places its visits.
fn raw_database(path: &Path, pairings: &[Pairing]) -> (Connection, Placed) {
    let mut conn = Connection::open(path).expect("open the raw database");
    configure_connection(&conn).expect("pragmas");
    migrations()
        .to_latest(&mut conn)
        .expect("migrate the raw database");
    let tablet_of = insert_parents(&mut conn, pairings);
    let placed = pairings
        .iter()
        .map(|p| {
            (
                p.id,
                (
                    tablet_of[&p.id],
                    p.employee.id,
                    p.section.id,
                    p.department.id,
                ),
            )
        })
        .collect();
    (conn, placed)
}

/// Only the visits, one transaction a batch; returns the time the inserts took.
fn plain_ingest(path: &Path, pairings: &[Pairing], batches: &[Batch]) -> Duration {
    let (mut conn, placed) = raw_database(path, pairings);
    let start = Instant::now();
    for batch in batches {
        let received_at = Timestamp::now().as_millisecond();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("begin");
        {
            let mut insert = tx.prepare_cached(INSERT_VISIT).expect("prepare insert");
            for visit in &batch.visits {
                insert_visit(&mut insert, visit, placed[&visit.pairing_id], received_at);
            }
        }
        tx.commit().expect("commit");
    }
    start.elapsed()
}

/// Everything ingest writes, with its statements, `group` batches a transaction; returns the
/// time the writes took.
fn like_for_like_ingest(
    path: &Path,
    zone: &TimeZone,
    pairings: &[Pairing],
    batches: &[Batch],
    group: usize,
) -> Duration {
    let (mut conn, placed) = raw_database(path, pairings);
    let health = health();
    let start = Instant::now();
    for together in batches.chunks(group) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("begin");
        let mut totals = TotalsAccumulator::default();
        for batch in together {
            let received_at = Timestamp::now().as_millisecond();
            let mut insert = tx.prepare_cached(INSERT_VISIT).expect("prepare insert");
            for visit in &batch.visits {
                let place = placed[&visit.pairing_id];
                insert_visit(&mut insert, visit, place, received_at);
                let (_, employee, section, department) = place;
                let at = Timestamp::from_millisecond(visit_instant_ms(
                    visit.ended_at.as_millisecond(),
                    0,
                ))
                .expect("instant");
                totals.add(
                    &PeriodKeys::at(at, zone),
                    department,
                    section,
                    employee,
                    visit.service_id,
                    visit.rating.map(Rating::score),
                );
            }
            let tablet_id = placed[&batch.visits[0].pairing_id].0;
            record_sync(&tx, tablet_id, received_at, 0, &health, batch.visits.len())
                .expect("tablet health and sync log");
        }
        totals.flush(&tx).expect("report totals");
        tx.commit().expect("commit");
    }
    start.elapsed()
}

fn insert_visit(
    insert: &mut rusqlite::CachedStatement<'_>,
    visit: &Visit,
    (tablet_id, employee_id, section_id, department_id): (i64, i64, i64, i64),
    received_at: i64,
) {
    insert
        .execute(params![
            visit.id,
            visit.pairing_id,
            tablet_id,
            employee_id,
            section_id,
            department_id,
            visit.service_id,
            visit.started_at.as_millisecond(),
            visit.ended_at.as_millisecond(),
            visit.rating.map(Rating::score),
            visit.has_recording,
            received_at,
            0_i64
        ])
        .expect("insert visit");
}

/// The same visits through the server's storage layer, as the sync handler calls it (ingest,
/// then the tablet's pairing status), without HTTP; one call per batch, one at a time.
fn storage_ingest(
    path: &Path,
    zone: &TimeZone,
    pairings: &[Pairing],
    batches: &[Batch],
) -> Duration {
    let tablet_of = {
        let (conn, placed) = raw_database(path, pairings);
        drop(conn);
        placed
    };
    let storage = SqliteStorage::open(path, zone.clone()).expect("open SqliteStorage");
    let rule = acceptance::Acceptance {
        clock_slack: SignedDuration::from_secs(CLOCK_SLACK_SECS as i64),
    };
    let judge: Arc<office_server::storage::Judge> =
        Arc::new(move |facts| acceptance::judge(facts, &rule));
    let start = Instant::now();
    for batch in batches {
        let tablet_id = tablet_of[&pairings[batch.client].id].0;
        let received_at = Timestamp::now();
        let outcomes = storage
            .ingest(
                IngestBatch {
                    tablet_id,
                    received_at,
                    clock_offset_ms: 0,
                    health: health(),
                    visits: batch.visits.clone(),
                },
                Arc::clone(&judge),
            )
            .expect("ingest")
            .outcomes;
        storage
            .tablet_pairing_status(tablet_id, received_at)
            .expect("pairing status");
        assert!(
            outcomes.iter().all(|o| matches!(o, VisitOutcome::Stored)),
            "every visit stored: {:?}",
            outcomes.iter().find(|o| !matches!(o, VisitOutcome::Stored))
        );
    }
    start.elapsed()
}

/// The rows the visits refer to, with the server's ids so that the very same visits fit.
/// Returns each pairing's tablet id.
fn insert_parents(conn: &mut Connection, pairings: &[Pairing]) -> HashMap<Uuid, i64> {
    let tx = conn.transaction().expect("begin parents");
    let now = Timestamp::now().as_millisecond();
    let mut tablet_of = HashMap::new();
    for (index, pairing) in pairings.iter().enumerate() {
        let tablet_id = index as i64 + 1;
        tablet_of.insert(pairing.id, tablet_id);
        tx.execute(
            "INSERT OR IGNORE INTO departments (id, name) VALUES (?1, ?2)",
            params![pairing.department.id, pairing.department.name],
        )
        .expect("department");
        tx.execute(
            "INSERT OR IGNORE INTO sections (id, department_id, name) VALUES (?1, ?2, ?3)",
            params![
                pairing.section.id,
                pairing.department.id,
                pairing.section.name
            ],
        )
        .expect("section");
        tx.execute(
            "INSERT OR IGNORE INTO employees (id, section_id, full_name) VALUES (?1, ?2, ?3)",
            params![
                pairing.employee.id,
                pairing.section.id,
                pairing.employee.name
            ],
        )
        .expect("employee");
        tx.execute(
            "INSERT INTO tablets (id, name, device_description, enrolled_at, confirmed_at)
             VALUES (?1, ?2, 'bench tablet', ?3, ?3)",
            params![tablet_id, format!("Окно {tablet_id}"), now],
        )
        .expect("tablet");
        tx.execute(
            "INSERT INTO pairings (id, tablet_id, employee_id, section_id, department_id,
                                   started_at, ends_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                pairing.id,
                tablet_id,
                pairing.employee.id,
                pairing.section.id,
                pairing.department.id,
                pairing.started_at.as_millisecond(),
                pairing.ends_at.as_millisecond()
            ],
        )
        .expect("pairing");
        for (position, service) in pairing.services.iter().enumerate() {
            tx.execute(
                "INSERT OR IGNORE INTO services (id, name) VALUES (?1, ?2)",
                params![service.id, service.name],
            )
            .expect("service");
            tx.execute(
                "INSERT OR IGNORE INTO section_services (section_id, service_id, position)
                 VALUES (?1, ?2, ?3)",
                params![pairing.section.id, service.id, position as i64],
            )
            .expect("section service");
            tx.execute(
                "INSERT INTO pairing_services (pairing_id, service_id, position)
                 VALUES (?1, ?2, ?3)",
                params![pairing.id, service.id, position as i64],
            )
            .expect("pairing service");
        }
    }
    tx.commit().expect("commit parents");
    tablet_of
}

fn count_visits(path: &Path) -> usize {
    count(path, "SELECT count(*) FROM visits")
}

/// The visits the report totals count, at the year level (every visit is in exactly one year).
fn counted_in_totals(path: &Path) -> usize {
    count(
        path,
        &format!(
            "SELECT coalesce(sum(visits), 0) FROM report_totals WHERE level = {}",
            Level::Year.code()
        ),
    )
}

fn count(path: &Path, sql: &str) -> usize {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open database to count");
    let count: i64 = conn.query_row(sql, [], |row| row.get(0)).expect("count");
    usize::try_from(count).expect("non-negative count")
}
