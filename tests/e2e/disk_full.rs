//! A full disk never blocks rating. The tablet's data directory is a real, small tmpfs: with
//! little space a Плохо visit is rated without audio and the staff panel says why; with no
//! space at all the rating is still taken, kept and sent once space is back.
//!
//! Mounting a tmpfs needs root (CI runs as root); elsewhere the test fails and says so.

use std::time::{Duration, Instant};

use kiosk_core::kiosk::{AudioChoice, KioskConfig, RunningKiosk, start};
use kiosk_core::machine::Timings;
use kiosk_core::screen::{Action, ScreenView, View};
use test_support::disk::{SmallDisk, fill};
use test_support::*;

async fn until(kiosk: &RunningKiosk, what: &str, mut want: impl FnMut(&View) -> bool) -> View {
    let mut views = kiosk.views();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        {
            let view = views.borrow_and_update();
            if want(&view) {
                return view.clone();
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the screen never showed {what}");
        let _ = tokio::time::timeout(left, views.changed()).await;
    }
}

/// One visit through the screen's actions, rated with the button whose key is `rating`.
async fn visit(kiosk: &RunningKiosk, rating: &str) {
    until(kiosk, "the idle screen", |v| {
        matches!(v.screen, ScreenView::Idle { .. })
    })
    .await;
    kiosk.act(Action::Start).await;
    let view = until(kiosk, "the service choice", |v| {
        matches!(v.screen, ScreenView::ServiceChoice { .. })
    })
    .await;
    let ScreenView::ServiceChoice { services } = view.screen else {
        unreachable!()
    };
    kiosk
        .act(Action::ChooseService {
            service_id: services[0].id,
        })
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    kiosk.act(Action::End).await;
    let view = until(kiosk, "the rating screen", |v| {
        matches!(v.screen, ScreenView::Rating { .. })
    })
    .await;
    let ScreenView::Rating { buttons } = view.screen else {
        unreachable!()
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    let position = buttons.iter().position(|b| *b == rating).expect("button");
    kiosk.act(Action::Rate { position }).await;
    until(kiosk, "the thanks", |v| {
        matches!(v.screen, ScreenView::Thanks { .. })
    })
    .await;
}

async fn wait_for_visits(server: &TestServer, count: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        if server.visit_count() == count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_never_blocks_rating() {
    let server = spawn_default_app().await;
    let disk = SmallDisk::mount(24);
    let kiosk = start(KioskConfig {
        server: server.base.clone(),
        data_dir: disk.path.clone(),
        screen_port: 0,
        audio: AudioChoice::Synthetic,
        timings: Timings {
            thanks: jiff::SignedDuration::from_secs(1),
            ..Timings::default()
        },
        retention_days: 90,
        app_version: "disk-full-test".into(),
        office_ca_pem: None,
    })
    .await
    .expect("kiosk starts");
    let admin = server.admin().await;
    let view = until(&kiosk, "an enrolment code", |v| {
        matches!(v.screen, ScreenView::Enrolment { code: Some(_) })
    })
    .await;
    let ScreenView::Enrolment { code: Some(code) } = view.screen else {
        unreachable!()
    };
    server.approve(&admin, &code, "Окно 9").await;
    let view = until(&kiosk, "a pairing code", |v| {
        matches!(v.screen, ScreenView::Pairing { code: Some(_) })
    })
    .await;
    let ScreenView::Pairing { code: Some(code) } = view.screen else {
        unreachable!()
    };
    let specialist = server
        .specialist(&admin, server.employee_of("Отдел учета", 0))
        .await;
    server.pair_with_code(&specialist, &code).await;

    // Little space (24 MB, under the kiosk's 64 MB reserve for audio): rated without audio.
    visit(&kiosk, "bad").await;
    let view = kiosk.views().borrow().clone();
    assert!(
        view.staff.notices.contains(&"notice_no_audio_disk_full"),
        "{:?}",
        view.staff
    );
    assert!(
        wait_for_visits(&server, 1).await,
        "the Плохо visit reaches the server"
    );
    assert!(files_in(&disk.path.join("spool")).is_empty());
    assert!(files_in(&disk.path.join("recordings")).is_empty());
    let visit_id = server.visit_ids().pop().expect("a visit");
    assert_eq!(server.visit_rating(visit_id), Some(1));
    assert!(
        server.recorded_visits().is_empty(),
        "no recording without space for one"
    );

    // No space at all: the visitor's tap is still taken and thanked.
    let filler = fill(&disk.path);
    visit(&kiosk, "good").await;
    let view = until(&kiosk, "the saving notice", |v| {
        v.staff.notices.contains(&"notice_saving_failed")
    })
    .await;
    assert!(
        view.staff.queued >= 1,
        "the unsaved rating is counted: {:?}",
        view.staff
    );
    assert_eq!(server.visit_count(), 1);

    // Space comes back: the kept rating is written and sent.
    std::fs::remove_file(filler).expect("free the disk");
    assert!(
        wait_for_visits(&server, 2).await,
        "the rating taken on a full disk reaches the server"
    );
    until(&kiosk, "the notice gone", |v| {
        !v.staff.notices.contains(&"notice_saving_failed")
    })
    .await;

    kiosk.stop().await.expect("kiosk stops");
    server.stop().await;
}
