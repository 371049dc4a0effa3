//! The city portal for the visitor-account tests: a real OpenID Connect provider — npm's
//! `oidc-provider`, pinned in `tests/oidc-provider` and installed by `scripts/setup.sh` — as a
//! child process on a free loopback port, ended when dropped; and an office server set up to
//! sign visitors in through it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use office_server::Config;
use reqwest::{Client, StatusCode};

use crate::server::{TestServer, default_config, spawn_with_config};

pub const PORTAL_CLIENT_ID: &str = "office";
pub const PORTAL_CLIENT_SECRET: &str = "portal-client-secret-for-tests-only-0123456789";
/// A person of the test portal (see `provider.mjs`).
pub const PORTAL_LOGIN: &str = "kulipanov";
pub const PORTAL_PERSON: &str = "Кулипанов Денис Анатольевич";

/// How the provider is started.
#[derive(Debug, Clone)]
pub struct PortalOptions {
    /// How long an authorization code may be exchanged, in seconds.
    pub code_ttl_secs: u32,
}

impl Default for PortalOptions {
    fn default() -> Self {
        Self { code_ttl_secs: 60 }
    }
}

pub struct TestPortal {
    /// `http://127.0.0.1:{port}`: the provider's issuer and address.
    pub issuer: String,
    pub port: u16,
    process: Child,
}

impl Drop for TestPortal {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl TestPortal {
    /// Starts the provider for a client that is sent back to `redirect_uri`.
    pub fn start(redirect_uri: &str, options: &PortalOptions) -> Self {
        let port = crate::free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-provider/provider.mjs");
        let mut process = Command::new("node")
            .arg(&script)
            .args(["--port", &port.to_string()])
            .args(["--client-id", PORTAL_CLIENT_ID])
            .args(["--client-secret", PORTAL_CLIENT_SECRET])
            .args(["--redirect-uri", redirect_uri])
            .args(["--code-ttl", &options.code_ttl_secs.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node (scripts/setup.sh installs tests/oidc-provider's packages)");
        let stdout = process.stdout.take().expect("the provider's output");
        let (ready, listening) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = ready.send(());
                }
            }
        });
        if listening.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = process.kill();
            panic!(
                "the OpenID provider did not start (is tests/oidc-provider/node_modules \
                 installed? run scripts/setup.sh)"
            );
        }
        Self {
            issuer: format!("http://127.0.0.1:{port}"),
            port,
            process,
        }
    }

    /// Points the office's configuration at this provider.
    pub fn configure(&self, config: &mut Config) {
        config.portal.issuer = self.issuer.clone();
        config.portal.client_id = PORTAL_CLIENT_ID.into();
        config.portal.client_secret = office_server::config::Secret(PORTAL_CLIENT_SECRET.into());
    }
}

/// An office server whose `public_url` is its own address, signing visitors in through a
/// fresh test portal (`adjust` may change the configuration after that).
pub async fn spawn_portal_app(
    options: &PortalOptions,
    adjust: impl FnOnce(&mut Config, &TestPortal),
) -> (TestServer, TestPortal) {
    let temp = tempfile::tempdir().expect("temporary directory");
    let port = crate::free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let portal = TestPortal::start(
        &format!("{public_url}{}", office_server::portal::CALLBACK_PATH),
        options,
    );
    let mut config = Config {
        listen: ([127, 0, 0, 1], port).into(),
        public_url,
        ..default_config(temp.path())
    };
    portal.configure(&mut config);
    adjust(&mut config, &portal);
    let mut server = spawn_with_config(config, true).await;
    server.keep_temp(temp);
    (server, portal)
}

/// A visitor's browser for HTTP tests: cookies kept, redirects not followed.
pub fn visitor_browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn location(response: &reqwest::Response, base: &str) -> String {
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("a redirect, not {}", response.status()))
        .to_string();
    if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        location
    }
}

/// Follows a sign-in through the portal as a browser would — from `start` (the office's
/// sign-in link, or the portal's authorization address) through the portal's own sign-in form
/// as `login` — to the address the portal sends the visitor back to, which is returned and
/// not followed.
pub async fn portal_sign_in(
    browser: &Client,
    start: &str,
    portal: &TestPortal,
    login: &str,
) -> String {
    let mut next = start.to_string();
    if !next.starts_with(&portal.issuer) {
        // Followed from the office's own page, as a browser says.
        let response = browser
            .get(&next)
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .expect("the office's sign-in link");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "to the portal");
        next = location(&response, "");
    }
    for _ in 0..10 {
        if !next.starts_with(&portal.issuer) {
            return next;
        }
        let response = browser.get(&next).send().await.expect("the portal");
        if response.status().is_redirection() {
            next = location(&response, &portal.issuer);
            continue;
        }
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "the portal's page {next}"
        );
        let page = response.text().await.expect("the portal's page");
        let action = page
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("the portal's sign-in form: {page}"));
        let action = if action.starts_with('/') {
            format!("{}{action}", portal.issuer)
        } else {
            action.to_string()
        };
        let response = browser
            .post(action)
            .form(&[("prompt", "login"), ("login", login), ("password", "any")])
            .send()
            .await
            .expect("the portal's sign-in");
        next = location(&response, &portal.issuer);
    }
    panic!("the portal did not send the visitor back");
}
