//! A real office server in-process (a small copy of office-server's own test harness), and the
//! tablet side set up through kiosk-core's real client and store.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use kiosk_core::store::{Credentials, Store};
use kiosk_core::sync::ServerClient;
use office_server::accounts::create_admin;
use office_server::demo::load_demo_organisation;
use office_server::storage::Directory;
use office_server::{Application, Config};
use reqwest::{Client, StatusCode};
use serde_json::json;
use shared_model::{
    EnrolmentRequest, EnrolmentStatus, MicrophoneState, Pairing, PairingCodeStatus, Rating,
    TabletHealth, Visit,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const ADMIN_LOGIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery";
pub const SPECIALIST_PASSWORD: &str = "specialist password";

/// The 3GP AAC-LC recording made by office-server's `scripts/make-fixtures.sh`.
pub const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../office-server/tests/fixtures/visit.3gpp"
);

pub struct TestServer {
    pub base: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub directory: Directory,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

pub fn config(dir: &Path, port: u16) -> Config {
    Config {
        listen: ([127, 0, 0, 1], port).into(),
        data_dir: dir.to_path_buf(),
        recording_max_bytes: 1024 * 1024,
        ..Config::default()
    }
}

/// A server on `dir` and `port` (0: any free port); `fresh` loads the demo organisation and
/// creates the administrator.
pub async fn start_server(dir: &Path, port: u16, fresh: bool) -> TestServer {
    start_with_config(config(dir, port), fresh).await
}

pub async fn start_with_config(config: Config, fresh: bool) -> TestServer {
    let dir = config.data_dir.clone();
    let scheme = if config.tls.is_some() {
        "https://localhost"
    } else {
        "http://127.0.0.1"
    };
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
    let port = app.local_addr().port();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("server runs");
    });
    TestServer {
        base: format!("{scheme}:{port}"),
        port,
        data_dir: dir,
        directory,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully and waits until it has; the data directory stays.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task");
        }
    }

    pub async fn login(&self, login: &str, password: &str) -> Client {
        let client = Client::builder().cookie_store(true).build().unwrap();
        let response = client
            .post(self.url("/api/auth/login"))
            .json(&json!({ "login": login, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login {login}");
        client
    }

    pub async fn admin(&self) -> Client {
        self.login(ADMIN_LOGIN, ADMIN_PASSWORD).await
    }

    pub fn employee_of(&self, section: &str, index: usize) -> i64 {
        self.directory
            .departments
            .iter()
            .flat_map(|d| &d.sections)
            .find(|s| s.name == section)
            .unwrap_or_else(|| panic!("no section {section}"))
            .employees[index]
            .id
    }

    /// Creates a specialist account for the employee and signs it in.
    pub async fn specialist(&self, admin: &Client, employee_id: i64) -> Client {
        let login = format!("specialist{employee_id}");
        let response = admin
            .post(self.url("/api/admin/accounts"))
            .json(&json!({
                "login": login,
                "display_name": format!("Сотрудник {employee_id}"),
                "password": SPECIALIST_PASSWORD,
                "role": "specialist",
                "employee_id": employee_id,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        self.login(&login, SPECIALIST_PASSWORD).await
    }

    pub async fn revoke_tablet(&self, tablet_id: i64) {
        let response = self
            .admin()
            .await
            .post(self.url(&format!("/api/admin/tablets/{tablet_id}/revoke")))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// The server's database, opened read-only beside the running server.
    pub fn database(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.data_dir.join("office.sqlite3"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("server database")
    }

    /// The ids of the visits the server holds from this tablet.
    pub fn stored_visit_ids(&self, tablet_id: i64) -> Vec<Uuid> {
        let conn = self.database();
        let mut statement = conn
            .prepare("SELECT id FROM visits WHERE tablet_id = ?1 ORDER BY id")
            .unwrap();
        statement
            .query_map([tablet_id], |row| row.get::<_, Uuid>(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    pub fn stored_recording(&self, visit_id: Uuid) -> Option<Vec<u8>> {
        std::fs::read(
            self.data_dir
                .join("recordings")
                .join(format!("{visit_id}.3gpp")),
        )
        .ok()
    }
}

/// Enrols and pairs the tablet through kiosk-core's client, the way the app does it: the
/// administrator approves the enrolment code and a specialist of «Отдел учета» enters the
/// pairing code. The credential and the pairing end up in the store and the client.
pub async fn enrol_and_pair(
    server: &TestServer,
    client: &ServerClient,
    store: &Arc<Store>,
    employee_index: usize,
) -> (Credentials, Pairing) {
    let started = client
        .start_enrolment(&EnrolmentRequest {
            app_version: "1.0.0".into(),
            device_description: "kiosk-core test".into(),
        })
        .await
        .expect("enrolment starts");
    store.save_pending_enrolment(&started).unwrap();
    let admin = server.admin().await;
    let approved = admin
        .post(server.url("/api/admin/enrolments"))
        .json(&json!({ "code": started.code, "name": format!("Окно {employee_index}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::CREATED);
    let EnrolmentStatus::Approved {
        tablet_id,
        tablet_name,
        device_token,
    } = client.poll_enrolment(started.enrolment_id).await.unwrap()
    else {
        panic!("enrolment not approved");
    };
    let credentials = Credentials {
        tablet_id,
        tablet_name,
        device_token,
    };
    store.save_credentials(&credentials).unwrap();
    client.set_token(Some(credentials.device_token.clone()));

    let issued = client.request_pairing_code().await.unwrap();
    let specialist = server
        .specialist(&admin, server.employee_of("Отдел учета", employee_index))
        .await;
    let entered = specialist
        .post(server.url("/api/pairings"))
        .json(&json!({ "code": issued.code }))
        .send()
        .await
        .unwrap();
    assert_eq!(entered.status(), StatusCode::OK);
    let PairingCodeStatus::Paired { pairing } =
        client.poll_pairing_code(issued.request_id).await.unwrap()
    else {
        panic!("not paired");
    };
    store.save_pairing(&pairing).unwrap();
    (credentials, pairing)
}

pub fn open_store(dir: &Path) -> Arc<Store> {
    Arc::new(Store::open(&dir.join("tablet.sqlite3")).expect("tablet store"))
}

pub fn client(server: &TestServer) -> ServerClient {
    ServerClient::new(&server.base, None).expect("client")
}

pub fn health() -> TabletHealth {
    TabletHealth {
        app_version: "1.0.0".into(),
        queue_length: 0,
        recordings_pending: 0,
        free_storage_bytes: 8_000_000_000,
        microphone: MicrophoneState::Ok,
    }
}

/// A ten-minute visit that ended a minute ago under `pairing`, with its first service, its
/// instants at the millisecond (as the store keeps them).
pub fn visit(pairing: &Pairing, rating: Option<Rating>) -> Visit {
    let now = Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap();
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

/// Hex SHA-256 of a file.
pub fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Waits until `check` holds, polling; panics after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
