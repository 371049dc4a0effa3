//! The tablet API: enrolment, pairing, sync — adapters over [`crate::ops`].

use axum::extract::State;
use jiff::Timestamp;
use shared_model::{
    EnrolmentRequest, EnrolmentStarted, EnrolmentStatus, ErrorBody, PairingCodeIssued,
    PairingCodeStatus, PairingStatus, SyncBatch, SyncResponse,
};
use uuid::Uuid;

use super::error::{ApiJson, ApiPath, ApiResult};
use super::extract::{TabletAuth, TabletProtocol};
use crate::app::AppState;
use crate::http::ClientAddress;
use crate::ops;
use crate::ops::sync::{Rules, SyncingTablet};
use crate::ops::tablets::EnrolmentGate;

#[utoipa::path(
    post, path = "/api/tablet/enrolments", tag = "enrolment",
    summary = "Start enrolment: the tablet gets a code to show an administrator",
    request_body = EnrolmentRequest,
    params(("x-protocol-version" = u32, Header, description = "Tablet protocol version")),
    responses(
        (status = 200, body = EnrolmentStarted, description = "Show `code` until an administrator approves it"),
        (status = 400, body = ErrorBody), (status = 426, body = ErrorBody, description = "Tablet app too old"),
    )
)]
pub async fn start_enrolment(
    State(state): State<AppState>,
    _protocol: TabletProtocol,
    ClientAddress(client): ClientAddress,
    ApiJson(request): ApiJson<EnrolmentRequest>,
) -> ApiResult<ApiJson<EnrolmentStarted>> {
    let started = state
        .blocking(move |s| {
            let gate = EnrolmentGate {
                throttle: &s.enrolment_throttle,
                client,
                max_waiting: s.config.tablets.max_open_enrolments,
            };
            ops::tablets::start_enrolment(s.storage.as_ref(), &gate, &request, Timestamp::now())
        })
        .await??;
    Ok(ApiJson(started))
}

#[utoipa::path(
    get, path = "/api/tablet/enrolments/{id}", tag = "enrolment",
    summary = "Poll enrolment: pending, expired, or approved with a device token",
    params(("id" = Uuid, Path), ("x-protocol-version" = u32, Header)),
    responses((status = 200, body = EnrolmentStatus), (status = 404, body = ErrorBody))
)]
pub async fn enrolment_status(
    State(state): State<AppState>,
    _protocol: TabletProtocol,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<EnrolmentStatus>> {
    let status = state
        .blocking(move |s| ops::tablets::enrolment_status(s.storage.as_ref(), id, Timestamp::now()))
        .await??;
    Ok(ApiJson(status))
}

#[utoipa::path(
    post, path = "/api/tablet/pairing-codes", tag = "pairing",
    summary = "Ask for a pairing code to show the specialist",
    params(("x-protocol-version" = u32, Header)),
    security(("device_token" = [])),
    responses((status = 200, body = PairingCodeIssued), (status = 401, body = ErrorBody))
)]
pub async fn request_pairing_code(
    State(state): State<AppState>,
    TabletAuth(tablet, _): TabletAuth,
) -> ApiResult<ApiJson<PairingCodeIssued>> {
    let issued = state
        .blocking(move |s| {
            ops::pairing::request_code(s.storage.as_ref(), tablet.id, Timestamp::now())
        })
        .await??;
    Ok(ApiJson(issued))
}

#[utoipa::path(
    get, path = "/api/tablet/pairing-codes/{id}", tag = "pairing",
    summary = "Poll a pairing code: pending, expired, or paired",
    params(("id" = Uuid, Path), ("x-protocol-version" = u32, Header)),
    security(("device_token" = [])),
    responses((status = 200, body = PairingCodeStatus), (status = 404, body = ErrorBody))
)]
pub async fn pairing_code_status(
    State(state): State<AppState>,
    TabletAuth(tablet, _): TabletAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<ApiJson<PairingCodeStatus>> {
    let status = state
        .blocking(move |s| {
            ops::pairing::code_status(s.storage.as_ref(), tablet.id, id, Timestamp::now())
        })
        .await??;
    Ok(ApiJson(status))
}

#[utoipa::path(
    get, path = "/api/tablet/pairing", tag = "pairing",
    summary = "The tablet's latest pairing and whether it is on",
    params(("x-protocol-version" = u32, Header)),
    security(("device_token" = [])),
    responses(
        (status = 200, body = PairingStatus, description = "The tablet's latest pairing"),
        (status = 401, body = ErrorBody, description = "Unknown or revoked device token"),
    )
)]
pub async fn pairing_status(
    State(state): State<AppState>,
    TabletAuth(tablet, protocol): TabletAuth,
) -> ApiResult<ApiJson<PairingStatus>> {
    let status = state
        .db(move |db| ops::pairing::status(db, tablet.id, Timestamp::now()))
        .await?;
    Ok(ApiJson(status.for_protocol(protocol)))
}

#[utoipa::path(
    post, path = "/api/tablet/pairing/end", tag = "pairing",
    summary = "End the tablet's pairing from its staff panel",
    params(("x-protocol-version" = u32, Header)),
    security(("device_token" = [])),
    responses(
        (status = 200, body = PairingStatus, description = "Ended from the tablet's staff panel; the tablet's status after it"),
        (status = 401, body = ErrorBody, description = "Unknown or revoked device token"),
    )
)]
pub async fn end_own_pairing(
    State(state): State<AppState>,
    TabletAuth(tablet, protocol): TabletAuth,
) -> ApiResult<ApiJson<PairingStatus>> {
    let status = state
        .blocking(move |s| {
            ops::pairing::end_own_pairing(s.storage.as_ref(), tablet.id, Timestamp::now())
        })
        .await??;
    Ok(ApiJson(status.for_protocol(protocol)))
}

#[utoipa::path(
    post, path = "/api/tablet/sync", tag = "sync",
    summary = "Send finished visits; each is stored once, durably, or refused with a reason",
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
    State(state): State<AppState>,
    TabletAuth(tablet, protocol): TabletAuth,
    ApiJson(batch): ApiJson<SyncBatch>,
) -> ApiResult<ApiJson<SyncResponse>> {
    let received_at = Timestamp::now();
    let response = state
        .blocking(move |s| {
            let rules = Rules {
                acceptance: s.config.acceptance(),
                alert: s.config.alert_rule(),
            };
            let syncing = SyncingTablet {
                id: tablet.id,
                has_feedback_key: tablet.has_feedback_key,
                feedback_base_url: s.feedback_base_url.as_deref(),
            };
            ops::sync::sync(
                s.storage.as_ref(),
                &s.live,
                &rules,
                syncing,
                batch,
                received_at,
            )
        })
        .await??;
    for result in &response.results {
        crate::metrics::visit_outcome(&result.outcome);
    }
    Ok(ApiJson(response.for_protocol(protocol)))
}
