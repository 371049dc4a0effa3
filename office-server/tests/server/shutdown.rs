//! The real binary: its commands set up a data directory, and SIGTERM lets a request in flight
//! finish before the process exits and leaves the database clean.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};
use shared_model::{
    RECORDING_OFFSET_HEADER, RECORDING_SHA256_HEADER, RECORDING_SIZE_HEADER, Rating, SyncResponse,
    Visit, VisitOutcome,
};
use test_support::process::{ProcessOptions, ServerProcess};
use test_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const BINARY: &str = env!("CARGO_BIN_EXE_office-server");
const GOOD: &[u8] = test_support::fixtures::VISIT_3GPP;

fn run(args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(BINARY)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Starts `serve` and returns the child and the address it printed.
fn serve(data: &Path) -> (Child, String) {
    let mut child = Command::new(BINARY)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, addr)
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "the server did not stop within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_and_leaves_a_clean_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let created = run(
        &[
            "create-admin",
            "--data",
            data_arg,
            "--login",
            ADMIN_LOGIN,
            "--password-stdin",
        ],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert!(created.contains("administrator created"), "{created}");
    let loaded = run(&["load-demo", "--data", data_arg], "");
    assert!(loaded.contains("4 sections"), "{loaded}");
    // Loading twice is refused with a clear message rather than duplicating the organisation.
    let again = Command::new(BINARY)
        .args(["load-demo", "--data", data_arg])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let (mut server, addr) = serve(&data);
    let app = TestServer::external(format!("http://{addr}"), data.clone()).await;
    let (tablet, pairing) = app.paired_tablet("Окно 1", 0).await;
    let bad = visit(&pairing, Some(Rating::Bad));
    tablet.sync(std::slice::from_ref(&bad)).await;

    // An upload is half sent when SIGTERM arrives.
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/tablet/visits/{}/recording HTTP/1.1\r\nHost: {addr}\r\nx-protocol-version: 1\r\n\
         authorization: Bearer {}\r\n{RECORDING_SIZE_HEADER}: {}\r\n{RECORDING_SHA256_HEADER}: {}\r\n\
         {RECORDING_OFFSET_HEADER}: 0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        bad.id,
        tablet.token,
        GOOD.len(),
        hex::encode(Sha256::digest(GOOD)),
        GOOD.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&GOOD[..GOOD.len() / 2]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        server.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );

    // The rest arrives after the signal; the request completes normally.
    socket.write_all(&GOOD[GOOD.len() / 2..]).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"complete\":true"), "{text}");

    let status = wait_for_exit(&mut server, Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");

    // Clean: the write-ahead log was checkpointed away and the database is intact.
    let wal = data.join("office.sqlite3-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "WAL left with {wal_len} bytes");
    let db = rusqlite::Connection::open(data.join("office.sqlite3")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let (visits, recordings): (i64, i64) = db
        .query_row(
            "SELECT (SELECT count(*) FROM visits), (SELECT count(*) FROM recordings)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((visits, recordings), (1, 1));
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("office.toml");
    std::fs::write(&config, "time_zone = \"Nowhere/Special\"\n").unwrap();
    let output = Command::new(BINARY)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown time zone"), "{stderr}");
    let output = Command::new(BINARY)
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("refusing plain HTTP"));
}

/// Tablets syncing at once have their syncs committed together (group commit). SIGKILL at a
/// random moment, three times: after each restart every visit the server acknowledged is
/// there, and at the end every visit sent again is stored exactly once — nothing acknowledged
/// was lost, nothing was stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_grouped_commits_keeps_every_acknowledged_visit() {
    const TABLETS: usize = 8;
    const KILLS: usize = 3;
    const BATCH: usize = 50;
    // Setting up eight tablets signs the administrator in more often than a minute allows; the
    // visits, a second apart, reach hours past the server's clock, so the slack is two days.
    let options = ProcessOptions {
        config: "[throttle]\nsign_in_per_account = 1000\nsign_in_per_address = 1000\n\
                 [tablets]\nclock_slack_secs = 172800\n"
            .into(),
        ..ProcessOptions::default()
    };
    let mut process = ServerProcess::start(Path::new(BINARY), &options);
    let server = process.server("http").await;
    let admin = server.admin().await;
    // One specialist a tablet, from every section of the demo organisation.
    let desks: Vec<(String, usize)> = server
        .directory
        .departments
        .iter()
        .flat_map(|d| &d.sections)
        .flat_map(|s| (0..s.employees.len()).map(|i| (s.name.clone(), i)))
        .take(TABLETS)
        .collect();
    assert_eq!(desks.len(), TABLETS, "employees enough for a tablet each");
    let mut tablets = Vec::new();
    for (desk, (section, index)) in desks.iter().enumerate() {
        tablets.push(
            server
                .paired_tablet_with(&admin, section, &format!("desk {desk}"), *index)
                .await,
        );
    }
    // Each tablet's visits a second apart from its pairing on: the server corrects each sync's
    // visits by the clock offset it measures at that sync, which varies by milliseconds under
    // load, so closer visits of different syncs could be corrected onto one instant (an overlap).
    // A tablet's client for the server at its current address (it changes at each restart).
    let client_at = |addr: &str, tablet: &Tablet| Tablet {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        token: tablet.token.clone(),
        id: tablet.id,
    };
    let start = Timestamp::now();
    let mut made = [0_i64; TABLETS];
    let mut sent: Vec<Vec<Vec<Visit>>> = vec![Vec::new(); TABLETS];
    let mut acknowledged: HashSet<Uuid> = HashSet::new();
    for kill in 0..KILLS {
        let mut tasks = Vec::new();
        for (index, (tablet, pairing)) in tablets.iter().enumerate() {
            let tablet = client_at(&process.addr, tablet);
            // Enough batches that the kill always finds the tablets still sending.
            let batches: Vec<Vec<Visit>> = (0..400)
                .map(|_| {
                    (0..BATCH)
                        .map(|_| {
                            made[index] += 1;
                            visit_at(
                                pairing,
                                start + SignedDuration::from_secs(made[index]),
                                Some(Rating::Good),
                            )
                        })
                        .collect()
                })
                .collect();
            tasks.push(tokio::spawn(async move {
                // What it acknowledged, and the batches it tried to send (the last perhaps
                // stored, perhaps not, when the kill cut its answer).
                let mut acknowledged = Vec::new();
                let mut tried = Vec::new();
                for visits in batches {
                    tried.push(visits.clone());
                    let response = tablet
                        .post("/api/tablet/sync")
                        .json(&batch(Timestamp::now(), &visits))
                        .send()
                        .await;
                    let Ok(response) = response else { break };
                    let Ok(answer) = response.json::<SyncResponse>().await else {
                        break;
                    };
                    for ack in answer.results {
                        assert!(
                            matches!(ack.outcome, VisitOutcome::Stored),
                            "{:?}",
                            ack.outcome
                        );
                        acknowledged.push(ack.id);
                    }
                }
                (acknowledged, tried)
            }));
        }
        let pause = rand::random_range(300..900);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        process.signal("KILL");
        process.wait(Duration::from_secs(10));
        for (index, task) in tasks.into_iter().enumerate() {
            let (acks, tried) = task.await.expect("tablet task");
            acknowledged.extend(acks);
            sent[index].extend(tried);
        }
        assert!(
            !acknowledged.is_empty(),
            "nothing was acknowledged before kill {kill}"
        );
        process.restart();
        let stored: HashSet<Uuid> = process
            .server("http")
            .await
            .visit_ids()
            .into_iter()
            .collect();
        let lost: Vec<&Uuid> = acknowledged.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "after kill {kill}: {} of {} acknowledged visits are not on disk",
            lost.len(),
            acknowledged.len()
        );
    }
    // Every tablet sends everything it tried again: what was stored is already stored, the rest
    // is stored now, and each visit is there once.
    let mut resent = 0;
    for (index, (tablet, _)) in tablets.iter().enumerate() {
        let tablet = client_at(&process.addr, tablet);
        for visits in sent[index].chunks(8).map(|c| c.concat()) {
            for ack in tablet.sync(&visits).await.results {
                assert!(
                    matches!(
                        ack.outcome,
                        VisitOutcome::Stored | VisitOutcome::AlreadyStored
                    ),
                    "{:?}",
                    ack.outcome
                );
                resent += 1;
            }
        }
    }
    let server = process.server("http").await;
    assert_eq!(server.visit_count(), resent, "every visit sent, once");
    println!(
        "grouped commits: {KILLS} kills, {} visits acknowledged before them, all kept; {resent} \
         in all after sending everything again",
        acknowledged.len()
    );
}
