//! The sync client and loop against a real office server started in-process.

use std::sync::Arc;
use std::time::Duration;

use kiosk_core::store::Store;
use kiosk_core::sync::{
    Backoff, ClientConfig, ClientError, ServerClient, SyncConfig, SyncError, SyncLoop, SyncStatus,
    TlsTrust,
};
use shared_model::{EnrolmentRequest, PairingStatus, Rating, SyncBatch, VisitOutcome};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use test_support::*;

fn sync_loop(store: &Arc<Store>, client: &ServerClient) -> (SyncLoop, watch::Receiver<SyncStatus>) {
    let (status, watcher) = watch::channel(SyncStatus::default());
    let config = SyncConfig {
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(300),
        poll_interval: Duration::from_millis(200),
        ..SyncConfig::default()
    };
    let sync = SyncLoop::new(Arc::clone(store), client.clone(), config, health, status);
    (sync, watcher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrols_and_pairs_through_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_app_on(&dir.path().join("server"), 0, true).await;
    let store = open_store(dir.path());
    let client = kiosk_client(&server);
    assert!(!client.has_token());

    let (credentials, pairing) = enrol_and_pair(&server, &client, &store, 0).await;

    assert_eq!(store.credentials().unwrap(), Some(credentials));
    assert_eq!(store.pending_enrolment().unwrap(), None);
    assert_eq!(store.pairing().unwrap(), Some(pairing.clone()));
    assert!(!pairing.services.is_empty());
    match client.pairing_status().await.unwrap() {
        PairingStatus::Active { pairing: active } => assert_eq!(active, pairing),
        other => panic!("not active: {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_visits_sync_and_leave_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_app_on(&dir.path().join("server"), 0, true).await;
    let store = open_store(dir.path());
    let client = kiosk_client(&server);
    let (credentials, pairing) = enrol_and_pair(&server, &client, &store, 0).await;
    let visits = [
        visit(&pairing, Some(Rating::Good)),
        visit(&pairing, Some(Rating::Medium)),
        visit(&pairing, None),
    ];
    for visit in &visits {
        store.finish_visit(visit).unwrap();
    }
    assert_eq!(store.counts().unwrap().queued, 3);

    let (mut sync, status) = sync_loop(&store, &client);
    let report = sync.round().await.unwrap();

    assert_eq!(report.batches, 1);
    assert_eq!(report.visits_sent, 3);
    assert_eq!(report.visits_acknowledged, 3);
    assert_eq!(store.counts().unwrap().queued, 0);
    assert!(store.last_sync().unwrap().is_some());
    let mut expected: Vec<Uuid> = visits.iter().map(|v| v.id).collect();
    expected.sort();
    assert_eq!(server.stored_visit_ids(credentials.tablet_id), expected);
    let status = status.borrow().clone();
    assert!(status.online);
    assert_eq!(status.queued, 0);
    assert!(status.last_success.is_some());
    assert_eq!(status.last_error, None);
    assert!(matches!(status.pairing, Some(PairingStatus::Active { .. })));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_resent_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_app_on(&dir.path().join("server"), 0, true).await;
    let store = open_store(dir.path());
    let client = kiosk_client(&server);
    let (credentials, pairing) = enrol_and_pair(&server, &client, &store, 0).await;
    for rating in [Some(Rating::Good), Some(Rating::Good), None] {
        store.finish_visit(&visit(&pairing, rating)).unwrap();
    }
    // The server stores the batch, but its answer never reaches the tablet.
    let batch = SyncBatch {
        sent_at: jiff::Timestamp::now(),
        health: health(),
        visits: store.outbox_batch(200).unwrap(),
        feedback_key: None,
    };
    let lost = client.sync(&batch).await.unwrap();
    assert!(
        lost.results
            .iter()
            .all(|a| a.outcome == VisitOutcome::Stored)
    );
    assert_eq!(
        store.counts().unwrap().queued,
        3,
        "nothing leaves without an answer"
    );

    let (mut sync, _) = sync_loop(&store, &client);
    let report = sync.round().await.unwrap();

    assert_eq!(report.visits_sent, 3);
    assert_eq!(report.visits_acknowledged, 3);
    assert_eq!(store.counts().unwrap().queued, 0);
    assert_eq!(server.stored_visit_ids(credentials.tablet_id).len(), 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_visit_is_set_aside_counted_and_never_resent() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_app_on(&dir.path().join("server"), 0, true).await;
    let store = open_store(dir.path());
    let client = kiosk_client(&server);
    let (credentials, pairing) = enrol_and_pair(&server, &client, &store, 0).await;
    let good = visit(&pairing, Some(Rating::Good));
    let mut unknown_service = visit(&pairing, Some(Rating::Medium));
    unknown_service.service_id = 999_999;
    // A Плохо visit under a pairing the server never issued, with its recording queued.
    let mut unknown_pairing = visit(&pairing, Some(Rating::Bad));
    unknown_pairing.pairing_id = Uuid::now_v7();
    for v in [&good, &unknown_service, &unknown_pairing] {
        store.finish_visit(v).unwrap();
    }
    let recording = dir.path().join("orphan.3gpp");
    std::fs::copy(test_support::fixtures::path("visit.3gpp"), &recording).unwrap();
    store
        .queue_recording(&kiosk_core::store::QueuedRecording {
            visit_id: unknown_pairing.id,
            path: recording.clone(),
            size_bytes: std::fs::metadata(&recording).unwrap().len(),
            sha256: sha256_of(&recording),
        })
        .unwrap();

    let (mut sync, status) = sync_loop(&store, &client);
    let report = sync.round().await.unwrap();

    assert_eq!(report.visits_acknowledged, 1);
    assert_eq!(report.visits_rejected, 2);
    assert_eq!(report.recordings_dropped, 1);
    let counts = store.counts().unwrap();
    assert_eq!((counts.queued, counts.rejected), (0, 2));
    assert_eq!(
        (counts.recordings_pending, counts.recordings_dropped),
        (0, 1)
    );
    assert!(
        !recording.exists(),
        "a rejected visit's recording can never go up"
    );
    assert!(!store.visit_wants_recording(unknown_pairing.id).unwrap());
    let mut reasons: Vec<_> = store
        .rejected_visits()
        .unwrap()
        .into_iter()
        .map(|r| (r.visit.id, r.reason))
        .collect();
    reasons.sort();
    let mut expected = vec![
        (unknown_service.id, "unknown_service".to_string()),
        (unknown_pairing.id, "unknown_pairing".to_string()),
    ];
    expected.sort();
    assert_eq!(reasons, expected);
    assert_eq!(status.borrow().rejected, 2);
    assert_eq!(status.borrow().recordings_dropped, 1);

    // The next rounds send only what is new; the rejected visits stay aside.
    let later = visit(&pairing, Some(Rating::Good));
    store.finish_visit(&later).unwrap();
    let report = sync.round().await.unwrap();
    assert_eq!(report.visits_sent, 1);
    assert_eq!(sync.round().await.unwrap().visits_sent, 0);
    assert_eq!(store.counts().unwrap().rejected, 2);
    let mut stored = vec![good.id, later.id];
    stored.sort();
    assert_eq!(server.stored_visit_ids(credentials.tablet_id), stored);
    server.stop().await;
}

/// The tablet rates 50 visits while the server is down; the server comes back on the same
/// port with the same data, and every visit arrives exactly once, through the running loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_visits_all_arrive_exactly_once_when_the_server_returns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = spawn_app_on(&data, 0, true).await;
    let port = server.port;
    let store = open_store(dir.path());
    let client = kiosk_client(&server);
    let (credentials, pairing) = enrol_and_pair(&server, &client, &store, 0).await;

    let (sync, mut status) = sync_loop(&store, &client);
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(sync.run(Arc::clone(&wake), stopped));
    status
        .wait_for(|s| s.online && s.last_success.is_some())
        .await
        .unwrap();

    server.stop().await;
    let mut rated = Vec::new();
    for i in 0..50 {
        let rating = [
            Some(Rating::Good),
            Some(Rating::Medium),
            Some(Rating::Bad),
            None,
        ][i % 4];
        let mut v = visit(&pairing, rating);
        v.has_recording = false;
        store.finish_visit(&v).unwrap();
        wake.notify_one();
        rated.push(v);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let offline = status
        .wait_for(|s| !s.online && s.queued == 50 && s.last_error.is_some())
        .await
        .unwrap()
        .clone();
    assert!(offline.last_error.unwrap().contains("cannot reach"));
    assert_eq!(
        store.counts().unwrap().queued,
        50,
        "nothing is dropped while offline"
    );

    let server = spawn_app_on(&data, port, false).await;
    assert_eq!(server.port, port);
    let drained = tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|s| s.online && s.queued == 0),
    )
    .await
    .expect("the outbox drains once the server is back")
    .unwrap()
    .clone();
    assert_eq!(drained.last_error, None);

    let mut ids: Vec<Uuid> = rated.iter().map(|v| v.id).collect();
    ids.sort();
    assert_eq!(server.stored_visit_ids(credentials.tablet_id), ids);
    // Sending them all again changes nothing: the server already holds each one.
    let resent = client
        .sync(&SyncBatch {
            sent_at: jiff::Timestamp::now(),
            health: health(),
            visits: rated.clone(),
            feedback_key: None,
        })
        .await
        .unwrap();
    assert_eq!(resent.results.len(), 50);
    assert!(
        resent
            .results
            .iter()
            .all(|ack| ack.outcome == VisitOutcome::AlreadyStored)
    );
    assert_eq!(server.stored_visit_ids(credentials.tablet_id).len(), 50);

    stop.send(true).unwrap();
    running.await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_credential_is_forgotten_and_the_outbox_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_app_on(&dir.path().join("server"), 0, true).await;
    let store = open_store(dir.path());
    let client = kiosk_client(&server);
    let (credentials, pairing) = enrol_and_pair(&server, &client, &store, 0).await;
    server.revoke_tablet(credentials.tablet_id).await;
    store
        .finish_visit(&visit(&pairing, Some(Rating::Good)))
        .unwrap();

    let (mut sync, status) = sync_loop(&store, &client);
    let error = sync.round().await.unwrap_err();

    assert!(matches!(
        error,
        SyncError::Client(ClientError::Unauthorized(_))
    ));
    assert_eq!(store.credentials().unwrap(), None);
    assert!(!client.has_token());
    assert_eq!(store.counts().unwrap().queued, 1);
    assert!(status.borrow().credential_revoked);
    // Until the tablet is enrolled again the loop only waits.
    let report = sync.round().await.unwrap();
    assert!(report.not_enrolled);
    assert!(status.borrow().credential_revoked);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_too_old_stops_and_tells_the_staff_panel() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn_app_on(&dir.path().join("server"), 0, true).await;
    let store = open_store(dir.path());
    let (_, pairing) = enrol_and_pair(&server, &kiosk_client(&server), &store, 0).await;
    store
        .finish_visit(&visit(&pairing, Some(Rating::Good)))
        .unwrap();
    let old = ServerClient::with_config(ClientConfig {
        protocol_version: 0,
        ..ClientConfig::new(server.base.clone())
    })
    .unwrap();

    let (mut sync, status) = sync_loop(&store, &old);
    let error = sync.round().await.unwrap_err();

    assert!(
        matches!(error, SyncError::Client(ClientError::AppTooOld(_))),
        "{error:?}"
    );
    let status = status.borrow().clone();
    assert!(status.app_too_old);
    assert!(status.online, "the server answered");
    assert_eq!(store.counts().unwrap().queued, 1);
    assert!(store.credentials().unwrap().is_some());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaks_https_to_a_server_certified_by_the_office_ca() {
    let (server, cert) = spawn_https_app().await;
    assert!(server.base.starts_with("https://"));
    let request = EnrolmentRequest {
        app_version: "1.0.0".into(),
        device_description: "tls test".into(),
        feedback_key: None,
    };

    let office = ServerClient::new(&server.base, Some(cert.as_bytes())).unwrap();
    let started = office.start_enrolment(&request).await.unwrap();
    assert_eq!(started.code.len(), 8);

    // Without the office CA the certificate is not trusted: a network error, retried later.
    let strict = ServerClient::with_config(ClientConfig {
        tls: TlsTrust::Platform,
        ..ClientConfig::new(server.base.clone())
    })
    .unwrap();
    let error = strict.start_enrolment(&request).await.unwrap_err();
    assert!(matches!(error, ClientError::Network(_)), "{error:?}");
    assert!(error.is_transient());
    server.stop().await;
}

#[test]
fn backoff_grows_doubling_and_is_capped() {
    let base = Duration::from_secs(1);
    let cap = Duration::from_secs(300);
    const LEVELS: usize = 12;
    const RUNS: u64 = 500;
    // 500 seeded runs of 12 consecutive failures: the draws at each failure count.
    let mut draws = vec![Vec::new(); LEVELS];
    let mut ceilings = Vec::new();
    for seed in 0..RUNS {
        let mut backoff = Backoff::seeded(base, cap, seed);
        for level in draws.iter_mut() {
            if seed == 0 {
                ceilings.push(backoff.ceiling().as_secs());
            }
            let ceiling = backoff.ceiling();
            let delay = backoff.next_delay();
            assert!(delay <= ceiling, "full jitter stays under the ceiling");
            level.push(delay.as_secs_f64());
        }
    }
    assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    // Full jitter: the mean wait is about half the ceiling, so it grows until the cap.
    let means: Vec<f64> = draws
        .iter()
        .map(|level| level.iter().sum::<f64>() / level.len() as f64)
        .collect();
    for (mean, ceiling) in means.iter().zip(&ceilings) {
        let ratio = mean / *ceiling as f64;
        assert!(
            (0.4..0.6).contains(&ratio),
            "mean {mean} for ceiling {ceiling}"
        );
    }
    assert!(means.windows(2).take(8).all(|w| w[1] > w[0]), "{means:?}");

    // Reproducible with the same seed.
    let mut a = Backoff::seeded(base, cap, 7);
    let mut b = Backoff::seeded(base, cap, 7);
    let first: Vec<_> = (0..20).map(|_| a.next_delay()).collect();
    let second: Vec<_> = (0..20).map(|_| b.next_delay()).collect();
    assert_eq!(first, second);

    // A success starts over.
    a.reset();
    assert_eq!(a.failures(), 0);
    assert_eq!(a.ceiling(), base);
    // Thousands of failures neither overflow nor pass the cap.
    for _ in 0..10_000 {
        assert!(a.next_delay() <= cap);
    }
    assert_eq!(a.ceiling(), cap);
    assert_eq!(Backoff::default().ceiling(), base);
}
