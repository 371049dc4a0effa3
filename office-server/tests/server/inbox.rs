//! «Разбор оценок "Плохо"» in headless Chromium: a head works through the inbox with the
//! keyboard only — the player's keys, a verdict by `2` and Enter, «Следующая» by `N` — and a
//! second verdict keeps the first in the history. The speech segments the server found drive
//! «пропускать тишину».

use std::time::Duration;

use fantoccini::Client;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use shared_model::{Rating, Visit};
use test_support::browser::{Chromium, Window, save_screenshot, script, wait_for};
use test_support::fixtures::{VISIT_3GPP, VISIT_SEGMENTS_3GPP};
use test_support::*;

const ACCOUNTING: &str = "Отдел учета";

/// Presses and releases each key (WebDriver's `Key::Return` is the main Enter key,
/// `Key::Enter` the keypad's), as a person at the keyboard would.
async fn press(browser: &Client, keys: &[char]) {
    let mut actions = KeyActions::new("keyboard".to_string());
    for &key in keys {
        actions = actions
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
    }
    browser.perform_actions(actions).await.expect("key presses");
}

/// The visit the inbox shows, once the page has loaded.
async fn shown_visit(browser: &Client) -> String {
    wait_for(browser, "#inbox-visit")
        .await
        .attr("data-visit")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Waits until the inbox shows a visit other than `previous`.
async fn next_visit(browser: &Client, previous: &str) -> String {
    for _ in 0..100 {
        let now = script(
            browser,
            "const v = document.querySelector('#inbox-visit'); return v ? v.dataset.visit : (document.querySelector('#inbox-empty') ? 'empty' : '');",
        )
        .await;
        let now = now.as_str().unwrap_or_default().to_string();
        if !now.is_empty() && now != previous {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the inbox still shows {previous}");
}

async fn audio_state(browser: &Client) -> serde_json::Value {
    script(
        browser,
        "const a = document.querySelector('#player-audio'); \
         return {time: a.currentTime, paused: a.paused, rate: a.playbackRate, duration: a.duration, ready: a.readyState};",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_works_through_the_inbox_with_the_keyboard_only() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (tablet, pairing) = app
        .paired_tablet_with(&admin, ACCOUNTING, "Окно 1", 0)
        .await;
    let now = Timestamp::now();
    // Three Плохо visits, a day apart: the oldest (the 134-s fixture with known speech) first.
    let at = |hours: i64| now - SignedDuration::from_hours(hours);
    let mut oldest = visit_at(&pairing, at(50), Some(Rating::Bad));
    oldest.started_at = oldest.ended_at - SignedDuration::from_secs(134);
    let middle = visit_at(&pairing, at(26), Some(Rating::Bad));
    let newest = visit_at(&pairing, at(2), Some(Rating::Bad));
    let visits: Vec<Visit> = vec![oldest.clone(), middle.clone(), newest.clone()];
    tablet.sync(&visits).await;
    tablet.upload_recording(&oldest, VISIT_SEGMENTS_3GPP).await;
    tablet.upload_recording(&middle, VISIT_3GPP).await;
    tablet.upload_recording(&newest, VISIT_3GPP).await;
    // The analysis runs when a recording arrives.
    for visit in &visits {
        let id = visit.id;
        assert!(
            wait_until(Duration::from_secs(20), || {
                app.storage().recording_analysis(id).ok().flatten()
            })
            .await
            .is_some(),
            "no analysis of {id}"
        );
    }
    let section_id = app.section(ACCOUNTING).id;
    create_account(
        &app,
        &admin,
        "head.accounting",
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
    super::browser::sign_in(&browser, "head.accounting", WEB_PASSWORD).await;
    browser.goto(&app.url("/dashboard/inbox")).await.unwrap();

    // The oldest first, with its facts and the player drawn from its analysis.
    assert_eq!(shown_visit(&browser).await, oldest.id.to_string());
    let waiting = wait_for(&browser, "#inbox-waiting")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(waiting, "Ждут решения: 3");
    let length = wait_for(&browser, "#fact-length")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(length, "2 мин 14 с");
    let employee = wait_for(&browser, "#fact-employee")
        .await
        .text()
        .await
        .unwrap();
    assert!(employee.contains(&pairing.employee.name), "{employee}");
    wait_for(&browser, "#player-waveform").await;
    for _ in 0..100 {
        if audio_state(&browser).await["ready"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    script(
        &browser,
        "document.querySelector('#player-audio').muted = true;",
    )
    .await;
    save_screenshot(&browser, "inbox.png").await;

    // Space plays, S speeds up, E goes to the last two minutes.
    press(&browser, &[' ', 's']).await;
    let state = audio_state(&browser).await;
    assert_eq!(state["paused"], json!(false), "{state}");
    assert_eq!(state["rate"], json!(1.5), "{state}");
    press(&browser, &['e']).await;
    let state = audio_state(&browser).await;
    let duration = state["duration"].as_f64().unwrap();
    let time = state["time"].as_f64().unwrap();
    assert!(
        (time - (duration - 120.0)).abs() < 1.0,
        "«последние 2 минуты» went to {time} of {duration}"
    );
    // T skips the silence: from 5 s (silence until 54.5 s) the player is in the second
    // phrase within a few seconds, not the 33 s the silence lasts at 1.5×.
    script(
        &browser,
        "document.querySelector('#player-audio').currentTime = 5;",
    )
    .await;
    press(&browser, &['t']).await;
    let mut skipped = false;
    for _ in 0..50 {
        let time = audio_state(&browser).await["time"].as_f64().unwrap();
        if time > 54.0 {
            assert!(time < 60.0, "skipped past the speech to {time}");
            skipped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(skipped, "the silence was not skipped");
    // T again and Space: silence plays, the player stops; ← goes back ten seconds.
    press(&browser, &['t', ' ']).await;
    let before = audio_state(&browser).await["time"].as_f64().unwrap();
    press(&browser, &[Key::Left.into()]).await;
    let after = audio_state(&browser).await;
    assert!(
        (before - 10.0 - after["time"].as_f64().unwrap()).abs() < 1.5,
        "{before} → {after}"
    );
    assert_eq!(after["paused"], json!(true));

    // 2 and Enter: «неправильно», saved; the next visit comes.
    press(&browser, &['2', Key::Return.into()]).await;
    let second = next_visit(&browser, &oldest.id.to_string()).await;
    assert_eq!(second, middle.id.to_string());
    let waiting = wait_for(&browser, "#inbox-waiting")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(waiting, "Ждут решения: 2");
    // N passes this one by; 1 and Enter decide the newest; the queue wraps to the skipped one.
    press(&browser, &['n']).await;
    assert_eq!(next_visit(&browser, &second).await, newest.id.to_string());
    press(&browser, &['1', Key::Return.into()]).await;
    assert_eq!(
        next_visit(&browser, &newest.id.to_string()).await,
        middle.id.to_string()
    );
    press(&browser, &['1', Key::Return.into()]).await;
    assert_eq!(next_visit(&browser, &middle.id.to_string()).await, "empty");
    let verdict = |id| app.storage().bad_visit(id).unwrap().unwrap().verdict;
    assert!(!verdict(oldest.id).unwrap().correct);
    assert!(verdict(middle.id).unwrap().correct);
    assert!(verdict(newest.id).unwrap().correct);

    browser
        .goto(&app.url(&format!("/dashboard/inbox?visit={}", oldest.id)))
        .await
        .unwrap();
    wait_for(&browser, "#inbox-decided").await;
    // A second verdict, with a comment and Ctrl+Enter, keeps the first in the history.
    press(&browser, &['1']).await;
    let comment = wait_for(&browser, "#verdict-comment").await;
    comment.click().await.unwrap();
    comment.send_keys("Прослушал повторно").await.unwrap();
    let ctrl_enter = KeyActions::new("keyboard".to_string())
        .then(KeyAction::Down {
            value: Key::Control.into(),
        })
        .then(KeyAction::Down {
            value: Key::Return.into(),
        })
        .then(KeyAction::Up {
            value: Key::Return.into(),
        })
        .then(KeyAction::Up {
            value: Key::Control.into(),
        });
    browser.perform_actions(ctrl_enter).await.unwrap();
    next_visit(&browser, &oldest.id.to_string()).await;
    let history = app.storage().verdict_history(oldest.id).unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(!history[0].correct);
    assert!(history[1].correct);
    assert_eq!(history[1].comment, "Прослушал повторно");
    browser
        .goto(&app.url(&format!("/dashboard/inbox?visit={}", oldest.id)))
        .await
        .unwrap();
    let entries = script(
        &browser,
        "return [...document.querySelectorAll('#verdict-history li')].map(li => li.innerText);",
    )
    .await;
    let entries: Vec<String> = serde_json::from_value(entries).unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(
        entries[0].ends_with("Специалист действовал неправильно"),
        "{entries:?}"
    );
    assert!(entries[1].contains("Прослушал повторно"), "{entries:?}");
    // The archive shows the first under the verdict of record.
    browser.goto(&app.url("/dashboard/bad")).await.unwrap();
    let earlier = wait_for(&browser, &format!("#bad-{} details.history", oldest.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(earlier.contains("(1)"), "{earlier}");
    browser.close().await.unwrap();
    app.stop().await;
}

/// An observer has no inbox, and a visit of another section is not found in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_is_for_deciders_and_their_scope_only() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (tablet, pairing) = app.paired_tablet_in("Отдел архитектуры", "desk", 0).await;
    let bad = visit(&pairing, Some(Rating::Bad));
    tablet.sync(std::slice::from_ref(&bad)).await;
    let section_id = app.section(ACCOUNTING).id;
    create_account(
        &app,
        &admin,
        "head.accounting",
        json!({"role": "head_of_section", "section_id": section_id}),
    )
    .await;
    create_account(&app, &admin, "observer", json!({"role": "observer"})).await;
    let (head, _) = web_login(&app, "head.accounting", WEB_PASSWORD).await;
    for query in [format!("visit={}", bad.id), format!("after={}", bad.id)] {
        let response = head
            .get(app.url(&format!("/dashboard/inbox?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND, "{query}");
    }
    let empty = head.get(app.url("/dashboard/inbox")).send().await.unwrap();
    assert_eq!(empty.status(), reqwest::StatusCode::OK);
    assert!(empty.text().await.unwrap().contains("id=\"inbox-empty\""));
    let bad_order = head
        .get(app.url("/dashboard/inbox?order=sideways"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_order.status(), reqwest::StatusCode::BAD_REQUEST);
    let (observer, _) = web_login(&app, "observer", WEB_PASSWORD).await;
    let response = observer
        .get(app.url("/dashboard/inbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::NOT_FOUND);
    app.stop().await;
}
