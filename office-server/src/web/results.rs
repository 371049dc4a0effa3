//! «Результаты и SMS» for heads and administrators: mark a case's result ready by its
//! number, and every message «Результат готов» in their scope with its delivery reports —
//! those that failed or whose outcome is unknown («не подтверждено») first, each with the
//! decision to send it again or not at all.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;

use super::dashboard::local_time;
use super::error::{PageError, PagePath, PageResult};
use super::forms::{Decider, Staff, StaffForm};
use super::session::Viewer;
use super::strings::{RU, Strings};
use super::{Area, Layout, html, see_other};
use crate::app::AppState;
use crate::domain::sms::{InvalidCase, ReportKind, problem};
use crate::ops::results::{self, Actor, Audited, ResultError};
use crate::storage::{MarkedReady, SmsMessage, SmsState};

/// The most messages the page lists.
const PAGE_MESSAGES: u32 = 200;

pub struct ReportView {
    pub at: String,
    pub label: String,
}

pub struct MessageView {
    pub id: i64,
    pub created: String,
    pub case_number: String,
    pub employee: String,
    pub service: String,
    pub masked: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub attempts: u32,
    pub error: String,
    pub reports: Vec<ReportView>,
    pub needs_decision: bool,
}

#[derive(Template)]
#[template(path = "results.html")]
struct ResultsPage {
    layout: Layout,
    notice: Option<String>,
    error: Option<String>,
    case_number: String,
    messages: Vec<MessageView>,
    sms_on: bool,
}

fn state_label(t: &Strings, state: SmsState) -> &'static str {
    match state {
        SmsState::Pending => t.sms_pending,
        SmsState::Sending => t.sms_sending,
        SmsState::Sent => t.sms_sent,
        SmsState::Delivered => t.sms_delivered,
        SmsState::Failed => t.sms_failed,
        SmsState::Unconfirmed => t.sms_unconfirmed,
        SmsState::Cancelled => t.sms_cancelled,
    }
}

/// The server's own problems in the catalogue's words; the gateway's as it gave them.
fn problem_text(t: &Strings, stored: &str) -> String {
    match stored {
        problem::NO_NUMBER => t.sms_problem_no_number.to_string(),
        problem::INTERRUPTED => t.sms_problem_interrupted.to_string(),
        problem::NO_ANSWER => t.sms_problem_no_answer.to_string(),
        gateway => gateway.to_string(),
    }
}

fn report_label(t: &Strings, status: u32, detail: &str) -> String {
    let what = match ReportKind::of_kannel_type(status) {
        ReportKind::Delivered => t.sms_report_delivered,
        ReportKind::Undelivered => t.sms_report_undelivered,
        ReportKind::Queued => t.sms_report_queued,
        ReportKind::Accepted => t.sms_report_accepted,
        ReportKind::Rejected => t.sms_report_rejected,
        ReportKind::Other => t.sms_report_other,
    };
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what} ({detail})")
    }
}

fn view(state: &AppState, t: &Strings, message: SmsMessage) -> MessageView {
    MessageView {
        id: message.id,
        created: local_time(&state.zone, message.created_at),
        case_number: message.case_number.unwrap_or_default(),
        employee: message.employee,
        service: message.service,
        masked: message.masked,
        state: state_label(t, message.state),
        state_class: message.state.as_str(),
        attempts: message.attempts,
        error: problem_text(t, &message.last_error),
        needs_decision: message.state.needs_decision(),
        reports: message
            .reports
            .iter()
            .map(|report| ReportView {
                at: local_time(&state.zone, report.at),
                label: report_label(t, report.status, &report.detail),
            })
            .collect(),
    }
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    case_number: String,
) -> PageResult<Response> {
    let t = &RU;
    let filter = viewer.visibility()?.filter();
    let messages = state
        .blocking(move |s| s.storage.sms_messages(&filter, PAGE_MESSAGES))
        .await??;
    let page = ResultsPage {
        layout: Layout::for_viewer(viewer, t.results_title, Area::Results),
        notice,
        error,
        case_number,
        messages: messages.into_iter().map(|m| view(state, t, m)).collect(),
        sms_on: state.config.sms.enabled(),
    };
    Ok((status, html(&page)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct Notice {
    done: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Staff { viewer, .. }: Staff<Decider>,
    Query(notice): Query<Notice>,
) -> PageResult<Response> {
    let t = &RU;
    let notice = match notice.done.as_deref() {
        Some("resent") => Some(t.sms_resent.to_string()),
        Some("cancelled") => Some(t.sms_not_sent.to_string()),
        _ => None,
    };
    render(&state, &viewer, StatusCode::OK, notice, None, String::new()).await
}

#[derive(Debug, Deserialize)]
pub struct ReadyForm {
    #[serde(default)]
    case_number: String,
}

/// A head marks the result of a case in their scope ready.
pub async fn ready_submit(
    State(state): State<AppState>,
    form: StaffForm<Decider, ReadyForm>,
) -> PageResult<Response> {
    let t = &RU;
    let (viewer, typed) = (form.viewer, form.fields.case_number);
    let visibility = viewer.visibility()?;
    let case = typed.clone();
    let (account_id, session_tag) = (viewer.account.id, viewer.session_tag.clone());
    let marked = state
        .blocking(move |s| {
            results::mark_ready_by_case(
                s.storage.as_ref(),
                &s.outbox(),
                Actor::Office(visibility),
                Audited {
                    account_id: Some(account_id),
                    session_tag: &session_tag,
                },
                &case,
                Timestamp::now(),
            )
        })
        .await?;
    let (status, notice, error) = match marked {
        Ok((_, MarkedReady::Marked { queued: true })) => {
            (StatusCode::OK, Some(t.results_marked_sms), None)
        }
        Ok((_, MarkedReady::Marked { queued: false })) => {
            (StatusCode::OK, Some(t.results_marked), None)
        }
        Ok((_, MarkedReady::AlreadyReady)) => (StatusCode::OK, Some(t.results_already), None),
        Err(ResultError::NotFound(_)) => (StatusCode::NOT_FOUND, None, Some(t.results_no_case)),
        Err(ResultError::BadCase(InvalidCase::Empty)) => {
            (StatusCode::BAD_REQUEST, None, Some(t.results_no_case))
        }
        Err(ResultError::BadCase(_)) => (StatusCode::BAD_REQUEST, None, Some(t.today_case_bad)),
        Err(ResultError::Storage(error)) => return Err(error.into()),
        Err(other) => return Err(PageError::internal(other)),
    };
    let keep = if error.is_some() {
        typed
    } else {
        String::new()
    };
    render(
        &state,
        &viewer,
        status,
        notice.map(str::to_string),
        error.map(str::to_string),
        keep,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    resend: String,
}

/// A head's decision on a message that failed or whose outcome is unknown.
pub async fn decide_submit(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    form: StaffForm<Decider, DecideForm>,
) -> PageResult<Response> {
    let viewer = form.viewer;
    let resend = form.fields.resend == "1";
    let visibility = viewer.visibility()?;
    let (account_id, session_tag) = (viewer.account.id, viewer.session_tag.clone());
    state
        .blocking(move |s| {
            results::decide(
                s.storage.as_ref(),
                &s.sms_wake,
                visibility,
                id,
                resend,
                Audited {
                    account_id: Some(account_id),
                    session_tag: &session_tag,
                },
                Timestamp::now(),
            )
        })
        .await?
        .map_err(|error| match error {
            ResultError::NotFound(what) => PageError::not_found(what),
            ResultError::Storage(error) => error.into(),
            other => PageError::internal(other),
        })?;
    Ok(see_other(if resend {
        "/dashboard/results?done=resent"
    } else {
        "/dashboard/results?done=cancelled"
    }))
}
