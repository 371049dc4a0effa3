//! The lived-in demo as a newcomer gets it: `load-demo --history-days` run by the binary itself,
//! then served. What it says it made is what is stored, every «Плохо» has its recording, the
//! review report counts the same «Плохо» and overdue ones, each head's report covers their own
//! department only, and the history's tablets are retired so none is reported silent.

use std::path::Path;

use reqwest::StatusCode;
use shared_model::Rating;
use test_support::browser::{Chromium, Window, save_screenshot, script, wait_for};
use test_support::process::{ProcessOptions, ServerProcess};
use test_support::*;

use super::dashboard::read_xlsx;

const BINARY: &str = env!("CARGO_BIN_EXE_office-server");

/// The numbers of «demo history: N working days, N visits, N «Плохо» …, N verdicts, N of them
/// late, N awaiting a verdict and N overdue (…)», in that order.
fn summary(output: &str) -> [u64; 7] {
    let line = output
        .lines()
        .find(|l| l.starts_with("demo history:"))
        .unwrap_or_else(|| panic!("no summary in {output}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    numbers[..7].try_into().unwrap()
}

/// The all-time total of a review table's file, as `account` sees it.
async fn all_time_total(app: &TestServer, account: &reqwest::Client, table: &str) -> u64 {
    let file = account
        .get(app.url(&format!(
            "/dashboard/export?tab=review&table={table}&by=head"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK, "{table}");
    let sheet = read_xlsx(&file.bytes().await.unwrap());
    let total = sheet.last().unwrap();
    total[6].parse().unwrap_or_else(|_| panic!("{sheet:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_history_is_what_it_says_and_the_reports_agree() {
    let clips = tempfile::tempdir().unwrap();
    for (name, fixture) in [("a.3gp", "visit.3gpp"), ("b.3gp", "visit-segments.3gpp")] {
        std::fs::copy(fixtures::path(fixture), clips.path().join(name)).unwrap();
    }
    let options = ProcessOptions {
        load_demo: [
            "--history-days",
            "20",
            "--clips",
            clips.path().to_str().unwrap(),
            "--password-stdin",
        ]
        .map(String::from)
        .to_vec(),
        ..ProcessOptions::default()
    };
    let server = ServerProcess::start(Path::new(BINARY), &options);
    let [working_days, visits, bad, verdicts, late, waiting, overdue] =
        summary(&server.load_demo_output);
    assert!((12..=16).contains(&working_days), "{working_days}");
    assert!(visits > 1000 && bad > 50, "{visits} visits, {bad} bad");
    assert!(
        verdicts > 0 && late > 0 && overdue > 0,
        "{verdicts} verdicts, {late} late, {overdue} overdue"
    );
    let app = server.server("http").await;

    // Stored as reported: the visits, and a recording file for every «Плохо» and nothing else.
    assert_eq!(app.visit_count() as u64, visits);
    let recorded = app.recorded_visits();
    assert_eq!(recorded.len() as u64, bad);
    assert!(
        recorded
            .iter()
            .all(|(id, rating)| *rating == Some(Rating::Bad.score())
                && app.stored_recording(*id).is_some_and(|b| !b.is_empty())),
        "a «Плохо» without its file, or a file of another visit"
    );
    let stored_bad = app
        .visits()
        .iter()
        .filter(|v| v.visit.rating == Some(Rating::Bad))
        .count();
    assert_eq!(stored_bad as u64, bad);

    // The report counts the same «Плохо» and overdue ones; each head's covers their department.
    let admin = app.admin().await;
    assert_eq!(all_time_total(&app, &admin, "received").await, bad);
    // Overdue are both the late verdicts and those still missing past their deadline.
    assert_eq!(
        all_time_total(&app, &admin, "overdue").await,
        late + overdue
    );
    let mut by_heads = 0;
    for login in ["head.housing", "head.urban"] {
        let head = app.login(login, ADMIN_PASSWORD).await;
        let own = all_time_total(&app, &head, "received").await;
        assert!(own > 0 && own < bad, "{login}: {own} of {bad}");
        by_heads += own;
        let inbox = head.get(app.url("/dashboard/inbox")).send().await.unwrap();
        assert_eq!(inbox.status(), StatusCode::OK);
        if waiting + overdue > 0 {
            assert!(
                inbox.text().await.unwrap().contains("<audio"),
                "{login}'s inbox"
            );
        }
    }
    assert_eq!(by_heads, bad);

    // A head's first look in the browser: the report, and an inbox with work in it.
    let chromium = Chromium::start();
    let browser = chromium
        .open(&Window {
            russian: true,
            ..Window::new(1280, 900)
        })
        .await;
    browser.goto(&app.url("/dashboard/review")).await.unwrap();
    super::browser::sign_in(&browser, "head.housing", ADMIN_PASSWORD).await;
    browser.goto(&app.url("/dashboard/review")).await.unwrap();
    wait_for(&browser, "table[data-table='received']").await;
    let shown_total = script(
        &browser,
        "const rows = document.querySelectorAll(\"table[data-table='received'] tr\");
         const cells = rows[rows.length - 1].querySelectorAll('td');
         return cells[cells.length - 1].textContent.trim();",
    )
    .await;
    let head = app.login("head.housing", ADMIN_PASSWORD).await;
    assert_eq!(
        shown_total.as_str().unwrap(),
        all_time_total(&app, &head, "received").await.to_string()
    );
    let page = script(&browser, "return document.body.innerText;").await;
    assert!(
        page.as_str()
            .unwrap()
            .contains("Громова Светлана Ильинична — Жилищное управление"),
        "the housing head heads housing"
    );
    save_screenshot(&browser, "review-report-1280x900.png").await;
    browser.goto(&app.url("/dashboard/inbox")).await.unwrap();
    wait_for(&browser, "#player-waveform").await;
    save_screenshot(&browser, "inbox-demo-1280x900.png").await;
    browser.close().await.unwrap();

    // The history's tablets are retired: none of them is active to go silent today.
    let tablets = app.storage().tablets().unwrap();
    assert_eq!(tablets.len(), 14);
    assert!(tablets.iter().all(|t| t.revoked_at.is_some()));
}
