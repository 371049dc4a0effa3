//! The hostile-client suite: the server tried as an attacker would, each finding of the
//! hardening issues with a test against the real server (in-process on port 0, or the real
//! binary in a child process where the process itself matters: file limits, signals, logs).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::{Client, StatusCode, redirect};
use serde_json::{Value, json};
use shared_model::{EnrolmentStatus, Rating};
use test_support::process::{ProcessOptions, ServerProcess};
use test_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BINARY: &str = env!("CARGO_BIN_EXE_office-server");
const RECORDING: &[u8] = test_support::fixtures::VISIT_3GPP;
const ACCOUNTING: &str = "Отдел учета";

fn binary() -> &'static std::path::Path {
    std::path::Path::new(BINARY)
}

/// A client that acts like a browser on this site's forms: it keeps cookies, does not follow
/// redirects (the test reads them) and sends the `Origin` a browser sends with a form.
fn browser_like(builder: reqwest::ClientBuilder) -> Client {
    builder
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// The sign-in form's CSRF token (and its cookie, kept by the client).
async fn login_csrf(client: &Client, base: &str) -> String {
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].to_string()
}

/// Signs in through the form, as a browser of `origin` would; returns the response.
async fn form_sign_in(
    client: &Client,
    base: &str,
    origin: &str,
    login: &str,
    password: &str,
    next: &str,
) -> reqwest::Response {
    let csrf = login_csrf(client, base).await;
    client
        .post(format!("{base}/login"))
        .header("origin", origin)
        .form(&[
            ("login", login),
            ("password", password),
            ("next", next),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

// --- 1. slow and idle connections ------------------------------------------------------------

/// 300 connections that send half a request and stop, against the real binary under
/// `ulimit -n 256`: every one is closed within the header timeout, and `/healthz` answers
/// throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_are_closed_and_health_answers_throughout() {
    let server = ServerProcess::start(
        binary(),
        &ProcessOptions {
            config: "[network]\nheader_read_timeout_secs = 2\nmax_connections = 200\n\
                     max_connections_per_address = 100\n"
                .into(),
            file_limit: Some(256),
            ..ProcessOptions::default()
        },
    );
    let addr: SocketAddr = server.addr.parse().unwrap();
    let started = Instant::now();
    let mut attackers = Vec::new();
    for _ in 0..300 {
        // From another loopback address than the health checks, as another client would be.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        match socket.connect(addr).await {
            Ok(mut stream) => {
                let _ = stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Pad: ")
                    .await;
                attackers.push(stream);
            }
            Err(_) => continue,
        }
    }
    let health = Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut answered = 0;
    while started.elapsed() < Duration::from_secs(4) {
        let response = health
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("/healthz failed after {:?}: {e}", started.elapsed()));
        assert_eq!(response.status(), StatusCode::OK);
        answered += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(answered >= 10, "{answered} health checks");
    // Every half-open connection has been closed by now (EOF or reset), none left hanging.
    let mut still_open = 0;
    for stream in &mut attackers {
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            // A 408 is an answer and then a close.
            Ok(Ok(_)) => {}
            Err(_) => still_open += 1,
        }
    }
    assert_eq!(
        still_open,
        0,
        "{still_open} of {} half-open connections still open after {:?}",
        attackers.len(),
        started.elapsed()
    );
}

/// The connection caps: in all, whatever the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_total_cap_are_closed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.network.max_connections = 5;
    let app = spawn_with_config(config, true).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    // Six connections at once: the kernel accepts all six, the server admits five (whichever
    // it accepts first; the acceptor runs concurrently) and closes the other without a word.
    let mut streams = Vec::new();
    for _ in 0..6 {
        streams.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let mut held = Vec::new();
    let mut closed = 0;
    for mut stream in streams {
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) => {
                assert!(buf.starts_with(b"HTTP/1.1 200"), "{buf:?}");
                held.push(stream);
            }
            Err(_) => panic!("a connection was neither served nor closed"),
        }
    }
    assert_eq!((held.len(), closed), (5, 1), "(served, closed)");
    // A place freed is a place taken; the served connections are kept alive, so they still
    // hold theirs.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = Client::new().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(held);
    app.stop().await;
}

/// Behind a trusted proxy, one client's requests in progress are capped, not the proxy's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_progress_are_capped_per_forwarded_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.network.max_requests_per_client = 2;
    config.trusted_proxies = vec!["127.0.0.1".into()];
    let app = spawn_with_config(config, true).await;
    let admin = app.admin().await;
    let login = create_account(&app, &admin, "observer", json!({"role": "observer"})).await;
    let (client, _) = web_login(&app, &login, WEB_PASSWORD).await;
    let stream = async |client: &Client, forwarded: &str| {
        client
            .get(app.url("/dashboard/events"))
            .header("x-forwarded-for", forwarded)
            .send()
            .await
            .unwrap()
    };
    // Two live streams are two requests in progress for 203.0.113.7 …
    let first = stream(&client, "203.0.113.7").await;
    let second = stream(&client, "203.0.113.7").await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    // … so a third is refused, while another client behind the same proxy is served.
    let third = stream(&client, "203.0.113.7").await;
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(
        stream(&client, "198.51.100.9").await.status(),
        StatusCode::OK
    );
    // A finished stream frees its place.
    drop(first);
    let again = wait_until_async(Duration::from_secs(3), async || {
        stream(&client, "203.0.113.7").await.status() == StatusCode::OK
    })
    .await;
    assert!(again, "the place of a closed stream was not freed");
    drop(second);
    app.stop().await;
}

// --- 2. every delivery of recording bytes is audited ----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_that_delivers_recording_bytes_is_audited_once_per_session() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet("desk 1", 0).await;
    let bad = visit(&pairing, Some(Rating::Bad));
    tablet.sync(std::slice::from_ref(&bad)).await;
    tablet.upload_recording(&bad, RECORDING).await;
    let admin = app.admin().await;
    let audited = |action: &'static str| {
        let storage = app.storage();
        storage
            .audit_log(100, None)
            .unwrap()
            .into_iter()
            .filter(|e| e.action.as_str() == action && e.visit_id == Some(bad.id))
            .count()
    };
    let size = RECORDING.len();
    let mut sessions = 0;
    for (query, action) in [("?download", "download"), ("", "play")] {
        // Each range form, in a fresh session: every one of them delivers bytes.
        for range in [
            format!("bytes=-{size}"),
            "bytes=1-".to_string(),
            "bytes=100-199".to_string(),
        ] {
            let before = audited(action);
            // A new session (of a new account: sign-ins per account are throttled).
            sessions += 1;
            let login = create_account(
                &app,
                &admin,
                &format!("observer{sessions}"),
                json!({"role": "observer"}),
            )
            .await;
            let (client, _) = web_login(&app, &login, WEB_PASSWORD).await;
            let url = app.url(&format!("/dashboard/recordings/{}{query}", bad.id));
            let response = client
                .get(&url)
                .header("range", &range)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
            assert!(!response.bytes().await.unwrap().is_empty());
            assert_eq!(audited(action), before + 1, "{action} {range} is audited");
            // The same session again: still one row.
            client
                .get(&url)
                .header("range", &range)
                .send()
                .await
                .unwrap();
            assert_eq!(
                audited(action),
                before + 1,
                "{action} {range} once per session"
            );
        }
    }
    app.stop().await;
}

// --- 3. forms over HTTPS with HTTP/2 and HTTP/1.1 ----------------------------------------------

/// A browser signs in and records a verdict over TLS, with HTTP/2 (which has no `Host`
/// header, only `:authority`) and with HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_work_over_https_with_http2_and_http1() {
    let (app, cert) = spawn_https_app().await;
    let (tablet, pairing) = app.paired_tablet("desk 1", 0).await;
    let admin = app.admin().await;
    let head = create_account(
        &app,
        &admin,
        "head.accounting",
        json!({"role": "head_of_section", "section_id": app.section(ACCOUNTING).id}),
    )
    .await;
    for http2 in [true, false] {
        let bad = visit(&pairing, Some(Rating::Bad));
        tablet.sync(std::slice::from_ref(&bad)).await;
        let root = reqwest::Certificate::from_pem(cert.as_bytes()).unwrap();
        let builder = Client::builder().tls_certs_only([root]);
        let builder = if http2 {
            builder.http2_prior_knowledge()
        } else {
            builder.http1_only()
        };
        let client = browser_like(builder);
        let origin = app.base.clone();
        let signed_in = form_sign_in(&client, &app.base, &origin, &head, WEB_PASSWORD, "").await;
        assert_eq!(
            signed_in.version(),
            if http2 {
                reqwest::Version::HTTP_2
            } else {
                reqwest::Version::HTTP_11
            }
        );
        assert_eq!(
            signed_in.status(),
            StatusCode::SEE_OTHER,
            "sign-in over {:?}: {}",
            signed_in.version(),
            signed_in.text().await.unwrap_or_default()
        );
        let page = client
            .get(app.url("/dashboard/bad"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = csrf_of(&page).expect("a CSRF token");
        let verdict = client
            .post(app.url(&format!("/dashboard/bad/{}/verdict", bad.id)))
            .header("origin", &origin)
            .form(&[
                ("csrf", csrf.as_str()),
                ("correct", "yes"),
                ("comment", "ok"),
                ("back", "/dashboard/bad"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            verdict.status(),
            StatusCode::SEE_OTHER,
            "verdict, http2 {http2}"
        );
        let decided = app.storage().bad_visit(bad.id).unwrap().unwrap();
        assert!(decided.verdict.is_some(), "http2 {http2}");
    }
    app.stop().await;
}

// --- 4. login throttling is not bypassed by whitespace ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttling_is_not_bypassed_by_whitespace_or_case() {
    let app = spawn_app().await;
    let client = Client::new();
    let mut refused = 0;
    for (i, spelling) in [
        " admin",
        "admin\t",
        "\nadmin",
        "ADMIN",
        "admin ",
        " Admin\r\n",
        "aDmin",
    ]
    .iter()
    .cycle()
    .take(20)
    .enumerate()
    {
        let response = client
            .post(app.url("/api/auth/login"))
            .json(&json!({ "login": spelling, "password": format!("guess {i}") }))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    // Five a minute per account, whatever the spelling: 15 of the 20 are refused.
    assert_eq!(refused, 15);
    app.stop().await;
}

// --- 5. no open redirect after sign-in --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sends_people_only_to_a_path_of_this_site() {
    let app = spawn_app().await;
    let cases = [
        ("/dashboard/bad?page=1", Some("/dashboard/bad?page=1")),
        ("/%09/evil.example/x", None),
        ("/\t/evil.example/x", None),
        ("/\n/evil.example/x", None),
        ("//evil.example/x", None),
        ("/\\evil.example", None),
        ("\\\\evil.example", None),
        ("https://evil.example/", None),
        ("evil.example", None),
        ("/ /evil.example", None),
        ("/%2F/evil.example", None),
        ("/%5C/evil.example", None),
        ("", None),
    ];
    let admin = app.admin().await;
    for (n, (next, expected)) in cases.into_iter().enumerate() {
        // An account per case: each signs in twice, within the per-account throttle.
        let login = create_account(
            &app,
            &admin,
            &format!("visitor{n}"),
            json!({"role": "observer"}),
        )
        .await;
        let client = browser_like(Client::builder());
        // The link the attacker hands out: the sign-in page keeps only a safe `next`.
        let page = client
            .get(app.url(&format!("/login?next={}", url_encode(next))))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let field = page
            .split("name=\"next\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string();
        let signed_in = form_sign_in(
            &client,
            &app.base,
            &app.base,
            &login,
            WEB_PASSWORD,
            &unescape(&field),
        )
        .await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "{next:?}");
        let location = signed_in.headers()["location"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            location,
            expected.unwrap_or("/dashboard"),
            "next={next:?} (page field {field:?})"
        );
        // The form's own `next` field, sent as the attacker wrote it.
        let client = browser_like(Client::builder());
        let direct = form_sign_in(&client, &app.base, &app.base, &login, WEB_PASSWORD, next).await;
        let location = direct.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(location, expected.unwrap_or("/dashboard"), "next={next:?}");
    }
    app.stop().await;
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// --- 6. cookie-authenticated JSON state changes come from this site ----------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_authenticated_json_posts_from_another_site_are_refused() {
    let app = spawn_app().await;
    let admin_client = app.admin().await;
    let tablet = app.enrol_tablet(&admin_client, "desk 1").await;
    let specialist = app
        .specialist(&admin_client, app.employee_of(ACCOUNTING, 0))
        .await;
    let pairing = app.pair(&tablet, &specialist).await;
    let evil = "https://evil.example";
    for (client, path) in [
        (&specialist, format!("/api/pairings/{}/end", pairing.id)),
        (
            &admin_client,
            format!("/api/admin/tablets/{}/revoke", tablet.id),
        ),
        (&admin_client, "/api/auth/logout".to_string()),
    ] {
        // What a cross-site <form method=post> sends: an Origin, a form content type.
        let forged = client
            .post(app.url(&path))
            .header("origin", evil)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "cross-site")
            .body("x=1")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Nothing happened: the pairing is on, the tablet works, the session lives.
    let status: Value = tablet
        .get("/api/tablet/pairing")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "active", "{status}");
    let me = admin_client
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    // From this site the same requests work.
    let ended = specialist
        .post(app.url(&format!("/api/pairings/{}/end", pairing.id)))
        .header("origin", &app.base)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    app.stop().await;
}

// --- 7. live streams end with their session, and are capped ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_end_with_their_session_and_are_capped_per_session() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let login = create_account(&app, &admin, "observer", json!({"role": "observer"})).await;
    let open = async |client: &Client| {
        client
            .get(app.url("/dashboard/events"))
            .send()
            .await
            .unwrap()
    };
    // Sign-out ends the stream within seconds.
    let (client, csrf) = web_login(&app, &login, WEB_PASSWORD).await;
    let stream = open(&client).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let mut body = stream.bytes_stream();
    body.next().await.expect("hello").unwrap();
    let out = client
        .post(app.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let ended = tokio::time::timeout(Duration::from_secs(8), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its session");

    // A password reset ends every session of the account, and their streams.
    let (client, _) = web_login(&app, &login, WEB_PASSWORD).await;
    let mut body = open(&client).await.bytes_stream();
    body.next().await.expect("hello").unwrap();
    let (admin_web, admin_csrf) = web_login(&app, ADMIN_LOGIN, ADMIN_PASSWORD).await;
    let accounts = app.storage().accounts().unwrap();
    let id = accounts
        .iter()
        .find(|a| a.account.login == login)
        .unwrap()
        .account
        .id;
    let reset = admin_web
        .post(app.url(&format!("/admin/accounts/{id}/password")))
        .form(&[
            ("csrf", admin_csrf.as_str()),
            ("password", "a brand new password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::SEE_OTHER);
    let ended = tokio::time::timeout(Duration::from_secs(8), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived a password reset");

    // One session may hold a few streams (a head with several tabs), not hundreds.
    let (client, _) = web_login(&app, &login, "a brand new password").await;
    let mut held = Vec::new();
    let mut refused = None;
    for n in 0..40 {
        let response = open(&client).await;
        if response.status() == StatusCode::OK {
            held.push(response);
        } else {
            refused = Some((n, response.status()));
            break;
        }
    }
    let (n, status) = refused.expect("the streams of one session are capped");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!((2..=16).contains(&n), "capped at {n}");
    drop(held);
    app.stop().await;
}

// --- 8. a newline in a form field is refused before anything is written --------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_in_form_fields_never_cause_a_500() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet("desk 1", 0).await;
    let bad = visit(&pairing, Some(Rating::Bad));
    tablet.sync(std::slice::from_ref(&bad)).await;
    let (client, csrf) = web_login(&app, ADMIN_LOGIN, ADMIN_PASSWORD).await;
    for back in [
        "/dashboard/bad\r\nX-Injected: 1",
        "/dashboard\n",
        "/dashboard/bad\u{0}",
    ] {
        let response = client
            .post(app.url(&format!("/dashboard/bad/{}/verdict", bad.id)))
            .form(&[
                ("csrf", csrf.as_str()),
                ("correct", "no"),
                ("comment", "c"),
                ("back", back),
            ])
            .send()
            .await
            .unwrap();
        assert_ne!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{back:?}"
        );
        assert!(response.headers().get("x-injected").is_none());
    }
    for next in ["/dashboard\r\nX-Injected: 1", "/dashboard\n", "/\u{7f}"] {
        let client = browser_like(Client::builder());
        let response = form_sign_in(
            &client,
            &app.base,
            &app.base,
            ADMIN_LOGIN,
            ADMIN_PASSWORD,
            next,
        )
        .await;
        assert_ne!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{next:?}"
        );
        assert!(response.headers().get("x-injected").is_none());
    }
    app.stop().await;
}

// --- 9. user strings are logged escaped -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_cannot_forge_a_log_line() {
    let server = ServerProcess::start(
        binary(),
        &ProcessOptions {
            env: vec![("RUST_LOG".into(), "info".into())],
            ..ProcessOptions::default()
        },
    );
    let client = Client::new();
    let forged = "nobody\n2026-12-01T00:00:00Z  INFO office_server: FORGED administrator signed in";
    for _ in 0..8 {
        client
            .post(format!("http://{}/api/auth/login", server.addr))
            .json(&json!({ "login": forged, "password": "x" }))
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.log();
    assert!(log.contains("login throttled"), "{log}");
    for line in log.lines() {
        assert!(
            !line.trim_start().starts_with("2026-12-01T00:00:00Z"),
            "a forged line in the log: {line:?}"
        );
    }
}

// --- 10. cookies, HSTS and the client address behind a proxy --------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_public_url_makes_cookies_secure_and_sends_hsts() {
    let server = ServerProcess::start(
        binary(),
        &ProcessOptions {
            config: "public_url = \"https://rating.office.example\"\n".into(),
            ..ProcessOptions::default()
        },
    );
    let client = browser_like(Client::builder());
    let base = format!("http://{}", server.addr);
    let response = form_sign_in(
        &client,
        &base,
        "https://rating.office.example",
        ADMIN_LOGIN,
        ADMIN_PASSWORD,
        "",
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("office_session="))
        .expect("a session cookie");
    assert!(session.contains("; Secure"), "{session}");
    let hsts = response
        .headers()
        .get("strict-transport-security")
        .expect("HSTS")
        .to_str()
        .unwrap();
    assert!(hsts.contains("max-age="), "{hsts}");
    // A form from the origin the server answers on directly is not this site's.
    let other = form_sign_in(
        &browser_like(Client::builder()),
        &base,
        &base,
        ADMIN_LOGIN,
        ADMIN_PASSWORD,
        "",
    )
    .await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
}

/// Behind a trusted proxy the client is the forwarded address: the throttle counts each
/// client apart, and a client cannot pose as another through a header the proxy did not set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_supplies_the_client_address() {
    let server = ServerProcess::start(
        binary(),
        &ProcessOptions {
            // Three guesses a minute per address: one comes back every 20 s, long after this
            // test is done.
            config: "trusted_proxies = [\"127.0.0.1\"]\n[throttle]\nsign_in_per_address = 3\n"
                .into(),
            ..ProcessOptions::default()
        },
    );
    let client = Client::new();
    let attempt = async |forwarded: &str, login: &str| {
        client
            .post(format!("http://{}/api/auth/login", server.addr))
            .header("x-forwarded-for", forwarded)
            .json(&json!({ "login": login, "password": "wrong" }))
            .send()
            .await
            .unwrap()
            .status()
    };
    // Three from 203.0.113.7 (each to another login, so the per-account budget never comes
    // into it), and the fourth is refused …
    for n in 0..3 {
        assert_eq!(
            attempt("203.0.113.7", &format!("user{n}")).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attempt("203.0.113.7", "user-last").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // … while another client behind the same proxy has its own budget …
    assert_eq!(
        attempt("198.51.100.9", "someone").await,
        StatusCode::UNAUTHORIZED
    );
    // … and an address the client wrote in front of the one the proxy saw changes nothing:
    // the proxy appends the address it saw, and that is the one counted.
    assert_eq!(
        attempt("198.51.100.200, 203.0.113.7", "spoof").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A peer that is not a trusted proxy is the client, whatever it forwards.
}

// --- 11. the status page tells strangers nothing ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_says_only_that_the_server_runs() {
    let app = spawn_app().await;
    let page = Client::new()
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for secret in [
        ACCOUNTING,
        "Жилищное управление",
        "сотрудников",
        "Посещений",
    ] {
        assert!(
            !page.contains(secret),
            "{secret:?} on the public status page"
        );
    }
    assert!(page.contains("/dashboard"), "{page}");
    app.stop().await;
}

// --- 12. renewed certificates without a restart ---------------------------------------------

/// Certificate files for `localhost`, rewritten with a fresh certificate at each `renew`.
struct CertFiles {
    dir: tempfile::TempDir,
}

impl CertFiles {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> String {
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\n",
            self.dir.path().join("cert.pem"),
            self.dir.path().join("key.pem")
        )
    }

    /// Writes a new certificate and key; returns the certificate's PEM.
    fn renew(&self) -> String {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(self.dir.path().join("cert.pem"), certified.cert.pem()).unwrap();
        std::fs::write(
            self.dir.path().join("key.pem"),
            certified.signing_key.serialize_pem(),
        )
        .unwrap();
        certified.cert.pem()
    }
}

/// Whether a client that trusts only `pem` gets an answer from `url` (a new connection each
/// time, so the handshake sees the certificate served now).
async fn trusted_by(pem: &str, url: &str) -> bool {
    Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_loads_a_renewed_certificate_without_a_restart() {
    let files = CertFiles::new();
    let first = files.renew();
    let server = ServerProcess::start(
        binary(),
        &ProcessOptions {
            config: files.config(),
            ..ProcessOptions::default()
        },
    );
    let url = format!(
        "https://{}/healthz",
        server.addr.replace("127.0.0.1", "localhost")
    );
    assert!(trusted_by(&first, &url).await);
    let second = files.renew();
    server.signal("HUP");
    let renewed = wait_until_async(Duration::from_secs(5), async || {
        trusted_by(&second, &url).await
    })
    .await;
    assert!(renewed, "SIGHUP did not load the renewed certificate");
    assert!(
        !trusted_by(&first, &url).await,
        "the old certificate is still served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_certificate_files_are_loaded_without_a_signal() {
    let files = CertFiles::new();
    files.renew();
    let server = ServerProcess::start(
        binary(),
        &ProcessOptions {
            config: format!("{}\n[network]\ntls_reload_check_secs = 1\n", files.config()),
            ..ProcessOptions::default()
        },
    );
    let url = format!(
        "https://{}/healthz",
        server.addr.replace("127.0.0.1", "localhost")
    );
    let renewed_pem = files.renew();
    let renewed = wait_until_async(Duration::from_secs(6), async || {
        trusted_by(&renewed_pem, &url).await
    })
    .await;
    assert!(renewed, "the changed files were not loaded");
}

async fn wait_until_async(limit: Duration, mut probe: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if probe().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

// --- 13. the OpenAPI document covers the whole JSON API --------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_covers_every_json_route() {
    let app = spawn_app().await;
    let document: Value = Client::new()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let routes = [
        ("post", "/api/tablet/enrolments", None),
        ("get", "/api/tablet/enrolments/{id}", None),
        ("post", "/api/tablet/pairing-codes", Some("device_token")),
        (
            "get",
            "/api/tablet/pairing-codes/{id}",
            Some("device_token"),
        ),
        ("get", "/api/tablet/pairing", Some("device_token")),
        ("post", "/api/tablet/pairing/end", Some("device_token")),
        ("post", "/api/tablet/sync", Some("device_token")),
        (
            "get",
            "/api/tablet/visits/{id}/recording",
            Some("device_token"),
        ),
        (
            "post",
            "/api/tablet/visits/{id}/recording",
            Some("device_token"),
        ),
        ("post", "/api/auth/login", None),
        ("post", "/api/auth/logout", Some("session_cookie")),
        ("get", "/api/auth/me", Some("session_cookie")),
        ("post", "/api/pairings", Some("session_cookie")),
        ("get", "/api/pairings", Some("session_cookie")),
        ("post", "/api/pairings/{id}/end", Some("session_cookie")),
        ("get", "/api/directory", Some("session_cookie")),
        ("post", "/api/admin/accounts", Some("session_cookie")),
        ("post", "/api/admin/enrolments", Some("session_cookie")),
        ("get", "/api/admin/tablets", Some("session_cookie")),
        (
            "post",
            "/api/admin/tablets/{id}/revoke",
            Some("session_cookie"),
        ),
    ];
    for (method, path, security) in routes {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path} has no summary"
        );
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|code| code.starts_with('4')),
            "{method} {path} documents no error response"
        );
        match security {
            Some(scheme) => assert!(
                operation["security"]
                    .as_array()
                    .is_some_and(|list| list.iter().any(|s| s.get(scheme).is_some())),
                "{method} {path} does not say it needs {scheme}"
            ),
            None => assert!(operation.get("security").is_none(), "{method} {path}"),
        }
    }
    for scheme in ["device_token", "session_cookie"] {
        assert!(
            document["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
    app.stop().await;
}

// --- Part 2: what a tablet may claim -----------------------------------------------------------

/// The rejection reason of each visit of a sync.
fn reasons(response: &shared_model::SyncResponse) -> Vec<String> {
    response
        .results
        .iter()
        .map(|ack| match &ack.outcome {
            shared_model::VisitOutcome::Rejected { reason, .. } => format!("{reason:?}"),
            other => format!("{other:?}"),
        })
        .collect()
}

/// 1. Under a pairing the specialist ended, a tablet may still deliver what it rated offline,
/// but not visits dated before the pairing, in the future, after it was told the pairing had
/// ended, or overlapping its own; and twenty forged «Плохо» raise no alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visits_a_tablet_could_not_have_rated_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    // A one-second slack, so that "after it knew" is a moment this test can wait past.
    config.tablets.clock_slack_secs = 1;
    let app = spawn_with_config(config, true).await;
    let admin = app.admin().await;
    let tablet = app.enrol_tablet(&admin, "desk 1").await;
    let specialist = app.specialist(&admin, app.employee_of(ACCOUNTING, 0)).await;
    let pairing = app.pair(&tablet, &specialist).await;
    let ended = specialist
        .post(app.url(&format!("/api/pairings/{}/end", pairing.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);

    // The tablet did not know: what it rated before now arrives, the sync tells it the end.
    let offline = visit_at(&pairing, jiff::Timestamp::now(), Some(Rating::Good));
    let dated = |at: &str| {
        let ended_at: jiff::Timestamp = at.parse().unwrap();
        visit_at(&pairing, ended_at, Some(Rating::Bad))
    };
    let overlapping = shared_model::Visit {
        id: uuid::Uuid::now_v7(),
        ..offline.clone()
    };
    let response = tablet
        .sync(&[
            offline.clone(),
            dated("2001-03-01T10:00:00Z"),
            dated("2099-03-01T10:00:00Z"),
            dated("9999-03-01T10:00:00Z"),
            overlapping,
        ])
        .await;
    assert_eq!(
        reasons(&response),
        [
            "Stored",
            "BeforePairing",
            "InTheFuture",
            "InTheFuture",
            "Overlapping"
        ]
    );
    assert!(matches!(
        response.pairing,
        shared_model::PairingStatus::Ended { .. }
    ));
    // Its next request shows it read that answer; visits it claims to have made after that
    // moment were made knowing, and are refused — twenty «Плохо» among them, with no alert.
    tablet.sync(&[]).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let forged: Vec<_> = (0..20)
        .map(|i| {
            let mut v = visit_at(
                &pairing,
                jiff::Timestamp::now() - jiff::SignedDuration::from_millis(i * 20),
                Some(Rating::Bad),
            );
            v.started_at = v.ended_at - jiff::SignedDuration::from_millis(10);
            v
        })
        .collect();
    let response = tablet.sync(&forged).await;
    assert!(
        reasons(&response).iter().all(|r| r == "AfterPairingEnded"),
        "{:?}",
        reasons(&response)
    );
    let alerts = app
        .storage()
        .alerts(&Default::default(), false, 10)
        .unwrap();
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_eq!(app.stored_visit_ids(tablet.id), vec![offline.id]);

    // A tablet that speaks protocol 1 reads the new reasons as an invalid interval.
    let old = tablet
        .client
        .post(app.url("/api/tablet/sync"))
        .header(shared_model::PROTOCOL_HEADER, 1)
        .bearer_auth(&tablet.token)
        .json(&batch(
            jiff::Timestamp::now(),
            &[dated("2001-03-01T10:00:00Z")],
        ))
        .send()
        .await
        .unwrap();
    let old: Value = old.json().await.unwrap();
    assert_eq!(old["results"][0]["reason"], "invalid_interval", "{old}");
    assert_eq!(old["pairing"]["reason"], "ended_by_staff", "{old}");
    app.stop().await;
}

/// 5. A visit id another tablet sent is that tablet's: resending it confirms nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tablets_visit_is_a_conflict_not_a_confirmation() {
    let app = spawn_app().await;
    let (first, pairing) = app.paired_tablet("desk 1", 0).await;
    let (second, _) = app.paired_tablet("desk 2", 1).await;
    let visit = visit(&pairing, Some(Rating::Good));
    assert_eq!(
        reasons(&first.sync(std::slice::from_ref(&visit)).await),
        ["Stored"]
    );
    assert_eq!(
        reasons(&first.sync(std::slice::from_ref(&visit)).await),
        ["AlreadyStored"]
    );
    assert_eq!(
        reasons(&second.sync(std::slice::from_ref(&visit)).await),
        ["Conflict"]
    );
    app.stop().await;
}

/// 2. One open pairing code per tablet; enrolment throttled per address and capped in number;
/// a specialist works at one tablet at a time, and both tablets are told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_cannot_be_hoarded() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.throttle.enrolment_per_address = 4;
    config.tablets.max_open_enrolments = 6;
    let app = spawn_with_config(config, true).await;
    let admin = app.admin().await;
    let tablet = app.enrol_tablet(&admin, "desk 1").await;
    let specialist = app.specialist(&admin, app.employee_of(ACCOUNTING, 0)).await;
    // A tablet asks for fifty codes: only the last is open.
    let mut codes = Vec::new();
    for _ in 0..50 {
        let issued: Value = tablet
            .post("/api/tablet/pairing-codes")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        codes.push(issued["code"].as_str().unwrap().to_string());
    }
    let enter = async |code: &str| {
        specialist
            .post(app.url("/api/pairings"))
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap()
            .status()
    };
    for old in &codes[45..49] {
        if old != &codes[49] {
            assert_eq!(
                enter(old).await,
                StatusCode::NOT_FOUND,
                "an old code still open"
            );
        }
    }
    assert_eq!(enter(&codes[49]).await, StatusCode::OK);

    // Enrolment needs no credential: so many a minute per address, so many waiting at once.
    let client = Client::new();
    let enrol = async |from: &str| {
        client
            .post(app.url("/api/tablet/enrolments"))
            .header(
                shared_model::PROTOCOL_HEADER,
                shared_model::PROTOCOL_VERSION,
            )
            .header("x-forwarded-for", from)
            .json(&json!({ "app_version": "1", "device_description": "x" }))
            .send()
            .await
            .unwrap()
            .status()
    };
    // One enrolment was made above (desk 1), so three more from this address pass.
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all((0..4).map(|_| enrol("x"))).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        3,
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    app.stop().await;

    // The cap in number, from many addresses (behind a trusted proxy): a clear 503.
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.tablets.max_open_enrolments = 3;
    config.trusted_proxies = vec!["127.0.0.1".into()];
    let app = spawn_with_config(config, true).await;
    let client = Client::new();
    let mut refused = None;
    for n in 0..5 {
        let response = client
            .post(app.url("/api/tablet/enrolments"))
            .header(
                shared_model::PROTOCOL_HEADER,
                shared_model::PROTOCOL_VERSION,
            )
            .header("x-forwarded-for", format!("203.0.113.{n}"))
            .json(&json!({ "app_version": "1", "device_description": "x" }))
            .send()
            .await
            .unwrap();
        if response.status() != StatusCode::OK {
            refused = Some((n, error_code(response).await));
            break;
        }
    }
    assert_eq!(
        refused,
        Some((
            3,
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".to_string())
        ))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_specialist_works_at_one_tablet_and_both_are_told() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let first = app.enrol_tablet(&admin, "Окно 1").await;
    let second = app.enrol_tablet(&admin, "Окно 2").await;
    let specialist = app.specialist(&admin, app.employee_of(ACCOUNTING, 0)).await;
    let old = app.pair(&first, &specialist).await;
    let new = app.pair(&second, &specialist).await;
    assert_eq!(new.ended_elsewhere, ["Окно 1"]);
    let status: Value = first
        .get("/api/tablet/pairing")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "ended", "{status}");
    assert_eq!(status["pairing_id"], old.id.to_string());
    assert_eq!(status["reason"], "moved_to_another_tablet");
    let mine: Vec<Value> = specialist
        .get(app.url("/api/pairings"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine.len(), 1, "{mine:?}");
    app.stop().await;
}

/// 3. Abandoned uploads are deleted in time; a tablet may hold only so much unfinished; below
/// the free-space floor no upload is taken, while visits still sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_uploads_are_bounded_in_time_size_and_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.uploads.abandoned_after_secs = 2;
    config.uploads.check_secs = 1;
    config.uploads.max_unfinished_bytes_per_tablet = RECORDING.len() as u64 * 3 / 2;
    let app = spawn_with_config(config, true).await;
    let (tablet, pairing) = app.paired_tablet("desk 1", 0).await;
    let first = visit(&pairing, Some(Rating::Bad));
    let mut second = visit(&pairing, Some(Rating::Bad));
    second.started_at = first.ended_at + jiff::SignedDuration::from_secs(5);
    second.ended_at = second.started_at + jiff::SignedDuration::from_secs(60);
    tablet.sync(&[first.clone(), second.clone()]).await;
    let chunk = async |visit: &shared_model::Visit| {
        tablet
            .post(&format!("/api/tablet/visits/{}/recording", visit.id))
            .header(shared_model::RECORDING_SIZE_HEADER, RECORDING.len())
            .header(shared_model::RECORDING_SHA256_HEADER, sha256_hex(RECORDING))
            .header(shared_model::RECORDING_OFFSET_HEADER, 0)
            .body(RECORDING[..1000].to_vec())
            .send()
            .await
            .unwrap()
    };
    assert_eq!(chunk(&first).await.status(), StatusCode::OK);
    let partial = app
        .recordings_dir()
        .join("incoming")
        .join(format!("{}.part", first.id));
    assert!(partial.is_file());
    // A second unfinished one would pass what the tablet may hold.
    let (status, code) = error_code(chunk(&second).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::CONFLICT, "too_much_unfinished")
    );
    // Left alone, the first goes: its row and its bytes.
    let gone = wait_until_async(Duration::from_secs(8), async || {
        !partial.exists() && app.storage().recording_upload(first.id).unwrap().is_none()
    })
    .await;
    assert!(gone, "the abandoned upload is still there");
    // Then the second fits.
    assert_eq!(chunk(&second).await.status(), StatusCode::OK);
    app.stop().await;

    // Below the free-space floor: no upload, but visits sync.
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.uploads.min_free_bytes = u64::MAX / 4;
    let app = spawn_with_config(config, true).await;
    let (tablet, pairing) = app.paired_tablet("desk 1", 0).await;
    let bad = visit(&pairing, Some(Rating::Bad));
    assert_eq!(
        reasons(&tablet.sync(std::slice::from_ref(&bad)).await),
        ["Stored"]
    );
    let response = tablet
        .post(&format!("/api/tablet/visits/{}/recording", bad.id))
        .header(shared_model::RECORDING_SIZE_HEADER, RECORDING.len())
        .header(shared_model::RECORDING_SHA256_HEADER, sha256_hex(RECORDING))
        .header(shared_model::RECORDING_OFFSET_HEADER, 0)
        .body(RECORDING.to_vec())
        .send()
        .await
        .unwrap();
    let (status, code) = error_code(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
    );
    let later = visit(&pairing, Some(Rating::Good));
    assert_eq!(reasons(&tablet.sync(&[later]).await), ["Stored"]);
    app.stop().await;
}

/// 4. A disk filling up during syncs: each sync is stored whole and acknowledged, or refused
/// with 503 and nothing of it kept (the log reuses the room it already has, so the first
/// syncs may still fit); once there is room again the refused batch is stored, each visit once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_during_ingest_acknowledges_nothing() {
    let disk = test_support::disk::SmallDisk::mount(8);
    let app = spawn_app_in(&disk.path, true).await;
    let (tablet, pairing) = app.paired_tablet("desk 1", 0).await;
    // Batches of 500 visits, each 30 s long and a minute after the one before.
    let batches: Vec<Vec<_>> = (0..40)
        .map(|b| {
            (0..500)
                .map(|i| {
                    let ago = jiff::SignedDuration::from_mins((b * 500 + i) * 2 + 1);
                    let mut v = visit_at(&pairing, jiff::Timestamp::now() - ago, None);
                    v.started_at = v.ended_at - jiff::SignedDuration::from_secs(30);
                    v
                })
                .collect()
        })
        .collect();
    let filler = test_support::disk::fill(&disk.path);
    let mut acknowledged = 0;
    let mut refused = None;
    for visits in &batches {
        let response = tablet
            .post("/api/tablet/sync")
            .json(&batch(jiff::Timestamp::now(), visits))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            let answer: shared_model::SyncResponse = response.json().await.unwrap();
            assert!(reasons(&answer).iter().all(|r| r == "Stored"));
            acknowledged += visits.len();
            assert_eq!(app.visit_count(), acknowledged);
            continue;
        }
        let (status, code) = error_code(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
        assert_eq!(app.visit_count(), acknowledged, "something was kept");
        refused = Some(visits);
        break;
    }
    let refused = refused.expect("the full disk refused a sync");
    std::fs::remove_file(&filler).unwrap();
    let response = tablet.sync(refused).await;
    assert!(reasons(&response).iter().all(|r| r == "Stored"));
    assert_eq!(app.visit_count(), acknowledged + refused.len());
    app.stop().await;
}

/// 6. A revoked tablet enrolled again can be re-admitted as the same tablet: what it kept
/// queued while revoked is accepted under its pairings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readmitted_tablet_loses_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (tablet, pairing) = app.paired_tablet("desk 1", 0).await;
    let queued = visit(&pairing, Some(Rating::Good));
    app.revoke_tablet(tablet.id).await;
    assert_eq!(
        tablet
            .post("/api/tablet/sync")
            .json(&batch(jiff::Timestamp::now(), &[]))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // It enrols again; the administrator says it is the same tablet.
    let plain = Client::new();
    let started = app.start_enrolment(&plain, "the same tablet").await;
    let approved = admin
        .post(app.url("/api/admin/enrolments"))
        .json(&json!({ "code": started.code, "name": "desk 1", "readmit_tablet_id": tablet.id }))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::CREATED);
    let created: Value = approved.json().await.unwrap();
    assert_eq!(created["id"], tablet.id);
    let EnrolmentStatus::Approved { device_token, .. } =
        app.enrolment_status(&plain, &started).await
    else {
        panic!("the re-admission was not approved");
    };
    let back = Tablet {
        token: device_token,
        ..tablet
    };
    assert_eq!(
        reasons(&back.sync(std::slice::from_ref(&queued)).await),
        ["Stored"]
    );
    // A tablet that is not revoked cannot be taken over this way.
    let (other, _) = app.paired_tablet("desk 2", 1).await;
    let started = app.start_enrolment(&plain, "impostor").await;
    let refused = admin
        .post(app.url("/api/admin/enrolments"))
        .json(&json!({ "code": started.code, "name": "x", "readmit_tablet_id": other.id }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

/// 8. Every change an administrator makes is in the audit log, with who.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_an_administrator_makes_is_audited() {
    let app = spawn_app().await;
    let (web, csrf) = web_login(&app, ADMIN_LOGIN, ADMIN_PASSWORD).await;
    let post = async |path: &str, fields: &[(&str, &str)]| {
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let response = web.post(app.url(path)).form(&form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
    };
    post("/admin/departments", &[("name", "Новый департамент")]).await;
    post(
        "/admin/accounts",
        &[
            ("login", "new.observer"),
            ("display_name", "Наблюдатель"),
            ("password", "long enough password"),
            ("role", "observer"),
        ],
    )
    .await;
    let observer = app
        .storage()
        .accounts()
        .unwrap()
        .into_iter()
        .find(|a| a.account.login == "new.observer")
        .unwrap()
        .account
        .id;
    post(
        &format!("/admin/accounts/{observer}/password"),
        &[("password", "another long password")],
    )
    .await;
    let json_admin = app.admin().await;
    let tablet = app.enrol_tablet(&json_admin, "desk 1").await;
    post(
        &format!("/admin/tablets/{}/rename", tablet.id),
        &[("name", "Окно 9")],
    )
    .await;
    post(&format!("/admin/tablets/{}/revoke", tablet.id), &[]).await;
    let log = app.storage().audit_log(100, None).unwrap();
    for action in [
        "directory_change",
        "account_create",
        "password_reset",
        "tablet_approve",
        "tablet_rename",
        "tablet_revoke",
    ] {
        let entry = log
            .iter()
            .find(|e| e.action.as_str() == action)
            .unwrap_or_else(|| panic!("no {action} in the audit log: {log:?}"));
        assert_eq!(entry.account_login, ADMIN_LOGIN, "{action}");
    }
    // The administrator created by the command line is there too, done by the command line.
    assert!(
        log.iter()
            .any(|e| e.action.as_str() == "account_create" && e.account_login.is_empty())
    );
    // And the audit page shows them.
    let page = web
        .get(app.url("/admin/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Отзыв планшета"), "{page}");
    app.stop().await;
}
