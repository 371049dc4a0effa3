//! «Результат готов» for other systems: the office's case-management system marks a result
//! ready by case number (its own token), and the SMS gateway reports deliveries (each
//! message's own secret in the address it was given).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::CaseSystemAuth;
use crate::app::AppState;
use crate::ops::results::{self, Actor, Audited};
use crate::storage::MarkedReady;

/// The case's visit, now ready.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseReady {
    pub case_number: String,
    pub visit_id: Uuid,
    /// False when it had been marked ready before: nothing changed, no second message.
    pub marked_now: bool,
}

/// The visit a case was registered at: whom the employee was serving, and when.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseVisit {
    /// The employee of the office's directory (`GET /api/directory`).
    pub employee_id: i64,
    /// When the case was registered: during the visit, or up to 30 minutes after its end.
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
}

/// The visit that now carries the case number.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseGiven {
    pub case_number: String,
    pub visit_id: Uuid,
}

#[utoipa::path(
    put, path = "/api/cases/{case}", tag = "case-management",
    summary = "Give a case number to the visit it was registered at",
    description = "The case-management system cannot know the visit's id: it names the \
                   employee and the time, and the visit going on then (or ended up to 30 \
                   minutes before) gets the case number. Giving the same number again changes \
                   nothing.",
    params(("case" = String, Path, description = "The office's case number, URL-encoded")),
    request_body = CaseVisit,
    security(("case_system_token" = [])),
    responses(
        (status = 200, body = CaseGiven),
        (status = 401, body = shared_model::ErrorBody, description = "No or unknown token"),
        (status = 404, body = shared_model::ErrorBody, description = "No visit of this employee then"),
        (status = 409, body = shared_model::ErrorBody, description = "The number is another visit's, or the visit has another"),
        (status = 422, body = shared_model::ErrorBody, description = "Not a case number"),
    )
)]
pub async fn give_case(
    State(state): State<AppState>,
    _system: CaseSystemAuth,
    Path(case): Path<String>,
    body: Result<Json<CaseVisit>, JsonRejection>,
) -> Result<Json<CaseGiven>, ApiError> {
    let Json(visit) = body?;
    let given = state
        .blocking(move |s| {
            results::give_case_number(s.storage.as_ref(), visit.employee_id, visit.at, &case)
        })
        .await??;
    Ok(Json(CaseGiven {
        case_number: given.case_number.unwrap_or_default(),
        visit_id: given.visit_id,
    }))
}

#[utoipa::path(
    post, path = "/api/cases/{case}/ready", tag = "case-management",
    summary = "The result of a case is ready: tell the visitor by SMS if they asked",
    description = "Marks the result of the visit carrying this case number ready, once. If the \
                   visitor left a number with consent, one SMS is queued; marking again changes \
                   nothing and sends nothing.",
    params(("case" = String, Path, description = "The office's case number, URL-encoded")),
    security(("case_system_token" = [])),
    responses(
        (status = 200, body = CaseReady),
        (status = 401, body = shared_model::ErrorBody, description = "No or unknown token"),
        (status = 404, body = shared_model::ErrorBody, description = "No visit carries this case number"),
        (status = 422, body = shared_model::ErrorBody, description = "Not a case number"),
    )
)]
pub async fn case_ready(
    State(state): State<AppState>,
    _system: CaseSystemAuth,
    Path(case): Path<String>,
) -> Result<Json<CaseReady>, ApiError> {
    let (visit, marked) = state
        .blocking(move |s| {
            results::mark_ready_by_case(
                s.storage.as_ref(),
                &s.outbox(),
                Actor::CaseSystem,
                Audited::CASE_SYSTEM,
                &case,
                Timestamp::now(),
            )
        })
        .await??;
    Ok(Json(CaseReady {
        case_number: visit.case_number.unwrap_or_default(),
        visit_id: visit.visit_id,
        marked_now: matches!(marked, MarkedReady::Marked { .. }),
    }))
}

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    key: String,
    /// The report's type, as Kannel gives it (`%d`).
    #[serde(rename = "type")]
    status: Option<u32>,
    #[serde(default)]
    answer: String,
}

#[utoipa::path(
    get, path = "/api/sms/reports/{id}", tag = "sms-gateway",
    summary = "A delivery report from the SMS gateway",
    description = "Called by the gateway at the address given with the message (Kannel's \
                   `dlr-url`); `key` is that message's secret, `type` Kannel's report type: 1 \
                   delivered, 2 undelivered, 4 queued, 8 accepted by the operator, 16 rejected.",
    params(
        ("id" = i64, Path),
        ("key" = String, Query),
        ("type" = u32, Query),
    ),
    responses(
        (status = 204, description = "Recorded"),
        (status = 404, body = shared_model::ErrorBody, description = "No such message, or not its key"),
    )
)]
pub async fn delivery_report(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(report): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let Some(status) = report.status else {
        return Err(ApiError::BadRequest("a report needs its type".into()));
    };
    let recorded = state
        .blocking(move |s| {
            results::record_report(
                s.storage.as_ref(),
                id,
                &report.key,
                status,
                &report.answer,
                Timestamp::now(),
            )
        })
        .await??;
    if recorded {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound("message"))
    }
}
