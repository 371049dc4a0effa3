//! «Сроки разбора «Плохо»»: per head (or per section) how many Плохо arrived, how many got
//! their first verdict in time and how many are overdue, and per employee the share the heads
//! judged «Специалист действовал неправильно» (the justified complaints) — in the six period
//! columns, each table with its XLSX like every dashboard table.
//!
//! Counted from the Плохо visits themselves, not from report totals: they are few (a few per
//! cent of the visits) and a verdict's lateness depends on `now` and the production calendar.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use jiff::Timestamp;
use jiff::civil::Date;

use super::dashboard::{Picker, periods_note, select};
use super::error::{PageError, PageResult};
use super::export::Sheet;
use super::selection::{Names, PageQuery, Selection};
use super::session::Viewer;
use super::strings::{RU, Strings, fill};
use super::tables::{Cell, ReportRow, ReportTable};
use super::{Area, Layout, html};
use crate::app::{AppState, Shared};
use crate::domain::scope::Visibility;
use crate::reports::Period;
use crate::storage::{Account, Directory, ReviewFact, Role, Scope};

/// How one Плохо stands against its verdict's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeliness {
    /// Its first verdict came before the deadline.
    InTime,
    /// Its first verdict came late, or none has come and the deadline has passed.
    Overdue,
    /// No verdict yet, and there is still time.
    Waiting,
}

impl Timeliness {
    /// `due` is the instant the verdict was due by (see [`Shared::verdict_due`]).
    pub fn of(first_verdict_at: Option<Timestamp>, due: Timestamp, now: Timestamp) -> Self {
        match first_verdict_at {
            Some(at) if at < due => Timeliness::InTime,
            Some(_) => Timeliness::Overdue,
            None if due <= now => Timeliness::Overdue,
            None => Timeliness::Waiting,
        }
    }
}

/// What the rows of the deadline tables are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    Head,
    Section,
}

impl Rows {
    pub fn of(query: &PageQuery) -> Self {
        match query.by.as_deref() {
            Some("section") => Rows::Section,
            _ => Rows::Head,
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Rows::Head => "head",
            Rows::Section => "section",
        }
    }
}

/// One Плохо as the tables count it: which period columns it falls in, and how it stands.
struct Counted {
    fact: ReviewFact,
    columns: [bool; 6],
    timeliness: Timeliness,
}

/// Which of the six period columns around `date` an office-local day falls in.
fn columns_of(date: Date, day: Date) -> [bool; 6] {
    Period::ALL.map(|period| {
        period
            .dates(date)
            .is_none_or(|(first, last)| first <= day && day <= last)
    })
}

fn count(state: &Shared, facts: Vec<ReviewFact>, date: Date, now: Timestamp) -> Vec<Counted> {
    facts
        .into_iter()
        .map(|fact| Counted {
            columns: columns_of(date, state.zone.to_datetime(fact.rated_at).date()),
            timeliness: Timeliness::of(
                fact.first_verdict_at,
                state.verdict_due(fact.received_at),
                now,
            ),
            fact,
        })
        .collect()
}

/// A row's tally: in each column, the visits that `counts` says count.
fn tally<'a>(visits: impl Iterator<Item = &'a Counted>, counts: fn(&Counted) -> bool) -> [i64; 6] {
    let mut cells = [0; 6];
    for visit in visits.filter(|v| counts(v)) {
        for (cell, inside) in cells.iter_mut().zip(visit.columns) {
            *cell += i64::from(inside);
        }
    }
    cells
}

/// The share judged «действовал неправильно» among those with a verdict, in each column.
fn wrong_share<'a>(visits: impl Iterator<Item = &'a Counted> + Clone) -> [Cell; 6] {
    let decided = tally(visits.clone(), |v| v.fact.correct.is_some());
    let wrong = tally(visits, |v| v.fact.correct == Some(false));
    std::array::from_fn(|i| {
        if decided[i] == 0 {
            Cell::Empty
        } else {
            Cell::Percent(wrong[i] as f64 * 100.0 / decided[i] as f64)
        }
    })
}

/// A row of the deadline tables: a head with their scope, or a section.
struct Group {
    label: String,
    /// Whether a Плохо of this department and section falls to this row.
    scope: Visibility,
}

/// Whether a head's Плохо are the viewer's to see in this selection: their scope lies within
/// the viewer's, and meets what was chosen.
fn head_in_view(scope: Scope, selection: &Selection, names: &Names) -> bool {
    let (department, section) = match scope {
        Scope::Department(d) => (d, None),
        Scope::Section(s) => match names.sections.get(&s) {
            Some((_, d)) => (*d, Some(s)),
            None => return false,
        },
    };
    let within_viewer = match selection.visibility {
        Visibility::All => true,
        Visibility::Department(d) => d == department,
        Visibility::Section(s) => section == Some(s),
    };
    let meets_choice = selection.department.is_none_or(|d| d == department)
        && match (selection.section, section) {
            (Some(chosen), Some(own)) => chosen == own,
            _ => true,
        };
    within_viewer && meets_choice
}

fn groups(
    t: &Strings,
    rows: Rows,
    selection: &Selection,
    directory: &Directory,
    names: &Names,
    accounts: &[Account],
) -> Vec<Group> {
    let mut groups: Vec<Group> = match rows {
        Rows::Head => accounts
            .iter()
            .filter_map(|account| match account.role {
                Role::Head { scope } if head_in_view(scope, selection, names) => {
                    let (of, visibility) = match scope {
                        Scope::Department(d) => (names.department(d), Visibility::Department(d)),
                        Scope::Section(s) => (names.section(s), Visibility::Section(s)),
                    };
                    Some(Group {
                        label: fill(
                            t.review_head_row,
                            &[("name", &account.display_name), ("scope", &of)],
                        ),
                        scope: visibility,
                    })
                }
                _ => None,
            })
            .collect(),
        Rows::Section => selection
            .sections_in_view(directory)
            .into_iter()
            .filter(|s| selection.section.is_none_or(|x| x == s.id))
            .map(|s| Group {
                label: s.name.clone(),
                scope: Visibility::Section(s.id),
            })
            .collect(),
    };
    groups.sort_by(|a, b| a.label.cmp(&b.label));
    groups
}

fn export_url(table: &str, selection: &Selection, rows: Rows) -> String {
    format!(
        "/dashboard/export?tab=review&table={table}&{}&by={}",
        selection.query(),
        rows.slug()
    )
}

/// The deadline tables and the employees' shares, as the page shows them and the files hold
/// them.
#[allow(clippy::too_many_arguments)]
fn build_tables(
    state: &Shared,
    rows: Rows,
    selection: &Selection,
    directory: &Directory,
    names: &Names,
    accounts: &[Account],
    facts: Vec<ReviewFact>,
    now: Timestamp,
) -> Vec<ReportTable> {
    let t = &RU;
    let visits = count(state, facts, selection.date, now);
    let groups = groups(t, rows, selection, directory, names, accounts);
    let first_column = match rows {
        Rows::Head => t.review_col_head,
        Rows::Section => t.col_section,
    };
    let counts_table = |id: &str, title: &str, counts: fn(&Counted) -> bool| {
        let cells = |tally: [i64; 6]| tally.into_iter().map(Cell::Count).collect();
        ReportTable {
            id: id.to_string(),
            title: title.to_string(),
            first_column: first_column.to_string(),
            rows: groups
                .iter()
                .map(|group| ReportRow {
                    label: group.label.clone(),
                    link: None,
                    cells: cells(tally(
                        visits
                            .iter()
                            .filter(|v| group.scope.sees(v.fact.department_id, v.fact.section_id)),
                        counts,
                    )),
                })
                .collect(),
            total: Some(ReportRow {
                label: t.total_row.to_string(),
                link: None,
                cells: cells(tally(visits.iter(), counts)),
            }),
            export_url: export_url(id, selection, rows),
        }
    };
    let mut employees: Vec<i64> = visits.iter().map(|v| v.fact.employee_id).collect();
    employees.sort_unstable();
    employees.dedup();
    let mut share_rows: Vec<ReportRow> = employees
        .into_iter()
        .map(|employee| ReportRow {
            label: names.employee(employee),
            link: None,
            cells: wrong_share(
                visits
                    .iter()
                    .filter(move |v| v.fact.employee_id == employee),
            )
            .to_vec(),
        })
        .collect();
    share_rows.sort_by(|a, b| a.label.cmp(&b.label));
    vec![
        counts_table("received", t.review_received, |_| true),
        counts_table("in-time", t.review_in_time, |v| {
            v.timeliness == Timeliness::InTime
        }),
        counts_table("overdue", t.review_overdue, |v| {
            v.timeliness == Timeliness::Overdue
        }),
        ReportTable {
            id: "wrong-share".into(),
            title: t.review_wrong_share.into(),
            first_column: t.col_employee.into(),
            rows: share_rows,
            total: Some(ReportRow {
                label: t.total_row.to_string(),
                link: None,
                cells: wrong_share(visits.iter()).to_vec(),
            }),
            export_url: export_url("wrong-share", selection, rows),
        },
    ]
}

/// The tables for the viewer's selection, read and counted on the blocking pool.
async fn load_tables(
    state: &AppState,
    rows: Rows,
    selection: &Selection,
    directory: &Directory,
    names: &Names,
) -> PageResult<Vec<ReportTable>> {
    let (selection, directory, names) = (selection.clone(), directory.clone(), names.clone());
    let filter = selection.filter;
    Ok(state
        .blocking(move |state| {
            let db = state.storage.as_ref();
            let facts = db.review_facts(&filter)?;
            let accounts: Vec<Account> = db.accounts()?.into_iter().map(|a| a.account).collect();
            Ok::<_, crate::storage::StorageError>(build_tables(
                state,
                rows,
                &selection,
                &directory,
                &names,
                &accounts,
                facts,
                Timestamp::now(),
            ))
        })
        .await??)
}

/// One table of the page as a file.
pub async fn export_table(
    state: &AppState,
    selection: &Selection,
    directory: &Directory,
    names: &Names,
    query: &PageQuery,
    table_id: &str,
) -> PageResult<Sheet> {
    load_tables(state, Rows::of(query), selection, directory, names)
        .await?
        .into_iter()
        .find(|table| table.id == table_id)
        .map(Into::into)
        .ok_or(PageError::not_found("table"))
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    layout: Layout,
    path: &'static str,
    picker: Picker,
    scope_label: String,
    date_label: String,
    periods_note: String,
    rule_note: String,
    /// (href, label, active) of the row choices.
    groupings: Vec<(String, &'static str, bool)>,
    tables: Vec<ReportTable>,
}

pub async fn review_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PageQuery>,
) -> PageResult<Response> {
    let t = &RU;
    let (selection, directory, names) = select(&state, &viewer, &query, false).await?;
    let rows = Rows::of(&query);
    let tables = load_tables(&state, rows, &selection, &directory, &names).await?;
    let groupings = [
        (Rows::Head, t.review_by_head),
        (Rows::Section, t.review_by_section),
    ]
    .into_iter()
    .map(|(choice, label)| {
        (
            format!(
                "/dashboard/review?{}&by={}",
                selection.query(),
                choice.slug()
            ),
            label,
            choice == rows,
        )
    })
    .collect();
    let mut picker = Picker::new(&selection, &directory, true, false);
    picker
        .hidden
        .push(("by".to_string(), rows.slug().to_string()));
    let days = state.config.review.verdict_working_days.to_string();
    let page = ReviewPage {
        layout: Layout::for_viewer(&viewer, t.review_title, Area::Review),
        path: "/dashboard/review",
        picker,
        scope_label: selection.scope_label(t, &names),
        date_label: selection.date.strftime("%d.%m.%Y").to_string(),
        periods_note: periods_note(t, selection.date, &state.config.time_zone),
        rule_note: fill(t.review_rule, &[("days", &days)]),
        groupings,
        tables,
    };
    Ok(html(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn timeliness_is_judged_by_the_first_verdict_and_the_deadline() {
        let due = at("2026-12-04T00:00:00Z");
        let before = at("2026-12-03T23:59:59Z");
        let after = at("2026-12-04T00:00:01Z");
        assert_eq!(Timeliness::of(Some(before), due, after), Timeliness::InTime);
        assert_eq!(Timeliness::of(Some(due), due, after), Timeliness::Overdue);
        assert_eq!(Timeliness::of(None, due, before), Timeliness::Waiting);
        assert_eq!(Timeliness::of(None, due, due), Timeliness::Overdue);
    }

    #[test]
    fn a_day_falls_in_the_periods_around_the_date() {
        let date = Date::constant(2026, 12, 5);
        assert_eq!(columns_of(date, date), [true; 6]);
        // The Monday of the same week, another month's day of the same quarter, last year.
        assert_eq!(
            columns_of(date, Date::constant(2026, 11, 30)),
            [false, true, false, true, true, true]
        );
        assert_eq!(
            columns_of(date, Date::constant(2026, 10, 1)),
            [false, false, false, true, true, true]
        );
        assert_eq!(
            columns_of(date, Date::constant(2025, 12, 5)),
            [false, false, false, false, false, true]
        );
    }
}
