//! Crash test: the real `kiosk` binary is killed with SIGKILL at random points — during a
//! visit, right after a rating (while it saves and encodes), while it syncs and uploads — and
//! restarted. At the end every rating the screen acknowledged («Спасибо за оценку!») is on the
//! server exactly once, and no recording of a visit not rated Плохо exists anywhere.
//!
//! CRASH_KILLS sets how many kills (default 12 here; `scripts/crash-test.sh` runs 200).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::RngExt;
use reqwest::Client;
use serde_json::{Value, json};
use test_support::*;

struct Kiosk {
    process: Child,
    url: String,
    http: Client,
    /// Kept open so the kiosk never writes into a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Kiosk {
    fn start(server: &str, data: &Path) -> Kiosk {
        let mut process = Command::new(kiosk_binary())
            .args(["--server", server, "--synthetic-audio", "--data"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(match std::env::var_os("CRASH_LOG") {
                Some(_) => Stdio::inherit(),
                None => Stdio::null(),
            })
            .spawn()
            .expect("kiosk binary");
        let mut line = String::new();
        let mut stdout = BufReader::new(process.stdout.take().expect("stdout"));
        stdout.read_line(&mut line).expect("kiosk prints its URL");
        let url = line
            .trim()
            .strip_prefix("kiosk screen: ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Kiosk {
            process,
            url,
            http: Client::new(),
            _stdout: stdout,
        }
    }

    fn kill(mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.process.id().to_string()])
            .status();
        let _ = self.process.wait();
    }

    async fn view(&self) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}view", self.url))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    async fn act(&self, action: Value) {
        let _ = self
            .http
            .post(format!("{}action", self.url))
            .json(&action)
            .send()
            .await;
    }

    /// Waits until the screen's name is `name`; returns its view.
    async fn until_screen(&self, name: &str, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(view) = self.view().await
                && view["screen"]["name"] == name
            {
                return Some(view);
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        None
    }
}

/// Every rating and every Плохо recording reaches the server within this of the last restart.
const DRAIN_BOUND: Duration = Duration::from_secs(60);

fn kills() -> usize {
    std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratings_survive_sigkill_at_any_point() {
    let server = spawn_default_app().await;
    let tablet = tempfile::tempdir().expect("tablet dir");
    let admin = server.admin().await;

    // Provision once: the credential and pairing are in the tablet's store afterwards.
    let kiosk = Kiosk::start(&server.base, tablet.path());
    let view = until_code(&kiosk, "enrolment").await;
    server.approve(&admin, &view, "Крэш-тест").await;
    let code = until_code(&kiosk, "pairing").await;
    let specialist = server
        .specialist(&admin, server.employee_of("Отдел учета", 0))
        .await;
    server.pair_with_code(&specialist, &code).await;
    kiosk
        .until_screen("idle", Duration::from_secs(20))
        .await
        .expect("paired");
    kiosk.kill();

    // started_at_ms of each visit whose rating the screen acknowledged → the rating's key.
    let mut acknowledged: HashMap<i64, &'static str> = HashMap::new();
    let total = kills();
    let mut rng = rand::rng();
    for round in 0..total {
        let kiosk = Kiosk::start(&server.base, tablet.path());
        // Up to three visits per life, then a kill at a random moment of one of them.
        let visits = rng.random_range(1..=3);
        'life: for visit in 0..visits {
            let last = visit + 1 == visits;
            // After a restart, the screen comes back to idle (an open visit ends unrated).
            if kiosk
                .until_screen("idle", Duration::from_secs(20))
                .await
                .is_none()
            {
                break 'life;
            }
            let phase = if last { rng.random_range(0..5) } else { 99 };
            kiosk.act(json!({ "action": "start" })).await;
            let Some(choice) = kiosk
                .until_screen("service_choice", Duration::from_secs(5))
                .await
            else {
                break 'life;
            };
            let service = choice["screen"]["services"][0]["id"]
                .as_i64()
                .expect("a service");
            kiosk
                .act(json!({ "action": "choose_service", "service_id": service }))
                .await;
            let Some(in_visit) = kiosk.until_screen("in_visit", Duration::from_secs(5)).await
            else {
                break 'life;
            };
            let started = in_visit["screen"]["started_at_ms"]
                .as_i64()
                .expect("started_at_ms");
            if phase == 0 {
                // Killed while the visit records.
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..800))).await;
                break 'life;
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..700))).await;
            kiosk.act(json!({ "action": "end" })).await;
            let Some(rating) = kiosk.until_screen("rating", Duration::from_secs(5)).await else {
                break 'life;
            };
            if phase == 1 {
                break 'life; // killed on the rating screen
            }
            tokio::time::sleep(Duration::from_millis(700)).await;
            let buttons: Vec<String> = rating["screen"]["buttons"]
                .as_array()
                .expect("buttons")
                .iter()
                .map(|b| b.as_str().unwrap_or_default().to_string())
                .collect();
            // Plenty of Плохо, so that encoding and uploads are under way at kill time.
            let key: &'static str = ["bad", "good", "medium", "bad"][rng.random_range(0..4)];
            let position = buttons.iter().position(|b| b == key).expect("button");
            kiosk
                .act(json!({ "action": "rate", "position": position }))
                .await;
            if phase == 2 {
                // Killed right after the tap: saving, encoding.
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..60))).await;
                break 'life;
            }
            if kiosk
                .until_screen("thanks", Duration::from_secs(5))
                .await
                .is_some()
            {
                acknowledged.insert(started, key);
            }
            if phase == 3 {
                // Killed while it syncs and uploads.
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
                break 'life;
            }
        }
        kiosk.kill();
        if round % 20 == 0 {
            println!(
                "crash test: {} of {total} kills, {} ratings acknowledged",
                round + 1,
                acknowledged.len()
            );
        }
    }

    // A last life to let everything drain, then the accounting.
    let kiosk = Kiosk::start(&server.base, tablet.path());
    let last_start = Instant::now();
    // Done when every acknowledged rating is on the server, no audio is left on the tablet, and
    // every visit the server holds with a recording to come has it: every Плохо recording
    // reaches the server within DRAIN_BOUND of the last restart.
    let audio_left = || -> Vec<(String, Option<u8>)> {
        ["recordings", "spool"]
            .iter()
            .flat_map(|dir| {
                files_in(&tablet.path().join(dir))
                    .into_iter()
                    .map(move |f| format!("{dir}/{f}"))
            })
            .map(|file| {
                let id: Option<uuid::Uuid> = Path::new(&file)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.split('.').next())
                    .and_then(|n| n.parse().ok());
                let rating = id
                    .filter(|id| server.visit_ids().contains(id))
                    .and_then(|id| server.visit_rating(id));
                (file, rating)
            })
            .collect()
    };
    let recordings_awaited = || -> Vec<uuid::Uuid> {
        let kept = server.recorded_visits();
        server
            .visits()
            .into_iter()
            .filter(|v| v.visit.has_recording && !kept.iter().any(|(id, _)| *id == v.visit.id))
            .map(|v| v.visit.id)
            .collect()
    };
    let drained = wait_until(DRAIN_BOUND, || {
        let stored = server.rated_visits();
        let acknowledged_all = acknowledged.keys().all(|k| stored.contains_key(k));
        (acknowledged_all && audio_left().is_empty() && recordings_awaited().is_empty())
            .then_some(())
    })
    .await;
    let drained_in = last_start.elapsed();
    kiosk.kill();
    let stored = server.rated_visits();
    let missing: Vec<_> = acknowledged
        .keys()
        .filter(|k| !stored.contains_key(k))
        .collect();
    let left_on_tablet = audio_left();
    let awaited = recordings_awaited();
    let dropped = test_support::open_store(tablet.path())
        .dropped_recordings()
        .expect("the tablet's store");
    assert!(
        drained.is_some(),
        "not everything drained within {DRAIN_BOUND:?}: {} acknowledged, {} on the server; \
         acknowledged but missing: {missing:?}; audio left on the tablet (file, rating on the \
         server): {left_on_tablet:?}; recordings the server still waits for: {awaited:?}; given \
         up by the tablet: {dropped:?}",
        acknowledged.len(),
        stored.len()
    );
    assert!(
        dropped.is_empty(),
        "the tablet gave up recordings: {dropped:?}"
    );
    for (started, key) in &acknowledged {
        let score = match *key {
            "good" => 3,
            "medium" => 2,
            _ => 1,
        };
        let on_server = stored.get(started).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            on_server,
            [Some(score)],
            "visit started at {started}: acknowledged {key}, server has {on_server:?}"
        );
    }
    // No recording of a visit not rated Плохо, on the server or the tablet.
    for (visit, rating) in server.recorded_visits() {
        assert_eq!(
            rating,
            Some(1),
            "the server keeps a recording of visit {visit} rated {rating:?}"
        );
    }
    println!(
        "crash test: {total} kills, {} ratings acknowledged, all on the server exactly once; {} visits \
         stored in all; {} Плохо recordings, all on the server {:.1} s after the last restart",
        acknowledged.len(),
        stored.values().map(Vec::len).sum::<usize>(),
        server.recorded_visits().len(),
        drained_in.as_secs_f64()
    );
    server.stop().await;
}

async fn until_code(kiosk: &Kiosk, screen: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(view) = kiosk.view().await
            && view["screen"]["name"] == screen
            && let Some(code) = view["screen"]["code"].as_str()
        {
            return code.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {screen} code on the screen");
}
