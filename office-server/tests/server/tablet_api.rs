//! Enrolment, pairing and sync through HTTP against a running server.

use jiff::{SignedDuration, Timestamp};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shared_model::{
    EnrolmentStarted, EnrolmentStatus, PROTOCOL_HEADER, PROTOCOL_VERSION, PairingEndReason,
    PairingStatus, Rating, RejectReason, VisitOutcome,
};
use test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_issues_a_credential_once_approved() {
    let app = spawn_app().await;
    let plain = Client::new();
    let start = |version: Option<&str>| {
        let mut request = plain
            .post(app.url("/api/tablet/enrolments"))
            .json(&json!({ "app_version": "1.0.0", "device_description": "Samsung Tab A8" }));
        if let Some(version) = version {
            request = request.header(PROTOCOL_HEADER, version);
        }
        request.send()
    };
    // The protocol version is checked before anything else.
    assert_eq!(
        error_code(start(None).await.unwrap()).await,
        (StatusCode::BAD_REQUEST, "bad_request".into())
    );
    assert_eq!(
        error_code(start(Some("0")).await.unwrap()).await,
        (StatusCode::UPGRADE_REQUIRED, "protocol_too_old".into())
    );
    assert_eq!(
        error_code(start(Some("999")).await.unwrap()).await,
        (StatusCode::BAD_REQUEST, "protocol_too_new".into())
    );

    let started: EnrolmentStarted = start(Some("1")).await.unwrap().json().await.unwrap();
    assert_eq!(started.code.len(), 8);
    let poll = || {
        plain
            .get(app.url(&format!("/api/tablet/enrolments/{}", started.enrolment_id)))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION)
            .send()
    };
    let status: EnrolmentStatus = poll().await.unwrap().json().await.unwrap();
    assert!(
        matches!(status, EnrolmentStatus::Pending { .. }),
        "{status:?}"
    );

    // Only an administrator approves, and only a real open code.
    let approve = |client: &Client, code: &str| {
        client
            .post(app.url("/api/admin/enrolments"))
            .json(&json!({ "code": code, "name": "Окно 3" }))
            .send()
    };
    assert_eq!(
        approve(&plain, &started.code).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let admin = app.admin().await;
    let specialist = app
        .specialist(&admin, app.employee_of("Отдел учета", 0))
        .await;
    assert_eq!(
        approve(&specialist, &started.code).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        approve(&admin, "12ab").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let wrong = if started.code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    assert_eq!(
        approve(&admin, wrong).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // Typed with a space and a dash, as people do.
    let typed = format!("{}-{} ", &started.code[..4], &started.code[4..]);
    assert_eq!(
        approve(&admin, &typed).await.unwrap().status(),
        StatusCode::CREATED
    );
    assert_eq!(
        approve(&admin, &started.code).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // Each poll before first use issues a fresh credential; only the latest works.
    let first: EnrolmentStatus = poll().await.unwrap().json().await.unwrap();
    let second: EnrolmentStatus = poll().await.unwrap().json().await.unwrap();
    let (
        EnrolmentStatus::Approved {
            device_token: old, ..
        },
        EnrolmentStatus::Approved {
            device_token: token,
            tablet_name,
            ..
        },
    ) = (first, second)
    else {
        panic!("not approved");
    };
    assert_eq!(tablet_name, "Окно 3");
    assert_eq!(token.len(), 43, "256 bits in base64url");
    assert_ne!(old, token);
    let pairing_of = |token: &str| {
        plain
            .get(app.url("/api/tablet/pairing"))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION)
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        pairing_of(&old).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let status: PairingStatus = pairing_of(&token).await.unwrap().json().await.unwrap();
    assert_eq!(status, PairingStatus::None);
    // Once used, the enrolment is closed: nobody else can collect a credential with its id.
    let closed: EnrolmentStatus = poll().await.unwrap().json().await.unwrap();
    assert_eq!(closed, EnrolmentStatus::Expired);
    assert_eq!(pairing_of(&token).await.unwrap().status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_gives_the_sections_services_and_ends_in_each_way() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let tablet = app.enrol_tablet(&admin, "Окно 1").await;
    let first_employee = app.employee_of("Отдел учета", 0);
    let specialist = app.specialist(&admin, first_employee).await;

    // A wrong or malformed code is refused with a clear error.
    let wrong = specialist
        .post(app.url("/api/pairings"))
        .json(&json!({ "code": "000000" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(wrong).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let malformed = specialist
        .post(app.url("/api/pairings"))
        .json(&json!({ "code": "12" }))
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    // Administrators do not pair tablets to themselves.
    let by_admin = admin
        .post(app.url("/api/pairings"))
        .json(&json!({ "code": "123456" }))
        .send()
        .await
        .unwrap();
    assert_eq!(by_admin.status(), StatusCode::FORBIDDEN);

    let pairing = app.pair(&tablet, &specialist).await;
    let section = app.section("Отдел учета");
    assert_eq!(pairing.employee.id, first_employee);
    assert_eq!(pairing.section.name, "Отдел учета");
    assert_eq!(pairing.department.name, "Жилищное управление");
    let service_ids: Vec<i64> = pairing.services.iter().map(|s| s.id).collect();
    assert_eq!(service_ids, section.service_ids);
    assert!(pairing.ends_at > Timestamp::now());

    let status: PairingStatus = tablet
        .get("/api/tablet/pairing")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(matches!(&status, PairingStatus::Active { pairing: p } if p.id == pairing.id));
    let mine: Vec<shared_model::Pairing> = specialist
        .get(app.url("/api/pairings"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);

    // Paired to someone else: the first pairing ends as replaced.
    let other = app
        .specialist(&admin, app.employee_of("Отдел учета", 1))
        .await;
    let second = app.pair(&tablet, &other).await;
    let mine: Vec<shared_model::Pairing> = specialist
        .get(app.url("/api/pairings"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(mine.is_empty());

    // Another specialist cannot end it; its own specialist can, once.
    let end = |client: &Client| {
        client
            .post(app.url(&format!("/api/pairings/{}/end", second.id)))
            .send()
    };
    assert_eq!(
        end(&specialist).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(end(&other).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(end(&other).await.unwrap().status(), StatusCode::CONFLICT);
    let status: PairingStatus = tablet
        .get("/api/tablet/pairing")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        matches!(status, PairingStatus::Ended { pairing_id, reason: PairingEndReason::EndedByStaff, .. } if pairing_id == second.id),
        "{status:?}"
    );

    // The tablet's staff panel can end its own pairing too.
    let third = app.pair(&tablet, &specialist).await;
    let ended: PairingStatus = tablet
        .post("/api/tablet/pairing/end")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        matches!(ended, PairingStatus::Ended { pairing_id, reason: PairingEndReason::EndedByStaff, .. } if pairing_id == third.id),
        "{ended:?}"
    );

    // Revoking the tablet ends its access at once.
    let revoke = admin
        .post(app.url(&format!("/api/admin/tablets/{}/revoke", tablet.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    let after = tablet.get("/api/tablet/pairing").send().await.unwrap();
    assert_eq!(
        error_code(after).await,
        (StatusCode::UNAUTHORIZED, "unauthenticated".into())
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_stores_each_visit_once_and_judges_each_item() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet("Окно 1", 0).await;
    let visits = vec![
        visit(&pairing, Some(Rating::Good)),
        visit(&pairing, Some(Rating::Bad)),
        visit(&pairing, None),
    ];
    let first = tablet.sync(&visits).await;
    assert_eq!(first.results.len(), 3);
    for (ack, sent) in first.results.iter().zip(&visits) {
        assert_eq!(ack.id, sent.id);
        assert_eq!(ack.outcome, VisitOutcome::Stored);
    }
    assert!(matches!(first.pairing, PairingStatus::Active { .. }));

    // A resend changes nothing and is acknowledged as already stored.
    let again = tablet.sync(&visits).await;
    assert!(
        again
            .results
            .iter()
            .all(|a| a.outcome == VisitOutcome::AlreadyStored)
    );

    // The same id with different content is refused for that item alone.
    let mut changed = visits[0].clone();
    changed.rating = Some(Rating::Bad);
    changed.has_recording = true;
    let fresh = visit(&pairing, Some(Rating::Medium));
    let mixed = tablet.sync(&[changed, fresh.clone()]).await;
    assert!(matches!(
        &mixed.results[0].outcome,
        VisitOutcome::Rejected {
            reason: RejectReason::Conflict,
            ..
        }
    ));
    assert_eq!(mixed.results[1].outcome, VisitOutcome::Stored);

    // Item-level refusals, each with its reason.
    let mut backwards = visit(&pairing, Some(Rating::Good));
    backwards.started_at = backwards.ended_at + SignedDuration::from_mins(10);
    let mut claims_audio = visit(&pairing, Some(Rating::Good));
    claims_audio.has_recording = true;
    let mut foreign_service = visit(&pairing, Some(Rating::Good));
    let other_section = app.section("Отдел архитектуры");
    foreign_service.service_id = *other_section
        .service_ids
        .iter()
        .find(|id| !pairing.services.iter().any(|s| s.id == **id))
        .unwrap();
    let mut unknown_pairing = visit(&pairing, Some(Rating::Good));
    unknown_pairing.pairing_id = uuid::Uuid::now_v7();
    let judged = tablet
        .sync(&[backwards, claims_audio, foreign_service, unknown_pairing])
        .await;
    let reasons: Vec<_> = judged
        .results
        .iter()
        .map(|a| match &a.outcome {
            VisitOutcome::Rejected { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        [
            Some(RejectReason::InvalidInterval),
            Some(RejectReason::RecordingNotAllowed),
            Some(RejectReason::UnknownService),
            Some(RejectReason::UnknownPairing),
        ]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_under_another_tablets_pairing_is_refused() {
    let app = spawn_app().await;
    let (tablet_a, pairing_a) = app.paired_tablet("Окно 1", 0).await;
    let (tablet_b, _) = app.paired_tablet("Окно 2", 1).await;
    // Tablet B claims a visit of the employee paired to tablet A.
    let foreign = visit(&pairing_a, Some(Rating::Bad));
    let response = tablet_b.sync(std::slice::from_ref(&foreign)).await;
    assert!(matches!(
        response.results[0].outcome,
        VisitOutcome::Rejected {
            reason: RejectReason::UnknownPairing,
            ..
        }
    ));
    // Nothing was stored: tablet A can still store it as new.
    assert_eq!(
        tablet_a.sync(&[foreign]).await.results[0].outcome,
        VisitOutcome::Stored
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_unauthenticated_syncs_store_nothing() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet("Окно 1", 0).await;
    let good = visit(&pairing, Some(Rating::Good));
    let mut valid =
        serde_json::to_value(batch(Timestamp::now(), std::slice::from_ref(&good))).unwrap();

    let mut bad_rating = valid.clone();
    bad_rating["visits"][0]["rating"] = json!(4);
    let mut missing_field = valid.clone();
    missing_field["visits"][0]
        .as_object_mut()
        .unwrap()
        .remove("pairing_id");
    let mut bad_uuid = valid.clone();
    bad_uuid["visits"][0]["id"] = json!("not-a-uuid");
    let mut bad_time = valid.clone();
    bad_time["visits"][0]["started_at"] = json!("yesterday");
    let mut extra = valid.clone();
    extra["visits"][0]["rating_colour"] = json!("red");
    for (name, body) in [
        ("rating 4", bad_rating.to_string()),
        ("missing pairing_id", missing_field.to_string()),
        ("bad uuid", bad_uuid.to_string()),
        ("bad time", bad_time.to_string()),
        ("unknown field", extra.to_string()),
        ("not json", "{\"sent_at\": ".to_string()),
        ("empty", String::new()),
    ] {
        let response = tablet
            .post("/api/tablet/sync")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, code) = error_code(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_body"),
            "{name}"
        );
    }

    // More than 500 visits: refused whole.
    let many: Vec<_> = (0..501)
        .map(|_| visit(&pairing, Some(Rating::Good)))
        .collect();
    let too_many = tablet
        .post("/api/tablet/sync")
        .json(&batch(Timestamp::now(), &many))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(too_many).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large".into())
    );

    // No credential, a wrong one, or no protocol header.
    let plain = Client::new();
    for request in [
        plain
            .post(app.url("/api/tablet/sync"))
            .header(PROTOCOL_HEADER, "1"),
        plain
            .post(app.url("/api/tablet/sync"))
            .header(PROTOCOL_HEADER, "1")
            .bearer_auth("forged"),
        plain
            .post(app.url("/api/tablet/sync"))
            .bearer_auth(&tablet.token),
    ] {
        let response = request.json(&valid).send().await.unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }

    // None of that stored the visit: it is new now.
    valid["sent_at"] = json!(Timestamp::now());
    let response: Value = tablet
        .post("/api/tablet/sync")
        .json(&valid)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["results"][0]["status"], "stored");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tablet_a_day_fast_syncs_and_its_offset_is_recorded() {
    let app = spawn_app().await;
    let (tablet, pairing) = app.paired_tablet("Окно 1", 0).await;
    let day = SignedDuration::from_hours(24);
    let mut ahead = visit(&pairing, Some(Rating::Medium));
    ahead.started_at += day;
    ahead.ended_at += day;
    let response = tablet.sync_at(Timestamp::now() + day, &[ahead]).await;
    assert_eq!(response.results[0].outcome, VisitOutcome::Stored);
    let offset = response.clock_offset_ms;
    assert!(
        (86_390_000..=86_400_000).contains(&offset),
        "offset {offset}"
    );

    let admin = app.admin().await;
    let tablets: Value = admin
        .get(app.url("/api/admin/tablets"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me = &tablets.as_array().unwrap()[0];
    let recorded = me["clock_offset_ms"].as_i64().unwrap();
    assert_eq!(recorded, offset);
    assert_eq!(me["queue_length"], 3);
    assert_eq!(me["microphone"], "ok");
    assert_eq!(me["app_version"], "1.0.0");
    assert!(me["last_seen_at"].is_string());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_tablet_keeps_rating_under_an_ended_pairing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let tablet = app.enrol_tablet(&admin, "Окно 1").await;
    let specialist = app
        .specialist(&admin, app.employee_of("Отдел субсидий", 0))
        .await;
    let pairing = app.pair(&tablet, &specialist).await;
    // The specialist ends the session while the tablet is offline, which keeps rating.
    let ended = specialist
        .post(app.url(&format!("/api/pairings/{}/end", pairing.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let late = visit(&pairing, Some(Rating::Bad));
    let response = tablet.sync(&[late]).await;
    assert_eq!(response.results[0].outcome, VisitOutcome::Stored);
    assert!(matches!(response.pairing, PairingStatus::Ended { .. }));
    app.stop().await;
}
