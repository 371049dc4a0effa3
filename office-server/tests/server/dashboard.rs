//! The dashboard through HTTP: report totals and the office calendar, the period columns, the
//! «Плохо» analysis with recordings, verdicts and the audit log, XLSX reports read back, alerts,
//! retention, live updates, administration forms, and which role may see what.

use std::time::Duration;

use futures_util::StreamExt;
use jiff::{SignedDuration, Timestamp};
use reqwest::{Client, StatusCode};
use serde_json::json;
use shared_model::{Rating, Visit};
use test_support::*;

const RECORDING: &[u8] = test_support::fixtures::VISIT_3GPP;
const ACCOUNTING: &str = "Отдел учета";
const SUBSIDIES: &str = "Отдел субсидий";
const ARCHITECTURE: &str = "Отдел архитектуры";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

async fn get_text(client: &Client, app: &TestServer, path: &str) -> (StatusCode, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn page(client: &Client, app: &TestServer, path: &str) -> String {
    let (status, body) = get_text(client, app, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// Posts `form` (urlencoded) to `path`.
async fn post_form(
    client: &Client,
    app: &TestServer,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client.post(app.url(path)).form(form).send().await.unwrap()
}

fn sync_ok(response: &shared_model::SyncResponse) {
    for ack in &response.results {
        assert!(ack.outcome.is_stored(), "{ack:?}");
    }
}

/// Cells of a row as `[day, week, month, quarter, year, all time]`.
fn periods(cells: Vec<String>) -> [String; 6] {
    cells.try_into().expect("six period columns")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visits_late_at_night_fall_on_the_right_office_days_weeks_months_and_quarters() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet_in(ACCOUNTING, "desk 1", 0).await;
    // Asia/Yekaterinburg is UTC+5.
    let visits = [
        // Wednesday 31 December 2025, 23:30 local: Хорошо.
        visit_at(&pairing, at("2025-12-31T18:30:00Z"), Some(Rating::Good)),
        // Thursday 1 January 2026, 00:30 local: Плохо. Same ISO week, next day, month,
        // quarter and year.
        visit_at(&pairing, at("2025-12-31T19:30:00Z"), Some(Rating::Bad)),
        // Sunday 29 March 2026, 23:30 local: Средне.
        visit_at(&pairing, at("2026-03-29T18:30:00Z"), Some(Rating::Medium)),
        // Monday 30 March 2026, 00:30 local: Хорошо. Next week, same month.
        visit_at(&pairing, at("2026-03-29T19:30:00Z"), Some(Rating::Good)),
        // Tuesday 31 March 2026, 23:30 local: not rated.
        visit_at(&pairing, at("2026-03-31T18:30:00Z"), None),
    ];
    sync_ok(&tablet.sync(&visits).await);
    // A tablet whose clock runs two hours fast: its visit ended at 23:45 on 30 June by the
    // office's clock (18:45 UTC), though the tablet wrote 01:45 on 1 July. The server corrects
    // by the offset it measured at the sync.
    let fast = SignedDuration::from_hours(2);
    let late = visit_at(
        &pairing,
        at("2026-06-30T18:45:00Z") + fast,
        Some(Rating::Bad),
    );
    sync_ok(&tablet.sync_at(Timestamp::now() + fast, &[late]).await);

    let admin = app.admin().await;
    let section = app.section(ACCOUNTING).id;
    let summary = |date: &'static str| {
        let admin = admin.clone();
        let app = &app;
        async move {
            let html = page(
                &admin,
                app,
                &format!("/dashboard/section?section={section}&date={date}"),
            )
            .await;
            let visits = periods(row_of(&html, "section_summary", "Кол-во посещений"));
            let average = periods(row_of(&html, "section_summary", "Средний балл"));
            let unrated = periods(row_of(&html, "section_summary", "Без оценки"));
            (visits, average, unrated)
        }
    };

    let (visits, average, _) = summary("2025-12-31").await;
    assert_eq!(visits, ["1", "2", "1", "1", "1", "6"].map(String::from));
    assert_eq!(average[0], "3.0000");
    // The week of Monday 29 December holds both: (3 + 1) / 2.
    assert_eq!(average[1], "2.0000");
    // All time: (3 + 1 + 2 + 3 + 1) / 5 rated.
    assert_eq!(average[5], "2.0000");

    let (visits, average, _) = summary("2026-01-01").await;
    // The first quarter of 2026: 1 January, 29, 30 and 31 March.
    assert_eq!(visits, ["1", "2", "1", "4", "5", "6"].map(String::from));
    assert_eq!(average[0], "1.0000");
    assert_eq!(average[2], "1.0000");

    let (visits, average, _) = summary("2026-03-29").await;
    // Sunday: its week began on Monday 23 March and holds only this visit.
    assert_eq!(visits, ["1", "1", "3", "4", "5", "6"].map(String::from));
    assert_eq!(average[0], "2.0000");

    let (visits, average, unrated) = summary("2026-03-30").await;
    // Monday: a new week (30 March to 5 April) that also holds Tuesday's unrated visit.
    assert_eq!(visits, ["1", "2", "3", "4", "5", "6"].map(String::from));
    assert_eq!(average[1], "3.0000");
    // The first quarter: 1 January (1), 29 March (2), 30 March (3).
    assert_eq!(average[3], "2.0000");
    assert_eq!(unrated[1], "1");

    let (visits, average, _) = summary("2026-06-30").await;
    assert_eq!(visits[0], "1", "the fast tablet's visit is on 30 June");
    assert_eq!(visits[3], "1", "… in the second quarter");
    assert_eq!(average[0], "1.0000");

    let (visits, average, unrated) = summary("2026-07-01").await;
    assert_eq!(visits[0], "0");
    // No ratings: an empty cell, not 0.
    assert_eq!(average[0], "");
    assert_eq!(average[3], "");
    assert_eq!(unrated[0], "0");
    assert_eq!(visits[4], "5");

    // The same numbers in the department tab's summary and the employee's own tab.
    let department = app.department_of(ACCOUNTING);
    let html = page(
        &admin,
        &app,
        &format!("/dashboard/department?department={department}&date=2026-03-30"),
    )
    .await;
    let row = periods(row_of(&html, "sections_count", ACCOUNTING));
    assert_eq!(row, ["1", "2", "3", "4", "5", "6"].map(String::from));
    let satisfaction = periods(row_of(&html, "sections_satisfaction", ACCOUNTING));
    // All time: 2 Хорошо, 1 Средне, 2 Плохо → (200 + 50) / 5 = 50 %.
    assert_eq!(satisfaction[5], "50\u{a0}%");
    let unrated = periods(row_of(&html, "sections_unrated", ACCOUNTING));
    assert_eq!(unrated[5], "1");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_show_averages_to_four_decimals_and_reports_have_the_same_numbers() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet_in(ACCOUNTING, "desk 1", 1).await;
    // 16 ratings: 5 Хорошо, 7 Средне, 4 Плохо → 33 / 16 = 2.0625.
    let now = Timestamp::now() - SignedDuration::from_mins(5);
    let mut visits: Vec<Visit> = Vec::new();
    for (count, rating) in [(5, Rating::Good), (7, Rating::Medium), (4, Rating::Bad)] {
        for _ in 0..count {
            // A millisecond apart: a tablet's visits never share an instant.
            let at = now + SignedDuration::from_millis(visits.len() as i64);
            let mut visit = visit_at(&pairing, at, Some(rating));
            visit.has_recording = false;
            visits.push(visit);
        }
    }
    visits.push(visit_at(
        &pairing,
        now + SignedDuration::from_millis(visits.len() as i64),
        None,
    ));
    sync_ok(&tablet.sync(&visits).await);
    let employee = pairing.employee.name.clone();

    let admin = app.admin().await;
    let section = app.section(ACCOUNTING).id;
    let html = page(
        &admin,
        &app,
        &format!("/dashboard/section?section={section}"),
    )
    .await;
    let average = periods(row_of(&html, "employees_avg", &employee));
    assert_eq!(average, ["2.0625"; 6].map(String::from));
    let counts = periods(row_of(&html, "employees_count", &employee));
    assert_eq!(counts, ["17"; 6].map(String::from));
    // Every employee of the section has a row; those without ratings have empty cells.
    let other = &app.section(ACCOUNTING).employees[3].full_name;
    assert_eq!(
        periods(row_of(&html, "employees_avg", other)),
        [""; 6].map(String::from)
    );
    assert_eq!(
        periods(row_of(&html, "employees_count", other)),
        ["0"; 6].map(String::from)
    );
    let service = &pairing.services[0].name;
    assert_eq!(
        periods(row_of(&html, "services_avg", service)),
        ["2.0625"; 6].map(String::from)
    );

    // «Сохранить отчет» under the employees table: the same numbers, with scope and period.
    let export = format!("/dashboard/export?tab=section&table=employees_avg&section={section}");
    let response = admin.get(app.url(&export)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let bytes = response.bytes().await.unwrap();
    let sheet = read_xlsx(&bytes);
    assert_eq!(sheet[0][0], "Статистика по сотрудникам (среднее)");
    assert!(
        sheet
            .iter()
            .any(|row| row[0].contains("Область:") && row[0].contains(ACCOUNTING)),
        "{sheet:?}"
    );
    assert!(
        sheet.iter().any(|row| row[0].contains("За неделю:")),
        "{sheet:?}"
    );
    let row = sheet
        .iter()
        .find(|row| row[0] == employee)
        .expect("the employee's row");
    assert_eq!(&row[1..7], &["2.0625"; 6].map(String::from));
    let empty = sheet.iter().find(|row| &row[0] == other).unwrap();
    assert_eq!(&empty[1..7], &[""; 6].map(String::from));

    // The top 10 of the month and the pie on the services tab.
    let html = page(&admin, &app, "/dashboard/services").await;
    let top = table_rows(&html, "top_services");
    assert_eq!(top[0].1[1], *service);
    assert_eq!(top[0].1[2], "16");
    assert_eq!(top[0].1[3], "2.0625");
    assert!(html.contains("Посещения за месяц по услугам"));
    assert!(html.contains("<svg class=\"pie\""));
    // The services tab's unrated table has a title of its own (it once had the sections').
    assert_eq!(
        periods(row_of(&html, "services_unrated", service)),
        ["1"; 6].map(String::from)
    );
    assert!(html.contains("Статистика по услугам (посещения без оценки)"));
    assert!(!html.contains("Статистика по отделам (посещения без оценки)"));
    let export = "/dashboard/export?tab=services&table=services_unrated";
    let sheet = read_xlsx(
        &admin
            .get(app.url(export))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    );
    assert_eq!(sheet[0][0], "Статистика по услугам (посещения без оценки)");

    // Exports are in the audit log.
    let audit = page(&admin, &app, "/admin/audit").await;
    assert!(audit.contains("Сохранение отчета"), "{audit}");
    app.stop().await;
}

/// Reads the first sheet as text, one vector per row (numbers as the page writes them).
pub(crate) fn read_xlsx(bytes: &[u8]) -> Vec<Vec<String>> {
    use calamine::{Data, Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    range
        .rows()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Data::Empty => String::new(),
                    Data::String(s) => s.clone(),
                    Data::Float(f) if f.fract() == 0.0 => format!("{f:.0}"),
                    Data::Float(f) => format!("{f:.4}"),
                    Data::Int(i) => i.to_string(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_visits_play_with_range_get_verdicts_and_every_playback_is_audited_once() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet_in(ACCOUNTING, "desk 1", 0).await;
    let with_file = visit(&pairing, Some(Rating::Bad));
    let without_file = Visit {
        has_recording: false,
        ..visit(&pairing, Some(Rating::Bad))
    };
    sync_ok(
        &tablet
            .sync(&[with_file.clone(), without_file.clone()])
            .await,
    );
    tablet.upload_recording(&with_file, RECORDING).await;

    let admin = app.admin().await;
    let head = create_account(
        &app,
        &admin,
        "head.accounting",
        json!({"role": "head_of_section", "section_id": app.section(ACCOUNTING).id}),
    )
    .await;
    let (client, csrf) = web_login(&app, &head, WEB_PASSWORD).await;
    let html = page(&client, &app, "/dashboard/bad").await;
    let rows = table_rows(&html, "bad");
    assert_eq!(rows.len(), 2);
    let url = format!("/dashboard/recordings/{}", with_file.id);
    assert!(html.contains(&format!("src=\"{url}\"")), "{html}");
    assert!(html.contains("Файл отсутствует"));
    assert!(rows.iter().all(|(_, cells)| cells[2] == "---"));

    // The player's requests: a probe, then ranges.
    for range in ["bytes=0-", "bytes=0-1023", "bytes=1024-", "bytes=30000-"] {
        let response = client
            .get(app.url(&url))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(response.headers()["content-type"], "audio/mp4");
        let start: usize = range[6..].split('-').next().unwrap().parse().unwrap();
        let body = response.bytes().await.unwrap();
        assert_eq!(&body[..], &RECORDING[start..start + body.len()]);
    }
    let whole = client.get(app.url(&url)).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.bytes().await.unwrap().len(), RECORDING.len());
    // A download is logged as such.
    let download = client
        .get(app.url(&format!("{url}?download=1")))
        .send()
        .await
        .unwrap();
    assert!(
        download.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );

    // A verdict: first without a choice (refused on the form), then a real one.
    let path = format!("/dashboard/bad/{}/verdict", with_file.id);
    let refused = post_form(
        &client,
        &app,
        &path,
        &[
            ("csrf", csrf.as_str()),
            ("comment", "?"),
            ("back", "/dashboard/bad"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Отметьте, правильно ли")
    );
    let no_token = post_form(
        &client,
        &app,
        &path,
        &[("correct", "yes"), ("comment", "ok")],
    )
    .await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let decided = post_form(
        &client,
        &app,
        &path,
        &[
            ("csrf", csrf.as_str()),
            ("correct", "no"),
            ("comment", "Не объяснил порядок очереди"),
            ("back", "/dashboard/bad"),
        ],
    )
    .await;
    assert_eq!(decided.status(), StatusCode::SEE_OTHER);
    let html = page(&client, &app, "/dashboard/bad").await;
    assert!(html.contains("Специалист действовал неправильно"));
    assert!(html.contains("Не объяснил порядок очереди"));
    // «без решения» leaves only the other one.
    let html = page(&client, &app, "/dashboard/bad?undecided=1").await;
    let rows = table_rows(&html, "bad");
    assert_eq!(rows.len(), 1);
    assert!(html.contains(&format!("data-visit=\"{}\"", without_file.id)));

    // A second session of the same head plays it again: one more playback event.
    let (second, _) = web_login(&app, &head, WEB_PASSWORD).await;
    for _ in 0..3 {
        second
            .get(app.url(&url))
            .header("range", "bytes=0-")
            .send()
            .await
            .unwrap();
    }
    let (admin_web, _) = web_login(&app, ADMIN_LOGIN, ADMIN_PASSWORD).await;
    let audit = page(&admin_web, &app, "/admin/audit").await;
    assert_eq!(audit.matches("Прослушивание записи").count(), 2, "{audit}");
    assert_eq!(audit.matches("Скачивание записи").count(), 1, "{audit}");
    assert!(audit.contains("head.accounting"));

    // An observer reads but does not decide.
    let observer = create_account(&app, &admin, "observer", json!({"role": "observer"})).await;
    let (observer, observer_csrf) = web_login(&app, &observer, WEB_PASSWORD).await;
    let html = page(&observer, &app, "/dashboard/bad").await;
    assert!(!html.contains("verdict-form"));
    let forbidden = post_form(
        &observer,
        &app,
        &path,
        &[("csrf", observer_csrf.as_str()), ("correct", "yes")],
    )
    .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_bad_ratings_raises_an_alert_for_the_heads_in_scope() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet_in(ACCOUNTING, "desk 1", 2).await;
    let admin = app.admin().await;
    let head = create_account(
        &app,
        &admin,
        "head.housing",
        json!({"role": "head_of_department", "department_id": app.department_of(ACCOUNTING)}),
    )
    .await;
    let other = create_account(
        &app,
        &admin,
        "head.architecture",
        json!({"role": "head_of_section", "section_id": app.section(ARCHITECTURE).id}),
    )
    .await;
    let now = Timestamp::now();
    let rated = |minutes_ago: i64, rating: Rating| {
        let mut v = visit_at(
            &pairing,
            now - SignedDuration::from_mins(minutes_ago),
            Some(rating),
        );
        v.has_recording = false;
        v
    };
    // Three ratings, one Плохо: below the minimum of four.
    sync_ok(
        &tablet
            .sync(&[
                rated(14, Rating::Good),
                rated(12, Rating::Bad),
                rated(10, Rating::Good),
            ])
            .await,
    );
    let (head_client, csrf) = web_login(&app, &head, WEB_PASSWORD).await;
    let html = page(&head_client, &app, "/dashboard/alerts").await;
    assert!(html.contains("Оповещений нет"), "{html}");
    // A fourth, Плохо: 2 of 4 in 15 minutes = 50 %.
    sync_ok(&tablet.sync(&[rated(2, Rating::Bad)]).await);
    let html = page(&head_client, &app, "/dashboard/department").await;
    assert!(html.contains("data-alert="), "{html}");
    assert!(html.contains(&pairing.employee.name));
    assert!(html.contains("2 из 4"));
    // Another Плохо within the same window does not raise a second alert.
    sync_ok(&tablet.sync(&[rated(1, Rating::Bad)]).await);
    let html = page(&head_client, &app, "/dashboard/alerts").await;
    assert_eq!(html.matches("data-alert=").count(), 1);
    // Out of scope: the other department's head sees nothing.
    let (other_client, other_csrf) = web_login(&app, &other, WEB_PASSWORD).await;
    let html = page(&other_client, &app, "/dashboard/alerts").await;
    assert!(html.contains("Оповещений нет"));
    let id: i64 = {
        let start = html.find("data-alert=\"").map(|s| s + 12);
        match start {
            Some(_) => panic!("no alert expected"),
            None => {
                let html = page(&head_client, &app, "/dashboard/alerts").await;
                let s = html.find("data-alert=\"").unwrap() + 12;
                html[s..s + html[s..].find('"').unwrap()].parse().unwrap()
            }
        }
    };
    let refused = post_form(
        &other_client,
        &app,
        &format!("/dashboard/alerts/{id}/acknowledge"),
        &[("csrf", other_csrf.as_str())],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let done = post_form(
        &head_client,
        &app,
        &format!("/dashboard/alerts/{id}/acknowledge"),
        &[("csrf", csrf.as_str()), ("back", "/dashboard/alerts")],
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let html = page(&head_client, &app, "/dashboard/alerts").await;
    assert!(
        html.contains("Принято: Учетная запись head.housing"),
        "{html}"
    );
    let html = page(&head_client, &app, "/dashboard/department").await;
    assert!(
        !html.contains("data-alert="),
        "acknowledged alerts leave the banner"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_reach_only_the_pages_in_scope() {
    let app = spawn_app().await;
    let (own_tablet, own) = app.paired_tablet_in(ACCOUNTING, "desk 1", 0).await;
    let (other_tablet, other) = app.paired_tablet_in(ARCHITECTURE, "desk 2", 0).await;
    let admin = app.admin().await;
    let head = create_account(
        &app,
        &admin,
        "head.accounting",
        json!({"role": "head_of_section", "section_id": app.section(ACCOUNTING).id}),
    )
    .await;
    let (client, _) = web_login(&app, &head, WEB_PASSWORD).await;
    let response = client
        .get(app.url("/dashboard/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = response.bytes_stream();
    let mut seen = String::new();
    let mut read_until = async |needle: &str, limit: Duration| -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !seen.contains(needle) {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return false,
            }
        }
        true
    };
    assert!(read_until("event: hello", Duration::from_secs(2)).await);
    // Another department's visit: nothing arrives.
    sync_ok(
        &other_tablet
            .sync(&[visit(&other, Some(Rating::Good))])
            .await,
    );
    assert!(!read_until("event: visits", Duration::from_millis(1500)).await);
    // Its own section's visit arrives within 2 s.
    sync_ok(&own_tablet.sync(&[visit(&own, Some(Rating::Good))]).await);
    assert!(read_until("event: visits", Duration::from_secs(2)).await);
    assert!(seen.contains(&format!("data: {}", app.section(ACCOUNTING).id)));
    assert!(!seen.contains(&format!("data: {}", app.section(ARCHITECTURE).id)));
    drop(events);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_past_retention_are_deleted_and_the_visit_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.retention_days = 30;
    let app = spawn_with_config(config.clone(), true).await;
    let (tablet, pairing) = app.paired_tablet_in(ACCOUNTING, "desk 1", 0).await;
    let old = visit_at(
        &pairing,
        Timestamp::now() - SignedDuration::from_hours(24 * 31),
        Some(Rating::Bad),
    );
    let recent = visit(&pairing, Some(Rating::Bad));
    sync_ok(&tablet.sync(&[old.clone(), recent.clone()]).await);
    tablet.upload_recording(&old, RECORDING).await;
    tablet.upload_recording(&recent, RECORDING).await;
    for id in [old.id, recent.id] {
        assert!(
            wait_until(Duration::from_secs(20), || {
                app.storage().recording_analysis(id).ok().flatten()
            })
            .await
            .is_some(),
            "each recording is analysed when it arrives"
        );
    }
    let (admin, csrf) = web_login(&app, ADMIN_LOGIN, ADMIN_PASSWORD).await;
    // A verdict before the purge stays after it.
    let decided = post_form(
        &admin,
        &app,
        &format!("/dashboard/bad/{}/verdict", old.id),
        &[
            ("csrf", csrf.as_str()),
            ("correct", "yes"),
            ("comment", "Все верно"),
        ],
    )
    .await;
    assert_eq!(decided.status(), StatusCode::SEE_OTHER);
    let _keep = app.stop_keeping_data().await;
    // The retention task runs at start.
    let app = spawn_with_config(config, false).await;
    let old_file = dir.path().join(format!("recordings/{}.3gpp", old.id));
    let recent_file = dir.path().join(format!("recordings/{}.3gpp", recent.id));
    for _ in 0..50 {
        if !old_file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!old_file.exists(), "the old recording is deleted");
    assert!(recent_file.exists(), "the recent one stays");
    // The waveform and speech segments go with the audio (the file goes first, then the row).
    assert!(
        wait_until(Duration::from_secs(5), || {
            app.storage()
                .recording_analysis(old.id)
                .ok()
                .filter(Option::is_none)
        })
        .await
        .is_some(),
        "the analysis of a purged recording is deleted"
    );
    assert!(
        app.storage()
            .recording_analysis(recent.id)
            .unwrap()
            .is_some()
    );
    let (admin, _) = web_login(&app, ADMIN_LOGIN, ADMIN_PASSWORD).await;
    let html = page(&admin, &app, "/dashboard/bad").await;
    assert!(
        html.contains("Файл удален по сроку хранения (30 дн.)"),
        "{html}"
    );
    assert!(html.contains("Все верно"), "the verdict stays");
    assert_eq!(table_rows(&html, "bad").len(), 2, "the visit stays");
    let gone = admin
        .get(app.url(&format!("/dashboard/recordings/{}", old.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

/// Every route × every role, and no login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_it_should_and_nothing_leaks_across_scopes() {
    let app = spawn_app().await;
    let (own_tablet, own) = app.paired_tablet_in(ACCOUNTING, "desk 1", 0).await;
    let (other_tablet, other) = app.paired_tablet_in(ARCHITECTURE, "desk 2", 0).await;
    let (sister_tablet, sister) = app.paired_tablet_in(SUBSIDIES, "desk 3", 0).await;
    let own_bad = visit(&own, Some(Rating::Bad));
    let other_bad = visit(&other, Some(Rating::Bad));
    let sister_bad = visit(&sister, Some(Rating::Bad));
    sync_ok(&own_tablet.sync(std::slice::from_ref(&own_bad)).await);
    sync_ok(&other_tablet.sync(std::slice::from_ref(&other_bad)).await);
    sync_ok(&sister_tablet.sync(std::slice::from_ref(&sister_bad)).await);
    for (tablet, v) in [
        (&own_tablet, &own_bad),
        (&other_tablet, &other_bad),
        (&sister_tablet, &sister_bad),
    ] {
        tablet.upload_recording(v, RECORDING).await;
    }
    let admin_api = app.admin().await;
    let housing = app.department_of(ACCOUNTING);
    let architecture_dept = app.department_of(ARCHITECTURE);
    let accounting = app.section(ACCOUNTING).id;
    let architecture = app.section(ARCHITECTURE).id;
    let subsidies = app.section(SUBSIDIES).id;
    create_account(&app, &admin_api, "observer", json!({"role": "observer"})).await;
    create_account(
        &app,
        &admin_api,
        "head.housing",
        json!({"role": "head_of_department", "department_id": housing}),
    )
    .await;
    create_account(
        &app,
        &admin_api,
        "head.accounting",
        json!({"role": "head_of_section", "section_id": accounting}),
    )
    .await;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Who {
        Nobody,
        Admin,
        Observer,
        HeadOfDepartment,
        HeadOfSection,
        Specialist,
    }
    let mut clients = Vec::new();
    for (who, login, password) in [
        (Who::Admin, ADMIN_LOGIN, ADMIN_PASSWORD),
        (Who::Observer, "observer", WEB_PASSWORD),
        (Who::HeadOfDepartment, "head.housing", WEB_PASSWORD),
        (Who::HeadOfSection, "head.accounting", WEB_PASSWORD),
        (
            Who::Specialist,
            &*format!("specialist{}", own.employee.id),
            SPECIALIST_PASSWORD,
        ),
    ] {
        let (client, csrf) = web_login(&app, login, password).await;
        clients.push((who, client, csrf));
    }
    clients.push((Who::Nobody, web_client(), String::new()));

    use StatusCode as S;
    const OK: S = S::OK;
    const SEE: S = S::SEE_OTHER;
    const FORBID: S = S::FORBIDDEN;
    const MISSING: S = S::NOT_FOUND;
    let recording = |id: uuid::Uuid| format!("/dashboard/recordings/{id}");
    // (path, [admin, observer, head of department, head of section, specialist]); nobody: 303.
    let gets: Vec<(String, [S; 5])> = vec![
        ("/dashboard".into(), [SEE, SEE, SEE, SEE, SEE]),
        ("/dashboard/department".into(), [OK, OK, OK, OK, FORBID]),
        (
            format!("/dashboard/department?department={housing}"),
            [OK, OK, OK, OK, FORBID],
        ),
        (
            format!("/dashboard/department?department={architecture_dept}"),
            [OK, OK, MISSING, MISSING, FORBID],
        ),
        ("/dashboard/section".into(), [OK, OK, OK, OK, FORBID]),
        (
            format!("/dashboard/section?section={accounting}"),
            [OK, OK, OK, OK, FORBID],
        ),
        (
            format!("/dashboard/section?section={subsidies}"),
            [OK, OK, OK, MISSING, FORBID],
        ),
        (
            format!("/dashboard/section?section={architecture}"),
            [OK, OK, MISSING, MISSING, FORBID],
        ),
        ("/dashboard/employee".into(), [OK, OK, OK, OK, FORBID]),
        (
            format!("/dashboard/employee?employee={}", own.employee.id),
            [OK, OK, OK, OK, FORBID],
        ),
        (
            format!("/dashboard/employee?employee={}", sister.employee.id),
            [OK, OK, OK, MISSING, FORBID],
        ),
        (
            format!("/dashboard/employee?employee={}", other.employee.id),
            [OK, OK, MISSING, MISSING, FORBID],
        ),
        ("/dashboard/services".into(), [OK, OK, OK, OK, FORBID]),
        ("/dashboard/bad".into(), [OK, OK, OK, OK, FORBID]),
        (
            format!("/dashboard/bad?section={architecture}"),
            [OK, OK, MISSING, MISSING, FORBID],
        ),
        (
            "/dashboard/bad?undecided=1".into(),
            [OK, OK, OK, OK, FORBID],
        ),
        ("/dashboard/alerts".into(), [OK, OK, OK, OK, FORBID]),
        ("/dashboard/feedback".into(), [OK, OK, OK, OK, FORBID]),
        (
            format!("/dashboard/feedback?section={architecture}"),
            [OK, OK, MISSING, MISSING, FORBID],
        ),
        (
            "/dashboard/export?tab=feedback&table=feedback".into(),
            [OK, OK, OK, OK, FORBID],
        ),
        (recording(own_bad.id), [OK, OK, OK, OK, FORBID]),
        (recording(sister_bad.id), [OK, OK, OK, MISSING, FORBID]),
        (recording(other_bad.id), [OK, OK, MISSING, MISSING, FORBID]),
        (
            "/dashboard/export?tab=department&table=sections_avg".into(),
            [MISSING, MISSING, OK, OK, FORBID],
        ),
        (
            "/dashboard/export?tab=department&table=departments_avg".into(),
            [OK, OK, MISSING, MISSING, FORBID],
        ),
        (
            format!("/dashboard/export?tab=section&table=employees_avg&section={accounting}"),
            [OK, OK, OK, OK, FORBID],
        ),
        (
            format!("/dashboard/export?tab=section&table=employees_avg&section={architecture}"),
            [OK, OK, MISSING, MISSING, FORBID],
        ),
        (
            "/dashboard/export?tab=bad&table=bad".into(),
            [OK, OK, OK, OK, FORBID],
        ),
        (
            "/dashboard/export?tab=nonsense&table=x".into(),
            [
                S::BAD_REQUEST,
                S::BAD_REQUEST,
                S::BAD_REQUEST,
                S::BAD_REQUEST,
                FORBID,
            ],
        ),
        ("/pairing".into(), [FORBID, FORBID, FORBID, FORBID, OK]),
        ("/admin".into(), [OK, FORBID, FORBID, FORBID, FORBID]),
        (
            "/admin/directory".into(),
            [OK, FORBID, FORBID, FORBID, FORBID],
        ),
        (
            "/admin/accounts".into(),
            [OK, FORBID, FORBID, FORBID, FORBID],
        ),
        (
            "/admin/tablets".into(),
            [OK, FORBID, FORBID, FORBID, FORBID],
        ),
        ("/admin/audit".into(), [OK, FORBID, FORBID, FORBID, FORBID]),
    ];
    let index = |who: Who| match who {
        Who::Admin => 0,
        Who::Observer => 1,
        Who::HeadOfDepartment => 2,
        Who::HeadOfSection => 3,
        Who::Specialist => 4,
        Who::Nobody => usize::MAX,
    };
    let architecture_names: Vec<String> = app
        .section(ARCHITECTURE)
        .employees
        .iter()
        .map(|e| e.full_name.clone())
        .collect();
    let subsidies_names: Vec<String> = app
        .section(SUBSIDIES)
        .employees
        .iter()
        .map(|e| e.full_name.clone())
        .collect();
    for (path, expected) in &gets {
        for (who, client, _) in &clients {
            let response = client.get(app.url(path)).send().await.unwrap();
            let status = response.status();
            let want = match index(*who) {
                usize::MAX => SEE,
                i => expected[i],
            };
            assert_eq!(status, want, "GET {path} as {who:?}");
            if *who == Who::Nobody {
                let location = response.headers()["location"].to_str().unwrap().to_string();
                assert!(location.starts_with("/login?next="), "{location}");
                continue;
            }
            if status != OK {
                continue;
            }
            // No name, id or number from outside the viewer's scope, in pages or files.
            let body = response.bytes().await.unwrap();
            let text = if path.starts_with("/dashboard/export") {
                read_xlsx(&body)
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                String::from_utf8_lossy(&body).into_owned()
            };
            if matches!(who, Who::HeadOfDepartment | Who::HeadOfSection) {
                for name in &architecture_names {
                    assert!(!text.contains(name.as_str()), "{name} in {path} as {who:?}");
                }
                assert!(
                    !text.contains(&other_bad.id.to_string()),
                    "{path} as {who:?}"
                );
                assert!(!text.contains("Отдел архитектуры"), "{path} as {who:?}");
            }
            if *who == Who::HeadOfSection {
                for name in &subsidies_names {
                    assert!(!text.contains(name.as_str()), "{name} in {path} as {who:?}");
                }
                assert!(
                    !text.contains(&sister_bad.id.to_string()),
                    "{path} as {who:?}"
                );
                assert!(!text.contains("Жилищное управление /  Отдел субсидий"));
            }
        }
    }

    // POST routes: without a token every signed-in role is refused; with one, only the roles
    // that may. Nobody is sent to sign in.
    let verdict = |id: uuid::Uuid| format!("/dashboard/bad/{id}/verdict");
    type Post<'a> = (String, Vec<(&'a str, String)>, [S; 5]);
    let posts: Vec<Post> = vec![
        (
            verdict(own_bad.id),
            vec![("correct", "yes".into())],
            [SEE, FORBID, SEE, SEE, FORBID],
        ),
        (
            verdict(sister_bad.id),
            vec![("correct", "yes".into())],
            [SEE, FORBID, SEE, MISSING, FORBID],
        ),
        (
            verdict(other_bad.id),
            vec![("correct", "yes".into())],
            [SEE, FORBID, MISSING, MISSING, FORBID],
        ),
        // No feedback was sent for these visits: "not found" to whoever may answer at all.
        (
            format!("/dashboard/feedback/{}/answer", own_bad.id),
            vec![("answer", "Спасибо".into())],
            [MISSING, FORBID, MISSING, MISSING, FORBID],
        ),
        (
            format!("/dashboard/feedback/{}/hide", other_bad.id),
            vec![("hidden", "1".into())],
            [MISSING, FORBID, MISSING, MISSING, FORBID],
        ),
        (
            "/dashboard/alerts/999/acknowledge".into(),
            vec![],
            [MISSING, FORBID, MISSING, MISSING, FORBID],
        ),
        (
            "/admin/departments".into(),
            vec![("name", "Новый департамент".into())],
            [SEE, FORBID, FORBID, FORBID, FORBID],
        ),
        (
            "/admin/services".into(),
            vec![("name", "Новая услуга".into())],
            [SEE, FORBID, FORBID, FORBID, FORBID],
        ),
        (
            "/admin/tablets/enrol".into(),
            vec![("code", "1".into()), ("name", "x".into())],
            [S::BAD_REQUEST, FORBID, FORBID, FORBID, FORBID],
        ),
        (
            "/pairing".into(),
            vec![("code", "12".into())],
            [FORBID, FORBID, FORBID, FORBID, S::BAD_REQUEST],
        ),
    ];
    for (path, fields, expected) in &posts {
        for (who, client, csrf) in &clients {
            let without = client
                .post(app.url(path))
                .form(fields)
                .send()
                .await
                .unwrap();
            let want_without = if *who == Who::Nobody { SEE } else { FORBID };
            assert_eq!(
                without.status(),
                want_without,
                "POST {path} without a token as {who:?}"
            );
            if *who == Who::Nobody {
                continue;
            }
            let mut with = fields.clone();
            with.push(("csrf", csrf.clone()));
            let response = client.post(app.url(path)).form(&with).send().await.unwrap();
            assert_eq!(
                response.status(),
                expected[index(*who)],
                "POST {path} as {who:?}"
            );
        }
    }
    // A form from another site is refused even with the right token.
    let (who, client, csrf) = &clients[0];
    assert_eq!(*who, Who::Admin);
    let cross = client
        .post(app.url("/admin/services"))
        .header("origin", "http://evil.example")
        .form(&[("name", "x"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), FORBID);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_out_through_the_forms() {
    let app = spawn_app().await;
    let client = web_client();
    let (status, html) = get_text(&client, &app, "/login?next=/dashboard/bad").await;
    assert_eq!(status, StatusCode::OK);
    let token = csrf_of(&html).unwrap();
    let wrong = post_form(
        &client,
        &app,
        "/login",
        &[
            ("login", ADMIN_LOGIN),
            ("password", "wrong password"),
            ("next", "/dashboard/bad"),
            ("csrf", &token),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let html = wrong.text().await.unwrap();
    assert!(html.contains("Неверный логин или пароль"));
    let token = csrf_of(&html).unwrap();
    // A foreign `next` is ignored.
    let ok = post_form(
        &client,
        &app,
        "/login",
        &[
            ("login", ADMIN_LOGIN),
            ("password", ADMIN_PASSWORD),
            ("next", "//evil.example/"),
            ("csrf", &token),
        ],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()["location"], "/dashboard");
    let html = page(&client, &app, "/dashboard/department").await;
    let csrf = csrf_of(&html).unwrap();
    let out = post_form(&client, &app, "/logout", &[("csrf", csrf.as_str())]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let (status, _) = get_text(&client, &app, "/dashboard/department").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Without the sign-in page's token, a posted login is refused.
    let forged = post_form(
        &web_client(),
        &app,
        "/login",
        &[
            ("login", ADMIN_LOGIN),
            ("password", ADMIN_PASSWORD),
            ("csrf", "x"),
        ],
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_forms_say_what_is_wrong_and_do_what_is_asked() {
    let app = spawn_app().await;
    let (admin, csrf) = web_login(&app, ADMIN_LOGIN, ADMIN_PASSWORD).await;
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let admin = admin.clone();
        let url = app.url(path);
        let csrf = csrf.clone();
        async move {
            let mut fields = fields;
            fields.push(("csrf", csrf));
            let response = admin.post(url).form(&fields).send().await.unwrap();
            let status = response.status();
            (status, response.text().await.unwrap())
        }
    };
    let (status, html) = post("/admin/departments", vec![("name", "   ".into())]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Название должно содержать от 1 до 300 знаков"));
    let (status, html) = post(
        "/admin/departments",
        vec![("name", "Жилищное управление".into())],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("Такое название уже есть"));
    let (status, _) = post(
        "/admin/departments",
        vec![("name", "Управление культуры".into())],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, html) = post("/admin/sections", vec![("name", "Отдел музеев".into())]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Выберите департамент"));
    let directory = page(&admin, &app, "/admin/directory").await;
    assert!(directory.contains("Управление культуры"));

    // Accounts: a bad password, a head without a scope, then a real one and a password reset.
    let (status, html) = post(
        "/admin/accounts",
        vec![
            ("login", "head.new".into()),
            ("display_name", "Новый руководитель".into()),
            ("password", "short".into()),
            ("role", "head".into()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        html.contains("Пароль должен содержать не менее 10 знаков"),
        "{html}"
    );
    let (status, html) = post(
        "/admin/accounts",
        vec![
            ("login", "head.new".into()),
            ("display_name", "Новый руководитель".into()),
            ("password", WEB_PASSWORD.into()),
            ("role", "head".into()),
            ("scope", "".into()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Для этой роли выберите"));
    let section = app.section(ACCOUNTING).id;
    let (status, _) = post(
        "/admin/accounts",
        vec![
            ("login", "head.new".into()),
            ("display_name", "Новый руководитель".into()),
            ("password", WEB_PASSWORD.into()),
            ("role", "head".into()),
            ("scope", format!("section:{section}")),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (head, _) = web_login(&app, "head.new", WEB_PASSWORD).await;
    let html = page(&head, &app, "/dashboard/section").await;
    assert!(html.contains(ACCOUNTING));
    let accounts = page(&admin, &app, "/admin/accounts").await;
    let start = accounts.find("data-account=\"head.new\"").unwrap();
    let form = &accounts[start..];
    let id_start = form.find("/admin/accounts/").unwrap() + "/admin/accounts/".len();
    let id: i64 = form[id_start..id_start + form[id_start..].find('/').unwrap()]
        .parse()
        .unwrap();
    let admin2 = admin.clone();
    let reset = post_form(
        &admin2,
        &app,
        &format!("/admin/accounts/{id}/password"),
        &[
            ("csrf", csrf.as_str()),
            ("password", "a brand new password"),
        ],
    )
    .await;
    assert_eq!(reset.status(), StatusCode::SEE_OTHER);
    // The old session ended; the new password works.
    let (status, _) = get_text(&head, &app, "/dashboard/section").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    web_login(&app, "head.new", "a brand new password").await;

    // Tablets: a bad code, an unknown code, then a real enrolment, a rename and a revocation.
    let (status, html) = post(
        "/admin/tablets/enrol",
        vec![("code", "12".into()), ("name", "Окно 1".into())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("Код подключения состоит из 8 цифр"));
    let (status, html) = post(
        "/admin/tablets/enrol",
        vec![("code", "1234 5678".into()), ("name", "Окно 1".into())],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Такого кода нет"));
    let started: shared_model::EnrolmentStarted = Client::new()
        .post(app.url("/api/tablet/enrolments"))
        .header(
            shared_model::PROTOCOL_HEADER,
            shared_model::PROTOCOL_VERSION,
        )
        .json(&json!({ "app_version": "1.2.3", "device_description": "Lenovo Tab M10" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, _) = post(
        "/admin/tablets/enrol",
        vec![("code", started.code.clone()), ("name", "Окно 1".into())],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let html = page(&admin, &app, "/admin/tablets").await;
    assert!(html.contains("Lenovo Tab M10"));
    assert!(html.contains("не выходил на связь"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_specialist_pairs_and_ends_through_the_pairing_page() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let tablet = app.enrol_tablet(&admin, "desk 1").await;
    let employee = app.employee_of(ACCOUNTING, 1);
    app.specialist(&admin, employee).await;
    let (client, csrf) =
        web_login(&app, &format!("specialist{employee}"), SPECIALIST_PASSWORD).await;
    let html = page(&client, &app, "/pairing").await;
    assert!(html.contains("Сейчас ни один планшет не привязан"));
    let (status, html) = {
        let response = post_form(
            &client,
            &app,
            "/pairing",
            &[("csrf", csrf.as_str()), ("code", "000000")],
        )
        .await;
        (response.status(), response.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Такого кода нет"));
    let issued: shared_model::PairingCodeIssued = tablet
        .post("/api/tablet/pairing-codes")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paired = post_form(
        &client,
        &app,
        "/pairing",
        &[("csrf", csrf.as_str()), ("code", issued.code.as_str())],
    )
    .await;
    assert_eq!(paired.status(), StatusCode::SEE_OTHER);
    let html = page(&client, &app, "/pairing?done=paired").await;
    assert!(html.contains("Планшет привязан"));
    let start = html.find("data-pairing=\"").unwrap() + 14;
    let id = &html[start..start + 36];
    let ended = post_form(
        &client,
        &app,
        &format!("/pairing/{id}/end"),
        &[("csrf", csrf.as_str())],
    )
    .await;
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    let html = page(&client, &app, "/pairing").await;
    assert!(html.contains("Сейчас ни один планшет не привязан"));
    app.stop().await;
}
