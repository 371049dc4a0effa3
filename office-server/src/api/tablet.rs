//! The tablet API: enrolment, pairing, sync.

use jiff::{SignedDuration, Timestamp};
use shared_model::{
    EnrolmentRequest, EnrolmentStarted, EnrolmentStatus, ErrorBody, MAX_SYNC_BATCH,
    PairingCodeIssued, PairingCodeStatus, PairingStatus, SyncBatch, SyncResponse, VisitAck,
};
use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::extract::{TabletAuth, TabletProtocol};
use crate::app::AppState;
use crate::auth::{random_code, random_token, token_digest};
use crate::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::storage::{
    EnrolmentState, IngestBatch, NewEnrolment, NewPairingRequest, PairingRequestState, StorageError,
};
use crate::web::LiveEvent;

pub const ENROLMENT_CODE_DIGITS: usize = 8;
pub const PAIRING_CODE_DIGITS: usize = 6;
const ENROLMENT_CODE_LIFETIME: SignedDuration = SignedDuration::from_hours(1);
const PAIRING_CODE_LIFETIME: SignedDuration = SignedDuration::from_mins(10);
/// Tries at drawing a code that no open request holds.
const CODE_ATTEMPTS: usize = 20;
const MAX_TEXT: usize = 200;

fn check_text(field: &str, value: &str) -> ApiResult<()> {
    if value.chars().count() > MAX_TEXT {
        return Err(ApiError::BadRequest(format!(
            "{field} is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(())
}

/// Draws codes until one is free; the code space is large and open requests few.
async fn with_fresh_code<T, F>(state: &AppState, digits: usize, mut attempt: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnMut(
        String,
    ) -> Box<
        dyn FnOnce(&dyn crate::storage::Storage) -> crate::storage::StorageResult<T> + Send,
    >,
{
    for _ in 0..CODE_ATTEMPTS {
        let work = attempt(random_code(digits));
        match state.db(work).await {
            Err(ApiError::Conflict { .. }) => continue,
            other => return other,
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "no free code after {CODE_ATTEMPTS} draws"
    )))
}

#[utoipa::path(
    post, path = "/api/tablet/enrolments", tag = "enrolment",
    request_body = EnrolmentRequest,
    params(("x-protocol-version" = u32, Header, description = "Tablet protocol version")),
    responses(
        (status = 200, body = EnrolmentStarted, description = "Show `code` until an administrator approves it"),
        (status = 400, body = ErrorBody), (status = 426, body = ErrorBody, description = "Tablet app too old"),
    )
)]
pub async fn start_enrolment(
    state: axum::extract::State<AppState>,
    _protocol: TabletProtocol,
    ApiJson(request): ApiJson<EnrolmentRequest>,
) -> ApiResult<ApiJson<EnrolmentStarted>> {
    check_text("app_version", &request.app_version)?;
    check_text("device_description", &request.device_description)?;
    let now = Timestamp::now();
    let id = Uuid::new_v4();
    let expires_at = now + ENROLMENT_CODE_LIFETIME;
    let code = with_fresh_code(&state, ENROLMENT_CODE_DIGITS, |code| {
        let enrolment = NewEnrolment {
            id,
            code: code.clone(),
            device_description: request.device_description.clone(),
            app_version: request.app_version.clone(),
            created_at: now,
            expires_at,
        };
        Box::new(move |db| db.create_enrolment(&enrolment).map(|()| code))
    })
    .await?;
    tracing::info!(%id, "tablet enrolment started");
    Ok(ApiJson(EnrolmentStarted {
        enrolment_id: id,
        code,
        expires_at,
    }))
}

#[utoipa::path(
    get, path = "/api/tablet/enrolments/{id}", tag = "enrolment",
    params(("id" = Uuid, Path), ("x-protocol-version" = u32, Header)),
    responses((status = 200, body = EnrolmentStatus), (status = 404, body = ErrorBody))
)]
pub async fn enrolment_status(
    state: axum::extract::State<AppState>,
    _protocol: TabletProtocol,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<EnrolmentStatus>> {
    let now = Timestamp::now();
    let enrolment = state
        .db(move |db| db.enrolment_state(id, now))
        .await?
        .ok_or(ApiError::NotFound("enrolment"))?;
    Ok(ApiJson(match enrolment {
        EnrolmentState::Pending { expires_at } => EnrolmentStatus::Pending { expires_at },
        EnrolmentState::Closed => EnrolmentStatus::Expired,
        EnrolmentState::Approved {
            tablet_id,
            tablet_name,
        } => {
            // A fresh credential at every poll until the tablet uses one: an answer lost on
            // the way costs nothing, and only the latest credential works.
            let token = random_token();
            let digest = token_digest(&token);
            state
                .db(move |db| db.issue_tablet_token(tablet_id, &digest))
                .await?;
            tracing::info!(tablet_id, "device credential issued");
            EnrolmentStatus::Approved {
                tablet_id,
                tablet_name,
                device_token: token,
            }
        }
    }))
}

#[utoipa::path(
    post, path = "/api/tablet/pairing-codes", tag = "pairing",
    params(("x-protocol-version" = u32, Header)),
    security(("device_token" = [])),
    responses((status = 200, body = PairingCodeIssued), (status = 401, body = ErrorBody))
)]
pub async fn request_pairing_code(
    state: axum::extract::State<AppState>,
    TabletAuth(tablet): TabletAuth,
) -> ApiResult<ApiJson<PairingCodeIssued>> {
    let now = Timestamp::now();
    let request_id = Uuid::new_v4();
    let expires_at = now + PAIRING_CODE_LIFETIME;
    let code = with_fresh_code(&state, PAIRING_CODE_DIGITS, |code| {
        let request = NewPairingRequest {
            id: request_id,
            tablet_id: tablet.id,
            code: code.clone(),
            created_at: now,
            expires_at,
        };
        Box::new(move |db| db.create_pairing_request(&request).map(|()| code))
    })
    .await?;
    Ok(ApiJson(PairingCodeIssued {
        request_id,
        code,
        expires_at,
    }))
}

#[utoipa::path(
    get, path = "/api/tablet/pairing-codes/{id}", tag = "pairing",
    params(("id" = Uuid, Path), ("x-protocol-version" = u32, Header)),
    security(("device_token" = [])),
    responses((status = 200, body = PairingCodeStatus), (status = 404, body = ErrorBody))
)]
pub async fn pairing_code_status(
    state: axum::extract::State<AppState>,
    TabletAuth(tablet): TabletAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<PairingCodeStatus>> {
    let now = Timestamp::now();
    let request = state
        .db(move |db| db.pairing_request_state(id, tablet.id, now))
        .await?
        .ok_or(ApiError::NotFound("pairing request"))?;
    Ok(ApiJson(match request {
        PairingRequestState::Pending { expires_at } => PairingCodeStatus::Pending { expires_at },
        PairingRequestState::Expired => PairingCodeStatus::Expired,
        PairingRequestState::Paired { pairing_id } => {
            let record = state
                .db(move |db| db.pairing(pairing_id))
                .await?
                .ok_or(ApiError::NotFound("pairing"))?;
            PairingCodeStatus::Paired {
                pairing: record.pairing,
            }
        }
    }))
}

#[utoipa::path(
    get, path = "/api/tablet/pairing", tag = "pairing",
    params(("x-protocol-version" = u32, Header)),
    security(("device_token" = [])),
    responses((status = 200, body = PairingStatus, description = "The tablet's latest pairing"))
)]
pub async fn pairing_status(
    state: axum::extract::State<AppState>,
    TabletAuth(tablet): TabletAuth,
) -> ApiResult<ApiJson<PairingStatus>> {
    let now = Timestamp::now();
    Ok(ApiJson(
        state
            .db(move |db| db.tablet_pairing_status(tablet.id, now))
            .await?,
    ))
}

#[utoipa::path(
    post, path = "/api/tablet/pairing/end", tag = "pairing",
    params(("x-protocol-version" = u32, Header)),
    security(("device_token" = [])),
    responses(
        (status = 200, body = PairingStatus, description = "Ended from the tablet's staff panel; the tablet's status after it"),
    )
)]
pub async fn end_own_pairing(
    state: axum::extract::State<AppState>,
    TabletAuth(tablet): TabletAuth,
) -> ApiResult<ApiJson<PairingStatus>> {
    let now = Timestamp::now();
    let status = state
        .db(move |db| {
            if let PairingStatus::Active { pairing } = db.tablet_pairing_status(tablet.id, now)? {
                db.end_pairing(pairing.id, shared_model::PairingEndReason::EndedByStaff, now)?;
                tracing::info!(pairing = %pairing.id, tablet_id = tablet.id, "pairing ended from the tablet");
            }
            db.tablet_pairing_status(tablet.id, now)
        })
        .await?;
    Ok(ApiJson(status))
}

#[utoipa::path(
    post, path = "/api/tablet/sync", tag = "sync",
    request_body = SyncBatch,
    params(("x-protocol-version" = u32, Header)),
    security(("device_token" = [])),
    responses(
        (status = 200, body = SyncResponse, description = "One result per visit, in order; every stored visit is durable"),
        (status = 400, body = ErrorBody, description = "Malformed batch; nothing was stored"),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
    )
)]
pub async fn sync(
    state: axum::extract::State<AppState>,
    TabletAuth(tablet): TabletAuth,
    ApiJson(batch): ApiJson<SyncBatch>,
) -> ApiResult<ApiJson<SyncResponse>> {
    if batch.visits.len() > MAX_SYNC_BATCH {
        return Err(ApiError::TooLarge(format!(
            "a batch may carry at most {MAX_SYNC_BATCH} visits, this one has {}",
            batch.visits.len()
        )));
    }
    check_text("health.app_version", &batch.health.app_version)?;
    let received_at = Timestamp::now();
    let clock_offset_ms = batch
        .sent_at
        .duration_since(received_at)
        .as_millis()
        .clamp(i64::MIN.into(), i64::MAX.into()) as i64;
    let tablet_id = tablet.id;
    let rule = state.config.alert_rule();
    let (outcomes, pairing, stored, alerts) = state
        .db(move |db| {
            let ingested = db.ingest_visits(&IngestBatch {
                tablet_id,
                received_at,
                clock_offset_ms,
                health: &batch.health,
                visits: &batch.visits,
            })?;
            let pairing = db.tablet_pairing_status(tablet_id, received_at)?;
            // Each employee's latest newly rated visit closes the window the alert rule looks at.
            let mut latest: BTreeMap<i64, Timestamp> = BTreeMap::new();
            for place in ingested.stored.iter().filter(|p| p.rating.is_some()) {
                let at = latest.entry(place.employee_id).or_insert(place.at);
                *at = (*at).max(place.at);
            }
            let mut alerts = Vec::new();
            for (employee_id, window_end) in latest {
                if let Some(alert) =
                    db.check_bad_share(employee_id, window_end, &rule, Timestamp::now())?
                {
                    alerts.push(alert);
                }
            }
            let ids = batch.visits.iter().map(|visit| visit.id);
            Ok::<_, StorageError>((
                ids.zip(ingested.outcomes).collect::<Vec<_>>(),
                pairing,
                ingested.stored,
                alerts,
            ))
        })
        .await?;
    // Committed: tell the open dashboards.
    let places: BTreeSet<(i64, i64)> = stored
        .iter()
        .map(|p| (p.department_id, p.section_id))
        .collect();
    for (department_id, section_id) in places {
        state.live.publish(LiveEvent::Visits {
            department_id,
            section_id,
        });
    }
    for alert in &alerts {
        tracing::info!(
            alert = alert.id,
            employee_id = alert.employee_id,
            bad = alert.bad,
            rated = alert.rated,
            "alert raised: share of Плохо"
        );
        state.live.publish(LiveEvent::Alert {
            department_id: alert.department_id,
            section_id: alert.section_id,
            alert_id: alert.id,
        });
    }
    let stored = outcomes.iter().filter(|(_, o)| o.is_stored()).count();
    tracing::debug!(
        tablet_id,
        visits = outcomes.len(),
        stored,
        clock_offset_ms,
        "sync"
    );
    Ok(ApiJson(SyncResponse {
        server_time: received_at,
        clock_offset_ms,
        results: outcomes
            .into_iter()
            .map(|(id, outcome)| VisitAck { id, outcome })
            .collect(),
        pairing,
    }))
}
