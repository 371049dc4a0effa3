//! Office servers for tests: the real server in-process on port 0 (or a given port, for a
//! restart on the same address), in a temporary data directory, with the demo organisation and
//! an administrator; or one started elsewhere (the real binary in a child process).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use office_server::domain::{DisplayName, Login, Password};
use office_server::ops::accounts::{NewAccountRequest, create_account};
use office_server::storage::{Directory, Role, SectionEntry, SqliteStorage, Storage, VisitRecord};
use office_server::{Application, Config};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const ADMIN_LOGIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery";
pub const SPECIALIST_PASSWORD: &str = "specialist password";

/// A running office server and what a test needs to reach and inspect it.
pub struct TestServer {
    pub base: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// The organisation as it was when the server started.
    pub directory: Directory,
    /// The server's storage (in-process), or a read-only view of its database (external).
    storage: Arc<dyn Storage>,
    /// The certificate an HTTPS server was given, for clients to trust.
    certificate: Option<String>,
    _temp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// The configuration tests start with: loopback, any free port, recordings up to 1 MiB, and
/// a clock slack of ten years — so that tests of reports can sync visits on past days under a
/// pairing made today. The acceptance rule's time window has tests of its own, with a small
/// slack (the hostile suite).
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: dir.to_path_buf(),
        recording_max_bytes: 1024 * 1024,
        ..Config::default()
    };
    config.tablets.clock_slack_secs = 10 * 366 * 24 * 3600;
    config
}

/// The shipped defaults, on loopback and any free port.
pub fn default_config(dir: &Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    }
}

/// A server with the demo organisation and an administrator, in a fresh data directory.
pub async fn spawn_app() -> TestServer {
    let temp = tempfile::tempdir().expect("temporary directory");
    let mut server = spawn_app_in(temp.path(), true).await;
    server._temp = Some(temp);
    server
}

/// A server with the demo organisation and an administrator in a fresh data directory, on the
/// test configuration as `adjust` changes it.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
    let temp = tempfile::tempdir().expect("temporary directory");
    let mut config = test_config(temp.path());
    adjust(&mut config);
    let mut server = spawn_with_config(config, true).await;
    server._temp = Some(temp);
    server
}

/// A server with the shipped defaults whose `public_url` is its own address, so that the
/// visitors' feedback links the tablets make lead to it.
pub async fn spawn_public_app() -> TestServer {
    let temp = tempfile::tempdir().expect("temporary directory");
    let port = crate::free_port();
    let config = Config {
        listen: ([127, 0, 0, 1], port).into(),
        public_url: format!("http://127.0.0.1:{port}"),
        ..default_config(temp.path())
    };
    let mut server = spawn_with_config(config, true).await;
    server._temp = Some(temp);
    server
}

/// A server with the shipped defaults (64 MiB recordings) in a fresh data directory.
pub async fn spawn_default_app() -> TestServer {
    let temp = tempfile::tempdir().expect("temporary directory");
    let mut server = spawn_with_config(default_config(temp.path()), true).await;
    server._temp = Some(temp);
    server
}

/// A server serving HTTPS on `localhost` with a fresh self-signed certificate, and the
/// certificate's PEM for clients to trust.
pub async fn spawn_https_app() -> (TestServer, String) {
    let temp = tempfile::tempdir().expect("temporary directory");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .expect("a self-signed certificate");
    let cert = temp.path().join("cert.pem");
    let key = temp.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("certificate written");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key written");
    let config = Config {
        tls: Some(office_server::config::TlsFiles { cert, key }),
        ..test_config(&temp.path().join("data"))
    };
    let mut server = spawn_with_config(config, true).await;
    server._temp = Some(temp);
    server.certificate = Some(certified.cert.pem());
    (server, certified.cert.pem())
}

/// A server on `dir`; `fresh` loads the demo organisation and creates the administrator.
pub async fn spawn_app_in(dir: &Path, fresh: bool) -> TestServer {
    spawn_with_config(test_config(dir), fresh).await
}

/// A server on `dir` and `port` (0: any free port), e.g. to restart on the same address.
pub async fn spawn_app_on(dir: &Path, port: u16, fresh: bool) -> TestServer {
    let config = Config {
        listen: ([127, 0, 0, 1], port).into(),
        ..test_config(dir)
    };
    spawn_with_config(config, fresh).await
}

/// Creates an administrator the way `office-server create-admin` does.
pub fn create_admin(storage: &dyn Storage, login: &str, password: &str) -> i64 {
    let request = NewAccountRequest {
        login: Login::parse(login).expect("a valid login"),
        display_name: DisplayName::parse("Администратор").expect("a valid name"),
        password: Password::new_secret(password).expect("a valid password"),
        role: Role::Admin,
    };
    create_account(storage, &request, None, jiff::Timestamp::now()).expect("administrator")
}

pub async fn spawn_with_config(config: Config, fresh: bool) -> TestServer {
    let dir = config.data_dir.clone();
    let scheme = if config.tls.is_some() {
        "https://localhost"
    } else {
        "http://127.0.0.1"
    };
    let app = Application::build(config).await.expect("server starts");
    let storage = Arc::clone(&app.state().storage);
    if fresh {
        office_server::demo::load_demo_organisation(storage.as_ref()).expect("demo organisation");
        create_admin(storage.as_ref(), ADMIN_LOGIN, ADMIN_PASSWORD);
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
        storage,
        certificate: None,
        _temp: None,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestServer {
    /// Talks to a server started elsewhere (e.g. the real binary in a child process) on
    /// `base`, whose data directory is `data_dir`; it must hold the administrator.
    pub async fn external(base: String, data_dir: PathBuf) -> TestServer {
        let zone = Config::default()
            .office_time_zone()
            .expect("the default time zone");
        let storage = SqliteStorage::open_read_only(&data_dir.join("office.sqlite3"), zone)
            .expect("the server's database");
        let port = base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let mut server = TestServer {
            base,
            port,
            data_dir,
            directory: Directory {
                departments: Vec::new(),
                services: Vec::new(),
            },
            storage: Arc::new(storage),
            certificate: None,
            _temp: None,
            stop: None,
            server: None,
        };
        let admin = server.admin().await;
        server.directory = admin
            .get(server.url("/api/directory"))
            .send()
            .await
            .expect("directory request")
            .json()
            .await
            .expect("directory");
        server
    }

    /// Keeps `temp` (the server's data directory, say) until the server is dropped.
    pub fn keep_temp(&mut self, temp: tempfile::TempDir) {
        self._temp = Some(temp);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client builder that trusts this server (its certificate, when it serves HTTPS).
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let builder = Client::builder();
        match &self.certificate {
            Some(pem) => builder
                .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes())
                    .expect("the server's certificate")]),
            None => builder,
        }
    }

    /// Stops the server gracefully and waits until it has; the data directory stays while
    /// this value lives.
    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    /// Stops the server but hands over its temporary data directory, for a restart.
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

    // --- what the server holds -------------------------------------------------------------

    /// The server's storage, to read what it holds.
    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// Every stored visit, by id.
    pub fn visits(&self) -> Vec<VisitRecord> {
        self.storage.visits(None).expect("visits")
    }

    /// Moves when a visit reached the server, writing the server's database file as another
    /// process would: the server's clock cannot be set, so a test of deadlines places the
    /// arrivals in the past this way.
    pub fn set_received_at(&self, id: Uuid, at: jiff::Timestamp) {
        let db = rusqlite::Connection::open(self.data_dir.join("office.sqlite3")).expect("open");
        db.busy_timeout(std::time::Duration::from_secs(5))
            .expect("busy timeout");
        let changed = db
            .execute(
                "UPDATE visits SET received_at = ?1 WHERE id = ?2",
                rusqlite::params![at.as_millisecond(), id.as_bytes().to_vec()],
            )
            .expect("update");
        assert_eq!(changed, 1, "no visit {id}");
    }

    pub fn visit(&self, id: Uuid) -> Option<VisitRecord> {
        self.visits().into_iter().find(|v| v.visit.id == id)
    }

    pub fn visit_count(&self) -> usize {
        self.visits().len()
    }

    /// The ids of every stored visit, in order.
    pub fn visit_ids(&self) -> Vec<Uuid> {
        self.visits().into_iter().map(|v| v.visit.id).collect()
    }

    /// Every stored visit by its start instant (ms): the ratings stored under it (a visit
    /// stored twice would show two).
    pub fn rated_visits(&self) -> std::collections::HashMap<i64, Vec<Option<u8>>> {
        let mut visits: std::collections::HashMap<i64, Vec<Option<u8>>> = Default::default();
        for record in self.visits() {
            visits
                .entry(record.visit.started_at.as_millisecond())
                .or_default()
                .push(record.visit.rating.map(shared_model::Rating::score));
        }
        visits
    }

    /// The ids of the visits the server holds from this tablet, in order.
    pub fn stored_visit_ids(&self, tablet_id: i64) -> Vec<Uuid> {
        self.storage
            .visits(Some(tablet_id))
            .expect("visits")
            .into_iter()
            .map(|v| v.visit.id)
            .collect()
    }

    /// The rating a stored visit has (3, 2, 1), `None` if unrated.
    pub fn visit_rating(&self, id: Uuid) -> Option<u8> {
        self.visit(id)
            .expect("a stored visit")
            .visit
            .rating
            .map(shared_model::Rating::score)
    }

    /// How long a stored visit lasted, in seconds.
    pub fn visit_duration_seconds(&self, id: Uuid) -> f64 {
        let visit = self.visit(id).expect("a stored visit").visit;
        visit
            .ended_at
            .duration_since(visit.started_at)
            .as_secs_f64()
    }

    /// The recordings directory.
    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }

    /// A kept recording's bytes.
    pub fn stored_recording(&self, visit_id: Uuid) -> Option<Vec<u8>> {
        std::fs::read(self.recordings_dir().join(format!("{visit_id}.3gpp"))).ok()
    }

    /// Each recording the server holds — as a row or as a file — with its visit's rating.
    pub fn recorded_visits(&self) -> Vec<(Uuid, Option<u8>)> {
        let mut ids: std::collections::BTreeSet<Uuid> = self
            .storage
            .recording_ids()
            .expect("recordings")
            .into_iter()
            .collect();
        ids.extend(
            crate::files_in(&self.recordings_dir())
                .iter()
                .filter_map(|name| name.strip_suffix(".3gpp")?.parse::<Uuid>().ok()),
        );
        let visits = self.visits();
        ids.into_iter()
            .map(|id| {
                let rating = visits
                    .iter()
                    .find(|v| v.visit.id == id)
                    .and_then(|v| v.visit.rating.map(shared_model::Rating::score));
                (id, rating)
            })
            .collect()
    }

    // --- the organisation -----------------------------------------------------------------

    pub fn section(&self, name: &str) -> &SectionEntry {
        self.directory
            .departments
            .iter()
            .flat_map(|d| &d.sections)
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no section {name}"))
    }

    /// The id of an employee of the named section.
    pub fn employee_of(&self, section: &str, index: usize) -> i64 {
        self.section(section).employees[index].id
    }

    pub fn employee_name(&self, id: i64) -> String {
        self.directory
            .departments
            .iter()
            .flat_map(|d| &d.sections)
            .flat_map(|s| &s.employees)
            .find(|e| e.id == id)
            .map(|e| e.full_name.clone())
            .unwrap_or_else(|| panic!("no employee {id}"))
    }

    /// The department that holds a section.
    pub fn department_of(&self, section: &str) -> i64 {
        self.directory
            .departments
            .iter()
            .find(|d| d.sections.iter().any(|s| s.name == section))
            .map(|d| d.id)
            .unwrap_or_else(|| panic!("no section {section}"))
    }

    // --- people ----------------------------------------------------------------------------

    /// A client signed in through the JSON API.
    pub async fn login(&self, login: &str, password: &str) -> Client {
        let client = self
            .client_builder()
            .cookie_store(true)
            .build()
            .expect("client");
        let response = client
            .post(self.url("/api/auth/login"))
            .json(&json!({ "login": login, "password": password }))
            .send()
            .await
            .expect("login request");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "login {login}: {}",
            response.text().await.unwrap_or_default()
        );
        client
    }

    pub async fn admin(&self) -> Client {
        self.login(ADMIN_LOGIN, ADMIN_PASSWORD).await
    }

    /// Creates an account through the administrator's JSON API; it must be created.
    pub async fn post_new_account(&self, admin: &Client, body: &Value) {
        let response = admin
            .post(self.url("/api/admin/accounts"))
            .json(body)
            .send()
            .await
            .expect("create account");
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Creates the employee's specialist account and signs it in.
    pub async fn specialist(&self, admin: &Client, employee_id: i64) -> Client {
        let login = format!("specialist{employee_id}");
        self.post_new_account(
            admin,
            &json!({
                "login": login,
                "display_name": format!("Сотрудник {employee_id}"),
                "password": SPECIALIST_PASSWORD,
                "role": "specialist",
                "employee_id": employee_id,
            }),
        )
        .await;
        self.login(&login, SPECIALIST_PASSWORD).await
    }

    /// The administrator approves the enrolment code a tablet shows.
    pub async fn approve(&self, admin: &Client, code: &str, name: &str) -> i64 {
        let response = admin
            .post(self.url("/api/admin/enrolments"))
            .json(&json!({ "code": code, "name": name }))
            .send()
            .await
            .expect("approve request");
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "approve: {}",
            response.text().await.unwrap_or_default()
        );
        let created: Value = response.json().await.expect("created");
        created["id"].as_i64().expect("tablet id")
    }

    /// The specialist types the pairing code a tablet shows.
    pub async fn pair_with_code(&self, specialist: &Client, code: &str) {
        let response = specialist
            .post(self.url("/api/pairings"))
            .json(&json!({ "code": code }))
            .send()
            .await
            .expect("pair request");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "pair: {}",
            response.text().await.unwrap_or_default()
        );
    }

    pub async fn revoke_tablet(&self, tablet_id: i64) {
        let response = self
            .admin()
            .await
            .post(self.url(&format!("/api/admin/tablets/{tablet_id}/revoke")))
            .send()
            .await
            .expect("revoke request");
        assert!(response.status().is_success(), "{}", response.status());
    }
}
