//! The tabs ДЕПАРТАМЕНТ | ОТДЕЛ | СОТРУДНИК | УСЛУГИ, and the alerts page.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use serde::Deserialize;

use super::bad::{BadRow, bad_rows, shown};
use super::charts::{PieChart, pie, trend};
use super::error::{PageError, PagePath, PageResult};
use super::forms::{Decider, StaffForm};
use super::named::visitor_names;
use super::selection::{Names, PageQuery, Selection};
use super::session::Viewer;
use super::strings::{RU, Strings, fill};
use super::tables::{
    Cell, Measure, PeriodTallies, PlainTable, ReportTable, Value, measure_row, measure_rows,
    overall, period_tallies, row_keys,
};
use super::{Area, Layout, html, see_other};
use crate::app::AppState;
use crate::domain::Visibility;
use crate::ops;
use crate::ops::verdicts::DecisionError;
use crate::reports::{Level, Period, PeriodSpan, Tally, date_of_key, day_key, format_percent};
use crate::storage::{
    Alert, BadVisitQuery, Directory, GroupBy, ReportFilter, Role, Scope, Storage, StorageResult,
};

/// How many Плохо visits a tab lists before linking to the analysis page.
const RECENT_BAD: u32 = 10;
/// Days in the trend chart.
const TREND_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Department,
    Section,
    Employee,
    Services,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Department, Tab::Section, Tab::Employee, Tab::Services];

    pub fn slug(self) -> &'static str {
        match self {
            Tab::Department => "department",
            Tab::Section => "section",
            Tab::Employee => "employee",
            Tab::Services => "services",
        }
    }

    pub fn parse(slug: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|tab| tab.slug() == slug)
    }

    pub fn path(self) -> &'static str {
        match self {
            Tab::Department => "/dashboard/department",
            Tab::Section => "/dashboard/section",
            Tab::Employee => "/dashboard/employee",
            Tab::Services => "/dashboard/services",
        }
    }

    fn label(self, t: &Strings) -> &'static str {
        match self {
            Tab::Department => t.tab_department,
            Tab::Section => t.tab_section,
            Tab::Employee => t.tab_employee,
            Tab::Services => t.tab_services,
        }
    }
}

pub struct TabLink {
    pub id: &'static str,
    pub href: String,
    pub label: &'static str,
    pub active: bool,
}

pub struct Choice {
    pub id: i64,
    pub name: String,
    pub selected: bool,
}

/// The selection bar above the tables.
pub struct Picker {
    pub show_department: bool,
    pub show_section: bool,
    pub show_employee: bool,
    pub department_locked: bool,
    pub section_locked: bool,
    pub departments: Vec<Choice>,
    pub sections: Vec<Choice>,
    pub employees: Vec<Choice>,
    /// Whether the page is about a date (the inbox is not).
    pub show_date: bool,
    pub date: String,
    /// A page's own filters, after the selection's choices.
    pub selects: Vec<FilterSelect>,
    pub dates: Vec<FilterDate>,
    pub hidden: Vec<(String, String)>,
}

/// A page's own choice in the selection bar (submitted as it changes).
pub struct FilterSelect {
    pub name: &'static str,
    pub label: &'static str,
    pub options: Vec<FilterOption>,
}

pub struct FilterOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// A day a page filters by.
pub struct FilterDate {
    pub name: &'static str,
    pub label: &'static str,
    /// `YYYY-MM-DD`, or empty.
    pub value: String,
}

impl Picker {
    pub fn new(
        selection: &Selection,
        directory: &Directory,
        show_section: bool,
        show_employee: bool,
    ) -> Self {
        let departments = selection
            .departments_in_view(directory)
            .into_iter()
            .map(|d| Choice {
                id: d.id,
                name: d.name.clone(),
                selected: selection.department == Some(d.id),
            })
            .collect();
        let sections = selection
            .sections_in_view(directory)
            .into_iter()
            .map(|s| Choice {
                id: s.id,
                name: s.name.clone(),
                selected: selection.section == Some(s.id),
            })
            .collect();
        let employees = selection
            .employees_in_view(directory)
            .into_iter()
            .map(|e| Choice {
                id: e.id,
                name: e.full_name.clone(),
                selected: selection.employee == Some(e.id),
            })
            .collect();
        let mut hidden = Vec::new();
        // A locked choice is not submitted by a disabled <select>: send it along.
        let department_locked = selection.visibility != Visibility::All;
        let section_locked = matches!(selection.visibility, Visibility::Section(_));
        if department_locked && let Some(d) = selection.department {
            hidden.push(("department".to_string(), d.to_string()));
        }
        if section_locked && let Some(s) = selection.section {
            hidden.push(("section".to_string(), s.to_string()));
        }
        Self {
            show_department: true,
            show_section,
            show_employee,
            department_locked,
            section_locked,
            departments,
            sections,
            employees,
            show_date: true,
            date: selection.date.strftime("%Y-%m-%d").to_string(),
            selects: Vec::new(),
            dates: Vec::new(),
            hidden,
        }
    }
}

/// An alert as the pages show it.
pub struct AlertView {
    pub id: i64,
    pub text: String,
    pub acknowledged: Option<String>,
    pub can_acknowledge: bool,
}

pub fn local_time(zone: &TimeZone, at: Timestamp) -> String {
    zone.to_datetime(at).strftime("%d.%m.%Y %H:%M").to_string()
}

/// The alert about the Плохо in a scope still without a verdict past their deadline.
pub struct OverdueAlert {
    pub text: String,
    pub link: &'static str,
}

/// The overdue alert for everything `visible` covers, when something is overdue.
pub async fn overdue_alert(
    state: &AppState,
    visible: ReportFilter,
) -> PageResult<Option<OverdueAlert>> {
    let query = BadVisitQuery {
        filter: visible,
        verdict: crate::storage::VerdictFilter::Undecided,
        received_before: Some(state.verdicts_overdue_before(Timestamp::now())),
        ..BadVisitQuery::default()
    };
    let count = state.db(move |db| db.bad_visit_count(&query)).await?;
    Ok((count > 0).then(|| OverdueAlert {
        text: fill(
            RU.alert_overdue,
            &[
                ("count", &count.to_string()),
                (
                    "days",
                    &state.config.review.verdict_working_days.to_string(),
                ),
            ],
        ),
        link: "/dashboard/bad?verdict=overdue",
    }))
}

pub fn alert_views(
    alerts: &[Alert],
    viewer: &Viewer,
    zone: &TimeZone,
    window_minutes: u32,
) -> Vec<AlertView> {
    let t = &RU;
    alerts
        .iter()
        .map(|alert| {
            let share = if alert.rated > 0 {
                format_percent(100.0 * alert.bad as f64 / alert.rated as f64)
            } else {
                String::new()
            };
            let text = fill(
                t.alert_text,
                &[
                    ("employee", &alert.employee_name),
                    ("section", &alert.section_name),
                    ("bad", &alert.bad.to_string()),
                    ("rated", &alert.rated.to_string()),
                    ("share", &share),
                    ("minutes", &window_minutes.to_string()),
                    ("start", &local_time(zone, alert.window_start)),
                    ("end", &local_time(zone, alert.window_end)),
                ],
            );
            AlertView {
                id: alert.id,
                text,
                acknowledged: alert.acknowledged_at.map(|at| {
                    fill(
                        t.alert_acknowledged,
                        &[
                            ("who", alert.acknowledged_by.as_deref().unwrap_or("")),
                            ("when", &local_time(zone, at)),
                        ],
                    )
                }),
                can_acknowledge: viewer.may_decide(),
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    tabs: Vec<TabLink>,
    path: &'static str,
    picker: Picker,
    scope_label: String,
    date_label: String,
    periods_note: String,
    alerts: Vec<AlertView>,
    overdue_alert: Option<OverdueAlert>,
    back: String,
    message: Option<String>,
    links: Vec<(String, String)>,
    tables: Vec<ReportTable>,
    pie: Option<PieChart>,
    trend: Option<String>,
    top: Option<PlainTable>,
    show_bad: bool,
    bad_rows: Vec<BadRow>,
    bad_link: String,
}

/// Everything a tab shows below the selection bar.
pub struct TabContent {
    pub tables: Vec<ReportTable>,
    pub top: Option<PlainTable>,
    pub pie: Option<PieChart>,
    pub trend: Option<String>,
    pub message: Option<String>,
    pub links: Vec<(String, String)>,
    pub bad: Option<Vec<crate::storage::BadVisit>>,
}

/// `/dashboard`: the viewer's first tab.
pub async fn home(viewer: Viewer) -> PageResult<Response> {
    Ok(see_other(match viewer.account.role {
        Role::Specialist { .. } => "/pairing",
        Role::Head {
            scope: Scope::Section(_),
        } => Tab::Section.path(),
        _ => Tab::Department.path(),
    }))
}

/// `/dashboard/{tab}`: one of the four tabs.
pub async fn tab_page(
    state: State<AppState>,
    viewer: Viewer,
    PagePath(slug): PagePath<String>,
    Query(query): Query<PageQuery>,
) -> PageResult<Response> {
    let tab = Tab::parse(&slug).ok_or(PageError::not_found("tab"))?;
    render_tab(state, viewer, query, tab).await
}

/// Resolves the page's selection; the directory comes along for names and pickers.
pub async fn select(
    state: &AppState,
    viewer: &Viewer,
    query: &PageQuery,
    keep_employee: bool,
) -> PageResult<(Selection, Directory, Names)> {
    select_within(state, viewer.visibility()?, query, keep_employee).await
}

/// [`select`] within `visibility` (a deputy's inbox: the covered head's).
pub async fn select_within(
    state: &AppState,
    visibility: Visibility,
    query: &PageQuery,
    keep_employee: bool,
) -> PageResult<(Selection, Directory, Names)> {
    let directory = state.db(|db| db.directory()).await?;
    let names = Names::of(&directory);
    let mut query = query.clone();
    if !keep_employee {
        query.employee = None;
    }
    let selection = Selection::resolve(&query, visibility, &names, &state.zone, Timestamp::now())?;
    Ok((selection, directory, names))
}

/// [`build_tab`] for the page's selection, on the blocking pool.
pub async fn load_tab(
    state: &AppState,
    tab: Tab,
    selection: &Selection,
    directory: &Directory,
) -> PageResult<TabContent> {
    let selection = selection.clone();
    let directory = directory.clone();
    let content = state
        .db(move |db| {
            let names = Names::of(&directory);
            build_tab(db, tab, &selection, &directory, &names)
        })
        .await?;
    Ok(content)
}

async fn render_tab(
    State(state): State<AppState>,
    viewer: Viewer,
    query: PageQuery,
    tab: Tab,
) -> PageResult<Response> {
    let t = &RU;
    let (selection, directory, names) =
        select(&state, &viewer, &query, tab == Tab::Employee).await?;
    let content = load_tab(&state, tab, &selection, &directory).await?;
    let visible = selection.visibility.filter();
    let alerts = state.db(move |db| db.alerts(&visible, true, 20)).await?;
    let overdue_alert = overdue_alert(&state, visible).await?;
    let bad_visits = content.bad.as_deref().unwrap_or(&[]);
    let visitors = visitor_names(&state, &viewer, shown(bad_visits), "Статистика").await?;
    let back = format!("{}?{}", tab.path(), selection.query());
    let page = DashboardPage {
        layout: Layout::for_viewer(&viewer, tab.label(t), Area::Dashboard),
        tabs: Tab::ALL
            .into_iter()
            .map(|other| TabLink {
                id: other.slug(),
                href: format!(
                    "{}?{}",
                    other.path(),
                    if other == Tab::Employee {
                        selection.query()
                    } else {
                        selection.query_with(selection.department, selection.section, None)
                    }
                ),
                label: other.label(t),
                active: other == tab,
            })
            .collect(),
        path: tab.path(),
        picker: Picker::new(&selection, &directory, true, tab == Tab::Employee),
        scope_label: selection.scope_label(t, &names),
        date_label: selection.date.strftime("%d.%m.%Y").to_string(),
        periods_note: periods_note(t, selection.date, &state.config.time_zone),
        alerts: alert_views(
            &alerts,
            &viewer,
            &state.zone,
            state.config.alerts.window_minutes,
        ),
        overdue_alert,
        back: back.clone(),
        message: content.message,
        links: content.links,
        tables: content.tables,
        pie: content.pie,
        trend: content.trend,
        top: content.top,
        show_bad: content.bad.is_some(),
        // The tabs list the latest Плохо visits to listen to; verdicts are given on the
        // analysis page.
        bad_rows: bad_rows(bad_visits, &visitors, &viewer, &state, Timestamp::now())
            .into_iter()
            .map(|row| BadRow {
                can_decide: false,
                ..row
            })
            .collect(),
        bad_link: format!("/dashboard/bad?{}", selection.query()),
    };
    Ok(html(&page))
}

/// "За день: 24.11.2026 · За неделю: 23.11.2026–29.11.2026 · …".
pub fn periods_note(t: &Strings, date: Date, zone: &str) -> String {
    let mut parts = Vec::new();
    for (index, period) in Period::ALL.iter().enumerate() {
        let label = t.periods[index];
        match period.dates(date) {
            Some((first, last)) if first == last => {
                parts.push(format!("{label}: {}", first.strftime("%d.%m.%Y")));
            }
            Some((first, last)) => parts.push(format!(
                "{label}: {}–{}",
                first.strftime("%d.%m.%Y"),
                last.strftime("%d.%m.%Y")
            )),
            None => parts.push(format!("{label}: {}", t.all_time_label)),
        }
    }
    format!(
        "{}. {}",
        parts.join(" · "),
        fill(t.periods_in_zone, &[("zone", zone)])
    )
}

fn export_url(tab: Tab, table: &str, selection: &Selection) -> String {
    format!(
        "/dashboard/export?tab={}&table={table}&{}",
        tab.slug(),
        selection.query()
    )
}

/// The rows of one grouping — departments, sections, employees or services — over the period
/// columns, from which a tab draws one table per measure.
struct Grouping<'a> {
    tab: Tab,
    selection: &'a Selection,
    tallies: &'a PeriodTallies,
    /// The rows, in order.
    keys: &'a [i64],
    first_column: &'a str,
    label: &'a dyn Fn(i64) -> String,
    link: &'a dyn Fn(i64) -> Option<String>,
}

/// One table of a grouping: its id (for the page and the export), its title, its measure.
struct TableSpec<'a> {
    id: &'static str,
    title: &'a str,
    measure: Measure,
}

impl Grouping<'_> {
    /// The tables asked for, each with a total row.
    fn tables(&self, specs: &[TableSpec<'_>]) -> Vec<ReportTable> {
        let t = &RU;
        let sum = overall(self.tallies);
        specs
            .iter()
            .map(|spec| ReportTable {
                id: spec.id.to_string(),
                title: spec.title.to_string(),
                first_column: self.first_column.to_string(),
                rows: measure_rows(self.keys, self.tallies, spec.measure, self.label, self.link),
                total: Some(measure_row(t.total_row, &sum, spec.measure)),
                export_url: export_url(self.tab, spec.id, self.selection),
            })
            .collect()
    }
}

fn spec<'a>(id: &'static str, title: &'a str, measure: Measure) -> TableSpec<'a> {
    TableSpec { id, title, measure }
}

/// The tables by service, a row for each of `listed` even when unrated. A service has no tab
/// of its own, so its rows link nowhere.
fn service_tables(
    tab: Tab,
    selection: &Selection,
    services: &PeriodTallies,
    listed: &[i64],
    names: &Names,
    specs: &[TableSpec<'_>],
) -> Vec<ReportTable> {
    let keys = row_keys(listed, services);
    Grouping {
        tab,
        selection,
        tallies: services,
        keys: &keys,
        first_column: RU.col_service,
        label: &|id| names.service(id),
        link: &|_| None,
    }
    .tables(specs)
}

/// The average and count tables by employee, a row for each of `listed` even when unrated, each
/// row linking to the employee's tab.
fn employee_tables(
    tab: Tab,
    selection: &Selection,
    employees: &PeriodTallies,
    listed: &[i64],
    names: &Names,
) -> Vec<ReportTable> {
    let t = &RU;
    let keys = row_keys(listed, employees);
    Grouping {
        tab,
        selection,
        tallies: employees,
        keys: &keys,
        first_column: t.col_employee,
        label: &|id| names.employee(id),
        link: &|id| {
            Some(format!(
                "{}?{}",
                Tab::Employee.path(),
                selection.query_with(selection.department, selection.section, Some(id))
            ))
        },
    }
    .tables(&[
        spec("employees_avg", t.employees_avg, Measure::Average),
        spec("employees_count", t.employees_count, Measure::Visits),
    ])
}

/// The selection's totals over the period columns, as one row.
fn total_tallies(db: &dyn Storage, filter: &ReportFilter, date: Date) -> StorageResult<[Tally; 6]> {
    Ok(period_tallies(db, filter, GroupBy::Total, date)?
        .remove(&0)
        .unwrap_or([Tally::default(); 6]))
}

/// One row per measure, for a single section or employee.
fn summary_table(
    tab: Tab,
    selection: &Selection,
    id: &'static str,
    title: &str,
    tallies: &[Tally; 6],
) -> ReportTable {
    let t = &RU;
    ReportTable {
        id: id.to_string(),
        title: title.to_string(),
        first_column: t.col_measure.to_string(),
        rows: vec![
            measure_row(t.measure_average, tallies, Measure::Average),
            measure_row(t.measure_visits, tallies, Measure::Visits),
            measure_row(t.measure_satisfaction, tallies, Measure::Satisfaction),
            measure_row(t.measure_unrated, tallies, Measure::Unrated),
        ],
        total: None,
        export_url: export_url(tab, id, selection),
    }
}

/// The month's visits by service: the pie and the top 10.
fn month_by_service(
    db: &dyn Storage,
    tab: Tab,
    selection: &Selection,
    filter: &ReportFilter,
    names: &Names,
) -> StorageResult<(PieChart, PlainTable)> {
    let t = &RU;
    let month = db.totals(filter, GroupBy::Service, Period::Month.span(selection.date))?;
    let chart = pie(
        month
            .iter()
            .map(|(id, tally)| (names.service(*id), tally.visits))
            .collect(),
        t.other_services,
    );
    let mut ranked: Vec<&(i64, Tally)> = month.iter().filter(|(_, t)| t.rated() > 0).collect();
    ranked.sort_by(|a, b| {
        b.1.rated()
            .cmp(&a.1.rated())
            .then_with(|| {
                b.1.average()
                    .partial_cmp(&a.1.average())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .then_with(|| a.0.cmp(&b.0))
    });
    let rows = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(index, (id, tally))| {
            vec![
                Value::Cell(Cell::Count(index as i64 + 1)),
                Value::Text(names.service(*id)),
                Value::Cell(Cell::Count(tally.rated())),
                Value::Cell(Measure::Average.cell(tally)),
                Value::Cell(Measure::Satisfaction.cell(tally)),
            ]
        })
        .collect();
    let top = PlainTable {
        id: "top_services",
        title: t.top_title.to_string(),
        headings: vec![
            t.col_number.to_string(),
            t.col_service.to_string(),
            t.top_ratings.to_string(),
            t.top_average.to_string(),
            t.measure_satisfaction.to_string(),
        ],
        rows,
        export_url: export_url(tab, "top_services", selection),
    };
    Ok((chart, top))
}

/// The last 30 days up to the selected date.
fn daily_trend(
    db: &dyn Storage,
    selection: &Selection,
    filter: &ReportFilter,
) -> StorageResult<String> {
    let t = &RU;
    let last = selection.date;
    let first = last
        .checked_sub(Span::new().days(TREND_DAYS - 1))
        .unwrap_or(last);
    let span = PeriodSpan {
        level: Level::Day,
        from: day_key(first),
        to: day_key(last),
    };
    let rows = db.totals(filter, GroupBy::Period, span)?;
    let mut days: Vec<(Date, Tally)> = Vec::with_capacity(TREND_DAYS as usize);
    let mut day = first;
    while day <= last {
        days.push((day, Tally::default()));
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    for (key, tally) in rows {
        if let Some(date) = date_of_key(key)
            && let Some(slot) = days.iter_mut().find(|(d, _)| *d == date)
        {
            slot.1 = tally;
        }
    }
    Ok(trend(&days, t.trend_visits, t.trend_average))
}

/// Builds the content of a tab; also used by the export, so files and pages agree.
pub fn build_tab(
    db: &dyn Storage,
    tab: Tab,
    selection: &Selection,
    directory: &Directory,
    names: &Names,
) -> StorageResult<TabContent> {
    let t = &RU;
    let filter = selection.filter;
    let mut content = TabContent {
        tables: Vec::new(),
        top: None,
        pie: None,
        trend: None,
        message: None,
        links: Vec::new(),
        bad: None,
    };
    let date = selection.date;
    let q = |department: Option<i64>, section: Option<i64>, employee: Option<i64>| {
        selection.query_with(department, section, employee)
    };
    match tab {
        Tab::Department => {
            if selection.department.is_none() {
                let tallies = period_tallies(db, &filter, GroupBy::Department, date)?;
                let listed: Vec<i64> = directory.departments.iter().map(|d| d.id).collect();
                let keys = row_keys(&listed, &tallies);
                content.tables = Grouping {
                    tab,
                    selection,
                    tallies: &tallies,
                    keys: &keys,
                    first_column: t.col_department,
                    label: &|id| names.department(id),
                    link: &|id| {
                        Some(format!(
                            "{}?{}",
                            Tab::Department.path(),
                            q(Some(id), None, None)
                        ))
                    },
                }
                .tables(&[
                    spec("departments_avg", t.summary_all_avg, Measure::Average),
                    spec("departments_count", t.summary_all_count, Measure::Visits),
                    spec(
                        "departments_satisfaction",
                        t.summary_all_satisfaction,
                        Measure::Satisfaction,
                    ),
                    spec(
                        "departments_unrated",
                        t.summary_all_unrated,
                        Measure::Unrated,
                    ),
                ]);
            } else {
                let tallies = period_tallies(db, &filter, GroupBy::Section, date)?;
                let listed: Vec<i64> = selection
                    .sections_in_view(directory)
                    .iter()
                    .filter(|s| selection.section.is_none_or(|x| x == s.id))
                    .map(|s| s.id)
                    .collect();
                let keys = row_keys(&listed, &tallies);
                content.tables = Grouping {
                    tab,
                    selection,
                    tallies: &tallies,
                    keys: &keys,
                    first_column: t.col_section,
                    label: &|id| names.section(id),
                    link: &|id| {
                        Some(format!(
                            "{}?{}",
                            Tab::Section.path(),
                            q(selection.department, Some(id), None)
                        ))
                    },
                }
                .tables(&[
                    spec("sections_avg", t.sections_avg, Measure::Average),
                    spec("sections_count", t.sections_count, Measure::Visits),
                    spec(
                        "sections_satisfaction",
                        t.sections_satisfaction,
                        Measure::Satisfaction,
                    ),
                    spec("sections_unrated", t.sections_unrated, Measure::Unrated),
                ]);
            }
            let (chart, top) = month_by_service(db, tab, selection, &filter, names)?;
            content.pie = Some(chart);
            content.top = Some(top);
            content.trend = Some(daily_trend(db, selection, &filter)?);
        }
        Tab::Section => {
            let Some(section) = selection.section else {
                content.message = Some(t.pick_section_first.to_string());
                content.links = selection
                    .sections_in_view(directory)
                    .iter()
                    .map(|s| {
                        (
                            format!(
                                "{}?{}",
                                Tab::Section.path(),
                                q(selection.department, Some(s.id), None)
                            ),
                            s.name.clone(),
                        )
                    })
                    .collect();
                return Ok(content);
            };
            let total = total_tallies(db, &filter, date)?;
            content.tables.push(summary_table(
                tab,
                selection,
                "section_summary",
                t.section_summary,
                &total,
            ));
            let section_entry = directory
                .departments
                .iter()
                .flat_map(|d| &d.sections)
                .find(|s| s.id == section);
            let employees = period_tallies(db, &filter, GroupBy::Employee, date)?;
            let listed: Vec<i64> = section_entry
                .map(|s| s.employees.iter().map(|e| e.id).collect())
                .unwrap_or_default();
            content
                .tables
                .extend(employee_tables(tab, selection, &employees, &listed, names));
            let services = period_tallies(db, &filter, GroupBy::Service, date)?;
            let listed: Vec<i64> = section_entry
                .map(|s| s.service_ids.clone())
                .unwrap_or_default();
            content.tables.extend(service_tables(
                tab,
                selection,
                &services,
                &listed,
                names,
                &[
                    spec("services_avg", t.services_avg, Measure::Average),
                    spec("services_count", t.services_count, Measure::Visits),
                ],
            ));
            content.bad = Some(recent_bad(db, &filter)?);
        }
        Tab::Employee => {
            if let Some(employee) = selection.employee {
                let total = total_tallies(db, &filter, date)?;
                content.tables.push(summary_table(
                    tab,
                    selection,
                    "employee_summary",
                    &format!("{}: {}", t.employee_summary, names.employee(employee)),
                    &total,
                ));
                let services = period_tallies(db, &filter, GroupBy::Service, date)?;
                content.tables.extend(service_tables(
                    tab,
                    selection,
                    &services,
                    &[],
                    names,
                    &[
                        spec("services_avg", t.services_avg, Measure::Average),
                        spec("services_count", t.services_count, Measure::Visits),
                    ],
                ));
                content.bad = Some(recent_bad(db, &filter)?);
            } else {
                content.message = Some(t.pick_employee_first.to_string());
                let employees = period_tallies(db, &filter, GroupBy::Employee, date)?;
                let listed: Vec<i64> = selection
                    .employees_in_view(directory)
                    .iter()
                    .map(|e| e.id)
                    .collect();
                content.tables = employee_tables(tab, selection, &employees, &listed, names);
            }
        }
        Tab::Services => {
            let services = period_tallies(db, &filter, GroupBy::Service, date)?;
            let mut listed: Vec<i64> = Vec::new();
            if selection.department.is_none() && selection.section.is_none() {
                listed.extend(directory.services.iter().map(|s| s.id));
            } else {
                for section in selection.sections_in_view(directory) {
                    if selection.section.is_none_or(|x| x == section.id) {
                        listed.extend(section.service_ids.iter().copied());
                    }
                }
            }
            content.tables = service_tables(
                tab,
                selection,
                &services,
                &listed,
                names,
                &[
                    spec("services_avg", t.services_avg, Measure::Average),
                    spec("services_count", t.services_count, Measure::Visits),
                    spec(
                        "services_satisfaction",
                        t.services_satisfaction,
                        Measure::Satisfaction,
                    ),
                    spec("services_unrated", t.services_unrated, Measure::Unrated),
                ],
            );
            let (chart, top) = month_by_service(db, tab, selection, &filter, names)?;
            content.pie = Some(chart);
            content.top = Some(top);
        }
    }
    Ok(content)
}

fn recent_bad(
    db: &dyn Storage,
    filter: &ReportFilter,
) -> StorageResult<Vec<crate::storage::BadVisit>> {
    db.bad_visits(&BadVisitQuery {
        filter: *filter,
        limit: RECENT_BAD,
        ..BadVisitQuery::default()
    })
}

// --- alerts ------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    layout: Layout,
    rule: String,
    all_alerts: Vec<AlertView>,
    overdue_alert: Option<OverdueAlert>,
}

pub async fn alerts_page(State(state): State<AppState>, viewer: Viewer) -> PageResult<Response> {
    let t = &RU;
    let visible = viewer.visibility()?.filter();
    let alerts = state.db(move |db| db.alerts(&visible, false, 200)).await?;
    let overdue_alert = overdue_alert(&state, visible).await?;
    let settings = &state.config.alerts;
    let page = AlertsPage {
        layout: Layout::for_viewer(&viewer, t.alerts_title, Area::Alerts),
        rule: fill(
            t.alert_rule,
            &[
                ("minutes", &settings.window_minutes.to_string()),
                ("share", &format_percent(settings.bad_share_percent)),
                ("min", &settings.min_ratings.to_string()),
            ],
        ),
        all_alerts: alert_views(&alerts, &viewer, &state.zone, settings.window_minutes),
        overdue_alert,
    };
    Ok(html(&page))
}

#[derive(Debug, Deserialize)]
pub struct BackForm {
    #[serde(default)]
    back: String,
}

/// Only a dashboard page of this site.
pub fn safe_back(back: &str, fallback: &str) -> String {
    super::site_path(back)
        .filter(|path| path.starts_with("/dashboard"))
        .unwrap_or(fallback)
        .to_string()
}

/// Decisions that answer "not found" outside the decider's scope.
pub fn decided(result: Result<(), DecisionError>) -> PageResult<()> {
    match result {
        Ok(()) => Ok(()),
        Err(DecisionError::NotFound(what)) => Err(PageError::not_found(what)),
        Err(DecisionError::Storage(error)) => Err(error.into()),
    }
}

pub async fn acknowledge_alert(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    form: StaffForm<Decider, BackForm>,
) -> PageResult<Response> {
    let visibility = form.viewer.visibility()?;
    let by = form.viewer.account.id;
    decided(
        state
            .blocking(move |s| {
                ops::verdicts::acknowledge_alert(
                    s.storage.as_ref(),
                    &s.live,
                    visibility,
                    id,
                    by,
                    Timestamp::now(),
                )
            })
            .await?,
    )?;
    Ok(see_other(&safe_back(
        &form.fields.back,
        "/dashboard/alerts",
    )))
}
