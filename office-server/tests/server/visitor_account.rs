//! The visitor's personal account against a running server and a real OpenID Connect provider
//! (npm's `oidc-provider` as a child process): the sign-in from the visitor's link, «Мои
//! посещения», the name heads in scope see (audited), detaching and deleting; tampered state,
//! a replayed answer, a wrong issuer, an expired code and a code for another client refused
//! with clear pages; visitor and staff sessions never mix, route by route.

use ed25519_dalek::SigningKey;
use reqwest::{Client, StatusCode};
use serde_json::json;
use shared_model::{FeedbackToken, Rating};
use test_support::{
    PORTAL_LOGIN, PORTAL_PERSON, PortalOptions, TestPortal, TestServer, WEB_PASSWORD,
    create_account, csrf_of, portal_sign_in, spawn_portal_app, visit, visitor_browser, web_login,
};
use uuid::Uuid;

use super::dashboard::read_xlsx;
use super::feedback::register;

/// A Плохо visit of «Отдел учета», synced, and its feedback link's token.
async fn bad_visit_with_link(server: &TestServer) -> (Uuid, String) {
    let (tablet, pairing) = server.paired_tablet_in("Отдел учета", "Окно 1", 0).await;
    let key = SigningKey::from_bytes(&[11; 32]);
    register(&tablet, &key).await.expect("links");
    let rated = visit(&pairing, Some(Rating::Bad));
    let synced = tablet.sync(std::slice::from_ref(&rated)).await;
    assert!(synced.results[0].outcome.is_stored(), "{synced:?}");
    let token = FeedbackToken {
        visit_id: rated.id,
        tablet_id: tablet.id,
    }
    .sign(&key);
    (rated.id, token)
}

async fn page(client: &Client, url: &str) -> (StatusCode, String) {
    let response = client.get(url).send().await.expect("page");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

/// Signs `browser` in from the link `token` as `login`; the callback's address.
async fn sign_in_from_link(
    server: &TestServer,
    portal: &TestPortal,
    browser: &Client,
    token: &str,
    login: &str,
) -> String {
    portal_sign_in(
        browser,
        &server.url(&format!("/f/{token}/account/sign-in")),
        portal,
        login,
    )
    .await
}

fn with_query(url: &str, name: &str, value: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).expect("an address");
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .filter(|(k, _)| k != name)
        .collect();
    parsed
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(name, value);
    parsed.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_keeps_a_visit_in_their_account_and_heads_in_scope_see_their_name() {
    let (server, portal) = spawn_portal_app(&PortalOptions::default(), |_, _| {}).await;
    let (visit_id, token) = bad_visit_with_link(&server).await;
    let browser = visitor_browser();

    // The link offers the account; the consent says what is kept and why.
    let (status, html) = page(&browser, &server.url(&format!("/f/{token}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("/f/{token}/account")), "{html}");
    let (status, html) = page(&browser, &server.url(&format!("/f/{token}/account"))).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("152-ФЗ") && html.contains("фамилию, имя и отчество"),
        "{html}"
    );
    assert!(html.contains("Согласен, войти через портал"), "{html}");

    let callback = sign_in_from_link(&server, &portal, &browser, &token, PORTAL_LOGIN).await;
    assert!(
        callback.starts_with(&server.url("/visitor/callback?")),
        "{callback}"
    );
    let response = browser.get(&callback).send().await.expect("callback");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        format!("/my#visit-{visit_id}")
    );
    let cookies: Vec<&str> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("visitor_session=") && c.contains("HttpOnly")),
        "{cookies:?}"
    );

    // «Мои посещения»: the visit with its section and service, в работе.
    let (status, html) = page(&browser, &server.url("/my")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(PORTAL_PERSON), "{html}");
    assert!(html.contains(&format!("id=\"visit-{visit_id}\"")), "{html}");
    assert!(
        html.contains("Отдел учета") && html.contains("в работе"),
        "{html}"
    );
    assert!(html.contains("Отзыв не отправлен"), "{html}");
    let visitor_csrf = csrf_of(&html).expect("the visitor's form token");

    // The same answer again (a replayed code, state and nonce) is refused: the sign-in is used.
    let (status, html) = page(&browser, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Начните вход заново"), "{html}");

    // Heads: the section's head sees the name; an administrator and an observer see ---.
    let admin = server.admin().await;
    let section = server.section("Отдел учета").id;
    let head = create_account(
        &server,
        &admin,
        "head.accounting",
        json!({"role": "head_of_section", "section_id": section}),
    )
    .await;
    let observer = create_account(&server, &admin, "observer", json!({"role": "observer"})).await;
    let (head, _) = web_login(&server, &head, WEB_PASSWORD).await;
    let (observer, _) = web_login(&server, &observer, WEB_PASSWORD).await;
    let row = |html: &str| {
        html.split(&format!("id=\"bad-{visit_id}\""))
            .nth(1)
            .and_then(|rest| rest.split("</tr>").next())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("the visit's row: {html}"))
    };
    for _ in 0..2 {
        let (status, html) = page(&head, &server.url("/dashboard/bad")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(row(&html).contains(PORTAL_PERSON), "{html}");
    }
    for client in [&admin, &observer] {
        let (_, html) = page(client, &server.url("/dashboard/bad")).await;
        let row = row(&html);
        assert!(!row.contains(PORTAL_PERSON) && row.contains("---"), "{row}");
    }
    let response = head
        .get(server.url("/dashboard/export?tab=bad&table=bad"))
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), StatusCode::OK);
    let sheet = read_xlsx(&response.bytes().await.expect("xlsx"));
    assert!(
        sheet
            .iter()
            .any(|cells| cells.iter().any(|c| c == PORTAL_PERSON)),
        "{sheet:?}"
    );
    // Each showing is audited once per head, visit and session (page reloads are one).
    let shown: Vec<_> = server
        .storage()
        .audit_log(100, None)
        .expect("audit log")
        .into_iter()
        .filter(|e| e.action == office_server::storage::AuditAction::VisitorShown)
        .collect();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0].visit_id, Some(visit_id));
    assert_eq!(shown[0].account_login, "head.accounting");

    // Detach: the visit leaves the account, and the head sees --- again.
    let response = browser
        .post(server.url(&format!("/my/visits/{visit_id}/detach")))
        .header("origin", &server.base)
        .form(&[("csrf", visitor_csrf.as_str())])
        .send()
        .await
        .expect("detach");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&browser, &server.url("/my")).await;
    assert!(!html.contains(&format!("visit-{visit_id}")), "{html}");
    let (_, html) = page(&head, &server.url("/dashboard/bad")).await;
    assert!(row(&html).contains("---"));
    // Detaching what is not theirs: not found.
    let response = browser
        .post(server.url(&format!("/my/visits/{}/detach", Uuid::new_v4())))
        .header("origin", &server.base)
        .form(&[("csrf", visitor_csrf.as_str())])
        .send()
        .await
        .expect("detach");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // Signed in already: the link attaches the visit with one form, no second sign-in.
    let (_, html) = page(&browser, &server.url(&format!("/f/{token}/account"))).await;
    assert!(html.contains("id=\"attach\""), "{html}");
    let response = browser
        .post(server.url(&format!("/f/{token}/account")))
        .header("origin", &server.base)
        .form(&[("csrf", visitor_csrf.as_str())])
        .send()
        .await
        .expect("attach");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, html) = page(&browser, &server.url("/my")).await;
    assert!(html.contains(&format!("visit-{visit_id}")), "{html}");

    // A stale or foreign form changes nothing.
    let response = browser
        .post(server.url("/my/delete"))
        .header("origin", "http://evil.example")
        .form(&[("csrf", visitor_csrf.as_str()), ("confirm", "1")])
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = browser
        .post(server.url("/my/delete"))
        .header("origin", &server.base)
        .form(&[("csrf", "wrong"), ("confirm", "1")])
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Withdrawal of consent: the person goes, the visit and the statistics stay.
    let response = browser
        .post(server.url("/my/delete"))
        .header("origin", &server.base)
        .form(&[("csrf", visitor_csrf.as_str()), ("confirm", "1")])
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .expect("page")
            .contains("Данные удалены")
    );
    let (_, html) = page(&browser, &server.url("/my")).await;
    assert!(html.contains("id=\"sign-in\""), "signed out: {html}");
    assert!(server.visit(visit_id).is_some(), "the visit stays");
    assert_eq!(
        server
            .storage()
            .visitor_names(&[visit_id])
            .expect("names")
            .len(),
        0
    );
    let (_, html) = page(&head, &server.url("/dashboard/bad")).await;
    assert!(row(&html).contains("---"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_replayed_expired_and_foreign_answers_are_refused_with_clear_pages() {
    let options = PortalOptions { code_ttl_secs: 2 };
    let (server, portal) = spawn_portal_app(&options, |_, _| {}).await;
    let (_, token) = bad_visit_with_link(&server).await;

    // Tampered state: refused; the genuine answer still works afterwards.
    let browser = visitor_browser();
    let callback = sign_in_from_link(&server, &portal, &browser, &token, PORTAL_LOGIN).await;
    let (status, html) = page(&browser, &with_query(&callback, "state", "forged-state")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Начните вход заново"), "{html}");
    // (The refused answer ended the sign-in cookie; a browser that kept it carries on.)
    let genuine = visitor_browser();
    let callback = sign_in_from_link(&server, &portal, &genuine, &token, PORTAL_LOGIN).await;
    let (status, html) = page(
        &genuine,
        &with_query(&callback, "iss", "http://evil.example"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a wrong iss: {html}");
    assert!(html.contains("не от портала"), "{html}");
    // That answer was used up by the refusal: the same code and state cannot come back.
    let (status, _) = page(&genuine, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // An answer from another browser (no sign-in cookie there): refused.
    let first = visitor_browser();
    let callback = sign_in_from_link(&server, &portal, &first, &token, PORTAL_LOGIN).await;
    let (status, html) = page(&visitor_browser(), &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");

    // An expired code: the portal refuses it at the exchange.
    let late = visitor_browser();
    let callback = sign_in_from_link(&server, &portal, &late, &token, PORTAL_LOGIN).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, html) = page(&late, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("код входа устарел"), "{html}");

    // A code issued to another client of the portal, brought back with this browser's state.
    let foreign = visitor_browser();
    let response = foreign
        .get(server.url(&format!("/f/{token}/account/sign-in")))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("sign-in link");
    let authorize = response.headers()["location"]
        .to_str()
        .expect("address")
        .to_string();
    let other_client = with_query(&authorize, "client_id", "other");
    let callback = portal_sign_in(&foreign, &other_client, &portal, PORTAL_LOGIN).await;
    assert!(callback.contains("code="), "{callback}");
    let (status, html) = page(&foreign, &callback).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("выдан не этому сайту"), "{html}");
    let (_, html) = page(&foreign, &server.url("/my")).await;
    assert!(html.contains("id=\"sign-in\""), "not signed in: {html}");

    // The portal ended the sign-in (the visitor cancelled): a clear page.
    let cancelled = visitor_browser();
    let response = cancelled
        .get(server.url("/my/sign-in"))
        .send()
        .await
        .expect("sign-in");
    let authorize = response.headers()["location"].to_str().expect("address");
    let state = reqwest::Url::parse(authorize)
        .expect("address")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("a state");
    let (status, html) = page(
        &cancelled,
        &server.url(&format!(
            "/visitor/callback?error=access_denied&state={state}"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Вход отменён"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_names_another_issuer_is_not_used() {
    // The office is told the portal is `localhost`; the provider there calls itself
    // 127.0.0.1: its discovery document is refused, nobody is sent to it.
    let (server, _portal) = spawn_portal_app(&PortalOptions::default(), |config, portal| {
        config.portal.issuer = format!("http://localhost:{}", portal.port);
    })
    .await;
    let (status, html) = page(&visitor_browser(), &server.url("/my/sign-in")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{html}");
    assert!(html.contains("Портал города сейчас недоступен"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_from_one_address_are_limited() {
    let (server, _portal) = spawn_portal_app(&PortalOptions::default(), |config, _| {
        config.portal.sign_ins_per_address_per_minute = 2;
    })
    .await;
    let browser = visitor_browser();
    for _ in 0..2 {
        let response = browser
            .get(server.url("/my/sign-in"))
            .send()
            .await
            .expect("sign-in");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let (status, html) = page(&browser, &server.url("/my/sign-in")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_under_way_are_capped_from_everywhere() {
    let (server, _portal) = spawn_portal_app(&PortalOptions::default(), |config, _| {
        config.portal.max_pending_sign_ins = 2;
    })
    .await;
    for _ in 0..2 {
        let response = visitor_browser()
            .get(server.url("/my/sign-in"))
            .send()
            .await
            .expect("sign-in");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let (status, html) = page(&visitor_browser(), &server.url("/my/sign-in")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert!(html.contains("Попробуйте через несколько минут"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_from_a_link_elsewhere_stops_at_the_consent_page() {
    let (server, portal) = spawn_portal_app(&PortalOptions::default(), |_, _| {}).await;
    let (visit_id, token) = bad_visit_with_link(&server).await;
    let sign_in = server.url(&format!("/f/{token}/account/sign-in"));
    // Another site's link or image, an address typed in, a client that says nothing.
    for headers in [
        vec![("sec-fetch-site", "cross-site".to_string())],
        vec![("sec-fetch-site", "same-site".to_string())],
        vec![("sec-fetch-site", "none".to_string())],
        vec![("referer", "http://evil.example/page".to_string())],
        vec![],
    ] {
        let mut request = visitor_browser().get(&sign_in);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("sign-in");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{headers:?}");
        assert_eq!(
            response.headers()["location"],
            format!("/f/{token}/account").as_str(),
            "{headers:?}"
        );
        assert!(
            response.headers().get("set-cookie").is_none(),
            "{headers:?}"
        );
    }
    // From the consent page itself (an older browser: its Referer) it goes to the portal.
    let browser = visitor_browser();
    let response = browser
        .get(&sign_in)
        .header("referer", server.url(&format!("/f/{token}/account")))
        .send()
        .await
        .expect("sign-in");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to_portal = response.headers()["location"].to_str().expect("an address");
    assert!(to_portal.starts_with(&portal.issuer), "{to_portal}");
    let back = portal_sign_in(&browser, to_portal, &portal, PORTAL_LOGIN).await;
    let response = browser.get(&back).send().await.expect("callback");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        format!("/my#visit-{visit_id}").as_str()
    );
}

#[tokio::test]
async fn without_a_portal_the_account_pages_are_not_found() {
    let server = test_support::spawn_public_app().await;
    for path in ["/my", "/my/sign-in", "/visitor/callback?state=x&code=y"] {
        let (status, html) = page(&visitor_browser(), &server.url(path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {html}");
    }
}

/// Every staff route, as (method, path): pages, files, the live stream and the JSON API.
const STAFF_ROUTES: &[(&str, &str)] = &[
    ("GET", "/dashboard"),
    ("GET", "/dashboard/department"),
    ("GET", "/dashboard/bad"),
    ("POST", "/dashboard/bad/{visit}/verdict"),
    ("GET", "/dashboard/recordings/{visit}"),
    ("GET", "/dashboard/feedback"),
    ("POST", "/dashboard/feedback/{visit}/answer"),
    ("POST", "/dashboard/feedback/{visit}/hide"),
    ("GET", "/dashboard/export?tab=bad&table=bad"),
    ("GET", "/dashboard/events"),
    ("GET", "/dashboard/alerts"),
    ("POST", "/dashboard/alerts/1/acknowledge"),
    ("GET", "/pairing"),
    ("POST", "/pairing"),
    ("POST", "/pairing/{visit}/end"),
    ("POST", "/logout"),
    ("GET", "/admin"),
    ("GET", "/admin/directory"),
    ("POST", "/admin/departments"),
    ("POST", "/admin/departments/1"),
    ("POST", "/admin/sections"),
    ("POST", "/admin/sections/1"),
    ("POST", "/admin/sections/1/services"),
    ("POST", "/admin/employees"),
    ("POST", "/admin/employees/1"),
    ("POST", "/admin/services"),
    ("POST", "/admin/services/1"),
    ("GET", "/admin/accounts"),
    ("POST", "/admin/accounts"),
    ("POST", "/admin/accounts/1/password"),
    ("GET", "/admin/tablets"),
    ("POST", "/admin/tablets/enrol"),
    ("POST", "/admin/tablets/1/rename"),
    ("POST", "/admin/tablets/1/revoke"),
    ("GET", "/admin/audit"),
    ("GET", "/api/auth/me"),
    ("POST", "/api/auth/logout"),
    ("GET", "/api/pairings"),
    ("POST", "/api/pairings"),
    ("POST", "/api/pairings/{visit}/end"),
    ("GET", "/api/directory"),
    ("POST", "/api/admin/accounts"),
    ("POST", "/api/admin/enrolments"),
    ("GET", "/api/admin/tablets"),
    ("POST", "/api/admin/tablets/1/revoke"),
];

/// Every route of the visitor's account that needs its session.
const VISITOR_ROUTES: &[(&str, &str)] = &[
    ("GET", "/my"),
    ("POST", "/my/visits/{visit}/detach"),
    ("POST", "/my/delete"),
    ("POST", "/my/logout"),
    ("POST", "/f/{token}/account"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitor_and_staff_sessions_never_mix_route_by_route() {
    let (server, portal) = spawn_portal_app(&PortalOptions::default(), |_, _| {}).await;
    let (visit_id, token) = bad_visit_with_link(&server).await;
    let visitor = visitor_browser();
    let callback = sign_in_from_link(&server, &portal, &visitor, &token, PORTAL_LOGIN).await;
    let response = visitor.get(&callback).send().await.expect("callback");
    let visitor_token = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("visitor_session="))
        .and_then(|c| c.split(';').next())
        .expect("a visitor session")
        .to_string();
    let (_, html) = page(&visitor, &server.url("/my")).await;
    let visitor_csrf = csrf_of(&html).expect("the visitor's form token");

    // The administrator's session token, from the sign-in's cookie.
    let staff = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = staff
        .post(server.url("/api/auth/login"))
        .json(
            &json!({"login": test_support::ADMIN_LOGIN, "password": test_support::ADMIN_PASSWORD}),
        )
        .send()
        .await
        .expect("login");
    let staff_token = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("office_session="))
        .and_then(|c| c.split(';').next())
        .expect("a staff session")
        .to_string();
    let fill = |path: &str| {
        server.url(
            &path
                .replace("{visit}", &visit_id.to_string())
                .replace("{token}", &token),
        )
    };
    let send = |method: &str, url: String, cookie: String, csrf: &str| {
        let request = if method == "GET" {
            staff.get(url)
        } else {
            staff
                .post(url)
                .header("origin", &server.base)
                .form(&[("csrf", csrf), ("confirm", "1")])
        };
        request.header("cookie", cookie).send()
    };

    // A visitor's cookie, under its own name or the staff's, opens no staff route.
    for &(method, path) in STAFF_ROUTES {
        for cookie in [
            format!("visitor_session={visitor_token}"),
            format!("office_session={visitor_token}"),
        ] {
            let response = send(method, fill(path), cookie.clone(), &visitor_csrf)
                .await
                .expect("request");
            let status = response.status();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            // Signing out nobody is allowed, and does nothing.
            let signing_out = path.ends_with("logout") && status == StatusCode::NO_CONTENT;
            assert!(
                signing_out
                    || status == StatusCode::UNAUTHORIZED
                    || status == StatusCode::FORBIDDEN
                    || (status == StatusCode::SEE_OTHER && location.starts_with("/login")),
                "{method} {path} with {cookie:.20}: {status} {location}"
            );
        }
    }
    // A staff cookie, under its own name or the visitor's, is nobody on the visitor's routes.
    for &(method, path) in VISITOR_ROUTES {
        for cookie in [
            format!("office_session={staff_token}"),
            format!("visitor_session={staff_token}"),
        ] {
            let response = send(method, fill(path), cookie.clone(), "")
                .await
                .expect("request");
            let status = response.status();
            let body = response.text().await.expect("body");
            assert!(
                !body.contains(PORTAL_PERSON) && !body.contains("id=\"visit-"),
                "{method} {path} with {cookie:.20}: {status} {body}"
            );
            if method == "GET" {
                assert!(body.contains("id=\"sign-in\""), "{path}: {body}");
            } else {
                // Sent back to sign in (or told they are signed out): nothing done.
                assert!(
                    status == StatusCode::SEE_OTHER || status == StatusCode::OK,
                    "{method} {path}: {status} {body}"
                );
            }
        }
    }
    // Nothing was changed by all that: the visitor's account is whole.
    let (_, html) = page(&visitor, &server.url("/my")).await;
    assert!(html.contains(&format!("id=\"visit-{visit_id}\"")), "{html}");
    assert!(html.contains(PORTAL_PERSON));
}

/// In headless Chromium on a 360×640 phone: from the feedback link to the consent, through the
/// portal's own sign-in page and back to «Мои посещения» (the visit, the feedback, the
/// office's answer); the head of the section sees the visitor's name in «Анализ оценок
/// "Плохо"»; the visitor detaches the visit and deletes their data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_sign_in_in_a_phone_browser() {
    use test_support::browser::{
        Chromium, Window, click, save_screenshot, text_containing, text_of, wait_for,
    };

    let (server, _portal) = spawn_portal_app(&PortalOptions::default(), |_, _| {}).await;
    let (visit_id, token) = bad_visit_with_link(&server).await;
    // The visitor sent feedback from the link, and the head answered it.
    let response = visitor_browser()
        .post(server.url(&format!("/f/{token}")))
        .header("origin", &server.base)
        .form(&[
            ("score_courtesy", "2"),
            ("comment", "Долго ждал, сотрудник торопился."),
        ])
        .send()
        .await
        .expect("feedback");
    assert_eq!(response.status(), StatusCode::OK);
    let admin = server.admin().await;
    let head_login = create_account(
        &server,
        &admin,
        "head.accounting",
        json!({"role": "head_of_section", "section_id": server.section("Отдел учета").id}),
    )
    .await;
    let (head, head_csrf) = web_login(&server, &head_login, WEB_PASSWORD).await;
    let response = head
        .post(server.url(&format!("/dashboard/feedback/{visit_id}/answer")))
        .header("origin", &server.base)
        .form(&[
            ("csrf", head_csrf.as_str()),
            ("answer", "Спасибо за отзыв: мы добавили окно приема."),
            ("back", "/dashboard/feedback"),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let chromium = Chromium::start();
    let phone = chromium
        .open(&Window {
            phone: true,
            russian: true,
            ..Window::new(360, 640)
        })
        .await;
    phone
        .goto(&server.url(&format!("/f/{token}")))
        .await
        .expect("the link");
    click(&phone, "#account-link").await;
    assert!(text_of(&phone, "#consent").await.contains("152-ФЗ"));
    click(&phone, "#sign-in").await;
    // The portal's own sign-in page.
    wait_for(&phone, "input[name=login]")
        .await
        .send_keys(PORTAL_LOGIN)
        .await
        .expect("login");
    wait_for(&phone, "input[name=password]")
        .await
        .send_keys("any password")
        .await
        .expect("password");
    click(&phone, "button[type=submit]").await;
    assert_eq!(text_of(&phone, "#visitor-name").await, PORTAL_PERSON);
    let article = format!("#visit-{visit_id}");
    let shown = text_of(&phone, &article).await;
    for expected in [
        "Отдел учета",
        "в работе",
        "Долго ждал",
        "добавили окно приема",
    ] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    // The page opened at the visit just attached; the picture shows it from its top.
    test_support::browser::script(&phone, "window.scrollTo(0, 0)").await;
    save_screenshot(&phone, "visitor-my-visits-360x640.png").await;

    // The head sees who it was.
    let desk = chromium.open(&Window::new(1280, 900)).await;
    desk.goto(&server.url("/login"))
        .await
        .expect("sign-in page");
    wait_for(&desk, "input[name=login]")
        .await
        .send_keys(&head_login)
        .await
        .expect("login");
    wait_for(&desk, "input[name=password]")
        .await
        .send_keys(WEB_PASSWORD)
        .await
        .expect("password");
    click(&desk, "form.login button").await;
    text_of(&desk, "header").await;
    desk.goto(&server.url("/dashboard/bad"))
        .await
        .expect("the analysis");
    let visitor = text_of(&desk, &format!("#bad-{visit_id} td.visitor")).await;
    assert_eq!(visitor, PORTAL_PERSON);
    save_screenshot(&desk, "bad-analysis-visitor-1280x900.png").await;
    desk.close().await.expect("close");

    // Detach, then withdraw consent.
    click(&phone, &format!("{article} button.detach")).await;
    text_of(&phone, "#empty").await;
    click(&phone, "#delete-confirm").await;
    click(&phone, "#delete-account").await;
    text_containing(&phone, "h1", "Данные удалены").await;
    phone.goto(&server.url("/my")).await.expect("/my");
    text_of(&phone, "#sign-in").await;
    phone.close().await.expect("close");
    assert!(server.visit(visit_id).is_some(), "the visit stays");
}
