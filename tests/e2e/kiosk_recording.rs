//! Recording upload against a real office server: after its visit, resumable, and the file on
//! the tablet deleted only once the server confirmed its checksum.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kiosk_core::store::{QueuedRecording, Store};
use kiosk_core::sync::{ClientConfig, ServerClient, SyncConfig, SyncLoop, SyncStatus};
use shared_model::{
    RECORDING_OFFSET_HEADER, RECORDING_SHA256_HEADER, RECORDING_SIZE_HEADER, Rating, SyncBatch,
    Visit,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use test_support::*;

const CHUNK: usize = 8 * 1024;

fn small_chunk_client(server: &TestServer) -> ServerClient {
    ServerClient::with_config(ClientConfig {
        chunk_bytes: CHUNK,
        ..ClientConfig::new(server.base.clone())
    })
    .unwrap()
}

fn sync_loop(store: &Arc<Store>, client: &ServerClient) -> SyncLoop {
    let (status, _) = watch::channel(SyncStatus::default());
    SyncLoop::new(
        Arc::clone(store),
        client.clone(),
        SyncConfig::default(),
        health,
        status,
    )
}

/// Copies a fixture to where the tablet keeps its recordings and queues it for the visit.
fn queue(store: &Store, dir: &Path, visit: &Visit, fixture: &Path) -> QueuedRecording {
    let path = dir.join(format!("{}.3gpp", visit.id));
    std::fs::copy(fixture, &path).unwrap();
    let recording = QueuedRecording {
        visit_id: visit.id,
        size_bytes: std::fs::metadata(&path).unwrap().len(),
        sha256: sha256_of(&path),
        path,
    };
    store.queue_recording(&recording).unwrap();
    recording
}

/// Syncs the outbox as the loop does, without touching recordings.
async fn sync_visits(store: &Store, client: &ServerClient) {
    let batch = SyncBatch {
        sent_at: jiff::Timestamp::now(),
        health: health(),
        visits: store.outbox_batch(200).unwrap(),
        feedback_key: None,
    };
    let response = client.sync(&batch).await.unwrap();
    store.apply_acks(&response.results).unwrap();
    assert_eq!(store.counts().unwrap().queued, 0);
}

fn fixture_bytes() -> Vec<u8> {
    test_support::fixtures::VISIT_3GPP.to_vec()
}

fn recordings_dir(dir: &Path) -> PathBuf {
    let path = dir.join("recordings");
    std::fs::create_dir_all(&path).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_goes_up_after_its_visit_and_resumes_after_an_interruption() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = spawn_app_on(&data, 0, true).await;
    let port = server.port;
    let store = open_store(dir.path());
    let client = small_chunk_client(&server);
    let (credentials, pairing) = enrol_and_pair(&server, &client, &store, 0).await;
    let bad = visit(&pairing, Some(Rating::Bad));
    store.finish_visit(&bad).unwrap();
    let recording = queue(
        &store,
        &recordings_dir(dir.path()),
        &bad,
        &test_support::fixtures::path("visit.3gpp"),
    );
    let whole = fixture_bytes();

    // The server must know the visit before its recording.
    assert!(store.recordings_to_upload().unwrap().is_empty());
    sync_visits(&store, &client).await;
    assert_eq!(
        store.recordings_to_upload().unwrap(),
        vec![recording.clone()]
    );

    // The network drops in the middle of the first request, after 20,000 bytes.
    let sent = 20_000;
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/tablet/visits/{}/recording HTTP/1.1\r\nHost: {addr}\r\nx-protocol-version: 1\r\n\
         authorization: Bearer {}\r\n{RECORDING_SIZE_HEADER}: {}\r\n{RECORDING_SHA256_HEADER}: {}\r\n\
         {RECORDING_OFFSET_HEADER}: 0\r\ncontent-length: {}\r\n\r\n",
        bad.id,
        credentials.device_token,
        whole.len(),
        recording.sha256,
        whole.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&whole[..sent]).await.unwrap();
    socket.flush().await.unwrap();
    drop(socket);
    let mut held = 0;
    for _ in 0..200 {
        held = client
            .recording_progress(bad.id)
            .await
            .unwrap()
            .received_bytes;
        if held == sent as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(held, sent as u64);
    // And the server restarts (same data, same port) before the tablet tries again.
    server.stop().await;
    let server = spawn_app_on(&data, port, false).await;

    // Nothing was confirmed: the tablet keeps its file.
    assert!(recording.path.exists());
    assert_eq!(store.counts().unwrap().recordings_pending, 1);
    assert!(store.visit_wants_recording(bad.id).unwrap());

    let report = sync_loop(&store, &client).round().await.unwrap();

    assert_eq!(report.recordings_uploaded, 1);
    assert_eq!(
        report.recording_bytes_sent,
        (whole.len() - sent) as u64,
        "only the rest was sent"
    );
    assert_eq!(server.stored_recording(bad.id), Some(whole));
    assert!(
        !recording.path.exists(),
        "deleted once the checksum is confirmed"
    );
    let counts = store.counts().unwrap();
    assert_eq!(
        (counts.recordings_pending, counts.recordings_dropped),
        (0, 0)
    );
    assert!(!store.visit_wants_recording(bad.id).unwrap());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_resumes_from_what_the_server_holds_and_checks_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_app_on(&dir.path().join("server"), 0, true).await;
    let store = open_store(dir.path());
    let client = small_chunk_client(&server);
    let (_, pairing) = enrol_and_pair(&server, &client, &store, 0).await;
    let bad = visit(&pairing, Some(Rating::Bad));
    store.finish_visit(&bad).unwrap();
    let recording = queue(
        &store,
        &recordings_dir(dir.path()),
        &bad,
        &test_support::fixtures::path("visit.3gpp"),
    );
    sync_visits(&store, &client).await;
    let whole = fixture_bytes();

    // Two chunks went up before the tablet lost power.
    for offset in [0, CHUNK] {
        let progress = client
            .upload_chunk(
                bad.id,
                recording.size_bytes,
                &recording.sha256,
                offset as u64,
                whole[offset..offset + CHUNK].to_vec(),
            )
            .await
            .unwrap();
        assert_eq!(progress.received_bytes, (offset + CHUNK) as u64);
        assert!(!progress.complete);
    }

    let outcome = client
        .upload_recording(
            bad.id,
            &recording.path,
            recording.size_bytes,
            &recording.sha256,
        )
        .await
        .unwrap();

    assert_eq!(outcome.resumed_from, 2 * CHUNK as u64);
    assert_eq!(outcome.bytes_sent, (whole.len() - 2 * CHUNK) as u64);
    assert_eq!(
        outcome.chunks_sent as usize,
        (whole.len() - 2 * CHUNK).div_ceil(CHUNK)
    );
    assert!(outcome.progress.complete);
    assert_eq!(
        outcome.progress.sha256.as_deref(),
        Some(recording.sha256.as_str())
    );
    assert!(outcome.progress.duration_ms.is_some_and(|ms| ms > 0));
    assert!(
        recording.path.exists(),
        "the client never deletes the file itself"
    );

    // Asked again, the server confirms without a byte sent.
    let again = client
        .upload_recording(
            bad.id,
            &recording.path,
            recording.size_bytes,
            &recording.sha256,
        )
        .await
        .unwrap();
    assert_eq!((again.chunks_sent, again.bytes_sent), (0, 0));
    server.stop().await;
}

/// A crash after the file was deleted and before the row was: the next round asks the server,
/// which confirms the checksum, and the row goes without the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_confirmed_before_a_crash_is_finished_without_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_app_on(&dir.path().join("server"), 0, true).await;
    let store = open_store(dir.path());
    let client = kiosk_client(&server);
    let (_, pairing) = enrol_and_pair(&server, &client, &store, 0).await;
    let bad = visit(&pairing, Some(Rating::Bad));
    store.finish_visit(&bad).unwrap();
    let recording = queue(
        &store,
        &recordings_dir(dir.path()),
        &bad,
        &test_support::fixtures::path("visit.3gpp"),
    );
    sync_visits(&store, &client).await;
    client
        .upload_recording(
            bad.id,
            &recording.path,
            recording.size_bytes,
            &recording.sha256,
        )
        .await
        .unwrap();
    std::fs::remove_file(&recording.path).unwrap();

    let report = sync_loop(&store, &client).round().await.unwrap();

    assert_eq!(report.recordings_uploaded, 1);
    assert_eq!(report.recording_bytes_sent, 0);
    let counts = store.counts().unwrap();
    assert_eq!(
        (counts.recordings_pending, counts.recordings_dropped),
        (0, 0)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_the_server_refuses_are_given_up_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_app_on(&dir.path().join("server"), 0, true).await;
    let store = open_store(dir.path());
    let client = kiosk_client(&server);
    let (_, pairing) = enrol_and_pair(&server, &client, &store, 0).await;
    let recordings = recordings_dir(dir.path());
    let [wrong_checksum, not_3gp, file_gone, fine] =
        std::array::from_fn(|_| visit(&pairing, Some(Rating::Bad)));
    for v in [&wrong_checksum, &not_3gp, &file_gone, &fine] {
        store.finish_visit(v).unwrap();
    }
    let mut lying = queue(
        &store,
        &recordings,
        &wrong_checksum,
        &test_support::fixtures::path("visit.3gpp"),
    );
    lying.sha256 = "0".repeat(64);
    store.queue_recording(&lying).unwrap();
    let wav = test_support::fixtures::path("visit.wav");
    let wav = queue(&store, &recordings, &not_3gp, &wav);
    let gone = queue(
        &store,
        &recordings,
        &file_gone,
        &test_support::fixtures::path("visit.3gpp"),
    );
    std::fs::remove_file(&gone.path).unwrap();
    let kept = queue(
        &store,
        &recordings,
        &fine,
        &test_support::fixtures::path("visit.3gpp"),
    );

    let report = sync_loop(&store, &client).round().await.unwrap();

    assert_eq!(report.visits_acknowledged, 4);
    assert_eq!(report.recordings_uploaded, 1);
    assert_eq!(report.recordings_dropped, 3);
    let counts = store.counts().unwrap();
    assert_eq!(
        (counts.recordings_pending, counts.recordings_dropped),
        (0, 3)
    );
    let mut reasons: Vec<_> = store
        .dropped_recordings()
        .unwrap()
        .into_iter()
        .map(|d| (d.visit_id, d.reason))
        .collect();
    reasons.sort();
    let mut expected = vec![
        (wrong_checksum.id, "checksum_mismatch".to_string()),
        (not_3gp.id, "invalid_recording".to_string()),
        (file_gone.id, "file_missing".to_string()),
    ];
    expected.sort();
    assert_eq!(reasons, expected);
    for path in [&lying.path, &wav.path, &kept.path] {
        assert!(!path.exists(), "{} is left behind", path.display());
    }
    for v in [&wrong_checksum, &not_3gp, &file_gone, &fine] {
        assert!(!store.visit_wants_recording(v.id).unwrap());
    }
    assert!(server.stored_recording(fine.id).is_some());
    assert!(server.stored_recording(wrong_checksum.id).is_none());
    assert!(server.stored_recording(not_3gp.id).is_none());
    // Given up means never retried.
    let report = sync_loop(&store, &client).round().await.unwrap();
    assert_eq!(
        (report.recordings_uploaded, report.recordings_dropped),
        (0, 0)
    );
    server.stop().await;
}
