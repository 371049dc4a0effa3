//! E-mail notifications through a real SMTP server (aiosmtpd in a child process): a tablet
//! silent in working hours and a failed backup reach the administrator; an alert on an
//! employee and verdicts past their deadline reach the heads in scope, at once or in a daily
//! digest as each account chose; nobody out of scope is told; a message the SMTP server could
//! not take is tried again.

use std::time::Duration;

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use reqwest::{Client, StatusCode};
use serde_json::json;
use shared_model::Rating;
use test_support::*;

const ACCOUNTING: &str = "Отдел учета";
const ARCHITECTURE: &str = "Отдел архитектуры";
const FROM: &str = "quality@office.example";

/// Open all day, today too (a weekend is made a worked one), so that silence counts now.
fn open_all_day(config: &mut office_server::Config, smtp_url: String) {
    config.working_hours.start = Time::constant(0, 0, 0, 0);
    config.working_hours.end = Time::constant(23, 59, 59, 0);
    let zone = TimeZone::get(&config.time_zone).unwrap();
    let today = zone.to_datetime(Timestamp::now()).date();
    config.calendar.holidays.clear();
    if matches!(today.weekday(), Weekday::Saturday | Weekday::Sunday) {
        config.calendar.working_weekends = vec![today];
    }
    config.mail.smtp_url = smtp_url;
    config.mail.from = format!("Оценка качества <{FROM}>");
    config.mail.check_secs = 1;
}

/// The office's time of day `ahead` from now, to the second.
fn local_time_in(config: &office_server::Config, ahead: SignedDuration) -> Time {
    let zone = TimeZone::get(&config.time_zone).unwrap();
    let at = zone.to_datetime(Timestamp::now() + ahead).time();
    Time::constant(at.hour(), at.minute(), at.second(), 0)
}

/// The id of the account whose row on the administrator's accounts page has `login`.
fn account_id(html: &str, login: &str) -> i64 {
    let row = html
        .find(&format!("data-account=\"{login}\""))
        .unwrap_or_else(|| panic!("no row of {login}"));
    let action = "/admin/accounts/";
    let start = html[row..].find(action).unwrap() + row + action.len();
    let digits: String = html[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

async fn accounts_page(admin: &Client, app: &TestServer) -> String {
    let response = admin.get(app.url("/admin/accounts")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// Sets an account's address and mode through the administrator's form.
async fn set_mail(
    admin: &Client,
    csrf: &str,
    app: &TestServer,
    login: &str,
    email: &str,
    mode: &str,
) -> reqwest::Response {
    let id = account_id(&accounts_page(admin, app).await, login);
    admin
        .post(app.url(&format!("/admin/accounts/{id}/mail")))
        .form(&[("csrf", csrf), ("email", email), ("mode", mode)])
        .send()
        .await
        .unwrap()
}

async fn mail_set(
    admin: &Client,
    csrf: &str,
    app: &TestServer,
    login: &str,
    email: &str,
    mode: &str,
) {
    let response = set_mail(admin, csrf, app, login, email, mode).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{login}");
}

/// Four ratings in a quarter of an hour, two of them Плохо: an alert on the employee. Returns
/// the Плохо visits' ids.
async fn bad_burst(tablet: &Tablet, pairing: &shared_model::Pairing) -> Vec<uuid::Uuid> {
    let now = Timestamp::now();
    let visits: Vec<_> = [Rating::Good, Rating::Bad, Rating::Good, Rating::Bad]
        .into_iter()
        .enumerate()
        .map(|(i, rating)| {
            let mut v = visit_at(
                pairing,
                now - SignedDuration::from_mins(10 - 2 * i as i64),
                Some(rating),
            );
            v.has_recording = false;
            v
        })
        .collect();
    let response = tablet.sync(&visits).await;
    assert!(response.results.iter().all(|r| r.outcome.is_stored()));
    visits
        .iter()
        .filter(|v| v.rating == Some(Rating::Bad))
        .map(|v| v.id)
        .collect()
}

/// Makes the tablet last heard from two hours ago.
fn silence(app: &TestServer, tablet_id: i64) {
    let db = rusqlite::Connection::open(app.data_dir.join("office.sqlite3")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let ago = (Timestamp::now() - SignedDuration::from_hours(2)).as_millisecond();
    let changed = db
        .execute(
            "UPDATE tablets SET last_seen_at = ?1, enrolled_at = ?1 WHERE id = ?2",
            rusqlite::params![ago, tablet_id],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

fn to<'a>(mail: &'a [ReceivedMail], address: &str) -> Vec<&'a ReceivedMail> {
    mail.iter().filter(|m| m.to == address).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_mailed_once_to_the_accounts_in_scope() {
    let smtp = TestSmtp::start();
    let app = spawn_app_with(|config| open_all_day(config, smtp.url())).await;
    let (tablet, pairing) = app.paired_tablet_in(ACCOUNTING, "desk 1", 2).await;
    let admin_api = app.admin().await;
    let head = create_account(
        &app,
        &admin_api,
        "head.accounting",
        json!({"role": "head_of_department", "department_id": app.department_of(ACCOUNTING)}),
    )
    .await;
    let other = create_account(
        &app,
        &admin_api,
        "head.architecture",
        json!({"role": "head_of_section", "section_id": app.section(ARCHITECTURE).id}),
    )
    .await;
    let observer = create_account(&app, &admin_api, "observer", json!({"role": "observer"})).await;
    let (admin, csrf) = web_login(&app, ADMIN_LOGIN, ADMIN_PASSWORD).await;

    // What the form refuses: an address that is not one, a mode it does not know, and anyone
    // but an administrator.
    let refused = set_mail(&admin, &csrf, &app, &head, "head at office", "each").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Это не адрес электронной почты")
    );
    let refused = set_mail(&admin, &csrf, &app, &head, "head@office.example", "often").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let (head_client, head_csrf) = web_login(&app, &head, WEB_PASSWORD).await;
    let id = account_id(&accounts_page(&admin, &app).await, &head);
    let refused = head_client
        .post(app.url(&format!("/admin/accounts/{id}/mail")))
        .form(&[
            ("csrf", head_csrf.as_str()),
            ("email", "evil@example.org"),
            ("mode", "each"),
        ])
        .send()
        .await
        .unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());

    mail_set(
        &admin,
        &csrf,
        &app,
        ADMIN_LOGIN,
        "admin@office.example",
        "each",
    )
    .await;
    mail_set(&admin, &csrf, &app, &head, " Head@Office.Example ", "each").await;
    mail_set(&admin, &csrf, &app, &other, "other@office.example", "each").await;
    mail_set(
        &admin,
        &csrf,
        &app,
        &observer,
        "observer@office.example",
        "each",
    )
    .await;
    let page = accounts_page(&admin, &app).await;
    assert!(
        page.contains("value=\"Head@Office.Example\""),
        "trimmed and kept"
    );
    let audit = admin
        .get(app.url("/admin/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("Изменены уведомления по почте"), "{audit}");
    assert!(audit.contains("Head@Office.Example"));

    let bad = bad_burst(&tablet, &pairing).await;
    // One of them reached the server a month ago and still has no verdict: overdue.
    app.set_received_at(
        bad[0],
        Timestamp::now() - SignedDuration::from_hours(30 * 24),
    );
    silence(&app, tablet.id);

    smtp.wait_until(Duration::from_secs(30), |mail| {
        !to(mail, "admin@office.example").is_empty() && to(mail, "Head@Office.Example").len() >= 2
    })
    .await;
    // Passes go on every second: nothing is told twice, and nobody out of scope is told.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mail = smtp.received();
    let admin_mail = to(&mail, "admin@office.example");
    assert_eq!(admin_mail.len(), 1, "{mail:#?}");
    assert_eq!(
        admin_mail[0].subject,
        "Планшет «desk 1» не выходит на связь"
    );
    assert!(
        admin_mail[0].body.contains("более 30 мин"),
        "{}",
        admin_mail[0].body
    );
    assert_eq!(admin_mail[0].from, FROM);
    let mut head_subjects: Vec<&str> = to(&mail, "Head@Office.Example")
        .iter()
        .map(|m| m.subject.as_str())
        .collect();
    head_subjects.sort();
    assert_eq!(
        head_subjects,
        vec![
            format!("Много оценок \"Плохо\": {}", pairing.employee.name),
            "Оценки \"Плохо\" без решения: 1".to_string(),
        ],
        "{mail:#?}"
    );
    let alert = to(&mail, "Head@Office.Example")
        .into_iter()
        .find(|m| m.subject.starts_with("Много"))
        .unwrap();
    assert!(alert.body.contains("2 из 4"), "{}", alert.body);
    assert!(to(&mail, "other@office.example").is_empty(), "{mail:#?}");
    assert!(to(&mail, "observer@office.example").is_empty(), "{mail:#?}");
    assert_eq!(mail.len(), 3, "{mail:#?}");

    // Off: the next event reaches nobody.
    mail_set(
        &admin,
        &csrf,
        &app,
        ADMIN_LOGIN,
        "admin@office.example",
        "off",
    )
    .await;
    let (second, _) = app.paired_tablet_in(ACCOUNTING, "desk 2", 1).await;
    silence(&app, second.id);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smtp.received().len(), 3, "{:#?}", smtp.received());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_backup_is_mailed_again_until_taken_and_a_digest_waits_for_its_time() {
    // The accounts and the events first, mail off; then the server again on the same data,
    // with the backup's and the digest's times counted from its start (setting up takes long
    // on a loaded machine).
    let temp = tempfile::tempdir().unwrap();
    let app = spawn_with_config(test_config(temp.path()), true).await;
    let (tablet, pairing) = app.paired_tablet_in(ACCOUNTING, "desk 1", 2).await;
    let admin_api = app.admin().await;
    let head = create_account(
        &app,
        &admin_api,
        "head.digest",
        json!({"role": "head_of_section", "section_id": app.section(ACCOUNTING).id}),
    )
    .await;
    let (admin, csrf) = web_login(&app, ADMIN_LOGIN, ADMIN_PASSWORD).await;
    mail_set(
        &admin,
        &csrf,
        &app,
        ADMIN_LOGIN,
        "admin@office.example",
        "each",
    )
    .await;
    mail_set(
        &admin,
        &csrf,
        &app,
        &head,
        "digest@office.example",
        "digest",
    )
    .await;
    let bad = bad_burst(&tablet, &pairing).await;
    app.set_received_at(
        bad[0],
        Timestamp::now() - SignedDuration::from_hours(30 * 24),
    );

    app.stop().await;

    // The SMTP server is down at first: the failed backup's message waits and is tried again.
    let port = free_port();
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let mut config = test_config(temp.path());
    open_all_day(&mut config, format!("smtp://127.0.0.1:{port}"));
    config.mail.retry_first_secs = 1;
    config.mail.retry_max_secs = 2;
    // A directory that cannot be made: under a file.
    config.backup.dir = blocker.path().join("backups");
    config.backup.time = local_time_in(&config, SignedDuration::from_secs(5));
    config.mail.digest_time = local_time_in(&config, SignedDuration::from_secs(20));
    let app = spawn_with_config(config, false).await;
    // Past the backup's time, with nobody listening yet; then the SMTP server comes up.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let smtp = TestSmtp::start_on(port);
    let mail = smtp
        .wait_until(Duration::from_secs(15), |mail| {
            !to(mail, "admin@office.example").is_empty()
        })
        .await;
    let backup = to(&mail, "admin@office.example");
    assert_eq!(backup.len(), 1, "{mail:#?}");
    assert_eq!(backup[0].subject, "Резервная копия не создана");
    assert!(
        backup[0].body.contains("office-server backup"),
        "{}",
        backup[0].body
    );
    assert!(
        to(&mail, "digest@office.example").is_empty(),
        "the digest waits for its time: {mail:#?}"
    );

    let mail = smtp
        .wait_until(Duration::from_secs(40), |mail| {
            !to(mail, "digest@office.example").is_empty()
        })
        .await;
    let digest = to(&mail, "digest@office.example");
    assert_eq!(digest.len(), 1, "one message for the day: {mail:#?}");
    assert_eq!(digest[0].subject, "Уведомления за день: 2");
    assert!(
        digest[0].body.contains("Оценки \"Плохо\" без решения: 1"),
        "{}",
        digest[0].body
    );
    assert!(
        digest[0].body.contains(&pairing.employee.name),
        "{}",
        digest[0].body
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.received().len(), 2, "{:#?}", smtp.received());
    app.stop().await;
}
