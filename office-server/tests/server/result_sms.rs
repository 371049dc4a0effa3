//! «Результат готов» through a real Kannel (bearerbox + smsbox started by the harness): the
//! visitor leaves a number on the link, the specialist gives the visit a case number, the
//! result is marked ready, and the phone gets exactly one message — the exact UCS-2 bytes of
//! the Russian text, the normalised number —; delivery reports reach the heads' page; the
//! gateway down, a request with no answer, and the hours outside the sending window.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use jiff::Timestamp;
use reqwest::{Client, StatusCode};
use shared_model::{FeedbackToken, Rating, Visit};
use test_support::{
    ADMIN_LOGIN, ADMIN_PASSWORD, KANNEL_PASSWORD, KANNEL_USER, SPECIALIST_PASSWORD, Tablet,
    TestKannel, TestServer, csrf_of, eventually, free_port, spawn_with_config, test_config, visit,
};
use uuid::Uuid;

use super::feedback::register;

const CASE_TOKEN: &str = "case-system-token-for-tests-only";
const OFFICE: &str = "МФЦ «Центральный»";

fn case_token_digest() -> String {
    hex::encode(office_server::auth::token_digest(CASE_TOKEN))
}

/// A server sending through `kannel_url` and the SMSC `smsc`, its reports coming back to it.
async fn server(
    kannel_url: &str,
    smsc: &str,
    adjust: impl FnOnce(&mut office_server::config::Config),
) -> TestServer {
    let temp = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut config = test_config(temp.path());
    config.listen = format!("127.0.0.1:{port}").parse().expect("address");
    // The server's own address: browsers' forms come from it.
    config.public_url = format!("http://127.0.0.1:{port}");
    config.time_zone = midday_zone();
    // The window always holds now, whenever the test runs.
    let now = Timestamp::now()
        .to_zoned_datetime(config.office_time_zone().expect("zone"))
        .time();
    let sms = &mut config.sms;
    sms.kannel_url = kannel_url.into();
    sms.username = KANNEL_USER.into();
    sms.password = office_server::config::Secret(KANNEL_PASSWORD.into());
    sms.smsc = smsc.into();
    sms.report_url = format!("http://127.0.0.1:{port}");
    sms.office_name = OFFICE.into();
    sms.sender = "MFC".into();
    sms.check_secs = 1;
    sms.retry_first_secs = 1;
    sms.retry_max_secs = 1;
    sms.max_attempts = 100;
    sms.send_from = now.saturating_sub(jiff::SignedDuration::from_hours(1));
    sms.send_until = now.saturating_add(jiff::SignedDuration::from_hours(1));
    if sms.send_from == sms.send_until {
        sms.send_until = now.saturating_add(jiff::SignedDuration::from_mins(30));
    }
    config.case_system.tokens_sha256 = vec![case_token_digest()];
    // The tests post wrong numbers on purpose; a visitor gets the feedback's budget.
    config.feedback.posts_per_link_per_minute = 20;
    adjust(&mut config);
    let mut server = spawn_with_config(config, true).await;
    server.keep_temp(temp);
    server
}

/// A fixed-offset zone where it is about noon now: "today" has begun long ago and lasts long
/// after, whenever the test runs.
fn midday_zone() -> String {
    let hour = i32::from(
        Timestamp::now()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .hour(),
    );
    let offset = 12 - hour;
    match offset {
        0 => "Etc/UTC".into(),
        east if east > 0 => format!("Etc/GMT-{east}"),
        west => format!("Etc/GMT+{}", -west),
    }
}

struct Visitor {
    token: String,
    visit: Visit,
}

/// A synced visit of a new specialist, with its signed feedback link.
async fn synced_visit(server: &TestServer, tablet_name: &str, index: usize) -> (Visitor, Tablet) {
    let (tablet, pairing) = server.paired_tablet(tablet_name, index).await;
    let key = SigningKey::from_bytes(&[index as u8 + 1; 32]);
    register(&tablet, &key).await.expect("links");
    let rated = visit(&pairing, Some(Rating::Bad));
    let synced = tablet.sync(std::slice::from_ref(&rated)).await;
    assert!(synced.results[0].outcome.is_stored(), "{synced:?}");
    let token = FeedbackToken {
        visit_id: rated.id,
        tablet_id: tablet.id,
    }
    .sign(&key);
    (
        Visitor {
            token,
            visit: rated,
        },
        tablet,
    )
}

fn plain(server: &TestServer) -> Client {
    server
        .client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn leave_number(
    server: &TestServer,
    token: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let response = plain(server)
        .post(server.url(&format!("/f/{token}/sms")))
        .form(form)
        .send()
        .await
        .expect("post");
    (response.status(), response.text().await.expect("page"))
}

/// Leaves `phone` with consent on the link, as a visitor does.
async fn number_left(server: &TestServer, token: &str, phone: &str) {
    let (status, page) = leave_number(server, token, &[("phone", phone), ("consent", "1")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
}

async fn link_page(server: &TestServer, token: &str) -> String {
    reqwest::get(server.url(&format!("/f/{token}")))
        .await
        .expect("link")
        .text()
        .await
        .expect("page")
}

/// A signed-in client for pages, and the CSRF token of `page`.
async fn web_session(
    server: &TestServer,
    login: &str,
    password: &str,
    page: &str,
) -> (Client, String) {
    let client = server.login(login, password).await;
    let html = client
        .get(server.url(page))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    (client, csrf_of(&html).expect("a form with a CSRF token"))
}

/// The pages of «Отдел учета»'s first specialist (who serves `synced_visit(…, 0)`), signed in,
/// and the CSRF token of their page.
async fn first_specialist(server: &TestServer) -> (Client, String) {
    let employee = server.employee_of("Отдел учета", 0);
    web_session(
        server,
        &format!("specialist{employee}"),
        SPECIALIST_PASSWORD,
        "/pairing",
    )
    .await
}

async fn case_ready(
    server: &TestServer,
    case: &str,
    token: &str,
) -> (StatusCode, serde_json::Value) {
    let response = plain(server)
        .post(server.url(&format!("/api/cases/{}/ready", case.replace('/', "%2F"))))
        .bearer_auth(token)
        .send()
        .await
        .expect("case ready");
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

async fn head_page(server: &TestServer) -> String {
    let admin = server.login(ADMIN_LOGIN, ADMIN_PASSWORD).await;
    admin
        .get(server.url("/dashboard/results"))
        .send()
        .await
        .expect("results page")
        .text()
        .await
        .expect("html")
}

fn message_states(server: &TestServer) -> Vec<(office_server::storage::SmsState, u32)> {
    server
        .storage()
        .sms_messages(&Default::default(), 100)
        .expect("messages")
        .into_iter()
        .map(|m| (m.state, m.attempts))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_gets_one_message_in_ucs2_with_the_case_number_and_the_normalised_number() {
    let kannel = TestKannel::start().await;
    let server = server(&kannel.sendsms_url, "loop", |_| {}).await;
    let (visitor, _tablet) = synced_visit(&server, "Окно 1", 0).await;

    // The link offers the SMS; bad numbers and a missing consent are refused clearly.
    let page = link_page(&server, &visitor.token).await;
    assert!(page.contains("class=\"sms-form\""), "{page}");
    for (form, expected) in [
        (
            vec![("phone", "привет"), ("consent", "1")],
            "Это не номер телефона",
        ),
        (
            vec![("phone", "+7 495 123-45-67"), ("consent", "1")],
            "мобильного телефона",
        ),
        (vec![("phone", "8 912 345-67-89")], "Отметьте согласие"),
    ] {
        let (status, page) = leave_number(&server, &visitor.token, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}: {page}");
        assert!(page.contains(expected), "{form:?}: {page}");
    }
    number_left(&server, &visitor.token, "8 (912) 345-67-89").await;
    let page = link_page(&server, &visitor.token).await;
    assert!(page.contains("+7 912 ***-**-89"), "shown masked: {page}");
    assert!(!page.contains("345-67"), "{page}");

    // The specialist's list: today's visit, its case number, never its rating.
    let (specialist, csrf) = first_specialist(&server).await;
    let mine = specialist
        .get(server.url("/pairing"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(mine.contains("Мои посещения сегодня"), "{mine}");
    assert!(mine.contains(&visitor.visit.id.to_string()), "{mine}");
    assert!(!mine.contains("Плохо") && !mine.contains("запис"), "{mine}");
    let case = "12-345/2026";
    let response = specialist
        .post(server.url(&format!("/pairing/visits/{}/case", visitor.visit.id)))
        .form(&[("csrf", csrf.as_str()), ("case_number", case)])
        .send()
        .await
        .expect("case number");
    assert!(response.status().is_success(), "{}", response.status());
    // Another specialist's visit is not there for them.
    let response = specialist
        .post(server.url(&format!("/pairing/visits/{}/ready", Uuid::now_v7())))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("ready");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // The case-management system: its token only.
    let (status, _) = case_ready(&server, case, "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = case_ready(&server, "no-such-case", CASE_TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = case_ready(&server, case, CASE_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["marked_now"], true);
    let (status, answer) = case_ready(&server, case, CASE_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["marked_now"], false, "once: {answer}");

    eventually(
        Duration::from_secs(20),
        "the message reaches the phone",
        || !kannel.received().is_empty(),
    )
    .await;
    let expected = format!("Результат по вашему обращению {case} готов. {OFFICE}");
    let received = kannel.received();
    assert_eq!(received[0].to, "+79123456789");
    assert_eq!(received[0].coding, 2, "UCS-2");
    assert_eq!(
        received[0].bytes,
        ucs2(&expected),
        "{:?}",
        received[0].text()
    );
    // Kannel's own acknowledgement comes back as a report; still exactly one message.
    eventually(Duration::from_secs(10), "the SMSC's report", || {
        message_states(&server) == vec![(office_server::storage::SmsState::Sent, 1)]
            && server
                .storage()
                .sms_messages(&Default::default(), 10)
                .expect("messages")[0]
                .reports
                .iter()
                .any(|r| r.status == 8)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(kannel.received().len(), 1, "never twice");
    let page = head_page(&server).await;
    assert!(
        page.contains("отправлено") && page.contains("принято оператором"),
        "{page}"
    );
    assert!(
        page.contains("+7 912 ***-**-89") && page.contains(case),
        "{page}"
    );
    assert!(!page.contains("345-67"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_delivery_report_is_recorded_shown_and_the_number_deleted() {
    let kannel = TestKannel::start().await;
    let server = server(&kannel.sendsms_url, "operator", |_| {}).await;
    let (visitor, _tablet) = synced_visit(&server, "Окно 1", 0).await;
    number_left(&server, &visitor.token, "+7 (999) 111-22-33").await;
    let (specialist, csrf) = first_specialist(&server).await;
    let response = specialist
        .post(server.url(&format!("/pairing/visits/{}/ready", visitor.visit.id)))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("ready");
    assert!(response.status().is_success(), "{}", response.status());

    eventually(Duration::from_secs(20), "delivered", || {
        message_states(&server) == vec![(office_server::storage::SmsState::Delivered, 1)]
    })
    .await;
    let taken = kannel.operator_messages();
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].0, "+79991112233");
    assert_eq!(
        taken[0].1,
        ucs2(&format!("Результат по вашему обращению готов. {OFFICE}"))
    );
    assert!(
        server
            .storage()
            .sms_consent(visitor.visit.id, Timestamp::now())
            .expect("consent")
            .is_none(),
        "the number is deleted once delivered"
    );
    let page = head_page(&server).await;
    assert!(page.contains("доставлено на телефон"), "{page}");
    assert!(page.contains("+7 999 ***-**-33"), "{page}");
    // A forged report is not taken.
    let id = server
        .storage()
        .sms_messages(&Default::default(), 1)
        .expect("messages")[0]
        .id;
    let forged = reqwest::get(server.url(&format!(
        "/api/sms/reports/{id}?key={}&type=2",
        "00".repeat(32)
    )))
    .await
    .expect("report");
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_down_then_back_sends_each_once_and_an_unanswered_request_is_not_resent() {
    let mut kannel = TestKannel::start().await;
    let server = server(&kannel.sendsms_url, "loop", |config| {
        config.sms.request_timeout_secs = 2;
    })
    .await;
    let mut visitors = Vec::new();
    for (index, phone) in ["8 912 000-00-01", "8 912 000-00-02", "8 912 000-00-03"]
        .into_iter()
        .enumerate()
    {
        let (visitor, _) = synced_visit(&server, &format!("Окно {index}"), index).await;
        number_left(&server, &visitor.token, phone).await;
        visitors.push(visitor);
    }
    let admin = server.login(ADMIN_LOGIN, ADMIN_PASSWORD).await;
    let csrf = csrf_of(
        &admin
            .get(server.url("/dashboard/results"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html"),
    )
    .expect("csrf");
    let ready_by_head = async |case: &str| {
        admin
            .post(server.url("/dashboard/results/ready"))
            .form(&[("csrf", csrf.as_str()), ("case_number", case)])
            .send()
            .await
            .expect("ready")
            .text()
            .await
            .expect("html")
    };
    for (index, visitor) in visitors.iter().enumerate() {
        server
            .storage()
            .set_case_number(visitor.visit.id, Some(&format!("A-{index}")))
            .expect("case number");
    }

    // Down: the messages wait and are tried again.
    kannel.stop_boxes();
    for index in 0..2 {
        let page = ready_by_head(&format!("A-{index}")).await;
        assert!(
            page.contains("SMS посетителю поставлено в очередь"),
            "{page}"
        );
    }
    eventually(Duration::from_secs(15), "tried again while down", || {
        message_states(&server).iter().all(|(state, attempts)| {
            *state == office_server::storage::SmsState::Pending && *attempts >= 2
        })
    })
    .await;
    assert!(kannel.received().is_empty());
    kannel.start_boxes().await;
    eventually(
        Duration::from_secs(20),
        "both sent once Kannel is back",
        || kannel.received().len() == 2,
    )
    .await;

    // No answer at all: smsbox frozen mid-request. The request may have gone through; it is
    // «не подтверждено» and never sent again by itself.
    kannel.freeze_smsbox(true);
    let page = ready_by_head("A-2").await;
    assert!(page.contains("поставлено в очередь"), "{page}");
    eventually(Duration::from_secs(20), "unconfirmed", || {
        message_states(&server).contains(&(office_server::storage::SmsState::Unconfirmed, 1))
    })
    .await;
    kannel.freeze_smsbox(false);
    // Whatever the frozen smsbox did with it, the server does not try again by itself.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let third = || {
        server
            .storage()
            .sms_messages(&Default::default(), 10)
            .expect("messages")
            .into_iter()
            .find(|m| m.case_number.as_deref() == Some("A-2"))
            .expect("the third message")
    };
    let waiting = third();
    assert_eq!(waiting.attempts, 1, "{waiting:?}");
    let to_third = |kannel: &TestKannel| {
        kannel
            .received()
            .iter()
            .filter(|r| r.to == "+79120000003")
            .count()
    };
    assert!(to_third(&kannel) <= 1);
    if waiting.state == office_server::storage::SmsState::Unconfirmed {
        // A person decides: the head sends it again from the page.
        let page = head_page(&server).await;
        assert!(page.contains("не подтверждено"), "{page}");
        assert!(page.contains(&format!("/dashboard/results/sms/{}/decide", waiting.id)));
        let response = admin
            .post(server.url(&format!("/dashboard/results/sms/{}/decide", waiting.id)))
            .form(&[("csrf", csrf.as_str()), ("resend", "1")])
            .send()
            .await
            .expect("decide");
        assert!(response.status().is_success(), "{}", response.status());
        eventually(
            Duration::from_secs(20),
            "sent again on the head's word",
            || third().attempts == 2 && to_third(&kannel) >= 1,
        )
        .await;
    }
    let received = kannel.received();
    let mut numbers: Vec<&str> = received.iter().map(|r| r.to.as_str()).collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers, ["+79120000001", "+79120000002", "+79120000003"]);
    for number in ["+79120000001", "+79120000002"] {
        assert_eq!(
            received.iter().filter(|r| r.to == number).count(),
            1,
            "exactly once after the gateway came back: {received:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_sending_hours_nothing_is_sent() {
    let kannel = TestKannel::start().await;
    let server = server(&kannel.sendsms_url, "loop", |config| {
        let now = Timestamp::now()
            .to_zoned_datetime(config.office_time_zone().expect("zone"))
            .time();
        // A window that has just closed.
        config.sms.send_from = now.saturating_sub(jiff::SignedDuration::from_hours(3));
        config.sms.send_until = now.saturating_sub(jiff::SignedDuration::from_mins(1));
        if config.sms.send_from == config.sms.send_until {
            config.sms.send_from = now.saturating_add(jiff::SignedDuration::from_mins(5));
            config.sms.send_until = now.saturating_add(jiff::SignedDuration::from_mins(10));
        }
    })
    .await;
    let (visitor, _) = synced_visit(&server, "Окно 1", 0).await;
    number_left(&server, &visitor.token, "8 912 345-67-89").await;
    server
        .storage()
        .set_case_number(visitor.visit.id, Some("B-1"))
        .expect("case number");
    let (status, _) = case_ready(&server, "B-1", CASE_TOKEN).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(kannel.received().is_empty());
    assert_eq!(
        message_states(&server),
        vec![(office_server::storage::SmsState::Pending, 0)],
        "waits for the window, untried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_visitor_leaves_and_deletes_a_number_for_their_own_visit_only() {
    use test_support::{
        PORTAL_LOGIN, PortalOptions, portal_sign_in, spawn_portal_app, visitor_browser,
    };
    let (server, portal) = spawn_portal_app(&PortalOptions::default(), |config, _| {
        // Never reached: nothing is marked ready here.
        config.sms.kannel_url = "http://127.0.0.1:9/cgi-bin/sendsms".into();
        config.sms.report_url = config.public_url.clone();
        config.feedback.posts_per_link_per_minute = 20;
    })
    .await;
    let (mine, _) = synced_visit(&server, "Окно 1", 0).await;
    let (other, _) = synced_visit(&server, "Окно 2", 1).await;
    let browser = visitor_browser();
    let callback = portal_sign_in(
        &browser,
        &server.url(&format!("/f/{}/account/sign-in", mine.token)),
        &portal,
        PORTAL_LOGIN,
    )
    .await;
    let response = browser.get(&callback).send().await.expect("callback");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let my = async || {
        browser
            .get(server.url("/my"))
            .send()
            .await
            .expect("my")
            .text()
            .await
            .expect("html")
    };
    let html = my().await;
    let id = mine.visit.id;
    assert!(
        html.contains(&format!("action=\"/my/visits/{id}/sms\"")),
        "{html}"
    );
    let csrf = csrf_of(&html).expect("csrf");
    let post = async |visit: Uuid, form: &[(&str, &str)]| {
        let response = browser
            .post(server.url(&format!("/my/visits/{visit}/sms")))
            .form(form)
            .send()
            .await
            .expect("post");
        (response.status(), response.text().await.expect("html"))
    };

    // No token, a wrong number, another person's visit: refused, nothing kept.
    let (status, _) = post(id, &[("phone", "89123456789"), ("consent", "1")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, html) = post(id, &[("csrf", &csrf), ("phone", "12345"), ("consent", "1")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(
        html.contains("Это не номер телефона") && html.contains("value=\"12345\""),
        "{html}"
    );
    let (status, _) = post(
        other.visit.id,
        &[("csrf", &csrf), ("phone", "89123456789"), ("consent", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        server
            .storage()
            .sms_consent(other.visit.id, Timestamp::now())
            .expect("consent")
            .is_none()
    );

    // Kept, shown masked; deleted on the visitor's word.
    let (status, _) = post(
        id,
        &[
            ("csrf", &csrf),
            ("phone", "+7 912 765-43-21"),
            ("consent", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let html = my().await;
    assert!(html.contains("+7 912 ***-**-21"), "{html}");
    assert!(!html.contains("765-43"), "{html}");
    let (status, _) = post(id, &[("csrf", &csrf), ("action", "delete")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        server
            .storage()
            .sms_consent(id, Timestamp::now())
            .expect("consent")
            .is_none()
    );
    assert!(!my().await.contains("***-**-21"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_marked_and_decided_only_within_scope_and_with_the_forms_token() {
    use test_support::{WEB_PASSWORD, create_account, web_login};
    // Nothing listens on port 9: the message cannot leave and, with one try allowed, waits
    // for a person.
    let server = server("http://127.0.0.1:9/cgi-bin/sendsms", "loop", |config| {
        config.sms.max_attempts = 1;
    })
    .await;
    let (visitor, _) = synced_visit(&server, "Окно 1", 0).await;
    number_left(&server, &visitor.token, "8 912 345-67-89").await;
    let admin = server.admin().await;
    let accounting = server.section("Отдел учета").id;
    let subsidies = server.section("Отдел субсидий").id;
    for (login, section) in [
        ("head.accounting", accounting),
        ("head.subsidies", subsidies),
    ] {
        create_account(
            &server,
            &admin,
            login,
            serde_json::json!({"role": "head_of_section", "section_id": section}),
        )
        .await;
    }
    create_account(
        &server,
        &admin,
        "observer",
        serde_json::json!({"role": "observer"}),
    )
    .await;

    // The specialist's case-number form needs its token.
    let (specialist, csrf) = first_specialist(&server).await;
    let case_form = server.url(&format!("/pairing/visits/{}/case", visitor.visit.id));
    let response = specialist
        .post(&case_form)
        .form(&[("case_number", "C-1")])
        .send()
        .await
        .expect("no token");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = specialist
        .post(&case_form)
        .form(&[("csrf", csrf.as_str()), ("case_number", "C-1 <b>")])
        .send()
        .await
        .expect("bad case");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .expect("html")
            .contains("буквы, цифры")
    );
    let response = specialist
        .post(&case_form)
        .form(&[("csrf", csrf.as_str()), ("case_number", "C-1")])
        .send()
        .await
        .expect("case");
    assert!(response.status().is_success(), "{}", response.status());

    // An observer has no such page; another section's head does not find the case.
    let (observer, _) = web_login(&server, "observer", WEB_PASSWORD).await;
    let response = observer
        .get(server.url("/dashboard/results"))
        .send()
        .await
        .expect("page");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let (other, other_csrf) = web_login(&server, "head.subsidies", WEB_PASSWORD).await;
    let response = other
        .post(server.url("/dashboard/results/ready"))
        .form(&[("csrf", other_csrf.as_str()), ("case_number", "C-1")])
        .send()
        .await
        .expect("ready");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        server
            .storage()
            .result_visit(visitor.visit.id)
            .expect("visit")
            .expect("stored")
            .result_ready_at
            .is_none()
    );

    // The section's own head marks it; the message fails (nothing answers) and waits.
    let (head, head_csrf) = web_login(&server, "head.accounting", WEB_PASSWORD).await;
    let page = head
        .post(server.url("/dashboard/results/ready"))
        .form(&[("csrf", head_csrf.as_str()), ("case_number", "C-1")])
        .send()
        .await
        .expect("ready")
        .text()
        .await
        .expect("html");
    assert!(page.contains("поставлено в очередь"), "{page}");
    eventually(Duration::from_secs(10), "refused and waiting", || {
        message_states(&server) == vec![(office_server::storage::SmsState::Failed, 1)]
    })
    .await;
    let id = server
        .storage()
        .sms_messages(&Default::default(), 1)
        .expect("messages")[0]
        .id;
    let decide = server.url(&format!("/dashboard/results/sms/{id}/decide"));
    let response = other
        .post(&decide)
        .form(&[("csrf", other_csrf.as_str()), ("resend", "0")])
        .send()
        .await
        .expect("decide");
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "outside scope");
    let response = head
        .post(&decide)
        .form(&[("resend", "0")])
        .send()
        .await
        .expect("decide");
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no token");
    let response = head
        .post(&decide)
        .form(&[("csrf", head_csrf.as_str()), ("resend", "0")])
        .send()
        .await
        .expect("decide");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        message_states(&server),
        vec![(office_server::storage::SmsState::Cancelled, 1)]
    );
    // Both are in the audit log, with who did them.
    let audited: Vec<_> = server
        .storage()
        .audit_log(100, None)
        .expect("audit")
        .into_iter()
        .filter(|entry| entry.visit_id == Some(visitor.visit.id))
        .map(|entry| (entry.action, entry.detail))
        .collect();
    assert!(
        audited.contains(&(
            office_server::storage::AuditAction::ResultReady,
            "C-1".into()
        )) && audited.contains(&(office_server::storage::AuditAction::SmsCancel, "C-1".into())),
        "{audited:?}"
    );
    // Decided once: it is no longer waiting for anyone.
    let response = head
        .post(&decide)
        .form(&[("csrf", head_csrf.as_str()), ("resend", "1")])
        .send()
        .await
        .expect("decide");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_a_phone_leaves_a_number_the_specialist_marks_ready_and_the_head_sees_it() {
    use test_support::browser::{Chromium, Window, click, save_screenshot, text_of, wait_for};
    let kannel = TestKannel::start().await;
    let server = server(&kannel.sendsms_url, "loop", |_| {}).await;
    let (visitor, _) = synced_visit(&server, "Окно 1", 0).await;
    let chromium = Chromium::start();

    // The visitor's phone: the number and the consent on the link's page.
    let phone = chromium
        .open(&Window {
            phone: true,
            russian: true,
            ..Window::new(360, 640)
        })
        .await;
    phone
        .goto(&server.url(&format!("/f/{}", visitor.token)))
        .await
        .expect("the link");
    wait_for(&phone, "#sms .sms-phone")
        .await
        .send_keys("8 912 345-67-89")
        .await
        .expect("number");
    click(&phone, "#sms .sms-consent").await;
    click(&phone, "#sms .sms-save").await;
    let shown = text_of(&phone, "#sms .sms-number").await;
    assert!(shown.contains("+7 912 ***-**-89"), "{shown}");
    save_screenshot(&phone, "visitor-sms-consent-360x640.png").await;

    // The specialist at their desk: the case number, then «Результат готов».
    let employee = server.employee_of("Отдел учета", 0);
    let desk = chromium.open(&Window::new(1280, 900)).await;
    let sign_in = async |login: &str, password: &str| {
        desk.goto(&server.url("/login"))
            .await
            .expect("sign-in page");
        super::browser::sign_in(&desk, login, password).await;
        text_of(&desk, "header").await;
    };
    sign_in(&format!("specialist{employee}"), SPECIALIST_PASSWORD).await;
    desk.goto(&server.url("/pairing")).await.expect("the page");
    let row = format!("#today tr[data-visit='{}']", visitor.visit.id);
    wait_for(&desk, &format!("{row} input[name=case_number]"))
        .await
        .send_keys("77-001")
        .await
        .expect("case number");
    click(&desk, &format!("{row} form.inline button.secondary")).await;
    assert!(
        text_of(&desk, "p.notice")
            .await
            .contains("Номер дела сохранён")
    );
    click(&desk, &format!("{row} td.result button")).await;
    assert!(
        text_of(&desk, &format!("{row} td.result"))
            .await
            .contains("готов")
    );
    let listed = text_of(&desk, "#today").await;
    assert!(!listed.contains("Плохо"), "{listed}");
    save_screenshot(&desk, "specialist-visits-today-1280x900.png").await;

    eventually(
        Duration::from_secs(20),
        "the message reaches the phone",
        || kannel.received().len() == 1,
    )
    .await;
    assert_eq!(
        kannel.received()[0].bytes,
        ucs2(&format!(
            "Результат по вашему обращению 77-001 готов. {OFFICE}"
        ))
    );

    // The administrator's «Результаты и SMS»: the message and Kannel's report.
    click(&desk, "form[action='/logout'] button").await;
    sign_in(ADMIN_LOGIN, ADMIN_PASSWORD).await;
    eventually(Duration::from_secs(10), "the report is in", || {
        server
            .storage()
            .sms_messages(&Default::default(), 1)
            .expect("messages")
            .first()
            .is_some_and(|m| !m.reports.is_empty())
    })
    .await;
    desk.goto(&server.url("/dashboard/results"))
        .await
        .expect("results");
    let table = text_of(&desk, "#messages").await;
    for expected in [
        "77-001",
        "+7 912 ***-**-89",
        "отправлено",
        "принято оператором",
    ] {
        assert!(table.contains(expected), "{expected}: {table}");
    }
    save_screenshot(&desk, "results-and-sms-1280x900.png").await;
    desk.close().await.expect("close");
    phone.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_specialist_reaches_their_visits_of_earlier_days_not_further_back_than_a_month() {
    let server = server("http://127.0.0.1:9/cgi-bin/sendsms", "loop", |_| {}).await;
    let (tablet, pairing) = server.paired_tablet("Окно 1", 0).await;
    let day = jiff::SignedDuration::from_hours(24);
    let yesterday = test_support::visit_at(&pairing, Timestamp::now() - day, None);
    let long_ago = test_support::visit_at(&pairing, Timestamp::now() - day * 40, None);
    let synced = tablet.sync(&[yesterday.clone(), long_ago.clone()]).await;
    assert!(
        synced.results.iter().all(|r| r.outcome.is_stored()),
        "{synced:?}"
    );

    let (specialist, csrf) = first_specialist(&server).await;
    let page = async |path: &str| {
        specialist
            .get(server.url(path))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html")
    };
    let today = page("/pairing").await;
    assert!(!today.contains(&yesterday.id.to_string()), "{today}");
    assert!(today.contains("id=\"previous-day\"") && !today.contains("id=\"next-day\""));
    let zone = office_server::Config {
        time_zone: midday_zone(),
        ..Default::default()
    }
    .office_time_zone()
    .expect("zone");
    let date = |at: Timestamp| at.to_zoned_datetime(zone.clone()).date().to_string();
    let earlier = page(&format!("/pairing?day={}", date(Timestamp::now() - day))).await;
    assert!(earlier.contains(&yesterday.id.to_string()), "{earlier}");
    assert!(earlier.contains("Мои посещения за") && earlier.contains("id=\"next-day\""));
    // Forty days back is not offered: today is shown instead.
    let far = page(&format!(
        "/pairing?day={}",
        date(Timestamp::now() - day * 40)
    ))
    .await;
    assert!(!far.contains(&long_ago.id.to_string()), "{far}");
    assert!(far.contains("Мои посещения сегодня"), "{far}");

    // A case number entered on yesterday's list comes back to it.
    let response = specialist
        .post(server.url(&format!("/pairing/visits/{}/case", yesterday.id)))
        .form(&[
            ("csrf", csrf.as_str()),
            ("case_number", "D-1"),
            ("day", &date(Timestamp::now() - day)),
        ])
        .send()
        .await
        .expect("case");
    // Followed to the list of that day, which shows the number.
    let back = response.url().to_string();
    assert!(
        back.contains(&format!("day={}", date(Timestamp::now() - day))),
        "{back}"
    );
    let html = response.text().await.expect("html");
    assert!(html.contains("value=\"D-1\""), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_case_system_gives_a_case_number_by_employee_and_time_then_marks_it_ready() {
    let server = server("http://127.0.0.1:9/cgi-bin/sendsms", "loop", |_| {}).await;
    let (visitor, _) = synced_visit(&server, "Окно 1", 0).await;
    let employee = server.employee_of("Отдел учета", 0);
    let give = async |case: &str, token: &str, body: serde_json::Value| {
        let response = plain(&server)
            .put(server.url(&format!("/api/cases/{}", case.replace('/', "%2F"))))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("give a case number");
        let status = response.status();
        (
            status,
            response
                .json::<serde_json::Value>()
                .await
                .unwrap_or_default(),
        )
    };
    let now = serde_json::json!({"employee_id": employee, "at": Timestamp::now()});
    let (status, _) = give("K-1", "wrong", now.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = give("K<1>", CASE_TOKEN, now.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = give("K-1", CASE_TOKEN, serde_json::json!({"employee": 1})).await;
    assert!(status.is_client_error(), "{status}");
    // No visit of this employee then (another employee; an hour later).
    let other = server.employee_of("Отдел учета", 1);
    let (status, _) = give(
        "K-1",
        CASE_TOKEN,
        serde_json::json!({"employee_id": other, "at": Timestamp::now()}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let later = Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let (status, _) = give(
        "K-1",
        CASE_TOKEN,
        serde_json::json!({"employee_id": employee, "at": later}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The visit that just ended gets it; again changes nothing; another number is refused.
    let (status, answer) = give("K-1/2026", CASE_TOKEN, now.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["visit_id"], visitor.visit.id.to_string());
    assert_eq!(answer["case_number"], "K-1/2026");
    let (status, _) = give("K-1/2026", CASE_TOKEN, now.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = give("K-2", CASE_TOKEN, now.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, answer) = case_ready(&server, "K-1/2026", CASE_TOKEN).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["visit_id"], visitor.visit.id.to_string());
    assert_eq!(answer["marked_now"], true);
}
