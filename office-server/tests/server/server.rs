//! Accounts, the OpenAPI document, HTTPS, error shapes, and fuzzing the sync endpoint through
//! HTTP: no input may produce a 500.

use proptest::prelude::*;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shared_model::Rating;
use test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_logout_and_throttling() {
    let app = spawn_app().await;
    let client = Client::builder().cookie_store(true).build().unwrap();
    let login = |login: &str, password: &str| {
        client
            .post(app.url("/api/auth/login"))
            .json(&json!({ "login": login, "password": password }))
            .send()
    };
    assert_eq!(
        client
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let ok = login(ADMIN_LOGIN, ADMIN_PASSWORD).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let me: Value = client
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["login"], ADMIN_LOGIN);
    assert_eq!(me["role"], "admin");
    let out = client
        .post(app.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        client
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // A wrong password and an unknown login get the same answer.
    let wrong = login(ADMIN_LOGIN, "not the password").await.unwrap();
    let unknown = login("nobody", "not the password").await.unwrap();
    assert_eq!(
        error_code(wrong).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
    assert_eq!(
        error_code(unknown).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );

    // Five attempts a minute per account: the sixth is refused even with the right password.
    for _ in 0..3 {
        login(ADMIN_LOGIN, "guess").await.unwrap();
    }
    let throttled = login(ADMIN_LOGIN, ADMIN_PASSWORD).await.unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "60");
    app.stop().await;
}

/// A login is normalised once (trimmed, lower-cased): however it is typed, it names one account
/// for sign-in, for creation and for the throttle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_names_one_account_however_it_is_typed() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let create = |login: &str| {
        admin
            .post(app.url("/api/admin/accounts"))
            .json(&json!({ "login": login, "display_name": "Наблюдатель", "password": WEB_PASSWORD, "role": "observer" }))
            .send()
    };
    assert_eq!(
        create(" Watcher ").await.unwrap().status(),
        StatusCode::CREATED
    );
    for taken in ["watcher", "WATCHER", "\twatcher\n"] {
        let (status, code) = error_code(create(taken).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::CONFLICT, "already_exists"),
            "{taken:?}"
        );
    }
    // Logins that would look like another account are refused at creation.
    let (status, _) = error_code(create("wаtcher").await.unwrap()).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a Cyrillic а in a Latin login"
    );

    let client = Client::new();
    let login = |login: &str, password: &str| {
        client
            .post(app.url("/api/auth/login"))
            .json(&json!({ "login": login, "password": password }))
            .send()
    };
    let me: Value = login("\nWATCHER\t", WEB_PASSWORD)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["login"], "watcher");
    // Four more attempts under other spellings use up the account's five a minute …
    for spelling in [" watcher", "watcher\t", "\nwatcher", "Watcher"] {
        let wrong = login(spelling, "not the password").await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{spelling:?}");
    }
    // … so the sixth is refused, even with the right password and yet another spelling.
    let throttled = login("WATCHER ", WEB_PASSWORD).await.unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_created_only_by_administrators_with_checked_input() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let create = |client: &Client, body: Value| {
        client
            .post(app.url("/api/admin/accounts"))
            .json(&body)
            .send()
    };
    let section = app.section("Отдел учета").id;
    let ok = create(&admin, json!({ "login": "head.uchet", "display_name": "Начальник", "password": "long enough password", "role": "head_of_section", "section_id": section })).await.unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    let head = app.login("head.uchet", "long enough password").await;
    let me: Value = head
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["scope"], json!({ "kind": "section", "id": section }));
    // A head cannot create accounts or read the whole directory.
    let by_head = create(&head, json!({ "login": "x12", "display_name": "X", "password": "long enough password", "role": "observer" })).await.unwrap();
    assert_eq!(by_head.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        head.get(app.url("/api/directory"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );

    for (body, status) in [
        (
            json!({ "login": "head.uchet", "display_name": "Дубль", "password": "long enough password", "role": "observer" }),
            StatusCode::CONFLICT,
        ),
        (
            json!({ "login": "ab", "display_name": "X", "password": "long enough password", "role": "observer" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "login": "short.pw", "display_name": "X", "password": "short", "role": "observer" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "login": "ghost", "display_name": "X", "password": "long enough password", "role": "specialist", "employee_id": 999_999 }),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({ "login": "norole", "display_name": "X", "password": "long enough password" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "login": "badrole", "display_name": "X", "password": "long enough password", "role": "king" }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let response = create(&admin, body.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{body}");
    }
    let directory: Value = admin
        .get(app.url("/api/directory"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(directory["departments"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_health_and_json_errors() {
    let app = spawn_app().await;
    let client = Client::new();
    let health = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let doc: Value = client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/tablet/enrolments",
        "/api/tablet/enrolments/{id}",
        "/api/tablet/pairing-codes",
        "/api/tablet/pairing-codes/{id}",
        "/api/tablet/pairing",
        "/api/tablet/pairing/end",
        "/api/tablet/sync",
        "/api/tablet/visits/{id}/recording",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["SyncBatch"].is_object());

    let missing = client.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(
        error_code(missing).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let bad_path = client
        .get(app.url("/api/tablet/enrolments/not-a-uuid"))
        .header("x-protocol-version", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(bad_path).await,
        (StatusCode::BAD_REQUEST, "bad_request".into())
    );
    let page = client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The public status page says that the server runs, and nothing of the organisation.
    assert!(page.contains("Сервер работает"), "{page}");
    assert!(!page.contains("Отдел учета"), "{page}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_when_given_a_certificate() {
    let (app, cert) = spawn_https_app().await;
    let root = reqwest::Certificate::from_pem(cert.as_bytes()).unwrap();
    let client = Client::builder()
        .tls_certs_only([root])
        .resolve("localhost", ([127, 0, 0, 1], 0).into())
        .cookie_store(true)
        .build()
        .unwrap();
    let health = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // Over HTTPS the session cookie is marked Secure.
    let login = client
        .post(app.url("/api/auth/login"))
        .json(&json!({ "login": ADMIN_LOGIN, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert!(
        login.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure")
    );
    // Plain HTTP to the TLS port is not served.
    let plain = Client::new()
        .get(
            app.url("/healthz")
                .replace("https://localhost", "http://127.0.0.1"),
        )
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
    app.stop().await;
}

/// HTTP fuzzing budget; the serde-level fuzzing in shared-model runs many more.
const HTTP_CASES: u32 = 300;

#[test]
fn sync_endpoint_never_fails_on_any_body() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, tablet, pairing) = runtime.block_on(async {
        let app = spawn_app().await;
        let (tablet, pairing) = app.paired_tablet("Окно 1", 0).await;
        (app, tablet, pairing)
    });
    let template = serde_json::to_string(&batch(
        jiff::Timestamp::now(),
        &[visit(&pairing, Some(Rating::Bad)), visit(&pairing, None)],
    ))
    .unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: HTTP_CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec((0..template.len(), any::<u8>()), 1..6).prop_map({
            let template = template.clone();
            move |flips| {
                let mut bytes = template.clone().into_bytes();
                for (at, value) in flips {
                    bytes[at] = value;
                }
                bytes
            }
        }),
    ];
    runner
        .run(&strategy, |body| {
            let status = runtime.block_on(async {
                tablet
                    .post("/api/tablet/sync")
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            });
            prop_assert!(
                status == StatusCode::OK || status.is_client_error(),
                "status {status}"
            );
            Ok(())
        })
        .unwrap();
    println!("sync endpoint fuzzing: {HTTP_CASES} bodies sent over HTTP, no 5xx");
    runtime.block_on(app.stop());
}
