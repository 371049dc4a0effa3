//! The specialist's page: enter the code the tablet shows, see the current pairing, end it.
//! Built on the same use cases as the JSON API ([`crate::ops::pairing`]).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use shared_model::Pairing;
use uuid::Uuid;

use super::dashboard::local_time;
use super::error::{PageError, PagePath, PageResult};
use super::forms::{Specialist, Staff, StaffForm};
use super::session::{NoFields, Viewer};
use super::strings::{RU, fill};
use super::{Area, Layout, html, see_other};
use crate::app::AppState;
use crate::domain::PairingCode;
use crate::domain::sms::InvalidCase;
use crate::http::ClientAddress;
use crate::ops;
use crate::ops::pairing::PairingError;
use crate::ops::results::{self, Actor, Audited, ResultError};
use crate::storage::Role;
use jiff::civil::Date;

pub struct PairingView {
    pub id: Uuid,
    pub started: String,
    pub ends: String,
    pub services: String,
}

/// One of the specialist's visits today: when, which service, the case number, whether the
/// result is ready — never the rating, feedback, or whether it has a recording.
pub struct TodayVisit {
    pub id: Uuid,
    pub ended: String,
    pub service: String,
    pub case_number: String,
    pub ready: Option<String>,
}

#[derive(Template)]
#[template(path = "pairing.html")]
struct PairingPage {
    layout: Layout,
    pairings: Vec<PairingView>,
    notice: Option<&'static str>,
    error: Option<String>,
    code: String,
    today: Vec<TodayVisit>,
    /// «Мои посещения сегодня», or of the day shown.
    day_title: String,
    /// The day shown, for the forms to come back to; empty: today.
    day: String,
    previous_day: Option<String>,
    next_day: Option<String>,
    /// The heads whose «Разбор "Плохо"» this specialist covers: (text, address).
    covers: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
pub struct Notice {
    done: Option<String>,
    day: Option<String>,
}

/// A day of the specialist's list as the address gives it (`2026-12-03`); anything else is today.
fn parse_day(text: &str) -> Option<Date> {
    text.trim().parse().ok()
}

/// Where a form on the list goes back to: the same day.
fn back_to(done: &str, day: &str) -> String {
    match parse_day(day) {
        Some(day) => format!("/pairing?done={done}&day={day}#today"),
        None => format!("/pairing?done={done}#today"),
    }
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
    code: String,
    day: Option<Date>,
) -> PageResult<Response> {
    let t = &RU;
    let account = viewer.account.clone();
    let pairings: Vec<Pairing> = state
        .blocking(move |s| {
            ops::pairing::active_pairings(s.storage.as_ref(), &account, Timestamp::now())
        })
        .await?
        .map_err(paging_failed)?;
    let now = Timestamp::now();
    let today_date = now.to_zoned_datetime(state.zone.clone()).date();
    let (shown, today) = match viewer.account.role {
        Role::Specialist { employee_id } => state
            .blocking(move |s| {
                results::specialist_day(s.storage.as_ref(), employee_id, &s.zone, now, day)
            })
            .await?
            .map_err(results_failed)?,
        _ => (today_date, Vec::new()),
    };
    let earliest = today_date
        .checked_sub(jiff::Span::new().days(results::SPECIALIST_DAYS_BACK))
        .unwrap_or(today_date);
    let link = |day: Date| format!("/pairing?day={day}#today");
    let previous_day = shown
        .yesterday()
        .ok()
        .filter(|day| *day >= earliest)
        .map(link);
    let next_day = shown
        .tomorrow()
        .ok()
        .filter(|day| *day <= today_date)
        .map(link);
    let covers = super::inbox::cover_links(state, viewer, now).await?;
    let page = PairingPage {
        covers,
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
        today: today
            .into_iter()
            .map(|visit| TodayVisit {
                id: visit.visit_id,
                ended: local_clock(&state.zone, visit.ended_at),
                service: visit.service,
                case_number: visit.case_number.unwrap_or_default(),
                ready: visit.result_ready_at.map(|at| local_clock(&state.zone, at)),
            })
            .collect(),
        day_title: if shown == today_date {
            t.today_title.to_string()
        } else {
            fill(
                t.day_title,
                &[("date", &shown.strftime("%d.%m.%Y").to_string())],
            )
        },
        day: if shown == today_date {
            String::new()
        } else {
            shown.to_string()
        },
        previous_day,
        next_day,
    };
    Ok((status, html(&page)).into_response())
}

pub async fn page(
    State(state): State<AppState>,
    Staff { viewer, .. }: Staff<Specialist>,
    Query(notice): Query<Notice>,
) -> PageResult<Response> {
    let t = &RU;
    let notice_text = match notice.done.as_deref() {
        Some("paired") => Some(t.pairing_done),
        Some("ended") => Some(t.pairing_ended),
        Some("case") => Some(t.today_case_saved),
        Some("ready") => Some(t.today_ready_done),
        _ => None,
    };
    let day = notice.day.as_deref().and_then(parse_day);
    render(
        &state,
        &viewer,
        StatusCode::OK,
        notice_text,
        None,
        String::new(),
        day,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct PairForm {
    #[serde(default)]
    code: String,
}

pub async fn pair(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    form: StaffForm<Specialist, PairForm>,
) -> PageResult<Response> {
    let t = &RU;
    let (viewer, typed) = (form.viewer, form.fields.code);
    let refused = match PairingCode::parse(&typed) {
        Err(_) => (
            StatusCode::BAD_REQUEST,
            fill(
                t.pairing_bad_code,
                &[("digits", &PairingCode::DIGITS.to_string())],
            ),
        ),
        Ok(code) => {
            let account = viewer.account.clone();
            let paired = state
                .blocking(move |s| {
                    ops::pairing::pair(
                        s.storage.as_ref(),
                        &s.pairing_throttle,
                        &account,
                        client,
                        &code,
                        &s.workday(),
                        Timestamp::now(),
                    )
                })
                .await?;
            match paired {
                Ok(_) => return Ok(see_other("/pairing?done=paired")),
                Err(PairingError::UnknownCode) => {
                    (StatusCode::NOT_FOUND, t.pairing_unknown_code.to_string())
                }
                Err(PairingError::Throttled) => {
                    (StatusCode::TOO_MANY_REQUESTS, t.error_too_many.to_string())
                }
                Err(other) => return Err(paging_failed(other)),
            }
        }
    };
    render(
        &state,
        &viewer,
        refused.0,
        None,
        Some(refused.1),
        typed,
        None,
    )
    .await
}

/// What a failed pairing use case shows when the page has nothing better to say.
fn paging_failed(error: PairingError) -> PageError {
    match error {
        PairingError::NotFound(what) => PageError::not_found(what),
        // Another specialist's pairing is not there, as far as this one can tell.
        PairingError::NotYours => PageError::not_found("pairing"),
        PairingError::NotASpecialist => PageError::Forbidden,
        PairingError::Throttled => PageError::TooManyAttempts,
        PairingError::Storage(error) => error.into(),
        other => PageError::internal(other),
    }
}

pub async fn end(
    State(state): State<AppState>,
    PagePath(id): PagePath<Uuid>,
    form: StaffForm<Specialist, NoFields>,
) -> PageResult<Response> {
    let t = &RU;
    let viewer = form.viewer;
    let account = viewer.account.clone();
    let ended = state
        .blocking(move |s| {
            ops::pairing::end_pairing(s.storage.as_ref(), &account, id, Timestamp::now())
        })
        .await?;
    match ended {
        Ok(()) => Ok(see_other("/pairing?done=ended")),
        Err(PairingError::AlreadyEnded) => {
            render(
                &state,
                &viewer,
                StatusCode::CONFLICT,
                None,
                Some(t.pairing_already_ended.to_string()),
                String::new(),
                None,
            )
            .await
        }
        Err(other) => Err(paging_failed(other)),
    }
}

/// The time of day in the office's zone: the list is of today only.
fn local_clock(zone: &jiff::tz::TimeZone, at: Timestamp) -> String {
    at.to_zoned_datetime(zone.clone())
        .strftime("%H:%M")
        .to_string()
}

/// What a failed result use case shows.
fn results_failed(error: ResultError) -> PageError {
    match error {
        ResultError::NotFound(what) => PageError::not_found(what),
        ResultError::Storage(error) => error.into(),
        other => PageError::internal(other),
    }
}

#[derive(Debug, Deserialize)]
pub struct CaseForm {
    #[serde(default)]
    case_number: String,
    /// The day of the list the form was on.
    #[serde(default)]
    day: String,
}

#[derive(Debug, Deserialize)]
pub struct ReadyForm {
    #[serde(default)]
    day: String,
}

fn employee_of(viewer: &Viewer) -> PageResult<i64> {
    match viewer.account.role {
        Role::Specialist { employee_id } => Ok(employee_id),
        _ => Err(PageError::Forbidden),
    }
}

/// The specialist gives their visit the office's case number (an empty one clears it).
pub async fn case_submit(
    State(state): State<AppState>,
    PagePath(id): PagePath<Uuid>,
    form: StaffForm<Specialist, CaseForm>,
) -> PageResult<Response> {
    let t = &RU;
    let (viewer, typed, day) = (form.viewer, form.fields.case_number, form.fields.day);
    let employee_id = employee_of(&viewer)?;
    let entered = typed.clone();
    let saved = state
        .blocking(move |s| {
            results::set_case_number(
                s.storage.as_ref(),
                Actor::Specialist { employee_id },
                id,
                &entered,
            )
        })
        .await?;
    let refused = match saved {
        Ok(()) => return Ok(see_other(&back_to("case", &day))),
        Err(ResultError::BadCase(InvalidCase::TooLong { max })) => {
            fill(t.today_case_too_long, &[("max", &max.to_string())])
        }
        Err(ResultError::BadCase(_)) => t.today_case_bad.to_string(),
        Err(ResultError::CaseTaken) => t.today_case_taken.to_string(),
        Err(other) => return Err(results_failed(other)),
    };
    render(
        &state,
        &viewer,
        StatusCode::BAD_REQUEST,
        None,
        Some(refused),
        String::new(),
        parse_day(&day),
    )
    .await
}

/// The specialist marks their visit's result ready: the visitor is told if they asked.
pub async fn ready_submit(
    State(state): State<AppState>,
    PagePath(id): PagePath<Uuid>,
    form: StaffForm<Specialist, ReadyForm>,
) -> PageResult<Response> {
    let employee_id = employee_of(&form.viewer)?;
    let day = form.fields.day;
    let (account_id, session_tag) = (form.viewer.account.id, form.viewer.session_tag.clone());
    state
        .blocking(move |s| {
            results::mark_ready(
                s.storage.as_ref(),
                &s.outbox(),
                Actor::Specialist { employee_id },
                Audited {
                    account_id: Some(account_id),
                    session_tag: &session_tag,
                },
                id,
                Timestamp::now(),
            )
        })
        .await?
        .map_err(results_failed)?;
    Ok(see_other(&back_to("ready", &day)))
}
