//! «Анализ оценок "Плохо"»: every Плохо visit in scope with its recording and the head's
//! verdict; the recordings themselves, served with HTTP Range as `audio/mp4`, every playback
//! written to the audit log once per session.

use std::collections::HashMap;

use askama::Template;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use uuid::Uuid;

use super::dashboard::{
    AlertView, FilterDate, FilterOption, FilterSelect, OverdueAlert, Picker, alert_views, decided,
    local_time, overdue_alert, safe_back, select,
};
use super::error::{PageError, PagePath, PageResult};
use super::forms::{AnyRole, StaffForm};
use super::inbox::{RefusedVerdict, render_inbox};
use super::named::{ShownVisit, visitor_names};
use super::selection::{PageQuery, Selection};
use super::session::Viewer;
use super::strings::{RU, fill};
use super::{Area, Layout, html, see_other};
use crate::app::{AppState, Shared};
use crate::domain::{Comment, InvalidText, ReviewScope};
use crate::ops;
use crate::ops::verdicts::Decision;
use crate::storage::{
    AuditAction, AuditEvent, BadVisit, BadVisitQuery, RecordingFilter, RecordingState, Verdict,
    VerdictFilter,
};

/// Rows per page of the analysis.
pub const PAGE_SIZE: u32 = 50;

/// A Плохо visit as the table shows it.
pub struct BadRow {
    pub visit_id: Uuid,
    pub employee: String,
    pub section: String,
    pub service: String,
    /// The attached visitor's name for a head in scope, `---` otherwise.
    pub visitor: String,
    pub rated_at: String,
    pub audio_url: Option<String>,
    pub audio_note: String,
    pub verdict_text: Option<String>,
    pub correct: Option<bool>,
    pub comment: String,
    pub decided_by: String,
    /// The verdicts before the verdict of record, the first first.
    pub earlier: Vec<String>,
    pub can_decide: bool,
    pub error: Option<String>,
    /// Without a verdict: when it is due, or that it is overdue.
    pub deadline: Option<Deadline>,
}

/// One verdict as the history under a visit lists it.
pub fn history_entry(verdict: &Verdict, zone: &TimeZone) -> String {
    let t = &RU;
    let decision = if verdict.correct {
        t.verdict_correct
    } else {
        t.verdict_wrong
    };
    let entry = fill(
        t.verdict_history_entry,
        &[
            ("when", &local_time(zone, verdict.decided_at)),
            ("who", &verdict.decided_by),
            ("decision", decision),
        ],
    );
    if verdict.comment.is_empty() {
        entry
    } else {
        format!("{entry} — «{}»", verdict.comment)
    }
}

/// The Плохо archive's filters beyond the selection: the verdict of record, the recording,
/// the days rated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveFilters {
    pub verdict: VerdictFilter,
    /// Only those without a verdict past their deadline (with `verdict` undecided).
    pub overdue: bool,
    pub recording: RecordingFilter,
    /// The first day rated, in the office's calendar.
    pub from: Option<Date>,
    /// The last day rated.
    pub to: Option<Date>,
}

impl ArchiveFilters {
    /// The filters a page query asks for; `undecided=1` is the older spelling of
    /// `verdict=undecided`.
    pub fn parse(query: &PageQuery) -> PageResult<Self> {
        let asked = query.verdict.as_deref().map(str::trim);
        let overdue = asked == Some("overdue");
        let verdict = match asked {
            None | Some("") if query.undecided_only() => VerdictFilter::Undecided,
            None | Some("" | "any") => VerdictFilter::Any,
            Some("undecided" | "overdue") => VerdictFilter::Undecided,
            Some("correct") => VerdictFilter::Correct,
            Some("wrong") => VerdictFilter::Wrong,
            Some(_) => return Err(PageError::bad_request("unknown verdict filter")),
        };
        let recording = match query.recording.as_deref().map(str::trim) {
            None | Some("" | "any") => RecordingFilter::Any,
            Some("with") => RecordingFilter::With,
            Some("without") => RecordingFilter::Without,
            Some(_) => return Err(PageError::bad_request("unknown recording filter")),
        };
        let day = |value: &Option<String>| match value.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => text
                .parse::<Date>()
                .map(Some)
                .map_err(|_| PageError::bad_request("a day must be YYYY-MM-DD")),
        };
        let (mut from, mut to) = (day(&query.from)?, day(&query.to)?);
        // A period entered backwards means the same days.
        if let (Some(a), Some(b)) = (from, to)
            && a > b
        {
            (from, to) = (Some(b), Some(a));
        }
        Ok(Self {
            verdict,
            overdue,
            recording,
            from,
            to,
        })
    }

    /// The filters as query parameters, each beginning with `&`; defaults are left out.
    pub fn query(&self) -> String {
        let mut query = String::new();
        match self.verdict {
            VerdictFilter::Any => {}
            VerdictFilter::Undecided if self.overdue => query.push_str("&verdict=overdue"),
            VerdictFilter::Undecided => query.push_str("&verdict=undecided"),
            VerdictFilter::Correct => query.push_str("&verdict=correct"),
            VerdictFilter::Wrong => query.push_str("&verdict=wrong"),
        }
        match self.recording {
            RecordingFilter::Any => {}
            RecordingFilter::With => query.push_str("&recording=with"),
            RecordingFilter::Without => query.push_str("&recording=without"),
        }
        if let Some(from) = self.from {
            query.push_str(&format!("&from={from}"));
        }
        if let Some(to) = self.to {
            query.push_str(&format!("&to={to}"));
        }
        query
    }

    /// Narrows a storage query to these filters at `now`; days are the office's.
    pub fn apply(&self, state: &Shared, now: Timestamp, query: &mut BadVisitQuery) {
        let zone = &state.zone;
        let start = |day: Date| {
            day.to_datetime(jiff::civil::Time::midnight())
                .to_zoned_datetime(zone.clone())
                .map(|zoned| zoned.timestamp())
                .ok()
        };
        query.verdict = self.verdict;
        query.received_before = self.overdue.then(|| state.verdicts_overdue_before(now));
        query.recording = self.recording;
        query.rated_from = self.from.and_then(start);
        query.rated_before = self.to.and_then(|day| day.tomorrow().ok()).and_then(start);
    }

    /// What an export's title says about the filters.
    pub fn describe(&self) -> Vec<String> {
        let t = &RU;
        let mut parts = Vec::new();
        match self.verdict {
            VerdictFilter::Any => {}
            VerdictFilter::Undecided if self.overdue => {
                parts.push(t.export_filter_overdue.to_string())
            }
            VerdictFilter::Undecided => parts.push(t.export_filter_undecided.to_string()),
            VerdictFilter::Correct => parts.push(t.export_filter_correct.to_string()),
            VerdictFilter::Wrong => parts.push(t.export_filter_wrong.to_string()),
        }
        match self.recording {
            RecordingFilter::Any => {}
            RecordingFilter::With => parts.push(t.export_filter_with_recording.to_string()),
            RecordingFilter::Without => parts.push(t.export_filter_without_recording.to_string()),
        }
        if self.from.is_some() || self.to.is_some() {
            let day = |d: Option<Date>| {
                d.map(|d| d.strftime("%d.%m.%Y").to_string())
                    .unwrap_or_else(|| "…".to_string())
            };
            parts.push(fill(
                t.export_filter_period,
                &[("from", &day(self.from)), ("to", &day(self.to))],
            ));
        }
        parts
    }

    /// The selection bar's fields for these filters.
    pub fn fields(&self) -> (Vec<FilterSelect>, Vec<FilterDate>) {
        let t = &RU;
        let option = |value: &str, label: &str, selected: bool| FilterOption {
            value: value.to_string(),
            label: label.to_string(),
            selected,
        };
        let verdict = FilterSelect {
            name: "verdict",
            label: t.filter_verdict,
            options: vec![
                option("", t.filter_all, self.verdict == VerdictFilter::Any),
                option(
                    "undecided",
                    t.filter_undecided,
                    self.verdict == VerdictFilter::Undecided && !self.overdue,
                ),
                option("overdue", t.filter_overdue, self.overdue),
                option(
                    "correct",
                    t.filter_correct,
                    self.verdict == VerdictFilter::Correct,
                ),
                option(
                    "wrong",
                    t.filter_wrong,
                    self.verdict == VerdictFilter::Wrong,
                ),
            ],
        };
        let recording = FilterSelect {
            name: "recording",
            label: t.filter_recording,
            options: vec![
                option("", t.filter_all, self.recording == RecordingFilter::Any),
                option(
                    "with",
                    t.filter_with_recording,
                    self.recording == RecordingFilter::With,
                ),
                option(
                    "without",
                    t.filter_without_recording,
                    self.recording == RecordingFilter::Without,
                ),
            ],
        };
        let date = |name, label, day: Option<Date>| FilterDate {
            name,
            label,
            value: day.map(|d| d.to_string()).unwrap_or_default(),
        };
        (
            vec![verdict, recording],
            vec![
                date("from", t.filter_from, self.from),
                date("to", t.filter_to, self.to),
            ],
        )
    }
}

pub fn audio_note(recording: &RecordingState, zone: &TimeZone, retention_days: u32) -> String {
    let t = &RU;
    match recording {
        RecordingState::Stored { .. } => String::new(),
        RecordingState::Missing => t.file_missing.to_string(),
        RecordingState::Pending => t.file_pending.to_string(),
        RecordingState::Purged { at } => format!(
            "{} — {}",
            fill(t.file_purged, &[("days", &retention_days.to_string())]),
            local_time(zone, *at)
        ),
    }
}

/// The deadline of a visit still without a verdict at `now`: «до 11.01.2027», and whether it
/// has passed. `None` once it has a verdict.
pub fn verdict_deadline(state: &Shared, visit: &BadVisit, now: Timestamp) -> Option<Deadline> {
    if visit.verdict.is_some() {
        return None;
    }
    let due = state.verdict_due(visit.received_at);
    // Due at the start of the day after the last one allowed: name that last day.
    let day = last_day(&state.zone, due);
    let overdue = due <= now;
    let text = fill(
        if overdue {
            RU.deadline_overdue
        } else {
            RU.deadline_due
        },
        &[("day", &day)],
    );
    Some(Deadline { text, overdue })
}

impl BadRow {
    pub fn is_overdue(&self) -> bool {
        self.deadline.as_ref().is_some_and(|d| d.overdue)
    }
}

/// The last office-local day before `end`, «14.12.2026»: a deadline or a cover ends at the
/// start of the day after the last one it allows.
pub fn last_day(zone: &TimeZone, end: Timestamp) -> String {
    let before = end
        .saturating_sub(jiff::SignedDuration::from_nanos(1))
        .unwrap_or(end);
    zone.to_datetime(before)
        .date()
        .strftime("%d.%m.%Y")
        .to_string()
}

/// A verdict's deadline as the pages show it.
pub struct Deadline {
    pub text: String,
    pub overdue: bool,
}

pub fn bad_rows(
    visits: &[BadVisit],
    visitors: &HashMap<Uuid, String>,
    viewer: &Viewer,
    state: &Shared,
    now: Timestamp,
) -> Vec<BadRow> {
    let t = &RU;
    let zone = &state.zone;
    let retention_days = state.config.retention_days;
    visits
        .iter()
        .map(|visit| BadRow {
            deadline: verdict_deadline(state, visit, now),
            visit_id: visit.visit_id,
            employee: visit.employee_name.clone(),
            section: visit.section_name.clone(),
            service: visit.service_name.clone(),
            visitor: visitors
                .get(&visit.visit_id)
                .cloned()
                .unwrap_or_else(|| t.visitor_unknown.to_string()),
            rated_at: local_time(zone, visit.rated_at),
            audio_url: matches!(visit.recording, RecordingState::Stored { .. })
                .then(|| format!("/dashboard/recordings/{}", visit.visit_id)),
            audio_note: audio_note(&visit.recording, zone, retention_days),
            verdict_text: visit.verdict.as_ref().map(|v| {
                if v.correct {
                    t.verdict_correct.to_string()
                } else {
                    t.verdict_wrong.to_string()
                }
            }),
            correct: visit.verdict.as_ref().map(|v| v.correct),
            comment: visit
                .verdict
                .as_ref()
                .map(|v| v.comment.clone())
                .unwrap_or_default(),
            decided_by: visit
                .verdict
                .as_ref()
                .map(|v| {
                    fill(
                        t.verdict_by,
                        &[
                            ("who", &v.decided_by),
                            ("when", &local_time(zone, v.decided_at)),
                        ],
                    )
                })
                .unwrap_or_default(),
            earlier: Vec::new(),
            can_decide: viewer.may_decide(),
            error: None,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "bad.html")]
struct BadPage {
    layout: Layout,
    path: &'static str,
    picker: Picker,
    scope_label: String,
    inbox_link: Option<String>,
    alerts: Vec<AlertView>,
    overdue_alert: Option<OverdueAlert>,
    back: String,
    bad_rows: Vec<BadRow>,
    previous: Option<String>,
    next: Option<String>,
    export_url: String,
}

/// The query of the analysis page for this selection and these filters.
pub fn bad_query(selection: &Selection, filters: &ArchiveFilters, page: u32) -> String {
    let mut query = selection.query();
    query.push_str(&filters.query());
    if page > 0 {
        query.push_str(&format!("&page={page}"));
    }
    query
}

pub async fn bad_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PageQuery>,
) -> PageResult<Response> {
    render_bad_page(&state, &viewer, &query, None).await
}

async fn render_bad_page(
    state: &AppState,
    viewer: &Viewer,
    query: &PageQuery,
    error: Option<(Uuid, String, Option<bool>, String)>,
) -> PageResult<Response> {
    let t = &RU;
    let (selection, directory, names) = select(state, viewer, query, true).await?;
    let filters = ArchiveFilters::parse(query)?;
    let page = query.page_number().min(100_000);
    let mut bad_query_ = BadVisitQuery {
        filter: selection.filter,
        limit: PAGE_SIZE + 1,
        offset: page * PAGE_SIZE,
        ..BadVisitQuery::default()
    };
    filters.apply(state, Timestamp::now(), &mut bad_query_);
    let (mut visits, histories) = state
        .db(move |db| {
            let visits = db.bad_visits(&bad_query_)?;
            let mut histories = HashMap::new();
            for visit in visits.iter().filter(|v| v.verdict.is_some()) {
                histories.insert(visit.visit_id, db.verdict_history(visit.visit_id)?);
            }
            Ok::<_, crate::storage::StorageError>((visits, histories))
        })
        .await?;
    let more = visits.len() > PAGE_SIZE as usize;
    visits.truncate(PAGE_SIZE as usize);
    let visible = selection.visibility.filter();
    let alerts = state.db(move |db| db.alerts(&visible, true, 20)).await?;
    let overdue_alert = overdue_alert(state, visible).await?;
    let visitors = visitor_names(state, viewer, shown(&visits), "Анализ оценок «Плохо»").await?;
    let mut rows = bad_rows(&visits, &visitors, viewer, state, Timestamp::now());
    for row in &mut rows {
        if let Some(history) = histories.get(&row.visit_id) {
            // The last is the verdict of record, shown above.
            let earlier = &history[..history.len().saturating_sub(1)];
            row.earlier = earlier
                .iter()
                .map(|v| history_entry(v, &state.zone))
                .collect();
        }
    }
    let status = if let Some((visit_id, message, correct, comment)) = error {
        if let Some(row) = rows.iter_mut().find(|r| r.visit_id == visit_id) {
            row.error = Some(message);
            row.correct = correct;
            row.comment = comment;
        }
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let back = format!("/dashboard/bad?{}", bad_query(&selection, &filters, page));
    let page_view = BadPage {
        layout: Layout::for_viewer(viewer, t.bad_title, Area::Bad),
        path: "/dashboard/bad",
        picker: {
            let mut picker = Picker::new(&selection, &directory, true, true);
            (picker.selects, picker.dates) = filters.fields();
            picker
        },
        scope_label: selection.scope_label(t, &names),
        inbox_link: viewer
            .may_decide()
            .then(|| format!("/dashboard/inbox?{}", selection.query())),
        alerts: alert_views(
            &alerts,
            viewer,
            &state.zone,
            state.config.alerts.window_minutes,
        ),
        overdue_alert,
        back,
        bad_rows: rows,
        previous: (page > 0).then(|| {
            format!(
                "/dashboard/bad?{}",
                bad_query(&selection, &filters, page - 1)
            )
        }),
        next: more.then(|| {
            format!(
                "/dashboard/bad?{}",
                bad_query(&selection, &filters, page + 1)
            )
        }),
        export_url: format!(
            "/dashboard/export?tab=bad&table=bad&{}",
            bad_query(&selection, &filters, 0)
        ),
    };
    Ok((status, html(&page_view)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct VerdictForm {
    /// "yes" or "no".
    #[serde(default)]
    correct: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    back: String,
}

/// The visits whose visitor a page is about to name.
pub fn shown(visits: &[BadVisit]) -> Vec<ShownVisit> {
    visits
        .iter()
        .map(|visit| ShownVisit {
            visit_id: visit.visit_id,
            department_id: visit.department_id,
            section_id: visit.section_id,
        })
        .collect()
}

/// Loads a Плохо visit the viewer may see; anything else is "not found".
pub async fn visit_in_view(state: &AppState, viewer: &Viewer, id: Uuid) -> PageResult<BadVisit> {
    let visibility = viewer.visibility()?;
    state
        .db(move |db| db.bad_visit(id))
        .await?
        .filter(|visit| visibility.sees(visit.department_id, visit.section_id))
        .ok_or(PageError::not_found("visit rated Плохо"))
}

/// Loads a Плохо visit the viewer may review — in their own scope when they decide, or in a
/// head's they cover for — with the scope it falls in. One who reviews nothing at all is
/// forbidden; a visit outside what they review is "not found".
pub async fn visit_for_review(
    state: &AppState,
    viewer: &Viewer,
    id: Uuid,
) -> PageResult<(BadVisit, ReviewScope)> {
    let account = viewer.account.clone();
    state
        .db(move |db| {
            let scopes = ops::deputies::review_scopes(db, &account, Timestamp::now())?;
            if scopes.is_empty() {
                return Ok(Err(PageError::Forbidden));
            }
            let found = db.bad_visit(id)?.and_then(|visit| {
                scopes
                    .into_iter()
                    .find(|s| s.sees(visit.department_id, visit.section_id, visit.employee_id))
                    .map(|scope| (visit, scope))
            });
            Ok(found.ok_or(PageError::not_found("visit rated Плохо")))
        })
        .await?
}

/// The head whose inbox a `back` address is, when it is a deputy's: `/dashboard/inbox/cover/7`.
fn covered_head(back: &str) -> Option<i64> {
    let path = back.split('?').next()?;
    path.strip_prefix("/dashboard/inbox/cover/")?.parse().ok()
}

pub async fn verdict_submit(
    State(state): State<AppState>,
    PagePath(id): PagePath<Uuid>,
    form: StaffForm<AnyRole, VerdictForm>,
) -> PageResult<Response> {
    let t = &RU;
    let (viewer, form) = (form.viewer, form.fields);
    let (_, scope) = visit_for_review(&state, &viewer, id).await?;
    let back = safe_back(&form.back, "/dashboard/bad");
    // The inbox goes on to the next visit; the archive returns to the row.
    let from_inbox = back.starts_with("/dashboard/inbox");
    let correct = match form.correct.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    let comment = Comment::parse(&form.comment);
    let problem = match (correct, &comment) {
        (None, _) => Some(t.verdict_required),
        (Some(_), Err(InvalidText::TooLong { .. })) => Some(t.comment_too_long),
        (Some(_), Err(_)) => Some(t.comment_bad_characters),
        (Some(_), Ok(_)) => None,
    };
    let (Some(correct), Ok(comment), None) = (correct, comment, problem) else {
        // Show the same page again, with the message at this visit's form.
        let query = back
            .split_once('?')
            .map(|(_, q)| q)
            .and_then(serde_urlencoded_page_query)
            .unwrap_or_default();
        if from_inbox {
            let refused = RefusedVerdict {
                visit_id: id,
                message: problem.unwrap_or(t.verdict_required).to_string(),
                correct,
                comment: form.comment.trim().to_string(),
            };
            return render_inbox(&state, &viewer, covered_head(&back), &query, Some(refused)).await;
        }
        return render_bad_page(
            &state,
            &viewer,
            &query,
            Some((
                id,
                problem.unwrap_or(t.verdict_required).to_string(),
                correct,
                form.comment.trim().to_string(),
            )),
        )
        .await;
    };
    let by = viewer.account.id;
    decided(
        state
            .blocking(move |s| {
                ops::verdicts::record_verdict(
                    s.storage.as_ref(),
                    &s.live,
                    scope,
                    id,
                    &Decision { correct, comment },
                    by,
                    Timestamp::now(),
                )
            })
            .await?,
    )?;
    if from_inbox {
        Ok(see_other(&back))
    } else {
        Ok(see_other(&format!("{back}#bad-{id}")))
    }
}

/// Parses a page query from the `back` field's query string.
fn serde_urlencoded_page_query(query: &str) -> Option<PageQuery> {
    let uri: axum::http::Uri = format!("/?{query}").parse().ok()?;
    Query::<PageQuery>::try_from_uri(&uri).ok().map(|q| q.0)
}

#[derive(Debug, Deserialize)]
pub struct RecordingQuery {
    download: Option<String>,
}

/// `GET /dashboard/recordings/{visit}`: the recording as `audio/mp4`, with Range support.
/// A playback, and a download, is logged once per account, recording and session.
pub async fn recording(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(id): PagePath<Uuid>,
    Query(query): Query<RecordingQuery>,
    request: Request,
) -> PageResult<Response> {
    // Whoever sees the visit, or reviews it as a head's deputy.
    let visit = match visit_in_view(&state, &viewer, id).await {
        Ok(visit) => visit,
        Err(_) => visit_for_review(&state, &viewer, id).await?.0,
    };
    if !matches!(visit.recording, RecordingState::Stored { .. }) {
        return Err(PageError::not_found("recording"));
    }
    let download = query.download.is_some();
    let path = state.recordings.final_path(id);
    if !path.is_file() {
        return Err(PageError::not_found("recording file"));
    }
    let mime: mime::Mime = "audio/mp4"
        .parse()
        .map_err(|e: mime::FromStrError| PageError::internal(anyhow::anyhow!("{e}")))?;
    let (parts, _) = request.into_parts();
    let file_request = Request::from_parts(parts, Body::empty());
    let response = ServeFile::new_with_mime(&path, &mime)
        .oneshot(file_request)
        .await
        .map_err(PageError::internal)?;
    // Whatever the Range, a response that carries the recording's bytes is a playback or a
    // download: it is written to the audit log (once per account, recording and session)
    // before a byte leaves.
    if matches!(
        response.status(),
        StatusCode::OK | StatusCode::PARTIAL_CONTENT
    ) {
        let event = AuditEvent {
            at: Timestamp::now(),
            account_id: Some(viewer.account.id),
            action: if download {
                AuditAction::Download
            } else {
                AuditAction::Play
            },
            visit_id: Some(id),
            session_tag: viewer.session_tag.clone(),
            detail: format!("{} / {}", visit.employee_name, visit.service_name),
        };
        let logged = state.db(move |db| db.log_audit(&event)).await?;
        if logged {
            tracing::info!(visit = %id, by = viewer.account.id, download, "recording accessed");
        }
    }
    let mut response = response.map(Body::new);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("audio/mp4"));
    if download {
        let disposition = format!("attachment; filename=\"{id}.3gpp\"");
        if let Ok(value) = HeaderValue::from_str(&disposition) {
            response.headers_mut().insert(CONTENT_DISPOSITION, value);
        }
    }
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}
