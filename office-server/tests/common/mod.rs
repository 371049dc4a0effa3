//! Black-box test harness: a real server on port 0 in a temporary data directory, and HTTP
//! clients for an administrator, specialists and tablets.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use office_server::accounts::create_admin;
use office_server::demo::load_demo_organisation;
use office_server::storage::Directory;
use office_server::{Application, Config};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use shared_model::{
    EnrolmentStarted, EnrolmentStatus, MicrophoneState, PROTOCOL_HEADER, PROTOCOL_VERSION, Pairing,
    PairingCodeIssued, PairingCodeStatus, Rating, SyncBatch, SyncResponse, TabletHealth, Visit,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const ADMIN_LOGIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery";
pub const SPECIALIST_PASSWORD: &str = "specialist password";

pub struct TestApp {
    pub base: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    pub directory: Directory,
}

/// A server with the demo organisation and an administrator, in a fresh data directory.
pub async fn spawn_app() -> TestApp {
    let temp = tempfile::tempdir().expect("temporary directory");
    let dir = temp.path().to_path_buf();
    let mut app = spawn_app_in(&dir, true).await;
    app._temp = Some(temp);
    app
}

/// A server on `dir`; `fresh` loads the demo organisation and creates the administrator.
pub async fn spawn_app_in(dir: &Path, fresh: bool) -> TestApp {
    spawn_with_config(test_config(dir), fresh).await
}

pub fn test_config(dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        recording_max_bytes: 1024 * 1024,
        ..Config::default()
    }
}

pub async fn spawn_with_config(config: Config, fresh: bool) -> TestApp {
    let dir = config.data_dir.clone();
    let tls = config.tls.is_some();
    let app = Application::build(config).await.expect("server starts");
    let storage = app.state().storage.clone();
    if fresh {
        load_demo_organisation(storage.as_ref()).expect("demo organisation");
        create_admin(
            storage.as_ref(),
            ADMIN_LOGIN,
            "Администратор",
            ADMIN_PASSWORD,
        )
        .expect("administrator");
    }
    let directory = storage.directory().expect("directory");
    let scheme = if tls {
        "https://localhost"
    } else {
        "http://127.0.0.1"
    };
    let base = format!("{scheme}:{}", app.local_addr().port());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        base,
        data_dir: dir,
        _temp: None,
        stop: Some(stop),
        server: Some(server),
        directory,
    }
}

impl TestApp {
    /// Talks to a server started elsewhere (e.g. the real binary in a child process).
    pub async fn external(base: String, data_dir: PathBuf) -> TestApp {
        let mut app = TestApp {
            base,
            data_dir,
            _temp: None,
            stop: None,
            server: None,
            directory: Directory {
                departments: Vec::new(),
                services: Vec::new(),
            },
        };
        let admin = app.admin().await;
        app.directory = admin
            .get(app.url("/api/directory"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
    }

    /// Stops the server but keeps the data directory for a restart.
    pub async fn stop_keeping_data(mut self) -> Option<tempfile::TempDir> {
        let temp = self._temp.take();
        self.stop_inner().await;
        temp
    }

    async fn stop_inner(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
    }

    /// A signed-in client.
    pub async fn login(&self, login: &str, password: &str) -> Client {
        let client = Client::builder().cookie_store(true).build().unwrap();
        let response = client
            .post(self.url("/api/auth/login"))
            .json(&json!({ "login": login, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "login {login}: {}",
            response.text().await.unwrap()
        );
        client
    }

    pub async fn admin(&self) -> Client {
        self.login(ADMIN_LOGIN, ADMIN_PASSWORD).await
    }

    /// The id of the first employee of the named section.
    pub fn employee_of(&self, section: &str, index: usize) -> i64 {
        self.section(section).employees[index].id
    }

    pub fn section(&self, name: &str) -> &office_server::storage::SectionEntry {
        self.directory
            .departments
            .iter()
            .flat_map(|d| &d.sections)
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no section {name}"))
    }

    /// Creates a specialist account for the employee and signs it in.
    pub async fn specialist(&self, admin: &Client, employee_id: i64) -> Client {
        let login = format!("specialist{employee_id}");
        let body = json!({
            "login": login,
            "display_name": format!("Сотрудник {employee_id}"),
            "password": SPECIALIST_PASSWORD,
            "role": "specialist",
            "employee_id": employee_id,
        });
        post_new_account(self, admin, &body).await;
        self.login(&login, SPECIALIST_PASSWORD).await
    }

    /// Enrols a tablet: it asks for a code, the administrator approves it, it collects its token.
    pub async fn enrol_tablet(&self, admin: &Client, name: &str) -> Tablet {
        let plain = Client::new();
        let started: EnrolmentStarted = plain
            .post(self.url("/api/tablet/enrolments"))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION)
            .json(&json!({ "app_version": "1.0.0", "device_description": "test tablet" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let approved = admin
            .post(self.url("/api/admin/enrolments"))
            .json(&json!({ "code": started.code, "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(approved.status(), StatusCode::CREATED);
        let status: EnrolmentStatus = plain
            .get(self.url(&format!("/api/tablet/enrolments/{}", started.enrolment_id)))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let EnrolmentStatus::Approved {
            tablet_id,
            device_token,
            ..
        } = status
        else {
            panic!("enrolment not approved: {status:?}");
        };
        Tablet {
            base: self.base.clone(),
            client: plain,
            token: device_token,
            id: tablet_id,
        }
    }

    /// Pairs the tablet to the signed-in specialist.
    pub async fn pair(&self, tablet: &Tablet, specialist: &Client) -> Pairing {
        let issued: PairingCodeIssued = tablet
            .post("/api/tablet/pairing-codes")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let response = specialist
            .post(self.url("/api/pairings"))
            .json(&json!({ "code": issued.code }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
        let status: PairingCodeStatus = tablet
            .get(&format!("/api/tablet/pairing-codes/{}", issued.request_id))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match status {
            PairingCodeStatus::Paired { pairing } => pairing,
            other => panic!("not paired: {other:?}"),
        }
    }

    /// A tablet paired to a new specialist of «Отдел учета», ready to sync.
    pub async fn paired_tablet(&self, name: &str, employee_index: usize) -> (Tablet, Pairing) {
        let admin = self.admin().await;
        let tablet = self.enrol_tablet(&admin, name).await;
        let specialist = self
            .specialist(&admin, self.employee_of("Отдел учета", employee_index))
            .await;
        let pairing = self.pair(&tablet, &specialist).await;
        (tablet, pairing)
    }
}

pub struct Tablet {
    pub base: String,
    pub client: Client,
    pub token: String,
    pub id: i64,
}

impl Tablet {
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION)
            .bearer_auth(&self.token)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client
            .get(format!("{}{path}", self.base))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION)
            .bearer_auth(&self.token)
    }

    pub async fn sync(&self, visits: &[Visit]) -> SyncResponse {
        self.sync_at(Timestamp::now(), visits).await
    }

    /// Syncs with the tablet's clock reading `sent_at`.
    pub async fn sync_at(&self, sent_at: Timestamp, visits: &[Visit]) -> SyncResponse {
        let response = self
            .post("/api/tablet/sync")
            .json(&batch(sent_at, visits))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap()
        );
        response.json().await.unwrap()
    }
}

pub fn health() -> TabletHealth {
    TabletHealth {
        app_version: "1.0.0".into(),
        queue_length: 3,
        recordings_pending: 1,
        free_storage_bytes: 8_000_000_000,
        microphone: MicrophoneState::Ok,
    }
}

pub fn batch(sent_at: Timestamp, visits: &[Visit]) -> SyncBatch {
    SyncBatch {
        sent_at,
        health: health(),
        visits: visits.to_vec(),
    }
}

/// A ten-minute visit that ended a minute ago under `pairing`, with its first service.
pub fn visit(pairing: &Pairing, rating: Option<Rating>) -> Visit {
    let now = Timestamp::now();
    Visit {
        id: Uuid::now_v7(),
        pairing_id: pairing.id,
        service_id: pairing.services[0].id,
        started_at: now - jiff::SignedDuration::from_mins(11),
        ended_at: now - jiff::SignedDuration::from_mins(1),
        rating,
        has_recording: rating == Some(Rating::Bad),
    }
}

/// The JSON error code of a response.
pub async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"].as_str().unwrap_or("<no code>").to_string(),
    )
}

// --- dashboard helpers --------------------------------------------------------------------------

pub const WEB_PASSWORD: &str = "dashboard password";

/// A client that does not follow redirects, so tests see the 303s; keeps cookies.
pub fn web_client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Creates an account through the administrator's JSON API (`role` as that API takes it, e.g.
/// `json!({"role": "head_of_section", "section_id": 3})`) and returns its login.
pub async fn create_account(app: &TestApp, admin: &Client, login: &str, role: Value) -> String {
    let mut body = json!({
        "login": login,
        "display_name": format!("Учетная запись {login}"),
        "password": WEB_PASSWORD,
    });
    if let (Some(body), Some(role)) = (body.as_object_mut(), role.as_object()) {
        for (key, value) in role {
            body.insert(key.clone(), value.clone());
        }
    }
    post_new_account(app, admin, &body).await;
    login.to_string()
}

/// Creates an account through the administrator's JSON API; the account must be created.
async fn post_new_account(app: &TestApp, admin: &Client, body: &Value) {
    let response = admin
        .post(app.url("/api/admin/accounts"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        response.text().await.unwrap()
    );
}

/// A signed-in dashboard client (no redirects followed) and its session's CSRF token.
pub async fn web_login(app: &TestApp, login: &str, password: &str) -> (Client, String) {
    let client = web_client();
    let response = client
        .post(app.url("/api/auth/login"))
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "login {login}");
    let account: Value = response.json().await.unwrap();
    let page = if account["role"] == "specialist" {
        "/pairing"
    } else {
        "/dashboard/alerts"
    };
    let html = client
        .get(app.url(page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&html).expect("a CSRF token on the page");
    (client, csrf)
}

/// The value of the first `name="csrf"` field of a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Undoes the HTML escaping of the dashboard's templates.
pub fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x27;", "'")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

fn strip_tags(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in text.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    unescape(out.trim())
}

/// The rows of the table `data-table="{id}"`: the row header's text and each cell's text.
pub fn table_rows(html: &str, id: &str) -> Vec<(String, Vec<String>)> {
    let marker = format!("data-table=\"{id}\"");
    let Some(start) = html.find(&marker) else {
        return Vec::new();
    };
    let end = html[start..]
        .find("</table>")
        .map_or(html.len(), |e| e + start);
    let table = &html[start..end];
    let body = table.find("<tbody>").map_or(table, |b| &table[b..]);
    let mut rows = Vec::new();
    for chunk in body.split("<tr").skip(1) {
        let chunk = chunk.split("</tr>").next().unwrap_or("");
        let label = chunk
            .find("<th")
            .and_then(|s| {
                let open = chunk[s..].find('>')? + s + 1;
                let close = chunk[open..].find("</th>")? + open;
                Some(strip_tags(&chunk[open..close]))
            })
            .unwrap_or_default();
        let cells = chunk
            .split("<td")
            .skip(1)
            .map(|cell| {
                let open = cell.find('>').map_or(0, |o| o + 1);
                let close = cell.find("</td>").unwrap_or(cell.len());
                strip_tags(&cell[open..close])
            })
            .collect();
        rows.push((label, cells));
    }
    rows
}

/// The cells of the row labelled `label` in table `id`.
pub fn row_of(html: &str, id: &str, label: &str) -> Vec<String> {
    table_rows(html, id)
        .into_iter()
        .find(|(l, _)| l == label)
        .map(|(_, cells)| cells)
        .unwrap_or_else(|| panic!("no row {label:?} in table {id}"))
}

/// Uploads a whole recording in one chunk.
pub async fn upload_recording(tablet: &Tablet, visit: &Visit, bytes: &[u8]) {
    use sha2::{Digest, Sha256};
    let response = tablet
        .post(&format!("/api/tablet/visits/{}/recording", visit.id))
        .header(shared_model::RECORDING_SIZE_HEADER, bytes.len())
        .header(
            shared_model::RECORDING_SHA256_HEADER,
            hex::encode(Sha256::digest(bytes)),
        )
        .header(shared_model::RECORDING_OFFSET_HEADER, 0)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
}

/// A visit under `pairing` that ended at `ended_at` (tablet clock) after ten minutes.
pub fn visit_at(pairing: &Pairing, ended_at: Timestamp, rating: Option<Rating>) -> Visit {
    Visit {
        id: Uuid::now_v7(),
        pairing_id: pairing.id,
        service_id: pairing.services[0].id,
        started_at: ended_at - jiff::SignedDuration::from_mins(10),
        ended_at,
        rating,
        has_recording: rating == Some(Rating::Bad),
    }
}

/// A tablet paired to a new specialist of any section.
pub async fn paired_tablet_in(
    app: &TestApp,
    section: &str,
    name: &str,
    employee_index: usize,
) -> (Tablet, Pairing) {
    let admin = app.admin().await;
    paired_tablet_with(app, &admin, section, name, employee_index).await
}

/// Like [`paired_tablet_in`], with an administrator's client already signed in.
pub async fn paired_tablet_with(
    app: &TestApp,
    admin: &Client,
    section: &str,
    name: &str,
    employee_index: usize,
) -> (Tablet, Pairing) {
    let tablet = app.enrol_tablet(admin, name).await;
    let specialist = app
        .specialist(admin, app.employee_of(section, employee_index))
        .await;
    let pairing = app.pair(&tablet, &specialist).await;
    (tablet, pairing)
}

/// The department that holds a section.
pub fn department_of(app: &TestApp, section: &str) -> i64 {
    app.directory
        .departments
        .iter()
        .find(|d| d.sections.iter().any(|s| s.name == section))
        .map(|d| d.id)
        .unwrap_or_else(|| panic!("no section {section}"))
}
