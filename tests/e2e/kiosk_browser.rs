//! The kiosk screen in real headless Chromium (Debian's chromium and chromium-driver), against a
//! running office server: enrol, pair, start, end, rate Плохо → the server holds the visit and a
//! recording ffprobe reports as AAC, 16 kHz, mono, with the visit's duration; rate Хорошо → no
//! recording on the tablet nor on the server. After either rating the thank-you screen shows
//! the visit's feedback QR code for the same time, pixel for pixel the same outside the code.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fantoccini::{Client, Locator};
use kiosk_core::kiosk::RunningKiosk;
use kiosk_core::kiosk::{AudioChoice, KioskConfig, start};
use kiosk_core::machine::Timings;
use kiosk_core::screen::ScreenView;
use serde_json::Value;
use test_support::browser::{
    Area, Chromium, Screenshot, Window, click, save_screenshot, text_containing, text_of, wait_for,
};
use test_support::*;

/// Waits for a code of `digits` digits in #code (the page shows «Получаем код…» before).
async fn code_on_screen(browser: &Client, digits: usize) -> String {
    for _ in 0..300 {
        let text = text_of(browser, "#code").await;
        if text.len() == digits && text.chars().all(|c| c.is_ascii_digit()) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no code appeared on the kiosk screen");
}

/// Serves one visit through the page and taps the button whose word is `rating`.
async fn visit_through_the_page(browser: &Client, rating: &str, talk: Duration) {
    click(browser, "#start").await;
    click(browser, "[data-service]").await;
    text_of(browser, "#elapsed").await;
    tokio::time::sleep(talk).await;
    click(browser, "#end").await;
    // The buttons are armed a moment after they appear.
    text_of(browser, "[data-rating-position]").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    click(browser, &format!("[data-rating-position].{rating}")).await;
    text_of(browser, "#thanks").await;
}

/// How long each thank-you screen showed, from the kiosk's view events (what the page is sent).
fn thanks_durations(kiosk: &RunningKiosk) -> Arc<Mutex<Vec<Duration>>> {
    let durations = Arc::new(Mutex::new(Vec::new()));
    let mut views = kiosk.views();
    let recorded = Arc::clone(&durations);
    tokio::spawn(async move {
        let mut since: Option<Instant> = None;
        while views.changed().await.is_ok() {
            let thanks = matches!(views.borrow_and_update().screen, ScreenView::Thanks { .. });
            match (thanks, since) {
                (true, None) => since = Some(Instant::now()),
                (false, Some(start)) => {
                    recorded.lock().expect("durations").push(start.elapsed());
                    since = None;
                }
                _ => {}
            }
        }
    });
    durations
}

/// The thank-you screen as shown: its screenshot, where its QR code is, and the link the code
/// holds, read off the picture by a real decoder.
async fn thanks_screen(page: &Client) -> (Screenshot, Area, String) {
    let code = wait_for(page, "#feedback-qr").await;
    // The image is decoded and drawn a moment after the element exists.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let area = Area::of(&code).await;
    let shot = Screenshot::take(page).await;
    let links = shot.qr_codes();
    assert_eq!(
        links.len(),
        1,
        "one QR code on the thank-you screen: {links:?}"
    );
    (shot, area, links[0].clone())
}

fn ffprobe(path: &Path) -> Value {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
        ])
        .arg(path)
        .output()
        .expect("ffprobe (Debian package ffmpeg) must be installed: run scripts/setup.sh");
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ffprobe JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_visit_in_chromium() {
    let server = spawn_public_app().await;
    let tablet_dir = tempfile::tempdir().expect("tablet dir");
    let kiosk = start(KioskConfig {
        server: server.base.clone(),
        data_dir: tablet_dir.path().to_path_buf(),
        screen_port: 0,
        audio: AudioChoice::Synthetic,
        timings: Timings::default(),
        retention_days: 90,
        app_version: "browser-test".into(),
        office_ca_pem: None,
    })
    .await
    .expect("kiosk starts");
    let chromium = Chromium::start();
    let page = chromium.open(&Window::new(1280, 800)).await;
    page.goto(&kiosk.url).await.expect("kiosk page");

    // Enrolment: the administrator types the code the tablet shows.
    let admin = server.admin().await;
    let code = code_on_screen(&page, 8).await;
    server.approve(&admin, &code, "Окно 5").await;
    // Pairing: the specialist types the next code on their own PC.
    let code = code_on_screen(&page, 6).await;
    let employee = server.employee_of("Отдел учета", 0);
    let specialist = server.specialist(&admin, employee).await;
    server.pair_with_code(&specialist, &code).await;
    let name = text_of(&page, "#specialist").await;
    assert_eq!(name, server.employee_name(employee));
    let notice = text_of(&page, "#notice").await;
    assert!(
        notice.contains("152-ФЗ") && notice.contains("90 дней"),
        "{notice}"
    );
    save_screenshot(&page, "kiosk-idle-1280x800.png").await;
    let thanks = thanks_durations(&kiosk);
    // One sync round has answered where feedback links lead.
    let mut views = kiosk.views();
    tokio::time::timeout(
        Duration::from_secs(30),
        views.wait_for(|view| view.staff.last_sync.is_some()),
    )
    .await
    .expect("a first sync")
    .expect("the kiosk runs");

    // A visit rated Плохо: its recording reaches the server.
    visit_through_the_page(&page, "bad", Duration::from_secs(3)).await;
    let (after_bad, code_area, bad_link) = thanks_screen(&page).await;
    let feedback_base = format!("{}/f/", server.base);
    assert!(bad_link.starts_with(&feedback_base), "{bad_link}");
    save_screenshot(&page, "kiosk-thanks-1280x800.png").await;
    let recordings = server.data_dir.join("recordings");
    let stored = wait_until(Duration::from_secs(30), || {
        let files: Vec<_> = files_in(&recordings)
            .into_iter()
            .filter(|f| f.ends_with(".3gpp"))
            .collect();
        (files.len() == 1).then(|| files[0].clone())
    })
    .await
    .expect("the Плохо recording reaches the server");
    let visit_id: uuid::Uuid = stored
        .trim_end_matches(".3gpp")
        .parse()
        .expect("a visit id");
    let probe = ffprobe(&recordings.join(&stored));
    let stream = &probe["streams"][0];
    assert_eq!(stream["codec_name"], "aac", "{probe}");
    assert_eq!(stream["sample_rate"], "16000", "{probe}");
    assert_eq!(stream["channels"], 1, "{probe}");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("duration");
    let visit_seconds = server.visit_duration_seconds(visit_id);
    assert!(
        (duration - visit_seconds).abs() < 0.6,
        "audio {duration} s, visit {visit_seconds} s"
    );
    assert_eq!(server.visit_rating(visit_id), Some(1));
    // The tablet deleted its copy once the server confirmed the checksum.
    let tablet_files = wait_until(Duration::from_secs(15), || {
        let left: Vec<_> = ["spool", "recordings"]
            .iter()
            .flat_map(|d| files_in(&tablet_dir.path().join(d)))
            .collect();
        left.is_empty().then_some(())
    })
    .await;
    assert!(
        tablet_files.is_some(),
        "the tablet kept audio after the upload"
    );

    // A visit rated Хорошо: no recording anywhere.
    text_of(&page, "#start").await;
    visit_through_the_page(&page, "good", Duration::from_secs(2)).await;
    let (after_good, good_area, good_link) = thanks_screen(&page).await;
    assert!(good_link.starts_with(&feedback_base), "{good_link}");
    assert_ne!(good_link, bad_link, "each visit has its own link");
    assert_eq!(
        (good_area.x, good_area.y, good_area.width, good_area.height),
        (code_area.x, code_area.y, code_area.width, code_area.height),
        "the code has the same place and size"
    );
    assert_eq!(
        after_bad.pixels_differing_outside(&after_good, code_area),
        0,
        "the thank-you screens after Плохо and after Хорошо differ outside the QR code"
    );
    let synced = wait_until(Duration::from_secs(30), || {
        (server.visit_count() == 2).then_some(())
    })
    .await;
    assert!(synced.is_some(), "the Хорошо visit reaches the server");
    assert_eq!(
        files_in(&recordings)
            .iter()
            .filter(|f| f.ends_with(".3gpp"))
            .count(),
        1
    );
    for dir in ["spool", "recordings"] {
        assert!(
            files_in(&tablet_dir.path().join(dir)).is_empty(),
            "audio left in {dir}"
        );
    }

    // Both thank-you screens showed for the configured 20 s, within 100 ms of each other.
    text_of(&page, "#start").await;
    let durations = thanks.lock().expect("durations").clone();
    eprintln!("thank-you screens after Плохо and Хорошо: {durations:?}");
    assert_eq!(durations.len(), 2, "{durations:?}");
    let spread = durations[0].abs_diff(durations[1]);
    assert!(spread < Duration::from_millis(100), "{durations:?}");
    for shown in &durations {
        assert!(
            *shown > Duration::from_millis(19_500) && *shown < Duration::from_millis(20_500),
            "{durations:?}"
        );
    }

    // The portrait layout shows the three buttons too.
    page.set_window_size(800, 1280).await.expect("resize");
    click(&page, "#start").await;
    click(&page, "[data-service]").await;
    click(&page, "#end").await;
    text_of(&page, "[data-rating-position]").await;
    let buttons = page
        .find_all(Locator::Css("[data-rating-position]"))
        .await
        .expect("buttons");
    assert_eq!(buttons.len(), 3);
    for button in &buttons {
        let (_, _, width, height) = button.rectangle().await.expect("rectangle");
        assert!(
            width > 300.0 && height > 150.0,
            "a button of {width}×{height} is too small to tap"
        );
    }
    save_screenshot(&page, "kiosk-rating-800x1280.png").await;

    page.close().await.expect("close browser");
    kiosk.stop().await.expect("kiosk stops");
    visitor_and_head(&chromium, &server, &bad_link, &good_link).await;
    server.stop().await;
}

/// On a 360×640 phone the visitor opens the link read off the kiosk screen — with scripts off
/// the form is all there (the page has no script: its CSP allows none, so what is clicked with
/// scripts on is the same plain form) — scores and comments; the head sees it on «Отзывы
/// посетителей» and answers; the visitor's link shows the answer. (With scripts off,
/// chromedriver cannot click or type: its commands run as scripts in the page.)
async fn visitor_and_head(
    chromium: &Chromium,
    server: &TestServer,
    bad_link: &str,
    good_link: &str,
) {
    let phone_window = |javascript| Window {
        javascript,
        phone: true,
        ..Window::new(360, 640)
    };
    let phone = chromium.open(&phone_window(false)).await;
    phone.goto(bad_link).await.expect("the feedback page");
    assert!(text_of(&phone, "#privacy").await.contains("152-ФЗ"));
    let scales = phone
        .find_all(Locator::Css("fieldset.criterion input[type=radio]"))
        .await
        .expect("radios");
    assert_eq!(scales.len(), 25, "five criteria, 1–5 each");
    text_of(&phone, "#send").await;
    save_screenshot(&phone, "visitor-feedback-360x640.png").await;
    phone.close().await.expect("close phone");
    for link in [bad_link, good_link] {
        let phone = chromium.open(&phone_window(true)).await;
        phone.goto(link).await.expect("the feedback page");
        text_of(&phone, "#privacy").await;
        // The page fits the phone: nothing wider than its screen.
        let width = phone
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .rectangle()
            .await
            .expect("size")
            .2;
        assert!(width <= 360.0, "the page is {width} px wide");
        click(&phone, "input[name=score_courtesy][value='2'] + span").await;
        click(&phone, "input[name=score_queue_time][value='4'] + span").await;
        wait_for(&phone, "textarea[name=comment]")
            .await
            .send_keys("Долго ждал, сотрудник торопился.")
            .await
            .expect("typed");
        click(&phone, "#send").await;
        text_containing(&phone, "h1", "Спасибо").await;
        assert!(text_of(&phone, "#comment").await.contains("Долго ждал"));
        phone.close().await.expect("close phone");
    }

    // The head of the section answers the first one in the dashboard.
    let head = chromium.open(&Window::new(1280, 900)).await;
    let admin = server.admin().await;
    let login = test_support::create_account(
        server,
        &admin,
        "head.feedback",
        serde_json::json!({"role": "head_of_section", "section_id": server.section("Отдел учета").id}),
    )
    .await;
    head.goto(&server.url("/login"))
        .await
        .expect("sign-in page");
    wait_for(&head, "input[name=login]")
        .await
        .send_keys(&login)
        .await
        .expect("login");
    wait_for(&head, "input[name=password]")
        .await
        .send_keys(test_support::WEB_PASSWORD)
        .await
        .expect("password");
    click(&head, "form.login button").await;
    text_of(&head, "header").await;
    head.goto(&server.url("/dashboard/feedback"))
        .await
        .expect("feedback page");
    let rows = head
        .find_all(Locator::Css("table[data-table=feedback] tbody tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2, "both visitors' feedback");
    let ratings = text_of(&head, "table[data-table=feedback] tbody").await;
    assert!(
        ratings.contains("Плохо") && ratings.contains("Хорошо"),
        "{ratings}"
    );
    save_screenshot(&head, "dashboard-feedback-1280x900.png").await;
    let token = bad_link.rsplit('/').next().expect("a token");
    let (claims, _) = shared_model::FeedbackToken::read(token).expect("a token");
    let row = format!("#feedback-{}", claims.visit_id);
    wait_for(&head, &format!("{row} textarea[name=answer]"))
        .await
        .send_keys("Спасибо за отзыв: мы добавили окно приема.")
        .await
        .expect("typed");
    click(&head, &format!("{row} form.verdict-form button")).await;
    text_of(&head, &format!("{row} .answer")).await;
    head.close().await.expect("close head");

    let phone = chromium.open(&phone_window(false)).await;
    phone.goto(bad_link).await.expect("the link again");
    let answer = text_of(&phone, "#answer").await;
    assert!(answer.contains("добавили окно"), "{answer}");
    save_screenshot(&phone, "visitor-answer-360x640.png").await;
    phone.close().await.expect("close phone");
}
