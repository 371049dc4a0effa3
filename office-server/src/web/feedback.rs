//! «Отзывы посетителей»: what visitors sent from their phones, in the viewer's scope — the
//! criteria averages, the number of submissions and of thanks per employee, section or service
//! in the six period columns (from the feedback totals, like the ratings), and the submissions
//! themselves beside the tablet's rating, with the office's answer and the hiding of an abusive
//! comment. Specialists never see this page.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;
use uuid::Uuid;

use super::dashboard::{Picker, decided, local_time, periods_note, safe_back, select};
use super::error::{PageError, PagePath, PageResult};
use super::forms::{Decider, StaffForm};
use super::named::{ShownVisit, visitor_names};
use super::selection::{Names, PageQuery, Selection};
use super::session::Viewer;
use super::strings::{RU, Strings, fill};
use super::tables::{Cell, PlainTable, ReportRow, ReportTable, Value};
use super::{Area, Layout, html, see_other};
use crate::app::AppState;
use crate::config::Criterion;
use crate::domain::{Comment, InvalidText};
use crate::ops::feedback_answers::{self, Actor};
use crate::reports::{Period, round4};
use crate::storage::{FeedbackEntry, FeedbackQuery, GroupBy, Storage, StorageResult};

/// Submissions per page of the list.
pub const PAGE_SIZE: u32 = 50;
/// The most submissions one file lists.
const MAX_EXPORT_ROWS: u32 = 100 * PAGE_SIZE;
/// The `table` of the list in export URLs.
pub const LIST_TABLE: &str = "feedback";

/// What the rows of the criteria tables are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    Employee,
    Section,
    Service,
}

impl Rows {
    pub fn of(query: &PageQuery) -> Self {
        match query.by.as_deref() {
            Some("section") => Rows::Section,
            Some("service") => Rows::Service,
            _ => Rows::Employee,
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Rows::Employee => "employee",
            Rows::Section => "section",
            Rows::Service => "service",
        }
    }

    fn group(self) -> GroupBy {
        match self {
            Rows::Employee => GroupBy::Employee,
            Rows::Section => GroupBy::Section,
            Rows::Service => GroupBy::Service,
        }
    }

    fn first_column(self, t: &Strings) -> &'static str {
        match self {
            Rows::Employee => t.col_employee,
            Rows::Section => t.col_section,
            Rows::Service => t.col_service,
        }
    }

    fn label(self, names: &Names, id: i64) -> String {
        match self {
            Rows::Employee => names.employee(id),
            Rows::Section => names.section(id),
            Rows::Service => names.service(id),
        }
    }
}

/// The query of this page for a selection.
fn page_query(selection: &Selection, rows: Rows, unanswered: bool, page: u32) -> String {
    let mut query = format!("{}&by={}", selection.query(), rows.slug());
    if unanswered {
        query.push_str("&undecided=1");
    }
    if page > 0 {
        query.push_str(&format!("&page={page}"));
    }
    query
}

fn export_url(table: &str, selection: &Selection, rows: Rows, unanswered: bool) -> String {
    format!(
        "/dashboard/export?tab=feedback&table={table}&{}",
        page_query(selection, rows, unanswered, 0)
    )
}

/// (sum of scores, number of scores) in each period column.
type Sums = [(i64, i64); 6];

/// The criteria tables: the average of each criterion, then the number of submissions and of
/// thanks, one row per group with feedback and a total row.
pub fn criteria_tables(
    db: &dyn Storage,
    selection: &Selection,
    names: &Names,
    criteria: &[Criterion],
    rows: Rows,
    unanswered: bool,
) -> StorageResult<Vec<ReportTable>> {
    let t = &RU;
    // criterion → group → sums; criterion '' counts submissions (its sum counts thanks).
    let mut sums: HashMap<String, HashMap<i64, Sums>> = HashMap::new();
    for (index, period) in Period::ALL.iter().enumerate() {
        for total in
            db.feedback_totals(&selection.filter, rows.group(), period.span(selection.date))?
        {
            sums.entry(total.criterion)
                .or_default()
                .entry(total.key)
                .or_insert([(0, 0); 6])[index] = (total.score_sum, total.scores);
        }
    }
    let empty = HashMap::new();
    let submissions = sums.get("").unwrap_or(&empty);
    let mut keys: Vec<i64> = submissions.keys().copied().collect();
    keys.sort_by_key(|key| rows.label(names, *key));
    let table =
        |id: String, title: String, of: &HashMap<i64, Sums>, cell: fn((i64, i64)) -> Cell| {
            let mut total: Sums = [(0, 0); 6];
            let table_rows = keys
                .iter()
                .map(|key| {
                    let row = of.get(key).copied().unwrap_or([(0, 0); 6]);
                    for (sum, (s, n)) in total.iter_mut().zip(row) {
                        sum.0 += s;
                        sum.1 += n;
                    }
                    ReportRow {
                        label: rows.label(names, *key),
                        link: None,
                        cells: row.into_iter().map(cell).collect(),
                    }
                })
                .collect();
            ReportTable {
                export_url: export_url(&id, selection, rows, unanswered),
                id,
                title,
                first_column: rows.first_column(t).to_string(),
                rows: table_rows,
                total: Some(ReportRow {
                    label: t.total_row.to_string(),
                    link: None,
                    cells: total.into_iter().map(cell).collect(),
                }),
            }
        };
    let average = |(sum, count): (i64, i64)| {
        if count == 0 {
            Cell::Empty
        } else {
            Cell::Average(round4(sum as f64 / count as f64))
        }
    };
    let mut tables: Vec<ReportTable> = criteria
        .iter()
        .map(|criterion| {
            table(
                format!("criterion-{}", criterion.key),
                fill(t.feedback_average_of, &[("criterion", &criterion.label)]),
                sums.get(&criterion.key).unwrap_or(&empty),
                average,
            )
        })
        .collect();
    tables.push(table(
        "submissions".into(),
        t.feedback_submissions.into(),
        submissions,
        |(_, count)| Cell::Count(count),
    ));
    tables.push(table(
        "thanks".into(),
        t.feedback_thanks_count.into(),
        submissions,
        |(thanks, _)| Cell::Count(thanks),
    ));
    Ok(tables)
}

/// A submission as the list shows it.
pub struct FeedbackRow {
    pub visit_id: Uuid,
    pub employee: String,
    pub section: String,
    pub service: String,
    /// The attached visitor's name for a head in scope, `---` otherwise.
    pub visitor: String,
    pub rated_at: String,
    pub rating: &'static str,
    pub rating_class: &'static str,
    pub submitted_at: String,
    /// (criterion label, score).
    pub scores: Vec<(String, u8)>,
    pub thanks: bool,
    /// The comment, unless hidden or cleared.
    pub comment: Option<String>,
    /// Why no comment shows: none written, cleared, or hidden by whom.
    pub comment_note: String,
    pub hidden: bool,
    pub answer: Option<String>,
    pub answered_by: String,
    pub can_decide: bool,
    pub error: Option<String>,
    /// The answer being written (after an error) or the current one, for the form.
    pub draft: String,
}

fn rating_text(t: &Strings, rating: Option<u8>) -> (&'static str, &'static str) {
    match rating {
        Some(3) => (t.rating_good, "good"),
        Some(2) => (t.rating_medium, "medium"),
        Some(1) => (t.rating_bad, "bad"),
        _ => (t.rating_none, "none"),
    }
}

fn hidden_note(t: &Strings, zone: &TimeZone, entry: &FeedbackEntry) -> Option<String> {
    entry.hidden.as_ref().map(|(who, when)| {
        fill(
            t.feedback_hidden_by,
            &[("who", who), ("when", &local_time(zone, *when))],
        )
    })
}

fn criterion_label(criteria: &[Criterion], key: &str) -> String {
    criteria
        .iter()
        .find(|c| c.key == key)
        .map_or_else(|| key.to_string(), |c| c.label.clone())
}

/// The visits whose visitor a page is about to name.
fn shown(entries: &[FeedbackEntry]) -> Vec<ShownVisit> {
    entries
        .iter()
        .map(|entry| ShownVisit {
            visit_id: entry.visit_id,
            department_id: entry.department_id,
            section_id: entry.section_id,
        })
        .collect()
}

/// The visitor's name as a head in scope sees it, `---` otherwise.
fn visitor_of(visitors: &HashMap<Uuid, String>, visit_id: Uuid) -> String {
    visitors
        .get(&visit_id)
        .cloned()
        .unwrap_or_else(|| RU.visitor_unknown.to_string())
}

pub fn feedback_rows(
    entries: &[FeedbackEntry],
    visitors: &HashMap<Uuid, String>,
    criteria: &[Criterion],
    viewer: &Viewer,
    zone: &TimeZone,
) -> Vec<FeedbackRow> {
    let t = &RU;
    entries
        .iter()
        .map(|entry| {
            let (rating, rating_class) = rating_text(t, entry.rating);
            let hidden = hidden_note(t, zone, entry);
            let comment_note = match (&hidden, &entry.comment) {
                (Some(note), _) => note.clone(),
                (None, None) => t.feedback_no_comment.to_string(),
                (None, Some(_)) => String::new(),
            };
            FeedbackRow {
                visit_id: entry.visit_id,
                employee: entry.employee_name.clone(),
                section: entry.section_name.clone(),
                service: entry.service_name.clone(),
                visitor: visitor_of(visitors, entry.visit_id),
                rated_at: local_time(zone, entry.rated_at),
                rating,
                rating_class,
                submitted_at: local_time(zone, entry.submitted_at),
                scores: entry
                    .scores
                    .iter()
                    .map(|(key, score)| (criterion_label(criteria, key), *score))
                    .collect(),
                thanks: entry.thanks,
                comment: entry.comment.clone().filter(|_| hidden.is_none()),
                comment_note,
                hidden: hidden.is_some(),
                answer: entry.answer.clone(),
                answered_by: match (&entry.answered_by, entry.answered_at) {
                    (Some(who), Some(when)) => fill(
                        t.feedback_answered_by,
                        &[("who", who), ("when", &local_time(zone, when))],
                    ),
                    _ => String::new(),
                },
                can_decide: viewer.may_decide(),
                error: None,
                draft: entry.answer.clone().unwrap_or_default(),
            }
        })
        .collect()
}

/// The list as a spreadsheet: hidden comments stay hidden there too.
pub fn list_sheet(
    entries: &[FeedbackEntry],
    visitors: &HashMap<Uuid, String>,
    criteria: &[Criterion],
    zone: &TimeZone,
    unanswered: bool,
) -> PlainTable {
    let t = &RU;
    let mut title = t.feedback_list.to_string();
    if unanswered {
        title = format!("{title} — {}", t.feedback_filter_unanswered);
    }
    let mut headings = vec![
        t.col_employee.to_string(),
        t.col_section.to_string(),
        t.col_service.to_string(),
        t.col_visitor.to_string(),
        t.col_rated_at.to_string(),
        t.col_tablet_rating.to_string(),
        t.col_submitted_at.to_string(),
    ];
    headings.extend(criteria.iter().map(|c| c.label.clone()));
    headings.extend([
        t.feedback_thanked.to_string(),
        t.col_feedback_comment.to_string(),
        t.col_feedback_answer.to_string(),
    ]);
    let rows = entries
        .iter()
        .map(|entry| {
            let mut cells = vec![
                Value::Text(entry.employee_name.clone()),
                Value::Text(entry.section_name.clone()),
                Value::Text(entry.service_name.clone()),
                Value::Text(visitor_of(visitors, entry.visit_id)),
                Value::Text(local_time(zone, entry.rated_at)),
                Value::Text(rating_text(t, entry.rating).0.to_string()),
                Value::Text(local_time(zone, entry.submitted_at)),
            ];
            cells.extend(criteria.iter().map(|c| {
                entry
                    .scores
                    .iter()
                    .find(|(key, _)| *key == c.key)
                    .map_or(Value::Cell(Cell::Empty), |(_, s)| {
                        Value::Cell(Cell::Count(i64::from(*s)))
                    })
            }));
            let comment = hidden_note(t, zone, entry)
                .or_else(|| entry.comment.clone())
                .unwrap_or_default();
            cells.extend([
                Value::Text(if entry.thanks { t.yes } else { "" }.to_string()),
                Value::Text(comment),
                Value::Text(entry.answer.clone().unwrap_or_default()),
            ]);
            cells
        })
        .collect();
    PlainTable {
        id: LIST_TABLE,
        title,
        headings,
        rows,
        export_url: String::new(),
    }
}

/// The table `table_id` of this page for the export, as the page shows it.
pub async fn export_table(
    state: &AppState,
    viewer: &Viewer,
    selection: &Selection,
    names: &Names,
    query: &PageQuery,
    table_id: &str,
) -> PageResult<super::export::Sheet> {
    let rows = Rows::of(query);
    let unanswered = query.undecided_only();
    let criteria = state.config.feedback.criteria.clone();
    if table_id == LIST_TABLE {
        let filter = selection.filter;
        let entries = state
            .db(move |db| {
                db.feedback_entries(&FeedbackQuery {
                    filter,
                    unanswered_only: unanswered,
                    limit: MAX_EXPORT_ROWS,
                    offset: 0,
                })
            })
            .await?;
        let visitors =
            visitor_names(state, viewer, shown(&entries), "XLSX «Отзывы посетителей»").await?;
        return Ok(list_sheet(&entries, &visitors, &criteria, &state.zone, unanswered).into());
    }
    let (selection, names, id) = (selection.clone(), names.clone(), table_id.to_string());
    state
        .db(move |db| criteria_tables(db, &selection, &names, &criteria, rows, unanswered))
        .await?
        .into_iter()
        .find(|table| table.id == id)
        .map(Into::into)
        .ok_or(PageError::not_found("table"))
}

#[derive(Template)]
#[template(path = "feedback.html")]
struct FeedbackPage {
    layout: Layout,
    path: &'static str,
    picker: Picker,
    scope_label: String,
    date_label: String,
    periods_note: String,
    /// (href, label, active) of the row choices.
    groupings: Vec<(String, &'static str, bool)>,
    unanswered: bool,
    all_link: String,
    unanswered_link: String,
    tables: Vec<ReportTable>,
    back: String,
    rows: Vec<FeedbackRow>,
    previous: Option<String>,
    next: Option<String>,
    export_url: String,
}

pub async fn feedback_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PageQuery>,
) -> PageResult<Response> {
    render(&state, &viewer, &query, None).await
}

/// A form's error to show at its submission: (visit, message, the answer as typed).
type FormError = (Uuid, String, String);

async fn render(
    state: &AppState,
    viewer: &Viewer,
    query: &PageQuery,
    error: Option<FormError>,
) -> PageResult<Response> {
    let t = &RU;
    let (selection, directory, names) = select(state, viewer, query, true).await?;
    let rows = Rows::of(query);
    let unanswered = query.undecided_only();
    let page = query.page_number().min(100_000);
    let criteria = state.config.feedback.criteria.clone();
    let filter = selection.filter;
    let (tables, mut entries) = {
        let (selection, names, criteria) = (selection.clone(), names.clone(), criteria.clone());
        state
            .db(move |db| {
                let tables = criteria_tables(db, &selection, &names, &criteria, rows, unanswered)?;
                let entries = db.feedback_entries(&FeedbackQuery {
                    filter,
                    unanswered_only: unanswered,
                    limit: PAGE_SIZE + 1,
                    offset: page * PAGE_SIZE,
                })?;
                Ok((tables, entries))
            })
            .await?
    };
    let more = entries.len() > PAGE_SIZE as usize;
    entries.truncate(PAGE_SIZE as usize);
    let visitors = visitor_names(state, viewer, shown(&entries), "Отзывы посетителей").await?;
    let mut list = feedback_rows(&entries, &visitors, &criteria, viewer, &state.zone);
    let status = match error {
        Some((visit_id, message, draft)) => {
            if let Some(row) = list.iter_mut().find(|r| r.visit_id == visit_id) {
                row.error = Some(message);
                row.draft = draft;
            }
            StatusCode::BAD_REQUEST
        }
        None => StatusCode::OK,
    };
    let link = |rows: Rows, unanswered: bool, page: u32| {
        format!(
            "/dashboard/feedback?{}",
            page_query(&selection, rows, unanswered, page)
        )
    };
    let groupings = [
        (Rows::Employee, t.feedback_by_employee),
        (Rows::Section, t.feedback_by_section),
        (Rows::Service, t.feedback_by_service),
    ]
    .into_iter()
    .map(|(choice, label)| (link(choice, unanswered, 0), label, choice == rows))
    .collect();
    let mut picker = Picker::new(&selection, &directory, true, true);
    picker
        .hidden
        .push(("by".to_string(), rows.slug().to_string()));
    if unanswered {
        picker
            .hidden
            .push(("undecided".to_string(), "1".to_string()));
    }
    let view = FeedbackPage {
        layout: Layout::for_viewer(viewer, t.feedback_title, Area::Feedback),
        path: "/dashboard/feedback",
        picker,
        scope_label: selection.scope_label(t, &names),
        date_label: selection.date.strftime("%d.%m.%Y").to_string(),
        periods_note: periods_note(t, selection.date, &state.config.time_zone),
        groupings,
        unanswered,
        all_link: link(rows, false, 0),
        unanswered_link: link(rows, true, 0),
        tables,
        back: link(rows, unanswered, page),
        rows: list,
        previous: (page > 0).then(|| link(rows, unanswered, page - 1)),
        next: more.then(|| link(rows, unanswered, page + 1)),
        export_url: export_url(LIST_TABLE, &selection, rows, unanswered),
    };
    Ok((status, html(&view)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    answer: String,
    #[serde(default)]
    back: String,
}

#[derive(Debug, Deserialize)]
pub struct HideForm {
    /// "1" hides the comment, anything else shows it again.
    #[serde(default)]
    hidden: String,
    #[serde(default)]
    back: String,
}

/// The page query a form's `back` field names.
fn query_of(back: &str) -> PageQuery {
    back.split_once('?')
        .and_then(|(_, query)| {
            let uri: axum::http::Uri = format!("/?{query}").parse().ok()?;
            Query::<PageQuery>::try_from_uri(&uri).ok().map(|q| q.0)
        })
        .unwrap_or_default()
}

pub async fn answer_submit(
    State(state): State<AppState>,
    PagePath(id): PagePath<Uuid>,
    form: StaffForm<Decider, AnswerForm>,
) -> PageResult<Response> {
    let t = &RU;
    let (viewer, form) = (form.viewer, form.fields);
    let back = safe_back(&form.back, "/dashboard/feedback");
    let answer = Comment::parse(&form.answer);
    let problem = match &answer {
        Ok(text) if text.as_str().is_empty() => Some(t.feedback_answer_required),
        Ok(_) => None,
        Err(InvalidText::TooLong { .. }) => Some(t.comment_too_long),
        Err(_) => Some(t.comment_bad_characters),
    };
    let (Ok(answer), None) = (answer, problem) else {
        let visibility = viewer.visibility()?;
        // Out of scope is "not found", before any word about the text.
        state
            .db(move |db| db.feedback_entry(id))
            .await?
            .filter(|entry| visibility.sees(entry.department_id, entry.section_id))
            .ok_or(PageError::not_found("visitor feedback"))?;
        let message = problem.unwrap_or(t.feedback_answer_required).to_string();
        let error = (id, message, form.answer.trim().to_string());
        return render(&state, &viewer, &query_of(&back), Some(error)).await;
    };
    let visibility = viewer.visibility()?;
    let (by, session_tag) = (viewer.account.id, viewer.session_tag.clone());
    decided(
        state
            .blocking(move |s| {
                let actor = Actor {
                    account_id: by,
                    session_tag: &session_tag,
                };
                feedback_answers::answer(
                    s.storage.as_ref(),
                    &s.live,
                    visibility,
                    id,
                    &answer,
                    &actor,
                    Timestamp::now(),
                )
            })
            .await?,
    )?;
    Ok(see_other(&format!("{back}#feedback-{id}")))
}

pub async fn hide_submit(
    State(state): State<AppState>,
    PagePath(id): PagePath<Uuid>,
    form: StaffForm<Decider, HideForm>,
) -> PageResult<Response> {
    let (viewer, form) = (form.viewer, form.fields);
    let back = safe_back(&form.back, "/dashboard/feedback");
    let hidden = form.hidden == "1";
    let visibility = viewer.visibility()?;
    let (by, session_tag) = (viewer.account.id, viewer.session_tag.clone());
    decided(
        state
            .blocking(move |s| {
                let actor = Actor {
                    account_id: by,
                    session_tag: &session_tag,
                };
                feedback_answers::set_hidden(
                    s.storage.as_ref(),
                    &s.live,
                    visibility,
                    id,
                    hidden,
                    &actor,
                    Timestamp::now(),
                )
            })
            .await?,
    )?;
    Ok(see_other(&format!("{back}#feedback-{id}")))
}
