//! «Сроки разбора «Плохо»» in headless Chromium: per head and per section, how many Плохо
//! arrived, got their first verdict in time and are overdue, and per employee the share judged
//! «Специалист действовал неправильно», in the six period columns; the files hold the page's
//! numbers; a section head sees their own row only, a specialist not the page.

use jiff::{SignedDuration, Timestamp, ToSpan};
use reqwest::StatusCode;
use serde_json::json;
use shared_model::{Rating, Visit};
use test_support::browser::{Chromium, Window, script, wait_for};
use test_support::*;

use super::dashboard::read_xlsx;

const ACCOUNTING: &str = "Отдел учета";
const SUBSIDIES: &str = "Отдел субсидий";

/// The rows of a table on the page as (label, cells), the total last.
async fn rows_of(browser: &fantoccini::Client, table: &str) -> Vec<(String, Vec<String>)> {
    wait_for(browser, &format!("table[data-table='{table}']")).await;
    let rows = script(
        browser,
        &format!(
            "return [...document.querySelectorAll(\"table[data-table='{table}'] tr\")]
               .filter(tr => tr.querySelector('td'))
               .map(tr => [tr.querySelector('th').textContent.trim(),
                           [...tr.querySelectorAll('td')].map(td => td.textContent.trim())]);"
        ),
    )
    .await;
    serde_json::from_value(rows).expect("rows")
}

fn same(cell: &str) -> Vec<String> {
    vec![cell.to_string(); 6]
}

fn all_time_only(cell: &str) -> Vec<String> {
    let mut cells = same("0");
    cells[5] = cell.to_string();
    cells
}

async fn verdict(app: &TestServer, head: &reqwest::Client, csrf: &str, visit: &Visit, ok: bool) {
    let response = head
        .post(app.url(&format!("/dashboard/bad/{}/verdict", visit.id)))
        .form(&[
            ("csrf", csrf),
            ("correct", if ok { "yes" } else { "no" }),
            ("back", "/dashboard/bad"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "verdict on {}",
        visit.id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_report_counts_deadlines_and_justified_complaints() {
    let app = spawn_app_with(|config| config.review.verdict_working_days = 2).await;
    let admin = app.admin().await;
    let (tablet, pairing) = app
        .paired_tablet_with(&admin, ACCOUNTING, "Окно 1", 0)
        .await;
    let (other_tablet, other_pairing) =
        app.paired_tablet_with(&admin, SUBSIDIES, "Окно 7", 0).await;
    let now = Timestamp::now();
    let rated = |minutes: i64| now - SignedDuration::from_mins(minutes);
    let in_time = visit_at(&pairing, rated(50), Some(Rating::Bad));
    let late = visit_at(&pairing, rated(40), Some(Rating::Bad));
    let missed = visit_at(&pairing, rated(30), Some(Rating::Bad));
    let waiting = visit_at(&pairing, rated(20), Some(Rating::Bad));
    let good = visit_at(&pairing, rated(15), Some(Rating::Good));
    let subsidies = visit_at(&other_pairing, rated(10), Some(Rating::Bad));
    tablet
        .sync(&[
            in_time.clone(),
            late.clone(),
            missed.clone(),
            waiting.clone(),
            good,
        ])
        .await;
    other_tablet.sync(std::slice::from_ref(&subsidies)).await;
    // Two reached the server a month ago: their two working days are long gone.
    let month_ago = now - SignedDuration::from_hours(30 * 24);
    app.set_received_at(late.id, month_ago);
    app.set_received_at(missed.id, month_ago);

    let department = app.department_of(ACCOUNTING);
    for (login, role) in [
        (
            "head.housing",
            json!({"role": "head_of_department", "department_id": department}),
        ),
        (
            "head.accounting",
            json!({"role": "head_of_section", "section_id": app.section(ACCOUNTING).id}),
        ),
        (
            "head.subsidies",
            json!({"role": "head_of_section", "section_id": app.section(SUBSIDIES).id}),
        ),
    ] {
        create_account(&app, &admin, login, role).await;
    }
    let (head, csrf) = web_login(&app, "head.housing", WEB_PASSWORD).await;
    verdict(&app, &head, &csrf, &in_time, true).await;
    verdict(&app, &head, &csrf, &late, false).await;
    verdict(&app, &head, &csrf, &subsidies, false).await;

    let chromium = Chromium::start();
    let browser = chromium
        .open(&Window {
            russian: true,
            ..Window::new(1400, 1000)
        })
        .await;
    browser.goto(&app.url("/dashboard/review")).await.unwrap();
    super::browser::sign_in(&browser, "head.housing", WEB_PASSWORD).await;
    wait_for(&browser, "nav a[href='/dashboard/review']").await;
    let row = |name: &str, scope: &str| format!("Учетная запись {name} — {scope}");
    let (accounting, housing, subsidies_head) = (
        row("head.accounting", ACCOUNTING),
        row("head.housing", "Жилищное управление"),
        row("head.subsidies", SUBSIDIES),
    );
    let total = "Итого".to_string();
    // Everything was rated today: every period column counts it.
    assert_eq!(
        rows_of(&browser, "received").await,
        vec![
            (accounting.clone(), same("4")),
            (housing.clone(), same("5")),
            (subsidies_head.clone(), same("1")),
            (total.clone(), same("5")),
        ]
    );
    assert_eq!(
        rows_of(&browser, "in-time").await,
        vec![
            (accounting.clone(), same("1")),
            (housing.clone(), same("2")),
            (subsidies_head.clone(), same("1")),
            (total.clone(), same("2")),
        ]
    );
    // Late and missed are overdue; the one still waiting is not.
    assert_eq!(
        rows_of(&browser, "overdue").await,
        vec![
            (accounting.clone(), same("2")),
            (housing.clone(), same("2")),
            (subsidies_head.clone(), same("0")),
            (total.clone(), same("2")),
        ]
    );
    let accounting_employee = app.employee_name(app.employee_of(ACCOUNTING, 0));
    let subsidies_employee = app.employee_name(app.employee_of(SUBSIDIES, 0));
    let mut shares = vec![
        (accounting_employee.clone(), same("50\u{a0}%")),
        (subsidies_employee.clone(), same("100\u{a0}%")),
    ];
    shares.sort();
    shares.push((total.clone(), same("66,7\u{a0}%")));
    assert_eq!(rows_of(&browser, "wrong-share").await, shares);

    // A year earlier: only «За все время» holds them.
    let year_ago = (jiff::tz::TimeZone::UTC.to_datetime(now).date() - 1.year()).to_string();
    browser
        .goto(&app.url(&format!("/dashboard/review?by=section&date={year_ago}")))
        .await
        .unwrap();
    let by_section = rows_of(&browser, "received").await;
    assert_eq!(
        by_section
            .iter()
            .find(|(label, _)| label == ACCOUNTING)
            .map(|(_, cells)| cells.clone()),
        Some(all_time_only("4")),
        "{by_section:?}"
    );
    assert_eq!(
        by_section.last(),
        Some(&(total.clone(), all_time_only("5")))
    );

    // The file of a table holds the page's numbers.
    let file = head
        .get(app.url("/dashboard/export?tab=review&table=overdue&by=head"))
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    let sheet = read_xlsx(&file.bytes().await.unwrap());
    assert!(sheet[0][0].contains("Решение просрочено"), "{sheet:?}");
    let file_row = |label: &str| {
        sheet
            .iter()
            .find(|r| r[0] == label)
            .map(|r| r[1..7].to_vec())
    };
    assert_eq!(file_row(&accounting), Some(same("2")), "{sheet:?}");
    assert_eq!(file_row(&total), Some(same("2")), "{sheet:?}");

    // A section head: their own row only; another section is not found; a specialist is
    // refused the page.
    let (section_head, _) = web_login(&app, "head.subsidies", WEB_PASSWORD).await;
    let page = section_head
        .get(app.url("/dashboard/review"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let rows = table_rows(&page.text().await.unwrap(), "received");
    let labels: Vec<&str> = rows.iter().map(|(label, _)| label.as_str()).collect();
    assert_eq!(labels, vec![subsidies_head.as_str(), "Итого"]);
    let other = section_head
        .get(app.url(&format!(
            "/dashboard/review?section={}",
            app.section(ACCOUNTING).id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    let specialist = format!("specialist{}", app.employee_of(ACCOUNTING, 0));
    let (specialist, _) = web_login(&app, &specialist, SPECIALIST_PASSWORD).await;
    for path in [
        "/dashboard/review",
        "/dashboard/export?tab=review&table=received",
    ] {
        let response = specialist.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
}
