//! Tablets for tests: a bare HTTP client of the tablet API (enrolled and paired by hand), or
//! kiosk-core's own client and store enrolled and paired the way the app does it.

use std::path::Path;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use kiosk_core::store::{Credentials, Store};
use kiosk_core::sync::ServerClient;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use shared_model::{
    EnrolmentRequest, EnrolmentStarted, EnrolmentStatus, MicrophoneState, PROTOCOL_HEADER,
    PROTOCOL_VERSION, Pairing, PairingCodeIssued, PairingCodeStatus, Rating, SyncBatch,
    SyncResponse, TabletHealth, Visit,
};
use uuid::Uuid;

use crate::server::TestServer;

/// A tablet that talks to the tablet API directly, with its device token.
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
            .expect("sync request");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("sync response")
    }

    /// Uploads a whole recording in one chunk; it must be accepted.
    pub async fn upload_recording(&self, visit: &Visit, bytes: &[u8]) {
        let response = self
            .post(&format!("/api/tablet/visits/{}/recording", visit.id))
            .header(shared_model::RECORDING_SIZE_HEADER, bytes.len())
            .header(
                shared_model::RECORDING_SHA256_HEADER,
                crate::sha256_hex(bytes),
            )
            .header(shared_model::RECORDING_OFFSET_HEADER, 0)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("upload request");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
}

impl TestServer {
    /// Enrols a tablet: it asks for a code, the administrator approves it, it collects its token.
    pub async fn enrol_tablet(&self, admin: &Client, name: &str) -> Tablet {
        let plain = self.client_builder().build().expect("client");
        let started = self.start_enrolment(&plain, "test tablet").await;
        self.approve(admin, &started.code, name).await;
        let status = self.enrolment_status(&plain, &started).await;
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

    /// A tablet's first request: it asks for an enrolment code.
    pub async fn start_enrolment(&self, plain: &Client, description: &str) -> EnrolmentStarted {
        plain
            .post(self.url("/api/tablet/enrolments"))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION)
            .json(&json!({ "app_version": "1.0.0", "device_description": description }))
            .send()
            .await
            .expect("enrolment request")
            .json()
            .await
            .expect("enrolment started")
    }

    /// The tablet's poll of its enrolment.
    pub async fn enrolment_status(
        &self,
        plain: &Client,
        started: &EnrolmentStarted,
    ) -> EnrolmentStatus {
        plain
            .get(self.url(&format!("/api/tablet/enrolments/{}", started.enrolment_id)))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION)
            .send()
            .await
            .expect("enrolment poll")
            .json()
            .await
            .expect("enrolment status")
    }

    /// Pairs the tablet to the signed-in specialist.
    pub async fn pair(&self, tablet: &Tablet, specialist: &Client) -> Pairing {
        let issued: PairingCodeIssued = tablet
            .post("/api/tablet/pairing-codes")
            .send()
            .await
            .expect("pairing code request")
            .json()
            .await
            .expect("pairing code");
        self.pair_with_code(specialist, &issued.code).await;
        let status: PairingCodeStatus = tablet
            .get(&format!("/api/tablet/pairing-codes/{}", issued.request_id))
            .send()
            .await
            .expect("pairing poll")
            .json()
            .await
            .expect("pairing status");
        match status {
            PairingCodeStatus::Paired { pairing } => pairing,
            other => panic!("not paired: {other:?}"),
        }
    }

    /// A tablet paired to a new specialist of «Отдел учета», ready to sync.
    pub async fn paired_tablet(&self, name: &str, employee_index: usize) -> (Tablet, Pairing) {
        self.paired_tablet_in("Отдел учета", name, employee_index)
            .await
    }

    /// A tablet paired to a new specialist of any section.
    pub async fn paired_tablet_in(
        &self,
        section: &str,
        name: &str,
        employee_index: usize,
    ) -> (Tablet, Pairing) {
        let admin = self.admin().await;
        self.paired_tablet_with(&admin, section, name, employee_index)
            .await
    }

    /// Like [`TestServer::paired_tablet_in`], with an administrator's client already signed in.
    pub async fn paired_tablet_with(
        &self,
        admin: &Client,
        section: &str,
        name: &str,
        employee_index: usize,
    ) -> (Tablet, Pairing) {
        let tablet = self.enrol_tablet(admin, name).await;
        let specialist = self
            .specialist(admin, self.employee_of(section, employee_index))
            .await;
        let pairing = self.pair(&tablet, &specialist).await;
        (tablet, pairing)
    }
}

/// Enrols and pairs a tablet through kiosk-core's client, the way the app does it: the
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
            feedback_key: None,
        })
        .await
        .expect("enrolment starts");
    store.save_pending_enrolment(&started).expect("store");
    let admin = server.admin().await;
    server
        .approve(&admin, &started.code, &format!("Окно {employee_index}"))
        .await;
    let EnrolmentStatus::Approved {
        tablet_id,
        tablet_name,
        device_token,
    } = client
        .poll_enrolment(started.enrolment_id)
        .await
        .expect("enrolment poll")
    else {
        panic!("enrolment not approved");
    };
    let credentials = Credentials {
        tablet_id,
        tablet_name,
        device_token,
    };
    store.save_credentials(&credentials).expect("store");
    client.set_token(Some(credentials.device_token.clone()));

    let issued = client.request_pairing_code().await.expect("pairing code");
    let specialist = server
        .specialist(&admin, server.employee_of("Отдел учета", employee_index))
        .await;
    server.pair_with_code(&specialist, &issued.code).await;
    let PairingCodeStatus::Paired { pairing } = client
        .poll_pairing_code(issued.request_id)
        .await
        .expect("pairing poll")
    else {
        panic!("not paired");
    };
    store.save_pairing(&pairing).expect("store");
    (credentials, pairing)
}

/// The tablet's store in `dir`.
pub fn open_store(dir: &Path) -> Arc<Store> {
    Arc::new(Store::open(&dir.join("tablet.sqlite3")).expect("tablet store"))
}

/// kiosk-core's client of this server, not yet enrolled.
pub fn kiosk_client(server: &TestServer) -> ServerClient {
    ServerClient::new(&server.base, None).expect("client")
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
        feedback_key: None,
    }
}

/// Now, to the millisecond (as the stores keep instants).
fn now_ms() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now)
}

/// A visit under `pairing` around now (from a minute before to a minute after, inside the
/// server's default clock slack), with its first service: each one this process makes ends at
/// an instant of its own, 10 ms after the one before, so that no two overlap (the server
/// refuses a visit that overlaps another of the same tablet). Not closer: the server corrects
/// each sync's visits by the clock offset it measures at that sync, which varies by a few
/// milliseconds, and visits of two syncs a millisecond apart could be corrected onto one instant.
pub fn visit(pairing: &Pairing, rating: Option<Rating>) -> Visit {
    static MADE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 12_000;
    visit_at(
        pairing,
        now_ms() - SignedDuration::from_mins(1) + SignedDuration::from_millis(10 * n),
        rating,
    )
}

/// A visit under `pairing` at `ended_at` (tablet clock), as short as a visit can be — it
/// starts and ends at that instant — so that visits a test places a millisecond apart never
/// overlap.
pub fn visit_at(pairing: &Pairing, ended_at: Timestamp, rating: Option<Rating>) -> Visit {
    Visit {
        id: Uuid::now_v7(),
        pairing_id: pairing.id,
        service_id: pairing.services[0].id,
        started_at: ended_at,
        ended_at,
        rating,
        has_recording: rating == Some(Rating::Bad),
    }
}

/// The status and JSON error code of a response.
pub async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"].as_str().unwrap_or("<no code>").to_string(),
    )
}
