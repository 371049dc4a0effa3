//! Dashboard benchmark: a large office database, the real server binary, page latency through
//! HTTP, and DuckDB computing the same aggregates from the raw visits.
//!
//! 1. **Generate** (skipped when the directory already holds a database of the same size):
//!    5 departments, 20 sections, 300 employees, 40 services (8 per section), one pairing per
//!    employee and month, and `BENCH_VISITS` visits (default 10,000,000) spread over the
//!    working hours of the weekdays of the last 3 years, written straight into the SQLite file
//!    with the server's schema and statements, and the report totals counted with the server's
//!    own `TotalsAccumulator` — the same rows ingest keeps. The raw visits are also written to
//!    `visits.csv` for DuckDB.
//! 2. **Serve**: the release binary (`serve --data …`) in a child process, on loopback.
//! 3. **Measure** through HTTP, as a signed-in administrator: the department tab of the whole
//!    organisation and of one department, and the employee table of the whole organisation and
//!    of one section — every page with all six period columns. `BENCH_REQUESTS` requests each
//!    (default 200) after 10 warm-up requests; p50, p95 and max. Then the server's resident
//!    memory (VmRSS, and its peak VmHWM).
//! 4. **DuckDB** (when `BENCH_DUCKDB_PYTHON` names a Python with the `duckdb` package, as
//!    `scripts/bench-dashboard.sh` sets up): `scripts/bench_dashboard_duckdb.py` loads the CSV
//!    into an in-memory table and runs the same aggregates for the same pages over the raw
//!    visits; the bench prints the ratio, and compares every cell of the pages' tables with
//!    DuckDB's counts formatted by the server's rule (a wrong total cannot pass as a fast one).
//!
//! Run `scripts/bench-dashboard.sh`. Environment: `BENCH_VISITS`, `BENCH_REQUESTS`,
//! `BENCH_DIR` (default `target/bench-dashboard/data-<visits>`).

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use office_server::reports::{PeriodKeys, Tally, format_average, format_percent};
use office_server::storage::{SqliteStorage, TotalsAccumulator, set_totals_zone};
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use test_support::table_rows;
use uuid::Uuid;

const DEPARTMENTS: i64 = 5;
const SECTIONS_PER_DEPARTMENT: i64 = 4;
const EMPLOYEES_PER_SECTION: i64 = 15;
const SERVICES: i64 = 40;
const SERVICES_PER_SECTION: i64 = 8;
const YEARS: i64 = 3;
const ZONE: &str = "Asia/Yekaterinburg";
const PASSWORD: &str = "benchmark password";

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {value:?}")),
        Err(_) => default,
    }
}

/// A small deterministic generator: the same database at every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() {
    let visits = env_usize("BENCH_VISITS", 10_000_000);
    let requests = env_usize("BENCH_REQUESTS", 200);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-dashboard");
    let dir = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(format!("data-{visits}")));
    let zone = TimeZone::get(ZONE).expect("time zone");
    println!(
        "dashboard benchmark: {visits} visits, {DEPARTMENTS} departments, {} sections, {} employees, {SERVICES} services, {YEARS} years; {} cores",
        DEPARTMENTS * SECTIONS_PER_DEPARTMENT,
        DEPARTMENTS * SECTIONS_PER_DEPARTMENT * EMPLOYEES_PER_SECTION,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let today = zone.to_datetime(Timestamp::now()).date();
    let marker = dir.join("generated.json");
    let reuse = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|v| v["visits"] == json!(visits) && v["last_day"] == json!(today.to_string()));
    if reuse {
        println!("reusing the database in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("data directory");
        let started = Instant::now();
        generate(&dir, visits, &zone, today);
        let elapsed = started.elapsed();
        let size = std::fs::metadata(dir.join("office.sqlite3")).map_or(0, |m| m.len());
        println!(
            "generated in {:.0} s ({:.0} visits/s); database {:.2} GB",
            elapsed.as_secs_f64(),
            visits as f64 / elapsed.as_secs_f64(),
            size as f64 / 1e9
        );
        std::fs::write(
            &marker,
            json!({ "visits": visits, "last_day": today.to_string() }).to_string(),
        )
        .expect("marker");
    }
    let counts = table_counts(&dir.join("office.sqlite3"));
    println!("rows: {counts}");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        // Other work on the machine shows in every figure below.
        println!(
            "load average (1 min) before measuring: {}",
            load.split_whitespace().next().unwrap_or("?")
        );
    }
    let server = Server::start(&dir);
    let results = runtime.block_on(measure(&server, requests));
    let (rss, peak) = server.memory();
    drop(server);

    println!();
    println!("server (HTTP, signed-in administrator, {requests} requests each, sequential):");
    println!(
        "  {:<48} {:>9} {:>9} {:>9} {:>9}",
        "page", "p50 ms", "p95 ms", "max ms", "bytes"
    );
    for result in &results {
        println!(
            "  {:<48} {:>9.2} {:>9.2} {:>9.2} {:>9}",
            result.name, result.p50, result.p95, result.max, result.bytes
        );
    }
    println!(
        "  server memory after the runs: VmRSS {:.1} MB, peak VmHWM {:.1} MB",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );

    match std::env::var("BENCH_DUCKDB_PYTHON") {
        Ok(python) => {
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../scripts/bench_dashboard_duckdb.py");
            println!();
            println!("DuckDB over the raw visits (same aggregates, same pages):");
            let output = Command::new(&python)
                .arg(&script)
                .arg(dir.join("visits.csv"))
                .arg(today.to_string())
                .arg(ZONE)
                .arg(requests.min(50).to_string())
                .stderr(Stdio::inherit())
                .output()
                .expect("run the DuckDB script");
            assert!(output.status.success(), "the DuckDB script failed");
            let report: Value =
                serde_json::from_slice(&output.stdout).expect("the DuckDB script's JSON");
            println!(
                "  duckdb {}, {} threads, {} rows loaded from the CSV in {:.1} s (not timed below)",
                report["version"].as_str().unwrap_or("?"),
                report["threads"],
                report["rows"],
                report["load_seconds"].as_f64().unwrap_or(f64::NAN)
            );
            println!(
                "  {:<48} {:>9} {:>9} {:>12} {:>12}",
                "page", "p50 ms", "p95 ms", "ratio p50", "ratio p95"
            );
            let cells: usize = results
                .iter()
                .map(|result| check_cells(result.key, &result.html, &report["tallies"]))
                .sum();
            println!("  every cell of the measured pages equals DuckDB's: {cells} cells compared");
            for result in &results {
                let duck = &report["pages"][result.key];
                let p50 = duck["p50"].as_f64().unwrap_or(f64::NAN);
                let p95 = duck["p95"].as_f64().unwrap_or(f64::NAN);
                println!(
                    "  {:<48} {:>9.2} {:>9.2} {:>11.1}× {:>11.1}×",
                    result.name,
                    p50,
                    p95,
                    p50 / result.p50,
                    p95 / result.p95
                );
            }
        }
        Err(_) => println!(
            "\nDuckDB comparison skipped: set BENCH_DUCKDB_PYTHON (scripts/bench-dashboard.sh does)"
        ),
    }
}

fn table_counts(path: &Path) -> String {
    let conn = Connection::open(path).expect("open");
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap_or(-1)
    };
    format!(
        "visits {}, report_totals {}, report_section_totals {}, pairings {}",
        count("visits"),
        count("report_totals"),
        count("report_section_totals"),
        count("pairings")
    )
}

/// Weekdays of the last `YEARS` years, up to and including `today` (if it is one).
fn working_days(today: Date) -> Vec<Date> {
    let first = today
        .checked_sub(Span::new().years(YEARS))
        .expect("three years back");
    let mut days = Vec::new();
    let mut day = first;
    while day <= today {
        if day.weekday().to_monday_one_offset() <= 5 {
            days.push(day);
        }
        day = day.tomorrow().expect("a next day");
    }
    days
}

fn generate(dir: &Path, total: usize, zone: &TimeZone, today: Date) {
    let path = dir.join("office.sqlite3");
    // The server's own schema, and the time zone the totals are kept in.
    drop(SqliteStorage::open(&path, zone.clone()).expect("create the database"));
    let mut conn = Connection::open(&path).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    conn.pragma_update(None, "cache_size", -512_000).unwrap();
    let tx = conn.transaction().unwrap();
    let sections = DEPARTMENTS * SECTIONS_PER_DEPARTMENT;
    for d in 1..=DEPARTMENTS {
        tx.execute(
            "INSERT INTO departments (id, name) VALUES (?1, ?2)",
            params![d, format!("Департамент {d}")],
        )
        .unwrap();
    }
    for s in 1..=SERVICES {
        tx.execute(
            "INSERT INTO services (id, name) VALUES (?1, ?2)",
            params![s, format!("Услуга {s}")],
        )
        .unwrap();
    }
    let mut section_services: HashMap<i64, Vec<i64>> = HashMap::new();
    for s in 1..=sections {
        let department = (s - 1) / SECTIONS_PER_DEPARTMENT + 1;
        tx.execute(
            "INSERT INTO sections (id, department_id, name) VALUES (?1, ?2, ?3)",
            params![s, department, format!("Отдел {s}")],
        )
        .unwrap();
        let offered: Vec<i64> = (0..SERVICES_PER_SECTION)
            .map(|k| (s * 2 + k) % SERVICES + 1)
            .collect();
        for (position, service) in offered.iter().enumerate() {
            tx.execute(
                "INSERT INTO section_services (section_id, service_id, position) VALUES (?1, ?2, ?3)",
                params![s, service, position as i64],
            )
            .unwrap();
        }
        section_services.insert(s, offered);
    }
    let employees = sections * EMPLOYEES_PER_SECTION;
    for e in 1..=employees {
        let section = (e - 1) / EMPLOYEES_PER_SECTION + 1;
        tx.execute(
            "INSERT INTO employees (id, section_id, full_name, position) VALUES (?1, ?2, ?3, '')",
            params![e, section, format!("Сотрудник {e:03}")],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO tablets (id, name, device_description, enrolled_at) VALUES (?1, ?2, 'bench', 0)",
            params![e, format!("Окно {e}")],
        )
        .unwrap();
    }
    tx.commit().unwrap();

    let days = working_days(today);
    let per_day = total / days.len();
    let extra = total % days.len();
    let mut random = Lcg(20_261_124);
    let mut csv = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(dir.join("visits.csv")).expect("visits.csv"),
    );
    writeln!(
        csv,
        "department_id,section_id,employee_id,service_id,ended_at,clock_offset_ms,rating"
    )
    .unwrap();
    // One pairing per employee and month.
    let mut pairings: HashMap<(i64, i64), Uuid> = HashMap::new();
    let open = Time::constant(8, 0, 0, 0);
    let working_ms: u64 = 10 * 3600 * 1000;
    let mut written = 0usize;
    let mut tx = conn.transaction().unwrap();
    let mut totals = TotalsAccumulator::default();
    for (index, day) in days.iter().enumerate() {
        let start = day
            .to_datetime(open)
            .to_zoned_datetime(zone.clone())
            .expect("a local time")
            .timestamp()
            .as_millisecond();
        let count = per_day + usize::from(index < extra);
        // Visits of the day in time order, so ids (UUIDv7) grow like a real office's.
        let mut offsets: Vec<u64> = (0..count).map(|_| random.below(working_ms)).collect();
        offsets.sort_unstable();
        let keys = PeriodKeys::of(*day);
        let month = keys.month;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO visits (id, pairing_id, tablet_id, employee_id, section_id, department_id,
                                         service_id, started_at, ended_at, rating, has_recording,
                                         received_at, clock_offset_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .unwrap();
            for offset in offsets {
                let employee = random.below(employees as u64) as i64 + 1;
                let section = (employee - 1) / EMPLOYEES_PER_SECTION + 1;
                let department = (section - 1) / SECTIONS_PER_DEPARTMENT + 1;
                let service =
                    section_services[&section][random.below(SERVICES_PER_SECTION as u64) as usize];
                let rating: Option<u8> = match random.below(100) {
                    0..=64 => Some(3),
                    65..=84 => Some(2),
                    85..=91 => Some(1),
                    _ => None,
                };
                let ended = start + offset as i64;
                let clock_offset = random.below(2001) as i64 - 1000;
                let pairing = *pairings.entry((employee, month)).or_insert_with(|| {
                    let id = Uuid::now_v7();
                    tx.execute(
                        "INSERT INTO pairings (id, tablet_id, employee_id, section_id, department_id, started_at, ends_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![id, employee, employee, section, department, start, start + working_ms as i64],
                    )
                    .unwrap();
                    id
                });
                let id = Uuid::new_v7(uuid::Timestamp::from_unix(
                    uuid::NoContext,
                    (ended / 1000) as u64,
                    ((ended % 1000) * 1_000_000) as u32 + (written % 1_000_000) as u32,
                ));
                insert
                    .execute(params![
                        id,
                        pairing,
                        employee,
                        employee,
                        section,
                        department,
                        service,
                        ended - 600_000 + clock_offset,
                        ended + clock_offset,
                        rating,
                        false,
                        ended + 5_000,
                        clock_offset
                    ])
                    .unwrap();
                totals.add(&keys, department, section, employee, service, rating);
                writeln!(
                    csv,
                    "{department},{section},{employee},{service},{},{clock_offset},{}",
                    ended + clock_offset,
                    rating.map_or(String::new(), |r| r.to_string())
                )
                .unwrap();
                written += 1;
            }
        }
        totals.flush(&tx).unwrap();
        if index % 20 == 19 {
            tx.commit().unwrap();
            tx = conn.transaction().unwrap();
        }
        if index % 100 == 99 {
            println!("  {written} visits written…");
        }
    }
    set_totals_zone(&tx, zone).unwrap();
    tx.commit().unwrap();
    println!("  {written} visits written; analysing…");
    conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    csv.flush().unwrap();
}

/// The release server binary in a child process.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path) -> Self {
        let binary = env!("CARGO_BIN_EXE_office-server");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        // An administrator to sign in with (refused harmlessly if a previous run made it).
        let mut create = Command::new(binary)
            .args(["create-admin", "--data"])
            .arg(dir)
            .args(["--login", "bench", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("create-admin");
        if let Some(mut stdin) = create.stdin.take() {
            let _ = stdin.write_all(PASSWORD.as_bytes());
        }
        let _ = create.wait();
        let child = Command::new(binary)
            .args(["serve", "--data"])
            .arg(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server");
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// VmRSS and VmHWM in KiB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct PageResult {
    key: &'static str,
    name: String,
    p50: f64,
    p95: f64,
    max: f64,
    bytes: usize,
    /// The page as last served, for the cell-by-cell check.
    html: String,
}

/// A table of a page: its id, the DuckDB grouping behind it, and the label its rows carry
/// before the group's number (the generator's names).
type CheckedTable = (&'static str, &'static str, &'static str);

/// The tables of each measured page.
const PAGE_TABLES: [(&str, &[CheckedTable]); 4] = [
    (
        "department_all",
        &[
            ("departments_avg", "departments", "Департамент "),
            ("departments_count", "departments", "Департамент "),
            ("departments_satisfaction", "departments", "Департамент "),
            ("departments_unrated", "departments", "Департамент "),
        ],
    ),
    (
        "department_one",
        &[
            ("sections_avg", "sections", "Отдел "),
            ("sections_count", "sections", "Отдел "),
            ("sections_satisfaction", "sections", "Отдел "),
            ("sections_unrated", "sections", "Отдел "),
        ],
    ),
    (
        "employees_all",
        &[
            ("employees_avg", "employees", "Сотрудник "),
            ("employees_count", "employees", "Сотрудник "),
        ],
    ),
    (
        "employees_section",
        &[
            ("section_summary", "section_summary", ""),
            ("employees_avg", "employees", "Сотрудник "),
            ("employees_count", "employees", "Сотрудник "),
            ("services_avg", "services", "Услуга "),
            ("services_count", "services", "Услуга "),
        ],
    ),
];

/// What a cell shows for `tally`, by the server's rule (`Tally` and the `reports` formatting
/// are the rule's home): the mean score rounded to 4 decimals half away from zero, counts as
/// they are, satisfaction to one decimal.
fn expected_text(measure: &str, tally: &Tally) -> String {
    match measure {
        "avg" => tally.average_4().map(format_average).unwrap_or_default(),
        "count" => tally.visits.to_string(),
        "satisfaction" => tally.satisfaction().map(format_percent).unwrap_or_default(),
        "unrated" => tally.unrated().to_string(),
        other => panic!("no measure {other:?}"),
    }
}

/// The six period tallies DuckDB gave one group (zero when it has no visits).
fn duck_tallies(groups: &Value, key: &str) -> [Tally; 6] {
    let mut tallies = [Tally::default(); 6];
    if let Some(columns) = groups[key].as_array() {
        for (tally, counts) in tallies.iter_mut().zip(columns) {
            let n = |i: usize| counts[i].as_i64().expect("a count");
            *tally = Tally {
                visits: n(0),
                good: n(1),
                medium: n(2),
                bad: n(3),
            };
        }
    }
    tallies
}

/// Compares every cell of the page's tables with what DuckDB computed from the raw visits;
/// panics on the first difference. Returns how many cells it compared.
fn check_cells(page: &str, html: &str, tallies: &Value) -> usize {
    let (_, tables) = PAGE_TABLES
        .iter()
        .find(|(key, _)| *key == page)
        .expect("a page with tables to check");
    let mut compared = 0;
    for (table, grouping, prefix) in *tables {
        let groups = &tallies[page][grouping];
        let rows = table_rows(html, table);
        assert!(!rows.is_empty(), "{page}: no table {table}");
        let mut shown = Vec::new();
        for (index, (label, cells)) in rows.iter().enumerate() {
            let (measure, tally) = if *grouping == "section_summary" {
                // One row per measure, in the page's order.
                let measure = ["avg", "count", "satisfaction", "unrated"][index];
                (measure, duck_tallies(groups, "0"))
            } else {
                let measure = table.rsplit('_').next().unwrap_or_default();
                // The last row is the table's total (its footer).
                if index + 1 == rows.len() {
                    let mut sum = [Tally::default(); 6];
                    for key in groups.as_object().expect("groups").keys() {
                        for (total, tally) in sum.iter_mut().zip(duck_tallies(groups, key)) {
                            total.add(&tally);
                        }
                    }
                    (measure, sum)
                } else {
                    let id: i64 = label
                        .strip_prefix(prefix)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("{page} {table}: row {label:?}"));
                    shown.push(id.to_string());
                    (measure, duck_tallies(groups, &id.to_string()))
                }
            };
            assert_eq!(cells.len(), 6, "{page} {table} {label}: six period columns");
            for (column, (cell, tally)) in cells.iter().zip(&tally).enumerate() {
                assert_eq!(
                    *cell,
                    expected_text(measure, tally),
                    "{page}, table {table}, row {label:?}, period column {column}: the server \
                     shows {cell:?}, DuckDB counts {tally:?}"
                );
                compared += 1;
            }
        }
        if *grouping != "section_summary" {
            for key in groups.as_object().expect("groups").keys() {
                assert!(
                    shown.contains(key),
                    "{page} {table}: DuckDB has visits of group {key}, the page has no row"
                );
            }
        }
    }
    compared
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn measure(server: &Server, requests: usize) -> Vec<PageResult> {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    // The server may still be opening the database.
    let mut ready = false;
    for _ in 0..600 {
        if let Ok(response) = client.get(format!("{}/healthz", server.base)).send().await
            && response.status().is_success()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the server did not start");
    let login = client
        .post(format!("{}/api/auth/login", server.base))
        .json(&json!({ "login": "bench", "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert!(login.status().is_success(), "login: {}", login.status());
    let pages: [(&'static str, &str, &str); 4] = [
        (
            "department_all",
            "department tab, whole organisation",
            "/dashboard/department",
        ),
        (
            "department_one",
            "department tab, one department (4 sections)",
            "/dashboard/department?department=1",
        ),
        (
            "employees_all",
            "employee table, whole organisation (300)",
            "/dashboard/employee",
        ),
        (
            "employees_section",
            "employee table, one section (15) + services",
            "/dashboard/section?section=1",
        ),
    ];
    let mut results = Vec::new();
    for (key, name, path) in pages {
        let url = format!("{}{path}", server.base);
        let mut html = String::new();
        for _ in 0..10 {
            html = client
                .get(&url)
                .send()
                .await
                .expect("warm-up")
                .text()
                .await
                .expect("warm-up body");
        }
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let response = client.get(&url).send().await.expect("request");
            assert!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            let body = response.bytes().await.expect("body");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(body.len() > 1000);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        results.push(PageResult {
            key,
            name: name.to_string(),
            p50: percentile(&times, 0.5),
            p95: percentile(&times, 0.95),
            max: *times.last().unwrap_or(&0.0),
            bytes: html.len(),
            html,
        });
    }
    results
}
