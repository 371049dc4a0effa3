//! The visitor's feedback link against a running server: the tablet registers its key, signs a
//! link offline, and the phone page takes one submission — before the visit has synced too;
//! altered, forged and reused links and hostile input get clear pages; posts are rate-limited.

use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use shared_model::{FeedbackKey, FeedbackLinks, FeedbackToken, Rating, SyncBatch};
use test_support::{Tablet, TestServer, health, spawn_app_with, visit};

const PUBLIC_URL: &str = "http://feedback.test";

async fn server(adjust: impl FnOnce(&mut office_server::config::Config)) -> TestServer {
    spawn_app_with(|config| {
        config.public_url = PUBLIC_URL.into();
        adjust(config);
    })
    .await
}

/// A sync that carries the tablet's feedback key, as a tablet enrolled before feedback links
/// registers it; the server's answer says where links lead.
pub(super) async fn register(tablet: &Tablet, key: &SigningKey) -> Option<FeedbackLinks> {
    let batch = SyncBatch {
        sent_at: jiff::Timestamp::now(),
        health: health(),
        visits: Vec::new(),
        feedback_key: Some(FeedbackKey::of(key)),
    };
    let response = tablet
        .post("/api/tablet/sync")
        .json(&batch)
        .send()
        .await
        .expect("sync");
    assert_eq!(response.status(), StatusCode::OK);
    let answer: shared_model::SyncResponse = response.json().await.expect("sync response");
    answer.feedback_links
}

fn link(server: &TestServer, token: &str) -> String {
    server.url(&format!("/f/{token}"))
}

async fn post(server: &TestServer, token: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
    let response = server
        .client_builder()
        .build()
        .expect("client")
        .post(link(server, token))
        .form(form)
        .send()
        .await
        .expect("post");
    let status = response.status();
    assert!(
        response.headers().get("set-cookie").is_none(),
        "the visitor's page sets no cookie, so none can reach a staff route"
    );
    (status, response.text().await.expect("page"))
}

async fn get(server: &TestServer, token: &str) -> (StatusCode, String) {
    let response = reqwest::get(link(server, token)).await.expect("get");
    let status = response.status();
    assert!(response.headers().get("set-cookie").is_none());
    (status, response.text().await.expect("page"))
}

#[tokio::test]
async fn feedback_sent_before_its_visit_syncs_is_kept_once_and_shown_back() {
    let server = server(|_| {}).await;
    let (tablet, pairing) = server.paired_tablet("Окно 1", 0).await;
    let key = SigningKey::from_bytes(&[7; 32]);
    let links = register(&tablet, &key)
        .await
        .expect("links once the key is registered");
    assert_eq!(links.base_url, format!("{PUBLIC_URL}/f/"));
    assert_eq!(links.tablet_id, tablet.id);

    // The visit is rated Плохо on the tablet and has not synced: its link works already.
    let rated = visit(&pairing, Some(Rating::Bad));
    let token = FeedbackToken {
        visit_id: rated.id,
        tablet_id: tablet.id,
    }
    .sign(&key);
    let (status, page) = get(&server, &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Вежливость и компетентность сотрудника"),
        "{page}"
    );
    assert!(page.contains("152-ФЗ"), "the personal-data notice: {page}");
    assert!(!page.contains("<script"), "the page runs no script");
    assert!(
        !page.contains("Плохо"),
        "the page never shows the tablet's rating"
    );

    let hostile = "<script>alert(1)</script> =HYPERLINK(\"http://evil\") a\u{202E}b\u{200B}c";
    let (status, page) = post(
        &server,
        &token,
        &[
            ("score_courtesy", "2"),
            ("score_queue_time", "5"),
            ("comment", hostile),
            ("thanks", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Спасибо! Ваш отзыв получен"), "{page}");
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "escaped: {page}"
    );
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("abc"), "invisible characters removed: {page}");
    assert!(!page.contains('\u{202E}') && !page.contains('\u{200B}'));
    assert!(page.contains("Вы поблагодарили сотрудника"), "{page}");
    assert!(page.contains("Ответа пока нет"), "{page}");

    // One submission per visit; the link keeps showing what was sent.
    let (status, page) = post(&server, &token, &[("score_comfort", "4")]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("уже отправлен"), "{page}");
    let (status, page) = get(&server, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Время ожидания в очереди"), "{page}");

    // The visit arrives later and is stored as ever; the link still reads back.
    let synced = tablet.sync(std::slice::from_ref(&rated)).await;
    assert!(synced.results[0].outcome.is_stored(), "{synced:?}");
    let (status, page) = get(&server, &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Спасибо! Ваш отзыв получен"), "{page}");
}

#[tokio::test]
async fn altered_forged_and_unknown_links_get_a_clear_page_not_an_error() {
    let server = server(|_| {}).await;
    let (tablet, pairing) = server.paired_tablet("Окно 1", 0).await;
    let key = SigningKey::from_bytes(&[7; 32]);
    register(&tablet, &key).await.expect("links");
    let rated = visit(&pairing, Some(Rating::Good));
    let claims = FeedbackToken {
        visit_id: rated.id,
        tablet_id: tablet.id,
    };
    let good = claims.sign(&key);

    let mut altered = good.clone().into_bytes();
    altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ASCII");
    let forged = claims.sign(&SigningKey::from_bytes(&[8; 32]));
    let other_tablet = FeedbackToken {
        visit_id: rated.id,
        tablet_id: tablet.id + 1000,
    }
    .sign(&key);
    for token in [
        altered.as_str(),
        forged.as_str(),
        other_tablet.as_str(),
        "not-a-token",
        "..%2f..%2fhealthz",
        &"A".repeat(5000),
    ] {
        let (status, page) = get(&server, token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET {token:.40}: {page}");
        assert!(page.contains("Ссылка недействительна"), "{page}");
        let (status, page) = post(&server, token, &[("score_comfort", "5")]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "POST {token:.40}: {page}");
    }
    // Nothing was stored for the genuine link by all that.
    let (status, page) = get(&server, &good).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"feedback\""), "the form: {page}");

    // Bad input: the form again with what to correct, the comment kept.
    for (form, expected) in [
        (vec![("score_comfort", "6")], "от 1 до 5"),
        (vec![("score_comfort", "abc")], "от 1 до 5"),
        (vec![("comment", "  \u{200B} ")], "хотя бы одну оценку"),
        (vec![], "хотя бы одну оценку"),
    ] {
        let (status, page) = post(&server, &good, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}: {page}");
        assert!(page.contains(expected), "{form:?}: {page}");
        assert!(page.contains("id=\"feedback\""), "{page}");
    }
    let long = "ы".repeat(2001);
    let (status, page) = post(&server, &good, &[("comment", &long), ("thanks", "1")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("не больше 2000 символов"), "{page}");
    let huge = "x".repeat(64 * 1024);
    let (status, _) = post(&server, &good, &[("comment", &huge)]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_post_after_the_limit_from_one_address_gets_429() {
    let server = server(|config| {
        config.feedback.posts_per_address_per_minute = 3;
        config.feedback.posts_per_link_per_minute = 100;
    })
    .await;
    let (tablet, pairing) = server.paired_tablet("Окно 1", 0).await;
    let key = SigningKey::from_bytes(&[7; 32]);
    register(&tablet, &key).await.expect("links");
    let token = |_post: usize| {
        FeedbackToken {
            visit_id: visit(&pairing, None).id,
            tablet_id: tablet.id,
        }
        .sign(&key)
    };
    for n in 0..3 {
        let (status, page) = post(&server, &token(n), &[("score_comfort", "5")]).await;
        assert_eq!(status, StatusCode::OK, "post {n}: {page}");
    }
    let (status, page) = post(&server, &token(3), &[("score_comfort", "5")]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{page}");
    assert!(page.contains("Подождите минуту"), "{page}");
}

#[tokio::test]
async fn a_server_without_a_public_address_gives_no_links() {
    let server = spawn_app_with(|_| {}).await;
    let (tablet, _) = server.paired_tablet("Окно 1", 0).await;
    let key = SigningKey::from_bytes(&[7; 32]);
    assert_eq!(register(&tablet, &key).await, None);
}

/// Heads in scope see the visitors' feedback beside the tablet's rating, in criteria tables and
/// files with the same numbers, answer it (the visitor's link shows the answer) and hide an
/// abusive comment (audited, reversible); another section's head gets "not found", a
/// specialist is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_in_scope_see_answer_and_hide_visitor_feedback() {
    use super::dashboard::read_xlsx;
    use futures_util::StreamExt;
    use serde_json::json;
    use test_support::{WEB_PASSWORD, create_account, table_rows, web_login};

    let server = server(|_| {}).await;
    let (tablet, pairing) = server.paired_tablet_in("Отдел учета", "Окно 1", 0).await;
    let key = SigningKey::from_bytes(&[9; 32]);
    register(&tablet, &key).await.expect("links");
    let good = visit(&pairing, Some(Rating::Good));
    let bad = visit(&pairing, Some(Rating::Bad));
    let synced = tablet.sync(&[good.clone(), bad.clone()]).await;
    assert!(synced.results.iter().all(|r| r.outcome.is_stored()));
    let token = |visit: &shared_model::Visit| {
        FeedbackToken {
            visit_id: visit.id,
            tablet_id: tablet.id,
        }
        .sign(&key)
    };
    let hostile = "=HYPERLINK(\"http://evil.example\",\"x\") <b>грубо</b>";

    let admin = server.admin().await;
    let accounting = server.section("Отдел учета").id;
    let architecture = server.section("Отдел архитектуры").id;
    let head = create_account(
        &server,
        &admin,
        "head.accounting",
        json!({"role": "head_of_section", "section_id": accounting}),
    )
    .await;
    let other = create_account(
        &server,
        &admin,
        "head.architecture",
        json!({"role": "head_of_section", "section_id": architecture}),
    )
    .await;
    let (client, csrf) = web_login(&server, &head, WEB_PASSWORD).await;
    // The head's pages listen for live updates: the feedback arrives as it is sent.
    let mut events = client
        .get(server.url("/dashboard/events"))
        .send()
        .await
        .expect("events")
        .bytes_stream();
    let mut seen = String::new();
    let mut read_until = async |needle: &str| -> bool {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        while !seen.contains(needle) {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return false,
            }
        }
        true
    };
    assert!(read_until("event: hello").await);
    for (visit, form) in [
        (
            &good,
            vec![
                ("score_courtesy", "5"),
                ("comment", "Очень вежливо"),
                ("thanks", "1"),
            ],
        ),
        (&bad, vec![("score_courtesy", "2"), ("comment", hostile)]),
    ] {
        let (status, page) = post(&server, &token(visit), &form).await;
        assert_eq!(status, StatusCode::OK, "{page}");
    }
    assert!(read_until("event: feedback").await, "a live update");
    assert!(seen.contains(&format!("data: {accounting}")));
    drop(events);
    let get_page = |client: &reqwest::Client, path: &str| {
        let request = client.get(server.url(path));
        async move {
            let response = request.send().await.expect("page");
            let status = response.status();
            (status, response.text().await.expect("body"))
        }
    };
    let (status, html) = get_page(&client, "/dashboard/feedback").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let employee = server.employee_name(server.employee_of("Отдел учета", 0));
    let courtesy = table_rows(&html, "criterion-courtesy");
    assert_eq!(courtesy[0].0, employee, "{courtesy:?}");
    // (5 + 2) / 2 in every period column: both visits are of today.
    assert_eq!(courtesy[0].1, vec!["3.5000"; 6], "{courtesy:?}");
    assert_eq!(table_rows(&html, "submissions")[0].1[5], "2");
    assert_eq!(table_rows(&html, "thanks")[0].1[5], "1");
    let list = table_rows(&html, "feedback");
    assert_eq!(list.len(), 2, "{list:?}");
    let ratings: Vec<&str> = list.iter().map(|(_, cells)| cells[2].as_str()).collect();
    assert!(
        ratings.contains(&"Хорошо") && ratings.contains(&"Плохо"),
        "{ratings:?}"
    );
    assert!(
        html.contains("&#60;b&#62;грубо") && !html.contains("<b>грубо"),
        "escaped"
    );

    // Out of scope: nothing shows, and acting is "not found".
    let (other_client, other_csrf) = web_login(&server, &other, WEB_PASSWORD).await;
    let (status, other_html) = get_page(&other_client, "/dashboard/feedback").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!other_html.contains("Очень вежливо") && !other_html.contains(&employee));
    for path in [
        format!("/dashboard/feedback/{}/answer", bad.id),
        format!("/dashboard/feedback/{}/hide", bad.id),
    ] {
        let response = other_client
            .post(server.url(&path))
            .form(&[
                ("csrf", other_csrf.as_str()),
                ("answer", "Чужой ответ"),
                ("hidden", "1"),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }

    // An empty answer is refused at its form; a real one reaches the visitor's link.
    let answer_path = format!("/dashboard/feedback/{}/answer", bad.id);
    let refused = client
        .post(server.url(&answer_path))
        .form(&[
            ("csrf", csrf.as_str()),
            ("answer", "  "),
            ("back", "/dashboard/feedback"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused
            .text()
            .await
            .expect("page")
            .contains("Напишите ответ")
    );
    let answered = client
        .post(server.url(&answer_path))
        .form(&[
            ("csrf", csrf.as_str()),
            (
                "answer",
                "Приносим извинения, с сотрудником проведена беседа.",
            ),
            ("back", "/dashboard/feedback?undecided=1"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(answered.status(), StatusCode::SEE_OTHER);
    let (_, visitor) = get(&server, &token(&bad)).await;
    assert!(visitor.contains("Приносим извинения"), "{visitor}");
    let (_, unanswered) = get_page(&client, "/dashboard/feedback?undecided=1").await;
    let left = table_rows(&unanswered, "feedback");
    assert_eq!(left.len(), 1, "only the unanswered one: {left:?}");
    assert!(left[0].1[4].contains("Очень вежливо"), "{left:?}");

    // Hiding is reversible and audited; hidden, the comment is in neither page nor file.
    let hide = |hidden: &'static str| {
        let request = client
            .post(server.url(&format!("/dashboard/feedback/{}/hide", good.id)))
            .form(&[("csrf", csrf.as_str()), ("hidden", hidden)]);
        async move { request.send().await.expect("post").status() }
    };
    assert_eq!(hide("1").await, StatusCode::SEE_OTHER);
    let (_, html) = get_page(&client, "/dashboard/feedback").await;
    assert!(
        !html.contains("Очень вежливо") && html.contains("Комментарий скрыт"),
        "{html}"
    );
    let file = client
        .get(server.url("/dashboard/export?tab=feedback&table=feedback"))
        .send()
        .await
        .expect("export");
    assert_eq!(file.status(), StatusCode::OK);
    let sheet = read_xlsx(&file.bytes().await.expect("file"));
    let cells: Vec<&String> = sheet.iter().flatten().collect();
    assert!(
        !cells.iter().any(|c| c.contains("Очень вежливо")),
        "{sheet:?}"
    );
    assert!(
        cells.iter().any(|c| *c == hostile),
        "the formula stays text: {sheet:?}"
    );
    assert_eq!(hide("0").await, StatusCode::SEE_OTHER);
    let (_, html) = get_page(&client, "/dashboard/feedback").await;
    assert!(html.contains("Очень вежливо"));
    let (_, audit) = get_page(&admin, "/admin/audit").await;
    for action in [
        "Ответ на отзыв посетителя",
        "Скрытие комментария посетителя",
        "Показ скрытого комментария посетителя",
    ] {
        assert!(audit.contains(action), "{action} in the audit log");
    }
    // The file of a criteria table has the page's numbers.
    let file = client
        .get(server.url("/dashboard/export?tab=feedback&table=criterion-courtesy"))
        .send()
        .await
        .expect("export");
    let sheet = read_xlsx(&file.bytes().await.expect("file"));
    let row = sheet
        .iter()
        .find(|r| r[0] == employee)
        .expect("the employee's row");
    assert_eq!(&row[1..], &["3.5000"; 6]);

    // A specialist never sees it (another of the section's: the first has paired the tablet).
    let specialist = server
        .specialist(&admin, server.employee_of("Отдел учета", 1))
        .await;
    let (status, _) = get_page(&specialist, "/dashboard/feedback").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
