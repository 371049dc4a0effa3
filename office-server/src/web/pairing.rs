//! The specialist's page: enter the code the tablet shows, see the current pairing, end it.
//! Built on the same functions as the JSON API (`api::staff`).

use std::net::SocketAddr;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use shared_model::Pairing;
use uuid::Uuid;

use super::dashboard::local_time;
use super::session::Viewer;
use super::strings::{RU, fill};
use super::{Area, Layout, html, see_other};
use crate::api::staff::{end_pairing_as, pair_tablet};
use crate::api::tablet::PAIRING_CODE_DIGITS;
use crate::app::AppState;
use crate::error::{ApiError, ApiPath, PageError, PageResult};

pub struct PairingView {
    pub id: Uuid,
    pub started: String,
    pub ends: String,
    pub services: String,
}

#[derive(Template)]
#[template(path = "pairing.html")]
struct PairingPage {
    layout: Layout,
    pairings: Vec<PairingView>,
    notice: Option<&'static str>,
    error: Option<String>,
    code: String,
}

#[derive(Debug, Deserialize)]
pub struct Notice {
    done: Option<String>,
}

fn specialist(viewer: &Viewer) -> PageResult<i64> {
    viewer.employee_id().ok_or_else(PageError::forbidden)
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    code: String,
) -> PageResult<Response> {
    let t = &RU;
    let employee_id = specialist(viewer)?;
    let now = Timestamp::now();
    let pairings: Vec<Pairing> = state
        .db(move |db| db.active_pairings_of_employee(employee_id, now))
        .await?;
    let page = PairingPage {
        layout: Layout::for_viewer(viewer, t.pairing_title, Area::Pairing),
        pairings: pairings
            .iter()
            .map(|p| PairingView {
                id: p.id,
                started: local_time(&state.zone, p.started_at),
                ends: local_time(&state.zone, p.ends_at),
                services: p
                    .services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            })
            .collect(),
        notice,
        error,
        code,
    };
    Ok((status, html(&page)).into_response())
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(notice): Query<Notice>,
) -> PageResult<Response> {
    let t = &RU;
    let notice = match notice.done.as_deref() {
        Some("paired") => Some(t.pairing_done),
        Some("ended") => Some(t.pairing_ended),
        _ => None,
    };
    render(&state, &viewer, StatusCode::OK, notice, None, String::new()).await
}

#[derive(Debug, Deserialize)]
pub struct PairForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

pub async fn pair(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    viewer: Viewer,
    Form(form): Form<PairForm>,
) -> PageResult<Response> {
    let t = &RU;
    viewer.check_csrf(&form.csrf)?;
    specialist(&viewer)?;
    match pair_tablet(&state, peer, &viewer.account, &form.code).await {
        Ok(_) => Ok(see_other("/pairing?done=paired")),
        Err(error) => {
            let (status, message) = match error {
                ApiError::BadRequest(_) => (
                    StatusCode::BAD_REQUEST,
                    fill(
                        t.pairing_bad_code,
                        &[("digits", &PAIRING_CODE_DIGITS.to_string())],
                    ),
                ),
                ApiError::NotFound(_) => {
                    (StatusCode::NOT_FOUND, t.pairing_unknown_code.to_string())
                }
                ApiError::TooManyAttempts => {
                    (StatusCode::TOO_MANY_REQUESTS, t.error_too_many.to_string())
                }
                other => return Err(PageError::Api(other)),
            };
            render(&state, &viewer, status, None, Some(message), form.code).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EndForm {
    #[serde(default)]
    csrf: String,
}

pub async fn end(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiPath(id): ApiPath<Uuid>,
    Form(form): Form<EndForm>,
) -> PageResult<Response> {
    let t = &RU;
    viewer.check_csrf(&form.csrf)?;
    specialist(&viewer)?;
    match end_pairing_as(&state, &viewer.account, id).await {
        Ok(()) => Ok(see_other("/pairing?done=ended")),
        Err(ApiError::Conflict { .. }) => {
            render(
                &state,
                &viewer,
                StatusCode::CONFLICT,
                None,
                Some(t.pairing_already_ended.to_string()),
                String::new(),
            )
            .await
        }
        // Another specialist's pairing is not there, as far as this one can tell.
        Err(ApiError::Forbidden(_)) => Err(PageError::not_found("pairing")),
        Err(other) => Err(PageError::Api(other)),
    }
}
