//! «Заместитель в разборе "Плохо"»: a head names who covers their inbox while away, until a
//! day, or ends the cover. Only heads have this page.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Deserialize;

use super::bad::last_day;
use super::error::{PageError, PageResult};
use super::forms::{Decider, StaffForm};
use super::session::{NoFields, Viewer};
use super::strings::{RU, fill};
use super::{Area, Layout, html, see_other};
use crate::app::AppState;
use crate::ops::deputies::{self, DeputyError};
use crate::storage::{Account, Role};

#[derive(Template)]
#[template(path = "deputy.html")]
struct DeputyPage {
    layout: Layout,
    current: Option<String>,
    candidates: Vec<(i64, String, bool)>,
    until: String,
    max_until: String,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DeputyForm {
    #[serde(default)]
    deputy: String,
    #[serde(default)]
    until: String,
}

fn head_only(viewer: &Viewer) -> PageResult<()> {
    match viewer.account.role {
        Role::Head { .. } => Ok(()),
        _ => Err(PageError::not_found("page")),
    }
}

/// `GET /dashboard/deputy`.
pub async fn deputy_page(State(state): State<AppState>, viewer: Viewer) -> PageResult<Response> {
    head_only(&viewer)?;
    render(&state, &viewer, None, &DeputyForm::default()).await
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    error: Option<String>,
    entered: &DeputyForm,
) -> PageResult<Response> {
    let t = &RU;
    let head = viewer.account.clone();
    let (current, candidates) = state
        .db(move |db| {
            Ok((
                db.deputy_of(head.id, Timestamp::now())?,
                deputies::candidates(db, &head)?,
            ))
        })
        .await?;
    let today = state.zone.to_datetime(Timestamp::now()).date();
    let last = today
        .checked_add(jiff::Span::new().days(i64::from(state.config.review.deputy_max_days)))
        .unwrap_or(today);
    let chosen: Option<i64> = entered
        .deputy
        .trim()
        .parse()
        .ok()
        .or(current.as_ref().map(|c| c.deputy.id));
    let page = DeputyPage {
        layout: Layout::for_viewer(viewer, t.deputy_title, Area::Inbox),
        current: current.as_ref().map(|cover| {
            fill(
                t.deputy_current,
                &[
                    ("deputy", &cover.deputy.display_name),
                    ("day", &last_day(&state.zone, cover.until)),
                ],
            )
        }),
        candidates: candidates
            .iter()
            .map(|account: &Account| {
                (
                    account.id,
                    account.display_name.clone(),
                    Some(account.id) == chosen,
                )
            })
            .collect(),
        until: if entered.until.trim().is_empty() {
            today.to_string()
        } else {
            entered.until.trim().to_string()
        },
        max_until: last.to_string(),
        error,
    };
    let status = if page.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, html(&page)).into_response())
}

/// `POST /dashboard/deputy`: names the deputy until the end of the day given.
pub async fn deputy_submit(
    State(state): State<AppState>,
    form: StaffForm<Decider, DeputyForm>,
) -> PageResult<Response> {
    let t = &RU;
    let (viewer, fields) = (form.viewer, form.fields);
    head_only(&viewer)?;
    let max_days = state.config.review.deputy_max_days;
    let invalid_until = || fill(t.deputy_until_invalid, &[("days", &max_days.to_string())]);
    let Ok(deputy_id) = fields.deputy.trim().parse::<i64>() else {
        return render(
            &state,
            &viewer,
            Some(t.deputy_required.to_string()),
            &fields,
        )
        .await;
    };
    // The cover lasts to the end of the last day, in the office's calendar.
    let until = fields
        .until
        .trim()
        .parse::<Date>()
        .ok()
        .and_then(|day| day.tomorrow().ok())
        .and_then(|day| {
            day.to_datetime(jiff::civil::Time::midnight())
                .to_zoned_datetime(state.zone.clone())
                .ok()
        })
        .map(|zoned| zoned.timestamp());
    let Some(until) = until else {
        return render(&state, &viewer, Some(invalid_until()), &fields).await;
    };
    let head = viewer.account.clone();
    let tag = viewer.session_tag.clone();
    let named = state
        .db(move |db| {
            Ok(deputies::name_deputy(
                db,
                &head,
                &tag,
                deputy_id,
                until,
                max_days,
                Timestamp::now(),
            ))
        })
        .await?;
    match named {
        Ok(()) => Ok(see_other("/dashboard/deputy")),
        Err(DeputyError::NotFound(what)) => Err(PageError::not_found(what)),
        Err(DeputyError::Until { .. }) => {
            render(&state, &viewer, Some(invalid_until()), &fields).await
        }
        Err(DeputyError::Storage(error)) => Err(error.into()),
    }
}

/// `POST /dashboard/deputy/end`.
pub async fn deputy_end(
    State(state): State<AppState>,
    form: StaffForm<Decider, NoFields>,
) -> PageResult<Response> {
    let viewer = form.viewer;
    head_only(&viewer)?;
    let head = viewer.account.clone();
    let tag = viewer.session_tag.clone();
    let ended = state
        .db(move |db| Ok(deputies::end_deputy(db, &head, &tag, Timestamp::now())))
        .await?;
    match ended {
        Ok(()) => Ok(see_other("/dashboard/deputy")),
        Err(DeputyError::NotFound(what)) => Err(PageError::not_found(what)),
        Err(DeputyError::Until { .. }) => Err(PageError::bad_request("no cover")),
        Err(DeputyError::Storage(error)) => Err(error.into()),
    }
}
