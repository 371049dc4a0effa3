//! The tablet store on real SQLite files, including crashes of a real process.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jiff::{SignedDuration, Timestamp};
use kiosk_core::store::{ActiveVisit, Credentials, QueuedRecording, Store, StoreError};
use shared_model::{
    EnrolmentStarted, FeedbackKey, FeedbackLinks, NamedRef, Pairing, Rating, RejectReason, Visit,
    VisitAck, VisitOutcome,
};
use uuid::Uuid;

/// Set in a child process of this test binary: what it must do before it dies.
const CHILD_ENV: &str = "KIOSK_STORE_TEST_CHILD";
const CHILD_DB_ENV: &str = "KIOSK_STORE_TEST_DB";

fn db(dir: &Path) -> PathBuf {
    dir.join("tablet.sqlite3")
}

fn ms(ts: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(ts.as_millisecond()).unwrap()
}

fn finished(pairing_id: Uuid, rating: Option<Rating>) -> Visit {
    let now = Timestamp::now();
    Visit {
        id: Uuid::now_v7(),
        pairing_id,
        service_id: 3,
        started_at: now - SignedDuration::from_mins(10),
        ended_at: now,
        rating,
        has_recording: rating == Some(Rating::Bad),
    }
}

fn at_ms(visit: &Visit) -> Visit {
    Visit {
        started_at: ms(visit.started_at),
        ended_at: ms(visit.ended_at),
        ..visit.clone()
    }
}

fn ack(id: Uuid, outcome: VisitOutcome) -> VisitAck {
    VisitAck { id, outcome }
}

fn pairing() -> Pairing {
    Pairing {
        id: Uuid::now_v7(),
        employee: NamedRef {
            id: 1,
            name: "Иванова Мария Петровна".into(),
        },
        section: NamedRef {
            id: 2,
            name: "Отдел учета".into(),
        },
        department: NamedRef {
            id: 3,
            name: "Жилищное управление".into(),
        },
        services: vec![NamedRef {
            id: 3,
            name: "Справка".into(),
        }],
        started_at: ms(Timestamp::now()),
        ends_at: ms(Timestamp::now() + SignedDuration::from_hours(8)),
        ended_elsewhere: Vec::new(),
    }
}

/// The rest of a line after `tag` (libtest may print its own words before the child's).
fn after<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    line.split_once(tag).map(|(_, rest)| rest.trim())
}

/// Runs one of the `child_*` tests below in a new process of this binary.
fn child(name: &str, mode: &str, database: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            format!("{}::{name}", module_path!().trim_start_matches("kiosk::")).as_str(),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .env(CHILD_DB_ENV, database)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// The child's side: does nothing unless started by `child`.
#[test]
fn child_writes_and_dies() {
    let (Ok(mode), Ok(database)) = (std::env::var(CHILD_ENV), std::env::var(CHILD_DB_ENV)) else {
        return;
    };
    let store = Store::open(Path::new(&database)).unwrap();
    let pairing_id = Uuid::now_v7();
    let rate = |rating| {
        let visit = finished(pairing_id, rating);
        store
            .begin_visit(&ActiveVisit {
                id: visit.id,
                pairing_id,
                service_id: visit.service_id,
                started_at: visit.started_at,
            })
            .unwrap();
        store.finish_visit(&visit).unwrap();
        // Only once finish_visit has returned does the app consider the rating taken.
        println!("written {}", visit.id);
        visit
    };
    match mode.as_str() {
        "abort" => {
            let visit = rate(Some(Rating::Bad));
            store
                .begin_visit(&ActiveVisit {
                    id: Uuid::now_v7(),
                    pairing_id,
                    service_id: 3,
                    started_at: Timestamp::now(),
                })
                .unwrap();
            println!("active after {}", visit.id);
            // No destructor, no close, no checkpoint: what a crash leaves.
            std::process::abort();
        }
        "stream" => loop {
            rate(Some(Rating::Bad));
            rate(Some(Rating::Good));
        },
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn a_finished_visit_survives_a_crash_and_the_next_visit_stays_active() {
    let dir = tempfile::tempdir().unwrap();
    let output = child("child_writes_and_dies", "abort", &db(dir.path()))
        .output()
        .unwrap();
    assert!(!output.status.success(), "the child aborts");
    let text = String::from_utf8(output.stdout).unwrap();
    let written: Uuid = text
        .lines()
        .find_map(|line| after(line, "written "))
        .expect("the child wrote a visit")
        .parse()
        .unwrap();
    assert!(text.contains("active after"));

    let store = Store::open(&db(dir.path())).unwrap();
    let outbox = store.outbox_batch(10).unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].id, written);
    assert_eq!(outbox[0].rating, Some(Rating::Bad));
    assert!(store.visit_wants_recording(written).unwrap());
    let active = store.active_visit().unwrap().expect("the started visit");
    assert_ne!(active.id, written);
}

/// A process killed (SIGKILL) at a random moment while it rates visits as fast as it can: every
/// visit it reported written is there, and no transaction is half there (a visit in the outbox
/// is never still the active visit, and a Плохо one always awaits its recording).
#[test]
fn a_process_killed_while_rating_loses_nothing_and_splits_nothing() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let mut process = child("child_writes_and_dies", "stream", &db(dir.path()))
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let mut written = HashSet::new();
        let mut lines = BufReader::new(stdout).lines();
        let target = 50 + round * 37;
        while written.len() < target {
            let line = lines.next().expect("the child keeps writing").unwrap();
            if let Some(id) = after(&line, "written ") {
                written.insert(id.parse::<Uuid>().unwrap());
            }
        }
        process.kill().unwrap();
        // Lines already printed when the kill landed are acknowledged writes too.
        for line in lines.map_while(Result::ok) {
            if let Some(id) = after(&line, "written ") {
                written.insert(id.parse::<Uuid>().unwrap());
            }
        }
        process.wait().unwrap();

        let store = Store::open(&db(dir.path())).unwrap();
        let outbox = store.outbox_batch(100_000).unwrap();
        let stored: HashSet<Uuid> = outbox.iter().map(|v| v.id).collect();
        assert!(
            written.is_subset(&stored),
            "{} written visits are missing",
            written.difference(&stored).count()
        );
        for visit in &outbox {
            let wants = store.visit_wants_recording(visit.id).unwrap();
            assert_eq!(wants, visit.rating == Some(Rating::Bad), "{visit:?}");
        }
        if let Some(active) = store.active_visit().unwrap() {
            assert!(!stored.contains(&active.id), "finished yet still active");
        }
        let conn = rusqlite::Connection::open(db(dir.path())).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
}

#[test]
fn the_active_visit_survives_reopening_and_finishing_clears_it() {
    let dir = tempfile::tempdir().unwrap();
    let pairing_id = Uuid::now_v7();
    let visit = finished(pairing_id, None);
    let active = ActiveVisit {
        id: visit.id,
        pairing_id,
        service_id: visit.service_id,
        started_at: ms(visit.started_at),
    };
    {
        let store = Store::open(&db(dir.path())).unwrap();
        assert_eq!(store.active_visit().unwrap(), None);
        store.begin_visit(&active).unwrap();
    }
    let store = Store::open(&db(dir.path())).unwrap();
    assert_eq!(store.active_visit().unwrap(), Some(active));
    // Another visit's end does not clear this one.
    store.finish_visit(&finished(pairing_id, None)).unwrap();
    assert!(store.active_visit().unwrap().is_some());
    store.finish_visit(&visit).unwrap();
    assert_eq!(store.active_visit().unwrap(), None);
    assert_eq!(store.counts().unwrap().queued, 2);
}

#[test]
fn the_outbox_is_oldest_first_idempotent_and_kept_to_the_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db(dir.path())).unwrap();
    let pairing_id = Uuid::now_v7();
    let visits: Vec<Visit> = [
        Some(Rating::Good),
        None,
        Some(Rating::Bad),
        Some(Rating::Medium),
    ]
    .into_iter()
    .map(|rating| finished(pairing_id, rating))
    .collect();
    for visit in &visits {
        store.finish_visit(visit).unwrap();
    }
    store.finish_visit(&visits[1]).unwrap();
    let expected: Vec<Visit> = visits.iter().map(at_ms).collect();
    assert_eq!(store.outbox_batch(100).unwrap(), expected);
    assert_eq!(store.outbox_batch(2).unwrap(), expected[..2]);
    assert_eq!(store.counts().unwrap().queued, 4);

    store
        .finish_visits(&[finished(pairing_id, None), finished(pairing_id, None)])
        .unwrap();
    assert_eq!(store.counts().unwrap().queued, 6);
    // Reopened, the same.
    drop(store);
    let store = Store::open(&db(dir.path())).unwrap();
    assert_eq!(store.outbox_batch(4).unwrap(), expected);
}

#[test]
fn only_the_servers_answer_removes_a_visit_and_a_rejected_one_moves_aside() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db(dir.path())).unwrap();
    let pairing_id = Uuid::now_v7();
    let [stored, again, refused, unanswered] =
        std::array::from_fn(|_| finished(pairing_id, Some(Rating::Good)));
    let refused_bad = finished(pairing_id, Some(Rating::Bad));
    for visit in [&stored, &again, &refused, &unanswered, &refused_bad] {
        store.finish_visit(visit).unwrap();
    }
    let rejected = |reason| VisitOutcome::Rejected {
        reason,
        message: "refused".into(),
    };

    let summary = store
        .apply_acks(&[
            ack(stored.id, VisitOutcome::Stored),
            ack(again.id, VisitOutcome::AlreadyStored),
            ack(refused.id, rejected(RejectReason::UnknownService)),
            ack(refused_bad.id, rejected(RejectReason::UnknownPairing)),
            ack(Uuid::now_v7(), VisitOutcome::Stored),
        ])
        .unwrap();

    assert_eq!(
        (summary.removed, summary.rejected, summary.unknown),
        (2, 2, 1)
    );
    assert_eq!(store.outbox_batch(10).unwrap(), vec![at_ms(&unanswered)]);
    let counts = store.counts().unwrap();
    assert_eq!((counts.queued, counts.rejected), (1, 2));
    let aside = store.rejected_visits().unwrap();
    let reasons: Vec<_> = aside
        .iter()
        .map(|r| (r.visit.clone(), r.reason.as_str()))
        .collect();
    assert!(reasons.contains(&(at_ms(&refused), "unknown_service")));
    assert!(reasons.contains(&(at_ms(&refused_bad), "unknown_pairing")));
    assert_eq!(reasons.len(), 2);
    // A rejected visit will never take a recording.
    assert!(!store.visit_wants_recording(refused_bad.id).unwrap());
    // Finishing a set-aside visit again does not queue it again; repeating the answer is harmless.
    store.finish_visit(&refused).unwrap();
    store
        .apply_acks(&[ack(stored.id, VisitOutcome::Stored)])
        .unwrap();
    assert_eq!(store.counts().unwrap().queued, 1);
    assert_eq!(store.counts().unwrap().rejected, 2);
}

#[test]
fn a_bad_visit_wants_its_recording_until_it_is_done_even_after_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&db(dir.path())).unwrap();
    let pairing_id = Uuid::now_v7();
    let bad = finished(pairing_id, Some(Rating::Bad));
    let good = finished(pairing_id, Some(Rating::Good));
    let mut bad_silent = finished(pairing_id, Some(Rating::Bad));
    bad_silent.has_recording = false;
    for visit in [&bad, &good, &bad_silent] {
        store.finish_visit(visit).unwrap();
    }
    assert!(store.visit_wants_recording(bad.id).unwrap());
    assert!(!store.visit_wants_recording(good.id).unwrap());
    assert!(!store.visit_wants_recording(bad_silent.id).unwrap());
    assert!(!store.visit_wants_recording(Uuid::now_v7()).unwrap());

    let recording = |visit: &Visit| QueuedRecording {
        visit_id: visit.id,
        path: dir.path().join(format!("{}.3gpp", visit.id)),
        size_bytes: 35_502,
        sha256: "AB".repeat(32),
    };
    assert!(matches!(
        store.queue_recording(&recording(&good)),
        Err(StoreError::RecordingNotWanted(id)) if id == good.id
    ));
    store.queue_recording(&recording(&bad)).unwrap();
    store.queue_recording(&recording(&bad)).unwrap();
    assert_eq!(store.counts().unwrap().recordings_pending, 1);
    // Not before the server holds the visit.
    assert!(store.recordings_to_upload().unwrap().is_empty());

    store
        .apply_acks(&[
            ack(bad.id, VisitOutcome::Stored),
            ack(good.id, VisitOutcome::Stored),
            ack(bad_silent.id, VisitOutcome::Stored),
        ])
        .unwrap();
    assert_eq!(store.counts().unwrap().queued, 0);
    assert!(
        store.visit_wants_recording(bad.id).unwrap(),
        "still waits for its audio"
    );
    let queued = store.recordings_to_upload().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].sha256, "ab".repeat(32), "kept in lowercase");

    store.recording_done(bad.id).unwrap();
    assert!(!store.visit_wants_recording(bad.id).unwrap());
    assert!(store.recordings_to_upload().unwrap().is_empty());
    assert_eq!(store.counts().unwrap().recordings_pending, 0);
    assert!(
        store.queue_recording(&recording(&bad)).is_err(),
        "done is done"
    );

    // Giving one up counts it.
    let other = finished(pairing_id, Some(Rating::Bad));
    store.finish_visit(&other).unwrap();
    store.queue_recording(&recording(&other)).unwrap();
    store.drop_recording(other.id, "file_missing").unwrap();
    assert!(!store.visit_wants_recording(other.id).unwrap());
    let counts = store.counts().unwrap();
    assert_eq!(
        (counts.recordings_pending, counts.recordings_dropped),
        (0, 1)
    );
    assert_eq!(
        store.dropped_recordings().unwrap()[0].reason,
        "file_missing"
    );
}

#[test]
fn provisioning_and_sync_state_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = Credentials {
        tablet_id: 7,
        tablet_name: "Окно 3".into(),
        device_token: "secret-token".into(),
    };
    let enrolment = EnrolmentStarted {
        enrolment_id: Uuid::new_v4(),
        code: "12345678".into(),
        expires_at: ms(Timestamp::now()),
    };
    let pairing = pairing();
    let synced = ms(Timestamp::now());
    {
        let store = Store::open(&db(dir.path())).unwrap();
        assert_eq!(store.credentials().unwrap(), None);
        assert_eq!(store.pairing().unwrap(), None);
        assert_eq!(store.last_sync().unwrap(), None);
        store.save_pending_enrolment(&enrolment).unwrap();
        store.save_pairing(&pairing).unwrap();
        store.set_last_sync(synced).unwrap();
    }
    let store = Store::open(&db(dir.path())).unwrap();
    assert_eq!(store.pending_enrolment().unwrap(), Some(enrolment));
    assert_eq!(store.pairing().unwrap(), Some(pairing));
    assert_eq!(store.last_sync().unwrap(), Some(synced));
    store.save_credentials(&credentials).unwrap();
    assert_eq!(
        store.pending_enrolment().unwrap(),
        None,
        "closed by the credential"
    );
    assert_eq!(store.credentials().unwrap(), Some(credentials.clone()));
    assert!(!format!("{credentials:?}").contains("secret-token"));
    // A refused token does not take a newer credential with it.
    assert!(!store.forget_credentials_if("an older token").unwrap());
    assert_eq!(store.credentials().unwrap(), Some(credentials.clone()));
    assert!(store.forget_credentials_if("secret-token").unwrap());
    assert_eq!(store.credentials().unwrap(), None);
    store.save_credentials(&credentials).unwrap();
    store.forget_credentials().unwrap();
    assert_eq!(store.credentials().unwrap(), None);
    store.clear_pairing().unwrap();
    assert_eq!(store.pairing().unwrap(), None);
    store
        .save_pending_enrolment(&EnrolmentStarted {
            enrolment_id: Uuid::new_v4(),
            code: "87654321".into(),
            expires_at: ms(Timestamp::now()),
        })
        .unwrap();
    store.clear_pending_enrolment().unwrap();
    assert_eq!(store.pending_enrolment().unwrap(), None);
}

#[test]
fn the_feedback_key_is_made_once_and_its_links_are_learnt_per_credential() {
    let dir = tempfile::tempdir().unwrap();
    let links = FeedbackLinks {
        base_url: "https://ocenka.example/f/".into(),
        tablet_id: 7,
    };
    let public = {
        let store = Store::open(&db(dir.path())).unwrap();
        assert_eq!(store.feedback_links().unwrap(), None);
        let key = store.feedback_signing_key().unwrap();
        assert_eq!(
            FeedbackKey::of(&store.feedback_signing_key().unwrap()),
            FeedbackKey::of(&key),
            "asked again: the same key"
        );
        store.set_feedback_links(Some(&links)).unwrap();
        FeedbackKey::of(&key)
    };
    let store = Store::open(&db(dir.path())).unwrap();
    assert_eq!(
        FeedbackKey::of(&store.feedback_signing_key().unwrap()),
        public,
        "kept across restarts"
    );
    assert_eq!(store.feedback_links().unwrap(), Some(links.clone()));
    store.set_feedback_links(None).unwrap();
    assert_eq!(
        store.feedback_links().unwrap(),
        None,
        "the server has no address"
    );
    store.set_feedback_links(Some(&links)).unwrap();
    // A new credential may be another tablet's: the links are learnt again, the key stays.
    store
        .save_credentials(&Credentials {
            tablet_id: 8,
            tablet_name: "Окно 4".into(),
            device_token: "token".into(),
        })
        .unwrap();
    assert_eq!(store.feedback_links().unwrap(), None);
    assert_eq!(
        FeedbackKey::of(&store.feedback_signing_key().unwrap()),
        public
    );
}

#[test]
fn many_threads_share_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(&db(dir.path())).unwrap());
    let pairing_id = Uuid::now_v7();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                for _ in 0..25 {
                    store.finish_visit(&finished(pairing_id, None)).unwrap();
                    store.counts().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(store.counts().unwrap().queued, 100);
}
