//! Verdict deadlines in headless Chromium: two working days of a production calendar with a
//! holiday and a worked Saturday, counted in an office far east of UTC. The overdue «Плохо»
//! is marked in the inbox, filtered in the archive and raised among the alerts; the one that
//! arrived half an hour into the office's Saturday is not overdue, though in UTC it arrived
//! the day before.

use fantoccini::Locator;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde_json::json;
use shared_model::Rating;
use test_support::browser::{Chromium, Window, text_of, wait_for};
use test_support::*;

const ACCOUNTING: &str = "Отдел учета";
const ZONE: &str = "Asia/Vladivostok";

fn local(zone: &TimeZone, day: Date, hour: i8, minute: i8) -> Timestamp {
    day.to_datetime(Time::constant(hour, minute, 0, 0))
        .to_zoned_datetime(zone.clone())
        .unwrap()
        .timestamp()
}

fn is_weekend(day: Date) -> bool {
    matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
}

fn dotted(day: Date) -> String {
    day.strftime("%d.%m.%Y").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_verdicts_follow_the_calendar_in_the_office_zone() {
    let zone = TimeZone::get(ZONE).unwrap();
    let today = zone.to_datetime(Timestamp::now()).date();
    let yesterday = today.yesterday().unwrap();
    // The calendar around today, whatever weekday it is: yesterday and today are worked, so
    // is the Saturday at least three days before yesterday; every weekday between that
    // Saturday and yesterday is a holiday.
    let mut saturday = yesterday.checked_sub(3.days()).unwrap();
    while saturday.weekday() != Weekday::Saturday {
        saturday = saturday.yesterday().unwrap();
    }
    let mut working_weekends = vec![saturday];
    working_weekends.extend([yesterday, today].into_iter().filter(|d| is_weekend(*d)));
    let mut holidays = Vec::new();
    let mut day = saturday.tomorrow().unwrap();
    while day < yesterday {
        if !is_weekend(day) {
            holidays.push(day);
        }
        day = day.tomorrow().unwrap();
    }
    assert!(!holidays.is_empty(), "a holiday lies between");

    let app = spawn_app_with(|config| {
        config.time_zone = ZONE.to_string();
        config.calendar.holidays = holidays.clone();
        config.calendar.working_weekends = working_weekends.clone();
        config.review.verdict_working_days = 2;
    })
    .await;
    let admin = app.admin().await;
    let (tablet, pairing) = app
        .paired_tablet_with(&admin, ACCOUNTING, "Окно 1", 0)
        .await;
    let now = Timestamp::now();
    let rated = |minutes: i64| now - jiff::SignedDuration::from_mins(minutes);
    // Arrived on the Friday before the worked Saturday, late: its two working days were that
    // Saturday and yesterday — overdue.
    let late = visit_at(&pairing, rated(30), Some(Rating::Bad));
    // Arrived at 00:30 on that Saturday, office time (14:30 UTC on Friday): its two days are
    // yesterday and today — due tonight.
    let boundary = visit_at(&pairing, rated(20), Some(Rating::Bad));
    // Arrived just now.
    let fresh = visit_at(&pairing, rated(10), Some(Rating::Bad));
    tablet
        .sync(&[late.clone(), boundary.clone(), fresh.clone()])
        .await;
    let friday = saturday.yesterday().unwrap();
    app.set_received_at(late.id, local(&zone, friday, 23, 0));
    app.set_received_at(boundary.id, local(&zone, saturday, 0, 30));

    let section_id = app.section(ACCOUNTING).id;
    create_account(
        &app,
        &admin,
        "head.deadlines",
        json!({"role": "head_of_section", "section_id": section_id}),
    )
    .await;
    let chromium = Chromium::start();
    let browser = chromium
        .open(&Window {
            russian: true,
            ..Window::new(1400, 1000)
        })
        .await;
    browser.goto(&app.url("/dashboard/inbox")).await.unwrap();
    super::browser::sign_in(&browser, "head.deadlines", WEB_PASSWORD).await;

    // The inbox: one of the three waiting is overdue; each visit says its deadline.
    browser
        .goto(&app.url(&format!("/dashboard/inbox?visit={}", late.id)))
        .await
        .unwrap();
    assert_eq!(
        text_of(&browser, "#inbox-overdue").await,
        "из них просрочено: 1"
    );
    let deadline = wait_for(&browser, "#fact-deadline").await;
    assert_eq!(
        deadline.text().await.unwrap(),
        format!(
            "просрочено: решение нужно было принять до {}",
            dotted(yesterday)
        )
    );
    assert!(
        deadline
            .attr("class")
            .await
            .unwrap()
            .unwrap_or_default()
            .contains("overdue")
    );
    for visit in [&boundary, &fresh] {
        browser
            .goto(&app.url(&format!("/dashboard/inbox?visit={}", visit.id)))
            .await
            .unwrap();
        let deadline = wait_for(&browser, "#fact-deadline").await;
        let class = deadline.attr("class").await.unwrap().unwrap_or_default();
        assert!(!class.contains("overdue"), "{} is not overdue", visit.id);
        if visit.id == boundary.id {
            assert_eq!(
                deadline.text().await.unwrap(),
                format!("решение — до {} включительно", dotted(today))
            );
        }
    }

    // The archive's filter «просрочено решение» lists only the overdue one.
    browser.goto(&app.url("/dashboard/bad")).await.unwrap();
    wait_for(&browser, &format!("#bad-{}", fresh.id)).await;
    wait_for(&browser, "#filter-verdict")
        .await
        .select_by_value("overdue")
        .await
        .unwrap();
    wait_for(&browser, &format!("#bad-{}.overdue", late.id)).await;
    for other in [&boundary, &fresh] {
        let css = format!("#bad-{}", other.id);
        assert!(
            browser.find(Locator::Css(&css)).await.is_err(),
            "{css} is not overdue"
        );
    }

    // The alerts, on the dashboard and on their page, count it and lead to the archive.
    browser.goto(&app.url("/dashboard/alerts")).await.unwrap();
    let alert = text_of(&browser, "#alert-overdue").await;
    assert!(alert.contains("(2 раб. дн.): 1"), "{alert}");
    browser.goto(&app.url("/dashboard/section")).await.unwrap();
    let alert = text_of(&browser, "#alerts #alert-overdue").await;
    assert!(alert.contains("(2 раб. дн.): 1"), "{alert}");

    // A verdict ends it: nothing is overdue any more.
    browser
        .goto(&app.url(&format!("/dashboard/inbox?visit={}", late.id)))
        .await
        .unwrap();
    wait_for(&browser, "#verdict-yes")
        .await
        .click()
        .await
        .unwrap();
    wait_for(&browser, "#verdict-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    wait_for(
        &browser,
        &format!("#inbox-visit:not([data-visit='{}'])", late.id),
    )
    .await;
    assert!(browser.find(Locator::Css("#inbox-overdue")).await.is_err());
    browser.goto(&app.url("/dashboard/alerts")).await.unwrap();
    wait_for(&browser, "#t-alerts").await;
    assert!(browser.find(Locator::Css("#alert-overdue")).await.is_err());
}
