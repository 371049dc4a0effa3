//! Recording upload through HTTP: a real AAC-3GP file made by ffmpeg, resumable uploads, and
//! every kind of file the server must refuse.

use std::time::Duration;

use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use shared_model::{
    RECORDING_OFFSET_HEADER, RECORDING_SHA256_HEADER, RECORDING_SIZE_HEADER, Rating,
    RecordingProgress, Visit,
};
use test_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GOOD: &[u8] = test_support::fixtures::VISIT_3GPP;

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn upload_chunk(
    tablet: &Tablet,
    visit: &Visit,
    whole: &[u8],
    offset: usize,
    chunk: &[u8],
) -> reqwest::Response {
    tablet
        .post(&format!("/api/tablet/visits/{}/recording", visit.id))
        .header(RECORDING_SIZE_HEADER, whole.len())
        .header(RECORDING_SHA256_HEADER, sha256(whole))
        .header(RECORDING_OFFSET_HEADER, offset)
        .body(chunk.to_vec())
        .send()
        .await
        .unwrap()
}

async fn progress(tablet: &Tablet, visit: &Visit) -> RecordingProgress {
    let response = tablet
        .get(&format!("/api/tablet/visits/{}/recording", visit.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Files under the data directory's recordings folder, incoming ones included.
fn recording_files(app: &TestServer) -> Vec<String> {
    let root = app.data_dir.join("recordings");
    let mut names = Vec::new();
    for dir in [root.clone(), root.join("incoming")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_visits_recording_uploads_in_chunks_and_is_kept() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet("Окно 1", 0).await;
    let bad = visit(&pairing, Some(Rating::Bad));
    tablet.sync(std::slice::from_ref(&bad)).await;

    let half = GOOD.len() / 2;
    let first: RecordingProgress = upload_chunk(&tablet, &bad, GOOD, 0, &GOOD[..half])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((first.received_bytes, first.complete), (half as u64, false));
    assert_eq!(progress(&tablet, &bad).await.received_bytes, half as u64);

    // A chunk at the wrong offset is refused and changes nothing.
    let wrong = upload_chunk(&tablet, &bad, GOOD, 10, &GOOD[10..20]).await;
    assert_eq!(
        error_code(wrong).await,
        (StatusCode::CONFLICT, "offset_mismatch".into())
    );

    let done: RecordingProgress = upload_chunk(&tablet, &bad, GOOD, half, &GOOD[half..])
        .await
        .json()
        .await
        .unwrap();
    assert!(done.complete);
    assert_eq!(done.sha256.as_deref(), Some(sha256(GOOD).as_str()));
    assert!((7_400..=7_600).contains(&done.duration_ms.unwrap()));
    let stored = std::fs::read(
        app.data_dir
            .join("recordings")
            .join(format!("{}.3gpp", bad.id)),
    )
    .unwrap();
    assert_eq!(stored, GOOD);
    assert_eq!(
        recording_files(&app).len(),
        1,
        "no partial file left behind"
    );

    // Sending it again is harmless and confirms the checksum.
    let again: RecordingProgress = upload_chunk(&tablet, &bad, GOOD, 0, GOOD)
        .await
        .json()
        .await
        .unwrap();
    assert!(again.complete);
    assert_eq!(progress(&tablet, &bad).await, again);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_bad_visit_may_have_a_recording() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet("Окно 1", 0).await;
    let visits = [
        visit(&pairing, Some(Rating::Good)),
        visit(&pairing, Some(Rating::Medium)),
        visit(&pairing, None),
    ];
    tablet.sync(&visits).await;
    for visit in &visits {
        let response = upload_chunk(&tablet, visit, GOOD, 0, GOOD).await;
        assert_eq!(
            error_code(response).await,
            (StatusCode::CONFLICT, "recording_not_allowed".into())
        );
    }
    // A visit the server has not received yet, or another tablet's visit: not found.
    let unsynced = visit(&pairing, Some(Rating::Bad));
    let response = upload_chunk(&tablet, &unsynced, GOOD, 0, GOOD).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let (other_tablet, _) = app.paired_tablet("Окно 2", 1).await;
    let theirs = visit(&pairing, Some(Rating::Bad));
    tablet.sync(std::slice::from_ref(&theirs)).await;
    let response = upload_chunk(&other_tablet, &theirs, GOOD, 0, GOOD).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        recording_files(&app).is_empty(),
        "{:?}",
        recording_files(&app)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_resumes_where_it_stopped() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet("Окно 1", 0).await;
    let bad = visit(&pairing, Some(Rating::Bad));
    tablet.sync(std::slice::from_ref(&bad)).await;

    // The connection drops after 20,000 of the promised bytes.
    let sent = 20_000;
    let addr = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/tablet/visits/{}/recording HTTP/1.1\r\nHost: {addr}\r\nx-protocol-version: 1\r\n\
         authorization: Bearer {}\r\n{RECORDING_SIZE_HEADER}: {}\r\n{RECORDING_SHA256_HEADER}: {}\r\n\
         {RECORDING_OFFSET_HEADER}: 0\r\ncontent-length: {}\r\n\r\n",
        bad.id,
        tablet.token,
        GOOD.len(),
        sha256(GOOD),
        GOOD.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&GOOD[..sent]).await.unwrap();
    socket.flush().await.unwrap();
    drop(socket);

    // The server keeps what arrived; the tablet asks and continues from there.
    let mut held = 0;
    for _ in 0..100 {
        held = progress(&tablet, &bad).await.received_bytes;
        if held == sent as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(held, sent as u64);
    // The server may still be closing the broken request: it says so, and the tablet retries.
    let mut response = upload_chunk(&tablet, &bad, GOOD, sent, &GOOD[sent..]).await;
    for _ in 0..100 {
        if response.status() != StatusCode::CONFLICT {
            break;
        }
        assert_eq!(error_code(response).await.1, "upload_in_progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
        response = upload_chunk(&tablet, &bad, GOOD, sent, &GOOD[sent..]).await;
    }
    let done: RecordingProgress = response.json().await.unwrap();
    assert!(done.complete);
    let stored = std::fs::read(
        app.data_dir
            .join("recordings")
            .join(format!("{}.3gpp", bad.id)),
    )
    .unwrap();
    assert_eq!(stored, GOOD);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_file_kind_is_refused_and_nothing_is_kept() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet("Окно 1", 0).await;
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("mp4", test_support::fixtures::VISIT_MP4.to_vec(), "MP4/M4A"),
        ("m4a", test_support::fixtures::VISIT_M4A.to_vec(), "MP4/M4A"),
        ("wav", test_support::fixtures::VISIT_WAV.to_vec(), "WAV"),
        (
            "amr",
            test_support::fixtures::VISIT_AMR_3GPP.to_vec(),
            "AMR",
        ),
        ("truncated", GOOD[..GOOD.len() - 1000].to_vec(), "truncated"),
        (
            "junk",
            b"\x00\x01 definitely not a recording".repeat(100),
            "not an ISO media",
        ),
    ];
    for (name, bytes, reason) in cases {
        let bad = visit(&pairing, Some(Rating::Bad));
        tablet.sync(std::slice::from_ref(&bad)).await;
        let response = upload_chunk(&tablet, &bad, &bytes, 0, &bytes).await;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert_eq!(body["error"], "invalid_recording", "{name}");
        assert!(
            body["message"].as_str().unwrap().contains(reason),
            "{name}: {body}"
        );
        assert_eq!(
            progress(&tablet, &bad).await.received_bytes,
            0,
            "{name}: partial kept"
        );
    }

    // A checksum that does not match the bytes: refused, discarded.
    let bad = visit(&pairing, Some(Rating::Bad));
    tablet.sync(std::slice::from_ref(&bad)).await;
    let response = tablet
        .post(&format!("/api/tablet/visits/{}/recording", bad.id))
        .header(RECORDING_SIZE_HEADER, GOOD.len())
        .header(RECORDING_SHA256_HEADER, sha256(b"something else"))
        .header(RECORDING_OFFSET_HEADER, 0)
        .body(GOOD.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Larger than the limit (1 MiB in tests), more bytes than declared, malformed headers.
    let response = tablet
        .post(&format!("/api/tablet/visits/{}/recording", bad.id))
        .header(RECORDING_SIZE_HEADER, 2 * 1024 * 1024)
        .header(RECORDING_SHA256_HEADER, sha256(GOOD))
        .header(RECORDING_OFFSET_HEADER, 0)
        .body(GOOD.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let response = upload_chunk(&tablet, &bad, &GOOD[..100], 0, GOOD).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let response = tablet
        .post(&format!("/api/tablet/visits/{}/recording", bad.id))
        .header(RECORDING_SIZE_HEADER, "lots")
        .header(RECORDING_SHA256_HEADER, "xyz")
        .header(RECORDING_OFFSET_HEADER, 0)
        .body(GOOD.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    assert!(
        recording_files(&app).is_empty(),
        "{:?}",
        recording_files(&app)
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_is_still_there_after_a_restart() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet("Окно 1", 0).await;
    let visits = [
        visit(&pairing, Some(Rating::Good)),
        visit(&pairing, Some(Rating::Bad)),
    ];
    tablet.sync(&visits).await;
    let done: RecordingProgress = upload_chunk(&tablet, &visits[1], GOOD, 0, GOOD)
        .await
        .json()
        .await
        .unwrap();
    assert!(done.complete);
    let dir = app.data_dir.clone();
    let _keep = app.stop_keeping_data().await;

    let app = spawn_app_in(&dir, false).await;
    let mut tablet = tablet;
    tablet.base = app.base.clone();
    // The credential, the pairing, the visits and the recording all survived.
    let again = tablet.sync(&visits).await;
    assert!(
        again
            .results
            .iter()
            .all(|a| a.outcome == shared_model::VisitOutcome::AlreadyStored)
    );
    assert!(matches!(
        again.pairing,
        shared_model::PairingStatus::Active { .. }
    ));
    assert_eq!(progress(&tablet, &visits[1]).await, done);
    let admin = app.admin().await;
    assert_eq!(
        admin
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_upload_of_one_recording_supersedes_a_stale_one_without_interleaving() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet("Окно 1", 0).await;
    let bad = visit(&pairing, Some(Rating::Bad));
    tablet.sync(std::slice::from_ref(&bad)).await;
    // Hold one upload open by promising more bytes than it sends yet.
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/tablet/visits/{}/recording HTTP/1.1\r\nHost: {addr}\r\nx-protocol-version: 1\r\n\
         authorization: Bearer {}\r\n{RECORDING_SIZE_HEADER}: {}\r\n{RECORDING_SHA256_HEADER}: {}\r\n\
         {RECORDING_OFFSET_HEADER}: 0\r\ncontent-length: {}\r\n\r\n",
        bad.id,
        tablet.token,
        GOOD.len(),
        sha256(GOOD),
        GOOD.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&GOOD[..1000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The tablet starts over (it was restarted, or its network dropped without a word): the
    // stale upload stops and keeps its 1000 bytes, and the new request is told to go on from
    // there.
    let second = upload_chunk(&tablet, &bad, GOOD, 0, GOOD).await;
    assert_eq!(
        error_code(second).await,
        (StatusCode::CONFLICT, "offset_mismatch".into())
    );
    let mut response = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut response))
        .await
        .expect("the stale upload is let go")
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&response[..n]);
    assert!(!text.contains("\"complete\":true"), "{text}");
    // Its bytes do not mix with the new ones: going on from 1000 completes the file whole.
    let rest = upload_chunk(&tablet, &bad, GOOD, 1000, &GOOD[1000..]).await;
    assert_eq!(rest.status(), StatusCode::OK);
    assert_eq!(app.stored_recording(bad.id).as_deref(), Some(GOOD));
    app.stop().await;
}
