//! Sync ingest benchmark.
//!
//! 1. Starts the real server in-process (127.0.0.1:0, fresh data directory), enrols and pairs a
//!    few tablets, and has one client task per tablet POST `/api/tablet/sync` batches of 100
//!    visits until `BENCH_VISITS` visits are stored. Every visit must come back `stored`.
//! 2. In the same run, the raw baseline: a fresh SQLite file with the same schema, indexes and
//!    pragmas (the server's own migrations and `configure_connection`), the same parent rows,
//!    and the same visits inserted with the server's `INSERT INTO visits` statement, one
//!    `BEGIN IMMEDIATE` transaction per batch of 100, prepared statement cached.
//!
//! Prints ratings/s for both and their ratio. Run with `scripts/bench-ingest.sh` or
//! `cargo bench -p office-server --bench ingest`; environment: `BENCH_VISITS` (default
//! 100000), `BENCH_CLIENTS` (concurrent tablets, default 4).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use office_server::storage::{configure_connection, migrations};
use reqwest::StatusCode;
use rusqlite::{Connection, params};
use shared_model::{Pairing, Rating, SyncBatch, SyncResponse, Visit, VisitOutcome};
use uuid::Uuid;

use common::{Tablet, TestApp, health, spawn_app, test_config};

const BATCH: usize = 100;
const RATINGS: [Option<Rating>; 4] = [
    Some(Rating::Good),
    Some(Rating::Medium),
    Some(Rating::Bad),
    None,
];
/// The statement `SqliteStorage::ingest` uses, verbatim.
const INSERT_VISIT: &str =
    "INSERT INTO visits (id, pairing_id, tablet_id, employee_id, section_id, department_id,
                                     service_id, started_at, ended_at, rating, has_recording,
                                     received_at, clock_offset_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}")),
        Err(_) => default,
    }
}

/// One batch of visits and the index of the tablet that sends it.
struct Batch {
    client: usize,
    visits: Vec<Visit>,
}

/// What one HTTP run measured.
struct HttpRun {
    elapsed: Duration,
    stored: usize,
    /// Wall time of every sync request, client side.
    latencies: Vec<Duration>,
}

fn main() {
    let total = env_usize("BENCH_VISITS", 100_000);
    let clients = env_usize("BENCH_CLIENTS", 4);
    assert!(total > 0, "BENCH_VISITS must be positive");
    assert!(clients > 0, "BENCH_CLIENTS must be positive");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    println!(
        "sync ingest: {total} visits in batches of {BATCH}, {clients} concurrent tablet clients, \
         {cores} cores"
    );

    // --- the server over HTTP --------------------------------------------------------------
    let (pairings, batches, http) = runtime.block_on(async {
        let app = spawn_app().await;
        let (tablets, pairings) = pair_tablets(&app, clients).await;
        let batches = make_batches(total, &pairings);
        let http = http_ingest(tablets, &batches).await;
        let counted = count_visits(&test_config(&app.data_dir).database_path());
        assert_eq!(counted, total, "visits in the server's database");
        app.stop().await;
        (pairings, batches, http)
    });
    drop(runtime);
    assert_eq!(http.stored, total, "visits the server reported stored");

    // --- raw rusqlite ----------------------------------------------------------------------
    let raw_dir = tempfile::tempdir().expect("temporary directory for the raw database");
    let raw_path = raw_dir.path().join("raw.sqlite3");
    let raw_elapsed = raw_ingest(&raw_path, &pairings, &batches);
    assert_eq!(count_visits(&raw_path), total, "visits in the raw database");

    // --- report ----------------------------------------------------------------------------
    let http_rate = total as f64 / http.elapsed.as_secs_f64();
    let raw_rate = total as f64 / raw_elapsed.as_secs_f64();
    let ratio = http_rate / raw_rate;
    let mut latencies = http.latencies;
    latencies.sort();
    let percentile = |p: f64| {
        let index = ((latencies.len() - 1) as f64 * p).round() as usize;
        latencies[index].as_secs_f64() * 1000.0
    };
    println!();
    println!("| path                       | visits  | seconds | ratings/s |");
    println!("|----------------------------|--------:|--------:|----------:|");
    println!(
        "| HTTP sync ({clients} clients)      | {total:>7} | {:>7.3} | {http_rate:>9.0} |",
        http.elapsed.as_secs_f64()
    );
    println!(
        "| raw rusqlite, 1 connection | {total:>7} | {:>7.3} | {raw_rate:>9.0} |",
        raw_elapsed.as_secs_f64()
    );
    println!();
    println!("ratio HTTP / raw: {ratio:.2}");
    println!(
        "sync request latency (ms): p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
        percentile(0.5),
        percentile(0.9),
        percentile(0.99),
        percentile(1.0)
    );
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "goals: >= 10000 ratings/s over HTTP: {}; >= 0.5 of raw: {}",
        verdict(http_rate >= 10_000.0),
        verdict(ratio >= 0.5)
    );
}

/// Enrols `count` tablets and pairs each to a different specialist.
async fn pair_tablets(app: &TestApp, count: usize) -> (Vec<Tablet>, Vec<Pairing>) {
    let admin = app.admin().await;
    let employees: Vec<i64> = app
        .directory
        .departments
        .iter()
        .flat_map(|d| &d.sections)
        .flat_map(|s| &s.employees)
        .map(|e| e.id)
        .collect();
    assert!(
        count <= employees.len(),
        "BENCH_CLIENTS={count}, but the demo organisation has only {} employees",
        employees.len()
    );
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
/// through Good, Medium, Bad and none, services through the pairing's services.
fn make_batches(total: usize, pairings: &[Pairing]) -> Vec<Batch> {
    let now = Timestamp::now();
    let mut batches = Vec::with_capacity(total.div_ceil(BATCH));
    let mut made = 0;
    while made < total {
        let client = batches.len() % pairings.len();
        let pairing = &pairings[client];
        let size = BATCH.min(total - made);
        let visits = (made..made + size)
            .map(|n| {
                let rating = RATINGS[n % RATINGS.len()];
                let ended_at = now - SignedDuration::from_secs((total - n) as i64);
                Visit {
                    id: Uuid::now_v7(),
                    pairing_id: pairing.id,
                    service_id: pairing.services[n % pairing.services.len()].id,
                    started_at: ended_at - SignedDuration::from_mins(10),
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
async fn http_ingest(tablets: Vec<Tablet>, batches: &[Batch]) -> HttpRun {
    let mut queues: Vec<Vec<Vec<Visit>>> = tablets.iter().map(|_| Vec::new()).collect();
    for batch in batches {
        queues[batch.client].push(batch.visits.clone());
    }
    let start = Instant::now();
    let tasks: Vec<_> = tablets
        .into_iter()
        .zip(queues)
        .map(|(tablet, queue)| tokio::spawn(send_batches(tablet, queue)))
        .collect();
    let mut stored = 0;
    let mut latencies = Vec::with_capacity(batches.len());
    for task in tasks {
        let (task_stored, task_latencies) = task.await.expect("client task");
        stored += task_stored;
        latencies.extend(task_latencies);
    }
    HttpRun {
        elapsed: start.elapsed(),
        stored,
        latencies,
    }
}

async fn send_batches(tablet: Tablet, queue: Vec<Vec<Visit>>) -> (usize, Vec<Duration>) {
    let mut stored = 0;
    let mut latencies = Vec::with_capacity(queue.len());
    for visits in queue {
        let sent = Instant::now();
        let count = visits.len();
        let ids: Vec<Uuid> = visits.iter().map(|v| v.id).collect();
        let batch = SyncBatch {
            sent_at: Timestamp::now(),
            health: health(),
            visits,
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
        stored += count;
    }
    (stored, latencies)
}

/// The same visits straight into SQLite; returns the time the inserts took.
fn raw_ingest(path: &Path, pairings: &[Pairing], batches: &[Batch]) -> Duration {
    let mut conn = Connection::open(path).expect("open the raw database");
    configure_connection(&conn).expect("pragmas");
    migrations()
        .to_latest(&mut conn)
        .expect("migrate the raw database");
    let tablet_of = insert_parents(&mut conn, pairings);

    // Per pairing: the columns the server looks up before it inserts.
    let placed: HashMap<Uuid, (i64, i64, i64, i64)> = pairings
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

    let start = Instant::now();
    for batch in batches {
        let received_at = Timestamp::now().as_millisecond();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .expect("begin");
        {
            let mut insert = tx.prepare_cached(INSERT_VISIT).expect("prepare insert");
            for visit in &batch.visits {
                let (tablet_id, employee_id, section_id, department_id) = placed[&visit.pairing_id];
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
        }
        tx.commit().expect("commit");
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
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open database to count");
    let count: i64 = conn
        .query_row("SELECT count(*) FROM visits", [], |row| row.get(0))
        .expect("count visits");
    usize::try_from(count).expect("non-negative count")
}
