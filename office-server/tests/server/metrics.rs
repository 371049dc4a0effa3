//! `/metrics` as the office's Prometheus scrapes it from the real binary: refused (404) to an
//! address outside `[metrics] allow` without a token, answered with one; and every counter
//! and state read back after driving its real event — syncs and their latency, visits by
//! outcome and rejections by reason, uploads and their bytes, refused recordings, failed and
//! throttled sign-ins, an open live stream, tablets by state with their queues, the newest
//! backup's age, free disk.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::json;
use shared_model::{
    RECORDING_OFFSET_HEADER, RECORDING_SHA256_HEADER, RECORDING_SIZE_HEADER, Rating,
};
use test_support::process::{ProcessOptions, ServerProcess};
use test_support::*;

const BINARY: &str = env!("CARGO_BIN_EXE_office-server");
const TOKEN: &str = "a metrics token for the test scraper";

/// The value of the sample `series` (name and labels exactly as rendered), if present.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
}

fn value(page: &str, series: &str) -> f64 {
    sample(page, series).unwrap_or_else(|| panic!("no {series} in:\n{page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_each_event_and_state_and_only_for_those_allowed() {
    let backups = tempfile::tempdir().unwrap();
    let an_hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    std::fs::create_dir(
        backups
            .path()
            .join(an_hour_ago.strftime("backup-%Y%m%dT%H%M%SZ").to_string()),
    )
    .unwrap();
    let digest = hex::encode(office_server::auth::token_digest(TOKEN));
    let options = ProcessOptions {
        config: format!(
            "[metrics]\nallow = []\ntokens_sha256 = [\"{digest}\"]\n\
             [backup]\ndir = {:?}\n[throttle]\nsign_in_per_account = 3\n",
            backups.path().to_str().unwrap()
        ),
        ..ProcessOptions::default()
    };
    let server = ServerProcess::start(Path::new(BINARY), &options);
    let app = server.server("http").await;
    let plain = app.client_builder().build().unwrap();
    let scrape = || async {
        let response = plain
            .get(app.url("/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    };

    // Not on the list, no token or a wrong one: there is no such page.
    for token in [None, Some("a guess")] {
        let mut request = plain.get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }

    let admin = app.admin().await;
    let (tablet, pairing) = app
        .paired_tablet_with(&admin, "Отдел учета", "Окно 1", 0)
        .await;
    let (gone, _) = app
        .paired_tablet_with(&admin, "Отдел учета", "Окно 2", 1)
        .await;
    app.revoke_tablet(gone.id).await;

    // Syncs: two stored, one sent again, one whose service the pairing does not offer.
    let bad = visit(&pairing, Some(Rating::Bad));
    let good = visit(&pairing, Some(Rating::Good));
    let mut stranger = visit(&pairing, Some(Rating::Medium));
    stranger.service_id = 999_999;
    tablet.sync(&[bad.clone(), good.clone()]).await;
    tablet.sync(&[good.clone(), stranger]).await;
    // A refused sync is a sync request too.
    let refused = plain
        .post(app.url("/api/tablet/sync"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let refused = refused.status();
    assert!(refused.is_client_error(), "{refused}");

    // A recording stored, and one refused as not audio.
    let audio = fixtures::VISIT_3GPP;
    tablet.upload_recording(&bad, audio).await;
    let other = visit(&pairing, Some(Rating::Bad));
    tablet.sync(std::slice::from_ref(&other)).await;
    let junk = vec![7u8; 4096];
    let response = tablet
        .post(&format!("/api/tablet/visits/{}/recording", other.id))
        .header(RECORDING_SIZE_HEADER, junk.len())
        .header(RECORDING_SHA256_HEADER, sha256_hex(&junk))
        .header(RECORDING_OFFSET_HEADER, 0)
        .body(junk)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());

    // Two wrong passwords, then the account's throttle (3 a minute) holds the next.
    for _ in 0..4 {
        plain
            .post(app.url("/api/auth/login"))
            .json(&json!({ "login": "head.accounting", "password": "not the password" }))
            .send()
            .await
            .unwrap();
    }

    // A live stream held open while scraped.
    let stream = admin
        .get(app.url("/dashboard/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    let page = scrape().await;
    assert_eq!(
        value(&page, "office_sync_requests_total{status=\"200\"}"),
        3.0
    );
    let refused_series = format!(
        "office_sync_requests_total{{status=\"{}\"}}",
        refused.as_u16()
    );
    assert_eq!(value(&page, &refused_series), 1.0);
    assert_eq!(value(&page, "office_sync_duration_seconds_count"), 4.0);
    assert!(value(&page, "office_sync_duration_seconds_sum") > 0.0);
    assert!(
        page.contains("office_sync_duration_seconds_bucket{le=\"0.01\"}"),
        "{page}"
    );
    assert_eq!(value(&page, "office_visits_total{outcome=\"stored\"}"), 3.0);
    assert_eq!(
        value(&page, "office_visits_total{outcome=\"already_stored\"}"),
        1.0
    );
    assert_eq!(
        value(&page, "office_visits_total{outcome=\"rejected\"}"),
        1.0
    );
    assert_eq!(
        value(
            &page,
            "office_visits_rejected_total{reason=\"unknown_service\"}"
        ),
        1.0
    );
    assert_eq!(value(&page, "office_recording_upload_requests_total"), 2.0);
    assert_eq!(value(&page, "office_recordings_stored_total"), 1.0);
    assert_eq!(
        value(&page, "office_recording_bytes_total"),
        audio.len() as f64
    );
    assert_eq!(
        value(&page, "office_recordings_refused_total{reason=\"invalid\"}"),
        1.0
    );
    assert_eq!(value(&page, "office_login_failures_total"), 3.0);
    assert_eq!(value(&page, "office_login_throttled_total"), 1.0);
    assert_eq!(value(&page, "office_live_streams"), 1.0);
    let active = value(&page, "office_tablets{state=\"active\"}");
    let silent = value(&page, "office_tablets{state=\"silent\"}");
    assert_eq!(active + silent, 1.0, "{page}");
    assert_eq!(value(&page, "office_tablets{state=\"revoked\"}"), 1.0);
    // What the tablet said at its last sync (the harness reports 3 visits, 1 recording).
    let id = tablet.id;
    assert_eq!(
        value(
            &page,
            &format!("office_tablet_queue_visits{{tablet=\"{id}\"}}")
        ),
        3.0
    );
    assert_eq!(
        value(
            &page,
            &format!("office_tablet_recordings_pending{{tablet=\"{id}\"}}")
        ),
        1.0
    );
    assert_eq!(value(&page, "office_backups"), 1.0);
    let age = value(&page, "office_backup_age_seconds");
    assert!((3590.0..3700.0).contains(&age), "{age}");
    assert!(value(&page, "office_disk_free_bytes") > 0.0);

    drop(stream);
    for _ in 0..50 {
        if value(&scrape().await, "office_live_streams") == 0.0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the closed live stream is still counted");
}
