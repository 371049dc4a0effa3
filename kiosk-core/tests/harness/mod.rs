//! A real office server for kiosk tests: in-process on port 0, with the demo organisation and
//! an administrator, driven over HTTP the way its people drive it.
#![allow(dead_code)]

use std::path::PathBuf;

use office_server::accounts::create_admin;
use office_server::demo::load_demo_organisation;
use office_server::storage::Directory;
use office_server::{Application, Config};
use reqwest::Client;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_PASSWORD: &str = "correct horse battery";

pub struct Server {
    pub base: String,
    pub data_dir: PathBuf,
    pub directory: Directory,
    _temp: tempfile::TempDir,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

pub async fn spawn_server() -> Server {
    let temp = tempfile::tempdir().expect("server dir");
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: temp.path().to_path_buf(),
        ..Config::default()
    };
    let app = Application::build(config).await.expect("server starts");
    let storage = app.state().storage.clone();
    load_demo_organisation(storage.as_ref()).expect("demo organisation");
    create_admin(storage.as_ref(), "admin", "Администратор", ADMIN_PASSWORD).expect("admin");
    let directory = storage.directory().expect("directory");
    let base = format!("http://127.0.0.1:{}", app.local_addr().port());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("server runs");
    });
    Server {
        base,
        data_dir: temp.path().to_path_buf(),
        directory,
        _temp: temp,
        stop,
        task,
    }
}

impl Server {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn login(&self, login: &str, password: &str) -> Client {
        let client = Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        let response = client
            .post(self.url("/api/auth/login"))
            .json(&json!({ "login": login, "password": password }))
            .send()
            .await
            .expect("login request");
        assert!(
            response.status().is_success(),
            "login {login}: {}",
            response.status()
        );
        client
    }

    pub async fn admin(&self) -> Client {
        self.login("admin", ADMIN_PASSWORD).await
    }

    pub async fn approve(&self, admin: &Client, code: &str, name: &str) {
        let response = admin
            .post(self.url("/api/admin/enrolments"))
            .json(&json!({ "code": code, "name": name }))
            .send()
            .await
            .expect("approve request");
        assert!(
            response.status().is_success(),
            "approve: {}",
            response.status()
        );
    }

    pub fn employee_of(&self, section: &str, index: usize) -> i64 {
        self.directory
            .departments
            .iter()
            .flat_map(|d| &d.sections)
            .find(|s| s.name == section)
            .map(|s| s.employees[index].id)
            .expect("section")
    }

    pub fn employee_name(&self, id: i64) -> String {
        self.directory
            .departments
            .iter()
            .flat_map(|d| &d.sections)
            .flat_map(|s| &s.employees)
            .find(|e| e.id == id)
            .map(|e| e.full_name.clone())
            .expect("employee")
    }

    /// Creates the employee's specialist account and signs it in.
    pub async fn specialist(&self, admin: &Client, employee: i64) -> Client {
        let login = format!("specialist{employee}");
        let response = admin
            .post(self.url("/api/admin/accounts"))
            .json(&json!({
                "login": login, "display_name": "Специалист", "password": "specialist password",
                "role": "specialist", "employee_id": employee,
            }))
            .send()
            .await
            .expect("create account");
        assert!(
            response.status().is_success(),
            "create specialist: {}",
            response.status()
        );
        self.login(&login, "specialist password").await
    }

    pub async fn pair_with_code(&self, specialist: &Client, code: &str) {
        let response = specialist
            .post(self.url("/api/pairings"))
            .json(&json!({ "code": code }))
            .send()
            .await
            .expect("pair request");
        assert!(
            response.status().is_success(),
            "pair: {}",
            response.status()
        );
    }

    fn database(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.data_dir.join("office.sqlite3"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("server database")
    }

    pub fn visit_count(&self) -> i64 {
        self.database()
            .query_row("SELECT count(*) FROM visits", [], |r| r.get(0))
            .expect("count")
    }

    /// Visit ids with how many times each is stored (always once, by the primary key).
    pub fn visit_ids(&self) -> Vec<String> {
        let db = self.database();
        let mut stmt = db.prepare("SELECT id FROM visits").expect("query");
        stmt.query_map([], |r| r.get::<_, uuid::Uuid>(0))
            .expect("rows")
            .map(|id| id.expect("id").to_string())
            .collect()
    }

    pub fn visit_duration_seconds(&self, id: &str) -> f64 {
        let id: uuid::Uuid = id.parse().expect("uuid");
        let ms: i64 = self
            .database()
            .query_row(
                "SELECT ended_at - started_at FROM visits WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .expect("visit");
        ms as f64 / 1000.0
    }

    pub fn visit_rating(&self, id: &str) -> Option<i64> {
        let id: uuid::Uuid = id.parse().expect("uuid");
        self.database()
            .query_row("SELECT rating FROM visits WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .expect("visit")
    }
}

impl Server {
    /// Every stored visit by its start instant (ms): the ratings stored under it.
    pub fn rated_visits(&self) -> std::collections::HashMap<i64, Vec<Option<i64>>> {
        let db = self.database();
        let mut stmt = db
            .prepare("SELECT started_at, rating FROM visits")
            .expect("query");
        let mut visits: std::collections::HashMap<i64, Vec<Option<i64>>> = Default::default();
        for row in stmt
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .expect("rows")
        {
            let (started, rating) = row.expect("row");
            visits.entry(started).or_default().push(rating);
        }
        visits
    }

    /// Each recording the server holds — in its table or as a file — with its visit's rating.
    pub fn recorded_visits(&self) -> Vec<(String, Option<i64>)> {
        let db = self.database();
        let mut ids: Vec<uuid::Uuid> = db
            .prepare("SELECT visit_id FROM recordings")
            .expect("query")
            .query_map([], |r| r.get(0))
            .expect("rows")
            .map(|id| id.expect("id"))
            .collect();
        for entry in std::fs::read_dir(self.data_dir.join("recordings"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".3gpp").and_then(|s| s.parse().ok()) {
                ids.push(id);
            }
        }
        ids.into_iter()
            .map(|id| {
                let rating = db
                    .query_row("SELECT rating FROM visits WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })
                    .unwrap_or(None);
                (id.to_string(), rating)
            })
            .collect()
    }
}
