//! What the Android shell tells a running kiosk: lifecycle changes and the microphone
//! permission (`RunningKiosk::lifecycle`, `set_microphone_permission`, `is_recording`), against a
//! real office server.

use std::time::Duration;

use kiosk_core::kiosk::{AudioChoice, KioskConfig, Lifecycle, RunningKiosk, start};
use kiosk_core::machine::Timings;
use kiosk_core::screen::{Action, ScreenView, View};
use test_support::*;

async fn start_kiosk(
    server: &TestServer,
    dir: &std::path::Path,
    audio: AudioChoice,
) -> RunningKiosk {
    start(KioskConfig {
        server: server.base.clone(),
        data_dir: dir.to_path_buf(),
        screen_port: 0,
        audio,
        timings: Timings::default(),
        retention_days: 90,
        app_version: "app-controls-test".into(),
        office_ca_pem: None,
    })
    .await
    .expect("kiosk starts")
}

async fn until_view(kiosk: &RunningKiosk, what: &str, test: impl Fn(&View) -> bool) -> View {
    let mut views = kiosk.views();
    let found = tokio::time::timeout(Duration::from_secs(45), async {
        loop {
            let view = views.borrow_and_update().clone();
            if test(&view) {
                return view;
            }
            views.changed().await.expect("the kiosk runs");
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{what}: the view stayed {:?}", kiosk.views().borrow()))
}

/// Enrols and pairs the kiosk through the server, as the administrator and a specialist do.
async fn enrol_and_pair(server: &TestServer, kiosk: &RunningKiosk) {
    enrol_and_pair_as(server, kiosk, "Окно 7", None).await;
}

/// Enrols the kiosk as `name` and pairs it to the specialist of «Отдел учета»'s first
/// employee (signed in as `specialist`, or a new account).
async fn enrol_and_pair_as(
    server: &TestServer,
    kiosk: &RunningKiosk,
    name: &str,
    specialist: Option<&reqwest::Client>,
) -> reqwest::Client {
    let admin = server.admin().await;
    let view = until_view(kiosk, "enrolment code", |v| {
        matches!(&v.screen, ScreenView::Enrolment { code: Some(_) })
    })
    .await;
    let ScreenView::Enrolment { code: Some(code) } = view.screen else {
        unreachable!()
    };
    server.approve(&admin, &code, name).await;
    let view = until_view(kiosk, "pairing code", |v| {
        matches!(&v.screen, ScreenView::Pairing { code: Some(_) })
    })
    .await;
    let ScreenView::Pairing { code: Some(code) } = view.screen else {
        unreachable!()
    };
    let specialist = match specialist {
        Some(client) => client.clone(),
        None => {
            let employee = server.employee_of("Отдел учета", 0);
            server.specialist(&admin, employee).await
        }
    };
    server.pair_with_code(&specialist, &code).await;
    until_view(kiosk, "idle", |v| {
        matches!(v.screen, ScreenView::Idle { .. })
    })
    .await;
    specialist
}

/// A specialist works at one desk at a time: pairing a second tablet ends the first one's
/// session, and both screens say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_specialist_moving_to_another_tablet_is_told_on_both() {
    let server = spawn_default_app().await;
    let first_dir = tempfile::tempdir().expect("tablet dir");
    let second_dir = tempfile::tempdir().expect("tablet dir");
    let first = start_kiosk(&server, first_dir.path(), AudioChoice::Synthetic).await;
    let second = start_kiosk(&server, second_dir.path(), AudioChoice::Synthetic).await;
    let specialist = enrol_and_pair_as(&server, &first, "Окно 1", None).await;
    enrol_and_pair_as(&server, &second, "Окно 2", Some(&specialist)).await;
    until_view(&second, "the notice on the new tablet", |v| {
        v.staff.notices.contains(&"notice_ended_elsewhere")
    })
    .await;
    // The first learns at its next exchange with the server (its sync polls every 30 s).
    let view = until_view(&first, "the notice on the old tablet", |v| {
        v.staff.notices.contains(&"notice_specialist_moved")
    })
    .await;
    assert!(
        matches!(view.screen, ScreenView::Pairing { .. }),
        "{:?}",
        view.screen
    );
    first.stop().await.expect("kiosk stops");
    second.stop().await.expect("kiosk stops");
    server.stop().await;
}

async fn begin_visit(kiosk: &RunningKiosk) {
    assert!(kiosk.act(Action::Start).await);
    let view = until_view(kiosk, "service choice", |v| {
        matches!(v.screen, ScreenView::ServiceChoice { .. })
    })
    .await;
    let ScreenView::ServiceChoice { services } = view.screen else {
        unreachable!()
    };
    let service_id = services.first().expect("a service").id;
    assert!(kiosk.act(Action::ChooseService { service_id }).await);
    until_view(kiosk, "in visit", |v| {
        matches!(v.screen, ScreenView::InVisit { .. })
    })
    .await;
}

async fn rate(kiosk: &RunningKiosk, key: &str) {
    assert!(kiosk.act(Action::End).await);
    let view = until_view(kiosk, "rating", |v| {
        matches!(v.screen, ScreenView::Rating { .. })
    })
    .await;
    let ScreenView::Rating { buttons } = view.screen else {
        unreachable!()
    };
    let position = buttons.iter().position(|b| *b == key).expect("button");
    // Taps sooner than `rating_arm_delay` after the rating screen appears are ignored.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(kiosk.act(Action::Rate { position }).await);
    until_view(kiosk, "thanks", |v| {
        matches!(v.screen, ScreenView::Thanks { .. })
    })
    .await;
}

/// Pause, low memory and resume in the middle of a recorded visit lose nothing: the visit goes
/// on recording, and its Плохо recording reaches the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_during_a_visit_lose_nothing() {
    let server = spawn_default_app().await;
    let tablet = tempfile::tempdir().expect("tablet dir");
    let kiosk = start_kiosk(&server, tablet.path(), AudioChoice::Synthetic).await;
    enrol_and_pair(&server, &kiosk).await;
    assert!(!kiosk.is_recording());

    begin_visit(&kiosk).await;
    assert!(kiosk.is_recording(), "a visit with audio records");
    for event in [Lifecycle::Pause, Lifecycle::LowMemory, Lifecycle::Resume] {
        kiosk.lifecycle(event).expect("lifecycle event");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(kiosk.is_recording(), "still recording after {event:?}");
        assert!(
            matches!(kiosk.views().borrow().screen, ScreenView::InVisit { .. }),
            "the visit goes on after {event:?}"
        );
    }
    rate(&kiosk, "bad").await;
    assert!(!kiosk.is_recording(), "the recording stops with the visit");

    let recorded = wait_until(Duration::from_secs(30), || {
        let recorded = server.recorded_visits();
        (!recorded.is_empty()).then_some(recorded)
    })
    .await
    .expect("the Плохо recording reaches the server");
    // One visit (listed once for its table row and once for its file), rated Плохо.
    let visits: std::collections::HashSet<_> = recorded.iter().map(|(id, _)| id).collect();
    assert_eq!(visits.len(), 1, "{recorded:?}");
    assert!(recorded.iter().all(|(_, rating)| *rating == Some(1)));

    kiosk.stop().await.expect("kiosk stops");
    server.stop().await;
}

/// With the microphone permission refused the staff panel says so, visits are rated without
/// audio, and granting it lifts the notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_microphone_is_shown_and_visits_go_on_without_audio() {
    let server = spawn_default_app().await;
    let tablet = tempfile::tempdir().expect("tablet dir");
    let kiosk = start_kiosk(&server, tablet.path(), AudioChoice::Microphone).await;
    enrol_and_pair(&server, &kiosk).await;

    kiosk.set_microphone_permission(false).expect("permission");
    let view = until_view(&kiosk, "microphone denied", |v| {
        v.staff.microphone == "denied"
    })
    .await;
    assert!(
        view.staff
            .notices
            .contains(&"notice_microphone_unavailable"),
        "{:?}",
        view.staff
    );

    begin_visit(&kiosk).await;
    assert!(!kiosk.is_recording(), "no recording without the permission");
    rate(&kiosk, "bad").await;
    let synced = wait_until(Duration::from_secs(30), || {
        (server.visit_count() == 1).then_some(())
    })
    .await;
    assert!(
        synced.is_some(),
        "the visit rated without audio reaches the server"
    );
    assert!(server.recorded_visits().is_empty());
    for dir in ["spool", "recordings"] {
        let left = std::fs::read_dir(tablet.path().join(dir))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "audio left in {dir}");
    }

    kiosk.set_microphone_permission(true).expect("permission");
    let view = until_view(&kiosk, "denial lifted", |v| v.staff.microphone != "denied").await;
    // Granted: the panel shows the device as it is (this machine may have no microphone).
    assert!(
        ["ok", "unavailable"].contains(&view.staff.microphone),
        "{:?}",
        view.staff
    );
    assert!(view.staff.notices.is_empty(), "{:?}", view.staff);

    let stopped = kiosk.stop().await;
    stopped.expect("kiosk stops");
    server.stop().await;
}
