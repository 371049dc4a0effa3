//! Sync ingest benchmark: the same visits, in batches of 100, along three paths.
//!
//! - **HTTP**: the real server in-process (127.0.0.1:0, fresh data directory), a few enrolled
//!   and paired tablets, one client task per tablet POSTing `/api/tablet/sync` batches one after
//!   another, all tablets at once. Every visit must come back `stored`.
//! - **raw**: a fresh SQLite file with the same schema, indexes and pragmas (the server's own
//!   migrations and `configure_connection`), the same parent rows, and the same visits inserted
//!   with the server's `INSERT INTO visits` statement on one connection, one `BEGIN IMMEDIATE`
//!   transaction per batch, prepared statement cached.
//! - **storage**: `SqliteStorage::ingest` and `tablet_pairing_status` called directly, batch
//!   after batch, as the sync handler calls them: the server's database work without HTTP. It
//!   shows how the gap between the other two splits.
//!
//! Each round runs all three into fresh databases (the disk is flushed with `sync` between
//! phases, so that one phase's writeback does not slow the next one's fsyncs); the report gives
//! medians, ratings/s and the HTTP / raw ratio. Run `scripts/bench-ingest.sh` or
//! `cargo bench -p office-server --bench ingest`. Environment: `BENCH_VISITS` (default
//! 100000), `BENCH_CLIENTS` (concurrent tablets, default 4), `BENCH_ROUNDS` (default 5).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use office_server::domain::acceptance;
use office_server::storage::{IngestBatch, SqliteStorage, TabletStore, VisitStore, migrations};
use reqwest::StatusCode;
use rusqlite::{Connection, params};
use shared_model::{Pairing, Rating, SyncBatch, SyncResponse, Visit, VisitOutcome};
use sqlite_db::configure as configure_connection;
use uuid::Uuid;

use test_support::{Tablet, TestServer, env_number, health, spawn_app, test_config};

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
}

/// One round: the same visits through each path, each into a fresh database.
struct Round {
    raw: Duration,
    storage: Duration,
    http: HttpRun,
}

fn main() {
    let total = env_number("BENCH_VISITS", 100_000);
    let clients = env_number("BENCH_CLIENTS", 4);
    let rounds = env_number("BENCH_ROUNDS", 5);
    assert!(total > 0, "BENCH_VISITS must be positive");
    assert!(clients > 0, "BENCH_CLIENTS must be positive");
    assert!(rounds > 0, "BENCH_ROUNDS must be positive");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    println!(
        "sync ingest: {total} visits in batches of {BATCH}, {clients} concurrent tablet clients, \
         {rounds} rounds, {cores} cores"
    );
    let probe_dir = tempfile::tempdir().expect("temporary directory for the fsync probe");
    println!(
        "disk: 4 KiB append + fdatasync takes {:.2} ms (median of 200)",
        fsync_probe(&probe_dir.path().join("probe")) * 1000.0
    );
    drop(probe_dir);
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        // Other work on the machine shows in every figure below.
        let minute = load.split_whitespace().next().unwrap_or("?");
        println!("load average (1 min) at start: {minute}");
    }
    let mut results = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let (app, tablets, pairings) = runtime.block_on(async {
            let app = spawn_app().await;
            let (tablets, pairings) = pair_tablets(&app, clients).await;
            (app, tablets, pairings)
        });
        let batches = make_batches(total, &pairings);

        settle();
        let raw = {
            let dir = tempfile::tempdir().expect("temporary directory for the raw database");
            let path = dir.path().join("raw.sqlite3");
            let elapsed = raw_ingest(&path, &pairings, &batches);
            assert_eq!(count_visits(&path), total, "visits in the raw database");
            elapsed
        };

        settle();
        let storage = {
            let dir = tempfile::tempdir().expect("temporary directory for the storage database");
            let path = dir.path().join("storage.sqlite3");
            let elapsed = storage_ingest(&path, &pairings, &batches);
            assert_eq!(count_visits(&path), total, "visits in the storage database");
            elapsed
        };

        settle();
        let http = runtime.block_on(async {
            let http = http_ingest(tablets, &batches).await;
            let counted = count_visits(&test_config(&app.data_dir).database_path());
            assert_eq!(counted, total, "visits in the server's database");
            app.stop().await;
            http
        });
        println!(
            "round {round}: raw {:.0}/s, storage {:.0}/s, HTTP {:.0}/s",
            rate(total, raw),
            rate(total, storage),
            rate(total, http.elapsed)
        );
        results.push(Round { raw, storage, http });
    }
    drop(runtime);
    report(total, clients, cores, results);
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

fn report(total: usize, clients: usize, cores: usize, rounds: Vec<Round>) {
    let rates = |pick: &dyn Fn(&Round) -> Duration| -> Vec<f64> {
        rounds.iter().map(|r| rate(total, pick(r))).collect()
    };
    let raw = rates(&|r| r.raw);
    let storage = rates(&|r| r.storage);
    let http = rates(&|r| r.http.elapsed);
    let ratios: Vec<f64> = http.iter().zip(&raw).map(|(h, r)| h / r).collect();
    let line = |name: &str, values: &[f64]| {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(0.0, f64::max);
        println!(
            "| {name:<34} | {:>10.0} | {low:>8.0} – {high:<8.0} |",
            median(values.to_vec())
        );
    };
    println!();
    println!(
        "ratings/s, median of {} rounds, {cores} cores:",
        rounds.len()
    );
    println!("| path                               |  ratings/s | range (all rounds)  |");
    println!("|------------------------------------|-----------:|---------------------|");
    line("raw rusqlite insert, 1 connection", &raw);
    line("SqliteStorage::ingest, no HTTP", &storage);
    line(&format!("HTTP /api/tablet/sync, {clients} clients"), &http);
    println!();
    let ratio = median(ratios.clone());
    println!(
        "HTTP / raw: {ratio:.2} (per round: {})",
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "storage / raw: {:.2}; HTTP / storage: {:.2}",
        median(storage.clone()) / median(raw.clone()),
        median(http.clone()) / median(storage.clone())
    );
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
        "goals: >= 10000 ratings/s over HTTP: {}; HTTP >= 0.5 of raw: {}",
        verdict(median(http) >= 10_000.0),
        verdict(ratio >= 0.5)
    );
}

/// Enrols `count` tablets and pairs each to a different specialist.
async fn pair_tablets(app: &TestServer, count: usize) -> (Vec<Tablet>, Vec<Pairing>) {
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
    HttpRun {
        elapsed,
        latencies,
        cpu,
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

/// The same visits through the server's storage layer, as the sync handler calls it (ingest,
/// then the tablet's pairing status), without HTTP; one call per batch, one at a time.
fn storage_ingest(path: &Path, pairings: &[Pairing], batches: &[Batch]) -> Duration {
    let tablet_of = {
        let mut conn = Connection::open(path).expect("open the storage database");
        configure_connection(&conn).expect("pragmas");
        migrations()
            .to_latest(&mut conn)
            .expect("migrate the storage database");
        insert_parents(&mut conn, pairings)
    };
    let zone = jiff::tz::TimeZone::get("Asia/Yekaterinburg").expect("office time zone");
    let storage = SqliteStorage::open(path, zone).expect("open SqliteStorage");
    let health = health();
    let start = Instant::now();
    for batch in batches {
        let tablet_id = tablet_of[&pairings[batch.client].id];
        let received_at = Timestamp::now();
        let outcomes = storage
            .ingest(
                &IngestBatch {
                    tablet_id,
                    received_at,
                    clock_offset_ms: 0,
                    health: &health,
                    visits: &batch.visits,
                },
                &|facts| acceptance::judge(facts, &acceptance::Acceptance::default()),
            )
            .expect("ingest")
            .outcomes;
        storage
            .tablet_pairing_status(tablet_id, received_at)
            .expect("pairing status");
        assert!(
            outcomes.iter().all(|o| matches!(o, VisitOutcome::Stored)),
            "every visit stored"
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
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open database to count");
    let count: i64 = conn
        .query_row("SELECT count(*) FROM visits", [], |row| row.get(0))
        .expect("count visits");
    usize::try_from(count).expect("non-negative count")
}
