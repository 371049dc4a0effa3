//! Backup benchmark: `office-server backup` of a large office while a tablet syncs, then
//! `office-server check` of the same directory.
//!
//! 1. **Prepare**: a copy of the dashboard benchmark's database (`BENCH_SOURCE`, default
//!    `target/bench-dashboard/data-10000000`: run `scripts/bench-dashboard.sh` once to make
//!    it) with `BENCH_RECORDINGS` recordings (default 10,000) of the most recent Плохо visits —
//!    rows and files (the fixture `visit.3gpp`), each marked analysed so the server's
//!    catch-up leaves them alone.
//! 2. **Serve** the release binary on it; a tablet enrolled and paired through the HTTP API
//!    syncs a visit every 10 ms, each latency recorded.
//! 3. **Back up** with the binary in a child process after 5 s of syncing; keep syncing 3 s
//!    after it ends. Reported: the backup's time and size, the syncs before and during it
//!    (p50, p99, max: the longest is the longest pause the backup caused in ingest).
//! 4. **Scrape** `/metrics` 200 times back to back while the tablet syncs: each scrape's
//!    time, and the syncs meanwhile.
//! 5. **Check** the live directory with the binary: its time, and that it is clean.
//!
//! Run `scripts/bench-backup.sh`. Environment: `BENCH_SOURCE`, `BENCH_RECORDINGS`,
//! `BENCH_WORK` (default `target/bench-backup`); relative paths are from the package's
//! directory, where cargo runs a bench (the script passes absolute ones).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use shared_model::Rating;
use test_support::process::{ProcessOptions, ServerProcess};
use test_support::{ADMIN_LOGIN, ADMIN_PASSWORD, visit_at};
use uuid::Uuid;

const BINARY: &str = env!("CARGO_BIN_EXE_office-server");

fn main() {
    let source = std::env::var_os("BENCH_SOURCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench-dashboard/data-10000000"));
    let recordings: usize = std::env::var("BENCH_RECORDINGS")
        .ok()
        .map(|v| {
            v.replace('_', "")
                .parse()
                .expect("BENCH_RECORDINGS: a number")
        })
        .unwrap_or(10_000);
    let work = std::env::var_os("BENCH_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench-backup"));
    let database = source.join("office.sqlite3");
    if !database.is_file() {
        eprintln!(
            "no database at {}: run scripts/bench-dashboard.sh first (or set BENCH_SOURCE)",
            database.display()
        );
        std::process::exit(2);
    }
    let data = work.join("data");
    let backups = work.join("backups");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(data.join("recordings")).unwrap();
    std::fs::create_dir_all(&backups).unwrap();
    let started = Instant::now();
    std::fs::copy(&database, data.join("office.sqlite3")).unwrap();
    let (visits, bytes) = add_recordings(&data, recordings);
    // What the preparation wrote goes to the disk now, not during the backup, where it would
    // count as the backup's.
    rustix::fs::sync();
    println!(
        "prepared {}: {visits} visits, {recordings} recordings ({:.0} MB of audio) in {:.1} s",
        data.display(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let output = Command::new(BINARY)
        .args(["create-admin", "--data"])
        .arg(&data)
        .args(["--login", ADMIN_LOGIN, "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(ADMIN_PASSWORD.as_bytes())?;
            }
            child.wait_with_output()
        })
        .unwrap();
    let _ = output; // refused harmlessly when the source already had this administrator

    let options = ProcessOptions {
        env: vec![("RUST_LOG".into(), "warn".into())],
        ..ProcessOptions::default()
    };
    let server = ServerProcess::serve_existing(Path::new(BINARY), &data, &options);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(measure(&server, &data, &backups));
}

/// Adds `count` recordings to the most recent Плохо visits of the database in `data`;
/// returns the number of visits and the bytes of audio.
fn add_recordings(data: &Path, count: usize) -> (u64, u64) {
    let audio = std::fs::read(test_support::fixtures::path("visit.3gpp")).unwrap();
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&audio))
    };
    let mut conn = Connection::open(data.join("office.sqlite3")).unwrap();
    let visits: u64 = conn
        .query_row("SELECT count(*) FROM visits", [], |row| row.get(0))
        .unwrap();
    let ids: Vec<Uuid> = conn
        .prepare("SELECT id FROM visits WHERE rating = 1 ORDER BY ended_at DESC LIMIT ?1")
        .unwrap()
        .query_map([count as i64], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        ids.len(),
        count,
        "not enough Плохо visits for the recordings"
    );
    let now = jiff::Timestamp::now().as_millisecond();
    let tx = conn.transaction().unwrap();
    for id in &ids {
        tx.execute(
            "INSERT INTO recordings (visit_id, size_bytes, sha256, duration_ms, stored_at)
             VALUES (?1, ?2, ?3, 2000, ?4)",
            params![id, audio.len() as i64, sha256, now],
        )
        .unwrap();
        // Marked analysed (as undecodable): the server's catch-up would otherwise analyse
        // ten thousand files in the middle of the measurement.
        tx.execute(
            "INSERT INTO recording_analysis (visit_id, analysis) VALUES (?1, NULL)",
            [id],
        )
        .unwrap();
        std::fs::write(
            data.join("recordings")
                .join(office_server::recordings::file_name(*id)),
            &audio,
        )
        .unwrap();
    }
    tx.commit().unwrap();
    (visits, (audio.len() * count) as u64)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(label: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "  {label}: {} syncs, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

async fn measure(server: &ServerProcess, data: &Path, backups: &Path) {
    let app = server.server("http").await;
    let admin = app.admin().await;
    let section = app
        .storage()
        .directory()
        .unwrap()
        .departments
        .iter()
        .flat_map(|d| &d.sections)
        .next()
        .map(|s| s.name.clone())
        .expect("a section");
    let (tablet, pairing) = app
        .paired_tablet_with(&admin, &section, "Бенчмарк", 0)
        .await;

    let stop = Arc::new(AtomicBool::new(false));
    let syncing = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut samples: Vec<(Instant, Duration)> = Vec::new();
            // A sync every 10 ms — a busy office's whole fleet syncs a few times a second —,
            // each visit 10 ms after the one before, so they keep pace with the clock.
            let first = jiff::Timestamp::now();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut made = 0i64;
            let mut refused = 0usize;
            // Bounded: at most a million syncs, however long the backup takes.
            for _ in 0..1_000_000 {
                tick.tick().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                made += 1;
                let at = first + jiff::SignedDuration::from_millis(10 * made);
                let batch = [visit_at(&pairing, at, Some(Rating::Good))];
                let began = Instant::now();
                let answer = tablet.sync(&batch).await;
                samples.push((began, began.elapsed()));
                // Visits 10 ms apart may overlap once each sync's measured clock offset
                // corrects them: counted, and the sync's time is what is measured all the same.
                refused += answer
                    .results
                    .iter()
                    .filter(|r| !r.outcome.is_stored())
                    .count();
            }
            (samples, refused)
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let backup_began = Instant::now();
    let backup = tokio::task::spawn_blocking({
        let data = data.to_path_buf();
        let backups = backups.to_path_buf();
        move || {
            Command::new(BINARY)
                .args(["backup", "--data"])
                .arg(&data)
                .arg("--to")
                .arg(&backups)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let backup_ended = Instant::now();
    assert!(
        backup.status.success(),
        "{}{}",
        String::from_utf8_lossy(&backup.stdout),
        String::from_utf8_lossy(&backup.stderr)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    // /metrics scraped back to back while the tablet syncs: what a scrape costs, and the
    // syncs meanwhile.
    let scrapes_began = Instant::now();
    let mut scrapes = Vec::new();
    let mut page_bytes = 0;
    for _ in 0..200 {
        let began = Instant::now();
        let page = admin
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        scrapes.push(began.elapsed());
        page_bytes = page.len();
    }
    let scrapes_ended = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let (samples, refused) = syncing.await.unwrap();

    let size: u64 = walk_size(backups);
    println!(
        "backup: {:.1} s, {:.0} MB (load average before: {})",
        (backup_ended - backup_began).as_secs_f64(),
        size as f64 / 1e6,
        load.trim()
    );
    print!("  {}", String::from_utf8_lossy(&backup.stdout));
    let before: Vec<_> = samples
        .iter()
        .filter(|(at, _)| *at < backup_began)
        .map(|(_, d)| *d)
        .collect();
    // A sync that began before the backup's end, and ended after its start, waited on it
    // if anything did.
    let during: Vec<_> = samples
        .iter()
        .filter(|(at, d)| *at < backup_ended && *at + *d > backup_began)
        .map(|(_, d)| *d)
        .collect();
    let while_scraped: Vec<_> = samples
        .iter()
        .filter(|(at, _)| *at >= scrapes_began && *at < scrapes_ended)
        .map(|(_, d)| *d)
        .collect();
    summary("before the backup", before);
    summary("during the backup", during);
    if let Some((at, longest)) = samples
        .iter()
        .filter(|(at, d)| *at < backup_ended && *at + *d > backup_began)
        .max_by_key(|(_, d)| *d)
    {
        println!(
            "  the longest began {:.1} s into the backup's {:.1} s ({:.1} ms)",
            at.saturating_duration_since(backup_began).as_secs_f64(),
            (backup_ended - backup_began).as_secs_f64(),
            longest.as_secs_f64() * 1e3
        );
    }
    println!(
        "  {} visits synced, {refused} refused as overlapping",
        samples.len()
    );
    scrapes.sort();
    println!(
        "/metrics: {} scrapes, p50 {:.2} ms, p99 {:.2} ms, {page_bytes} bytes a page",
        scrapes.len(),
        percentile(&scrapes, 0.5).as_secs_f64() * 1e3,
        percentile(&scrapes, 0.99).as_secs_f64() * 1e3
    );
    summary("syncs while scraped", while_scraped);

    let began = Instant::now();
    let check = Command::new(BINARY)
        .args(["check", "--data"])
        .arg(data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    println!(
        "check: {:.1} s, {}",
        began.elapsed().as_secs_f64(),
        text.lines().next().unwrap_or("")
    );
    assert!(check.status.success(), "check found problems: {text}");
}

fn walk_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(meta) if meta.is_dir() => walk_size(&e.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
