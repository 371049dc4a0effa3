//! The server's log as a log collector reads it (`OFFICE_LOG_FORMAT=json`): one JSON object a
//! line, the request's id on every line logged while handling it — the same id the response
//! names in `X-Request-Id` —, and no secret of anyone's in it: passwords, codes, tokens.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_model::Rating;
use test_support::process::{ProcessOptions, ServerProcess};
use test_support::*;

const BINARY: &str = env!("CARGO_BIN_EXE_office-server");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_the_request_on_every_line_and_hold_no_secrets() {
    let options = ProcessOptions {
        env: vec![("OFFICE_LOG_FORMAT".into(), "json".into())],
        ..ProcessOptions::default()
    };
    let server = ServerProcess::start(Path::new(BINARY), &options);
    let app = server.server("http").await;
    let admin = app.admin().await;
    let plain = app.client_builder().build().unwrap();
    let waiting = app.start_enrolment(&plain, "a tablet that waits").await;
    let (tablet, pairing) = app
        .paired_tablet_with(&admin, "Отдел учета", "Окно 1", 0)
        .await;
    let answer = tablet.sync(&[visit(&pairing, Some(Rating::Bad))]).await;
    assert!(answer.results[0].outcome.is_stored());

    // A sign-in: its response names the request, and the line the sign-in logged carries it.
    let response = plain
        .post(app.url("/api/auth/login"))
        .json(&json!({ "login": ADMIN_LOGIN, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(id.len(), 36, "{id}");
    // What a client sends as its id is not taken.
    let forged = plain
        .get(app.url("/healthz"))
        .header("x-request-id", "forged")
        .send()
        .await
        .unwrap();
    assert_ne!(forged.headers()["x-request-id"], "forged");

    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..50 {
        lines = server
            .log()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect();
        if lines.iter().any(|l| l["span"]["id"] == id.as_str()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["id"] == id.as_str())
        .collect();
    assert!(
        of_request
            .iter()
            .any(|l| l["fields"]["message"] == "signed in"
                && l["span"]["route"] == "/api/auth/login"
                && l["span"]["method"] == "POST"),
        "no sign-in line of request {id}: {lines:#?}"
    );
    // Every line logged while a request was handled names it, with the route's pattern: the
    // enrolment's id (a secret of the tablet's) stays out of the route.
    for line in lines
        .iter()
        .filter(|l| l["fields"]["message"] != "serving HTTP")
    {
        assert!(
            line["span"]["id"].is_string(),
            "a line without its request: {line:#}"
        );
    }
    let route_of = |message: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == message)
            .map(|l| l["span"]["route"].clone())
    };
    assert_eq!(
        route_of("device credential issued"),
        Some(json!("/api/tablet/enrolments/{id}"))
    );
    assert_eq!(route_of("tablet paired"), Some(json!("/api/pairings")));

    let log = server.log();
    for secret in [
        ADMIN_PASSWORD,
        waiting.code.as_str(),
        &waiting.enrolment_id.to_string(),
        tablet.token.as_str(),
    ] {
        assert!(!log.contains(secret), "the log holds {secret:?}");
    }
}
