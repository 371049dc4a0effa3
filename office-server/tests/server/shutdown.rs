//! The real binary: its commands set up a data directory, and SIGTERM lets a request in flight
//! finish before the process exits and leaves the database clean.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use shared_model::{
    RECORDING_OFFSET_HEADER, RECORDING_SHA256_HEADER, RECORDING_SIZE_HEADER, Rating,
};
use test_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
