//! A head names a deputy for «Разбор "Плохо"»: in headless Chromium the head names a
//! specialist of the section, the specialist finds the head's inbox on their own page and
//! gives a verdict there; over HTTP the rest of the head's data stays out of the deputy's
//! reach, and so do the deputy's own visits. Ending the cover ends the access.

use fantoccini::Locator;
use jiff::{SignedDuration, Timestamp, ToSpan};
use reqwest::StatusCode;
use serde_json::json;
use shared_model::Rating;
use test_support::browser::{Chromium, Window, click, text_containing, text_of, wait_for};
use test_support::fixtures::VISIT_3GPP;
use test_support::*;

const ACCOUNTING: &str = "Отдел учета";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deputy_covers_the_heads_inbox_and_nothing_else() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (tablet, pairing) = app
        .paired_tablet_with(&admin, ACCOUNTING, "Окно 1", 0)
        .await;
    // The deputy is the specialist at the next window; one of their own visits is Плохо too.
    let (own_tablet, own_pairing) = app
        .paired_tablet_with(&admin, ACCOUNTING, "Окно 2", 1)
        .await;
    let deputy_employee = app.employee_of(ACCOUNTING, 1);
    let deputy_login = format!("specialist{deputy_employee}");
    let now = Timestamp::now();
    let colleague = visit_at(
        &pairing,
        now - SignedDuration::from_mins(30),
        Some(Rating::Bad),
    );
    tablet.sync(std::slice::from_ref(&colleague)).await;
    tablet.upload_recording(&colleague, VISIT_3GPP).await;
    let own = visit_at(
        &own_pairing,
        now - SignedDuration::from_mins(20),
        Some(Rating::Bad),
    );
    own_tablet.sync(std::slice::from_ref(&own)).await;
    own_tablet.upload_recording(&own, VISIT_3GPP).await;
    let section_id = app.section(ACCOUNTING).id;
    create_account(
        &app,
        &admin,
        "head.away",
        json!({"role": "head_of_section", "section_id": section_id}),
    )
    .await;
    let (head, head_csrf) = web_login(&app, "head.away", WEB_PASSWORD).await;
    let head_id = app
        .storage()
        .accounts()
        .unwrap()
        .into_iter()
        .find(|a| a.account.login == "head.away")
        .unwrap()
        .account
        .id;
    let cover_url = app.url(&format!("/dashboard/inbox/cover/{head_id}"));
    let (deputy, deputy_csrf) = web_login(&app, &deputy_login, SPECIALIST_PASSWORD).await;
    let status = |response: reqwest::Response| response.status();

    // Before being named, the head's inbox is not there for them.
    assert_eq!(
        status(deputy.get(&cover_url).send().await.unwrap()),
        StatusCode::NOT_FOUND
    );

    // Refused: an administrator, a cover past the longest allowed, a day already gone.
    let admin_id = app
        .storage()
        .accounts()
        .unwrap()
        .into_iter()
        .find(|a| a.account.login == ADMIN_LOGIN)
        .unwrap()
        .account
        .id;
    let deputy_id = app
        .storage()
        .accounts()
        .unwrap()
        .into_iter()
        .find(|a| a.account.login == deputy_login)
        .unwrap()
        .account
        .id;
    let today = jiff::tz::TimeZone::get("Asia/Yekaterinburg")
        .unwrap()
        .to_datetime(now)
        .date();
    let (app_ref, head_ref, csrf_ref) = (&app, &head, &head_csrf);
    let name = move |who: i64, last: jiff::civil::Date| async move {
        head_ref
            .post(app_ref.url("/dashboard/deputy"))
            .form(&[
                ("csrf", csrf_ref.as_str()),
                ("deputy", &who.to_string()),
                ("until", &last.to_string()),
            ])
            .send()
            .await
            .unwrap()
    };
    assert_eq!(status(name(admin_id, today).await), StatusCode::NOT_FOUND);
    let too_far = name(deputy_id, today.checked_add(93.days()).unwrap()).await;
    assert_eq!(too_far.status(), StatusCode::BAD_REQUEST);
    assert!(too_far.text().await.unwrap().contains("92 дн."));
    let gone = name(deputy_id, today.yesterday().unwrap()).await;
    assert_eq!(gone.status(), StatusCode::BAD_REQUEST);
    // A specialist has no such page, nor may name anyone.
    assert_eq!(
        status(
            deputy
                .get(app.url("/dashboard/deputy"))
                .send()
                .await
                .unwrap()
        ),
        StatusCode::NOT_FOUND
    );
    let forged = deputy
        .post(app.url("/dashboard/deputy"))
        .form(&[
            ("csrf", deputy_csrf.as_str()),
            ("deputy", &deputy_id.to_string()),
            ("until", &today.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert!(matches!(
        forged.status(),
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    ));
    assert!(app.storage().covered_by(deputy_id, now).unwrap().is_empty());

    // The head names the deputy in the browser, to the day after tomorrow.
    let last_day = today.checked_add(2.days()).unwrap();
    let chromium = Chromium::start();
    let desk = chromium
        .open(&Window {
            russian: true,
            ..Window::new(1280, 900)
        })
        .await;
    desk.goto(&app.url("/dashboard/inbox")).await.unwrap();
    super::browser::sign_in(&desk, "head.away", WEB_PASSWORD).await;
    click(&desk, "#deputy-link").await;
    wait_for(&desk, "#deputy-none").await;
    wait_for(&desk, "#deputy-select")
        .await
        .select_by_value(&deputy_id.to_string())
        .await
        .unwrap();
    // A date field's typing depends on the browser's locale: set its value as a picker does.
    wait_for(&desk, "#deputy-until").await;
    test_support::browser::script(
        &desk,
        &format!("document.querySelector('#deputy-until').value = '{last_day}';"),
    )
    .await;
    click(&desk, "#deputy-save").await;
    let shown = text_of(&desk, "#deputy-current").await;
    let dotted = last_day.strftime("%d.%m.%Y").to_string();
    assert!(
        shown.contains(&format!("Сотрудник {deputy_employee}")) && shown.contains(&dotted),
        "{shown}"
    );

    // The deputy finds the head's inbox on their own page: the colleague's visit, not theirs.
    let phone = chromium
        .open(&Window {
            russian: true,
            ..Window::new(1280, 900)
        })
        .await;
    phone.goto(&app.url("/pairing")).await.unwrap();
    super::browser::sign_in(&phone, &deputy_login, SPECIALIST_PASSWORD).await;
    let covers = text_of(&phone, "#covers").await;
    assert!(covers.contains(&dotted), "{covers}");
    click(&phone, "#covers a").await;
    text_containing(&phone, "#inbox-cover", "Учетная запись head.away").await;
    let shown = wait_for(&phone, "#inbox-visit")
        .await
        .attr("data-visit")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(shown, colleague.id.to_string());
    assert_eq!(text_of(&phone, "#inbox-waiting").await, "Ждут решения: 1");
    assert!(phone.find(Locator::Css("#archive-link")).await.is_err());
    // The recording plays for them.
    let played = deputy
        .get(app.url(&format!("/dashboard/recordings/{}", colleague.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(played.status(), StatusCode::OK);
    // A verdict from the deputy's inbox, under the deputy's name.
    click(&phone, "#verdict-no").await;
    wait_for(&phone, "#verdict-comment")
        .await
        .send_keys("Не объяснил порядок обжалования.")
        .await
        .unwrap();
    click(&phone, "#verdict-form button[type=submit]").await;
    wait_for(&phone, "#inbox-empty").await;
    let history = app.storage().verdict_history(colleague.id).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].account_id, deputy_id);
    assert!(!history[0].correct);

    // Out of reach: their own visit, its recording and a verdict on it; the head's
    // statistics, archive, alerts and exports.
    for path in [
        format!("/dashboard/inbox/cover/{head_id}?visit={}", own.id),
        format!("/dashboard/recordings/{}", own.id),
    ] {
        assert_eq!(
            status(deputy.get(app.url(&path)).send().await.unwrap()),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let verdict = deputy
        .post(app.url(&format!("/dashboard/bad/{}/verdict", own.id)))
        .form(&[
            ("csrf", deputy_csrf.as_str()),
            ("correct", "yes"),
            ("back", &format!("/dashboard/inbox/cover/{head_id}")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(verdict.status(), StatusCode::NOT_FOUND);
    assert!(app.storage().verdict_history(own.id).unwrap().is_empty());
    for path in [
        "/dashboard/section",
        "/dashboard/employee",
        "/dashboard/bad",
        "/dashboard/alerts",
        "/dashboard/inbox",
        "/dashboard/export?tab=section",
    ] {
        let code = status(deputy.get(app.url(path)).send().await.unwrap());
        assert!(
            code == StatusCode::FORBIDDEN || code == StatusCode::NOT_FOUND,
            "{path}: {code}"
        );
    }

    // The head ends the cover: the inbox is gone for the deputy.
    click(&desk, "#deputy-end").await;
    wait_for(&desk, "#deputy-none").await;
    assert_eq!(
        status(deputy.get(&cover_url).send().await.unwrap()),
        StatusCode::NOT_FOUND
    );
    let audit: Vec<String> = app
        .storage()
        .audit_log(20, None)
        .unwrap()
        .into_iter()
        .map(|entry| entry.action.as_str().to_string())
        .collect();
    assert!(audit.contains(&"deputy_named".to_string()), "{audit:?}");
    assert!(audit.contains(&"deputy_ended".to_string()), "{audit:?}");
}
