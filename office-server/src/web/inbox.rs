//! «Разбор оценок "Плохо"»: the visits still without a verdict, one at a time — the player,
//! the visit's facts, the verdict form and «Следующая». The archive (`bad.rs`) lists them all.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use uuid::Uuid;

use super::bad::{Deadline, audio_note, history_entry, last_day, shown, verdict_deadline};
use super::dashboard::{FilterOption, FilterSelect, Picker, local_time, select_within};
use super::error::PagePath;
use super::error::{PageError, PageResult};
use super::feedback::{FeedbackRow, feedback_rows};
use super::named::visitor_names;
use super::selection::{PageQuery, Selection};
use super::session::Viewer;
use super::strings::{RU, fill};
use super::{Area, Layout, html};
use crate::app::AppState;
use crate::domain::ReviewScope;
use crate::ops;
use crate::storage::{BadVisit, BadVisitQuery, Deputy, RecordingState, Role, VerdictFilter};

/// Which end of the queue comes first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InboxOrder {
    /// The longest waiting first: the ones nearest their deadline.
    #[default]
    OldestFirst,
    NewestFirst,
}

impl InboxOrder {
    fn parse(query: &PageQuery) -> PageResult<Self> {
        match query.order.as_deref().map(str::trim) {
            None | Some("" | "oldest") => Ok(Self::OldestFirst),
            Some("newest") => Ok(Self::NewestFirst),
            Some(_) => Err(PageError::bad_request("order must be oldest or newest")),
        }
    }

    fn query(self) -> &'static str {
        match self {
            Self::OldestFirst => "&order=oldest",
            Self::NewestFirst => "&order=newest",
        }
    }
}

/// A verdict being written again after it was refused: the message and what was entered.
pub struct RefusedVerdict {
    pub visit_id: Uuid,
    pub message: String,
    pub correct: Option<bool>,
    pub comment: String,
}

/// The visit under review.
struct Shown {
    visit_id: Uuid,
    employee: String,
    section: String,
    service: String,
    rated_at: String,
    length: String,
    visitor: String,
    /// Without a verdict: when it is due, or that it is overdue.
    deadline: Option<Deadline>,
    /// The recording's address, when it can be played.
    audio_url: Option<String>,
    audio_note: String,
    /// The waveform and speech segments as JSON for the player; empty without them.
    analysis: String,
    feedback: Option<FeedbackRow>,
    /// Every verdict so far, the first first; the last is the verdict of record.
    history: Vec<String>,
    decided: bool,
    correct: Option<bool>,
    comment: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    layout: Layout,
    path: String,
    picker: Picker,
    scope_label: String,
    /// «Вы замещаете …» on a deputy's inbox.
    cover: Option<String>,
    /// A head's own inbox links to naming a deputy.
    deputy_link: bool,
    /// The heads whose inboxes the viewer covers: (text, address).
    covers: Vec<(String, String)>,
    waiting: String,
    /// How many of them are past their deadline, and the archive listing those.
    overdue: Option<(String, Option<String>)>,
    archive_link: Option<String>,
    visit: Option<Shown>,
    /// Where the form goes back to and «Следующая» leads: the queue after this visit.
    next: String,
}

/// `GET /dashboard/inbox`: the next visit waiting for a verdict, or the one asked for.
pub async fn inbox_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PageQuery>,
) -> PageResult<Response> {
    render_inbox(&state, &viewer, None, &query, None).await
}

/// `GET /dashboard/inbox/cover/{head}`: the inbox of a head the viewer is deputy for.
pub async fn cover_page(
    State(state): State<AppState>,
    viewer: Viewer,
    PagePath(head_id): PagePath<i64>,
    Query(query): Query<PageQuery>,
) -> PageResult<Response> {
    render_inbox(&state, &viewer, Some(head_id), &query, None).await
}

/// Whose inbox a page is: the viewer's own, or the covered head's.
struct InboxOwner {
    scope: ReviewScope,
    path: String,
    /// The head covered for, by name, and until when.
    cover: Option<String>,
}

async fn inbox_owner(
    state: &AppState,
    viewer: &Viewer,
    cover: Option<i64>,
) -> PageResult<InboxOwner> {
    let Some(head_id) = cover else {
        if !viewer.may_decide() {
            return Err(PageError::not_found("page"));
        }
        return Ok(InboxOwner {
            scope: ReviewScope::own(viewer.visibility()?),
            path: "/dashboard/inbox".to_string(),
            cover: None,
        });
    };
    let account = viewer.account.clone();
    let (deputy, scope) = state
        .db(move |db| ops::deputies::cover(db, &account, head_id, Timestamp::now()))
        .await?
        .ok_or(PageError::not_found("page"))?;
    Ok(InboxOwner {
        scope,
        path: format!("/dashboard/inbox/cover/{head_id}"),
        cover: Some(cover_text(state, &deputy)),
    })
}

/// «Разбор "Плохо" за Иванову И. И. — вы замещаете до 14.12.2026 включительно».
pub fn cover_text(state: &AppState, cover: &Deputy) -> String {
    fill(
        RU.deputy_covering,
        &[
            ("head", &cover.head.display_name),
            ("day", &last_day(&state.zone, cover.until)),
        ],
    )
}

/// The inboxes of the heads the viewer covers for at `now`: (text, address).
pub async fn cover_links(
    state: &AppState,
    viewer: &Viewer,
    now: Timestamp,
) -> PageResult<Vec<(String, String)>> {
    let account_id = viewer.account.id;
    Ok(state
        .db(move |db| db.covered_by(account_id, now))
        .await?
        .iter()
        .map(|cover| {
            (
                cover_text(state, cover),
                format!("/dashboard/inbox/cover/{}", cover.head.id),
            )
        })
        .collect())
}

pub async fn render_inbox(
    state: &AppState,
    viewer: &Viewer,
    cover: Option<i64>,
    query: &PageQuery,
    refused: Option<RefusedVerdict>,
) -> PageResult<Response> {
    let t = &RU;
    let owner = inbox_owner(state, viewer, cover).await?;
    let scope = owner.scope;
    let (selection, directory, names) = select_within(state, scope.visibility, query, true).await?;
    let order = InboxOrder::parse(query)?;
    let uuid = |value: &Option<String>, what: &'static str| match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse::<Uuid>()
            .map(Some)
            .map_err(|_| PageError::bad_request(what)),
    };
    // A visit shown by its id, or a cursor, must be one the viewer may see.
    let wanted = uuid(&query.visit, "visit must be a visit's id")?;
    let after = uuid(&query.after, "after must be a visit's id")?;
    let visit = match (refused.as_ref().map(|r| r.visit_id), wanted) {
        (Some(id), _) | (None, Some(id)) => Some(visit_in_scope(state, scope, id).await?),
        (None, None) => {
            if let Some(id) = after {
                visit_in_scope(state, scope, id).await?;
            }
            next_waiting(state, &selection, scope, order, after).await?
        }
    };
    let now = Timestamp::now();
    let waiting_query = BadVisitQuery {
        filter: selection.filter,
        except_employee: scope.except_employee,
        verdict: VerdictFilter::Undecided,
        ..BadVisitQuery::default()
    };
    let overdue_query = BadVisitQuery {
        received_before: Some(state.verdicts_overdue_before(now)),
        ..waiting_query
    };
    let (waiting, overdue) = state
        .db(move |db| {
            Ok((
                db.bad_visit_count(&waiting_query)?,
                db.bad_visit_count(&overdue_query)?,
            ))
        })
        .await?;
    let in_own_scope = owner.cover.is_none();
    let covers = cover_links(state, viewer, now).await?;
    let base = format!("{}?{}{}", owner.path, selection.query(), order.query());
    let next = match &visit {
        Some(visit) => format!("{base}&after={}", visit.visit_id),
        None => base,
    };
    let shown_visit = match visit {
        Some(visit) => Some(shown_visit(state, viewer, visit, refused, now).await?),
        None => None,
    };
    let status = if shown_visit.as_ref().is_some_and(|v| v.error.is_some()) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = InboxPage {
        layout: Layout::for_viewer(viewer, t.inbox_title, Area::Inbox),
        path: owner.path,
        cover: owner.cover,
        deputy_link: matches!(viewer.account.role, Role::Head { .. }) && cover.is_none(),
        covers,
        picker: {
            let mut picker = Picker::new(&selection, &directory, true, true);
            picker.show_date = false;
            picker.selects = vec![order_select(order)];
            picker
        },
        scope_label: selection.scope_label(t, &names),
        waiting: fill(t.inbox_waiting, &[("count", &waiting.to_string())]),
        overdue: (overdue > 0).then(|| {
            (
                fill(t.inbox_overdue, &[("count", &overdue.to_string())]),
                in_own_scope
                    .then(|| format!("/dashboard/bad?{}&verdict=overdue", selection.query())),
            )
        }),
        // A deputy reviews; the head's archive is not theirs.
        archive_link: in_own_scope.then(|| format!("/dashboard/bad?{}", selection.query())),
        visit: shown_visit,
        next,
    };
    Ok((status, html(&page)).into_response())
}

/// A Плохо visit within the inbox's scope; anything else is "not found".
async fn visit_in_scope(state: &AppState, scope: ReviewScope, id: Uuid) -> PageResult<BadVisit> {
    state
        .db(move |db| db.bad_visit(id))
        .await?
        .filter(|v| scope.sees(v.department_id, v.section_id, v.employee_id))
        .ok_or(PageError::not_found("visit rated Плохо"))
}

/// The first visit without a verdict after the cursor in this order, starting over from the
/// beginning past the end.
async fn next_waiting(
    state: &AppState,
    selection: &Selection,
    scope: ReviewScope,
    order: InboxOrder,
    after: Option<Uuid>,
) -> PageResult<Option<BadVisit>> {
    let query = BadVisitQuery {
        filter: selection.filter,
        except_employee: scope.except_employee,
        verdict: VerdictFilter::Undecided,
        oldest_first: order == InboxOrder::OldestFirst,
        after,
        limit: 1,
        ..BadVisitQuery::default()
    };
    Ok(state
        .db(move |db| {
            let mut found = db.bad_visits(&query)?;
            if found.is_empty() && query.after.is_some() {
                found = db.bad_visits(&BadVisitQuery {
                    after: None,
                    ..query
                })?;
            }
            Ok::<_, crate::storage::StorageError>(found.into_iter().next())
        })
        .await?)
}

fn order_select(order: InboxOrder) -> FilterSelect {
    let t = &RU;
    let option = |value: &str, label: &str, this: InboxOrder| FilterOption {
        value: value.to_string(),
        label: label.to_string(),
        selected: order == this,
    };
    FilterSelect {
        name: "order",
        label: t.inbox_order,
        options: vec![
            option("oldest", t.inbox_oldest_first, InboxOrder::OldestFirst),
            option("newest", t.inbox_newest_first, InboxOrder::NewestFirst),
        ],
    }
}

/// A length as the facts give it: «12 мин 5 с».
pub fn duration_text(ms: u64) -> String {
    let seconds = ms / 1000;
    fill(
        RU.duration_text,
        &[
            ("minutes", &(seconds / 60).to_string()),
            ("seconds", &(seconds % 60).to_string()),
        ],
    )
}

async fn shown_visit(
    state: &AppState,
    viewer: &Viewer,
    visit: BadVisit,
    refused: Option<RefusedVerdict>,
    now: Timestamp,
) -> PageResult<Shown> {
    let t = &RU;
    let id = visit.visit_id;
    let playable = matches!(visit.recording, RecordingState::Stored { .. });
    let (history, analysis, feedback) = state
        .db(move |db| {
            let history = db.verdict_history(id)?;
            let analysis = if playable {
                db.recording_analysis(id)?
            } else {
                None
            };
            Ok::<_, crate::storage::StorageError>((history, analysis, db.feedback_entry(id)?))
        })
        .await?;
    let visitors = visitor_names(
        state,
        viewer,
        shown(std::slice::from_ref(&visit)),
        "Разбор оценок «Плохо»",
    )
    .await?;
    let zone: &TimeZone = &state.zone;
    let feedback = feedback.and_then(|entry| {
        feedback_rows(
            &[entry],
            &visitors,
            &state.config.feedback.criteria,
            viewer,
            zone,
        )
        .pop()
    });
    let analysis = match analysis {
        Some(analysis) => serde_json::to_string(&analysis).map_err(PageError::internal)?,
        None => String::new(),
    };
    let (correct, comment, error) = match refused {
        Some(refused) => (refused.correct, refused.comment, Some(refused.message)),
        None => (None, String::new(), None),
    };
    Ok(Shown {
        deadline: verdict_deadline(state, &visit, now),
        visit_id: id,
        employee: visit.employee_name.clone(),
        section: visit.section_name.clone(),
        service: visit.service_name.clone(),
        rated_at: local_time(zone, visit.rated_at),
        length: duration_text(visit.served_ms),
        visitor: visitors
            .get(&id)
            .cloned()
            .unwrap_or_else(|| t.visitor_unknown.to_string()),
        audio_url: playable.then(|| format!("/dashboard/recordings/{id}")),
        audio_note: audio_note(&visit.recording, zone, state.config.retention_days),
        analysis,
        feedback,
        history: history.iter().map(|v| history_entry(v, zone)).collect(),
        decided: visit.verdict.is_some(),
        correct,
        comment,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_read_as_minutes_and_seconds() {
        assert_eq!(duration_text(0), "0 мин 0 с");
        assert_eq!(duration_text(725_999), "12 мин 5 с");
    }
}
