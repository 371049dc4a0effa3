//! «Сохранить отчет»: any dashboard table as an XLSX file, built from the same table the page
//! shows, with the period and scope in its header. Every export is written to the audit log.

use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::bad::{PAGE_SIZE, audio_note};
use super::dashboard::{Tab, load_tab, local_time, periods_note, select};
use super::error::{PageError, PageResult};
use super::selection::PageQuery;
use super::session::Viewer;
use super::strings::{RU, Strings, fill};
use super::tables::{Cell, PlainTable, ReportTable, Value};
use crate::app::AppState;
use crate::storage::{AuditAction, AuditEvent, BadVisitQuery};

/// The most Плохо visits one file lists.
const MAX_BAD_ROWS: u32 = 100 * PAGE_SIZE;

/// A table ready for a spreadsheet.
pub struct Sheet {
    pub title: String,
    pub headings: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl From<ReportTable> for Sheet {
    fn from(table: ReportTable) -> Self {
        let t = &RU;
        let mut headings = vec![table.first_column];
        headings.extend(t.periods.iter().map(|p| p.to_string()));
        let mut rows: Vec<Vec<Value>> = table
            .rows
            .into_iter()
            .map(|row| {
                let mut cells = vec![Value::Text(row.label)];
                cells.extend(row.cells.into_iter().map(Value::Cell));
                cells
            })
            .collect();
        if let Some(total) = table.total {
            let mut cells = vec![Value::Text(total.label)];
            cells.extend(total.cells.into_iter().map(Value::Cell));
            rows.push(cells);
        }
        Sheet {
            title: table.title,
            headings,
            rows,
        }
    }
}

impl From<PlainTable> for Sheet {
    fn from(table: PlainTable) -> Self {
        Sheet {
            title: table.title,
            headings: table.headings,
            rows: table.rows,
        }
    }
}

/// Writes the workbook: title, scope, date and periods, then the table.
pub fn workbook(t: &Strings, sheet: &Sheet, header_lines: &[String]) -> Result<Vec<u8>, XlsxError> {
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name(t.export_sheet)?;
    let bold = Format::new().set_bold();
    let heading = Format::new().set_bold().set_text_wrap();
    let average = Format::new().set_num_format("0.0000");
    let count = Format::new().set_num_format("0");
    let percent = Format::new().set_num_format("0.0%");
    ws.write_string_with_format(0, 0, &sheet.title, &bold)?;
    let mut row: u32 = 1;
    for line in header_lines {
        ws.write_string(row, 0, line)?;
        row += 1;
    }
    row += 1;
    for (col, text) in sheet.headings.iter().enumerate() {
        ws.write_string_with_format(row, col as u16, text, &heading)?;
    }
    for cells in &sheet.rows {
        row += 1;
        for (col, value) in cells.iter().enumerate() {
            let col = col as u16;
            match value {
                Value::Text(text) => {
                    ws.write_string(row, col, text)?;
                }
                Value::Cell(Cell::Empty) => {}
                Value::Cell(cell @ Cell::Average(_)) => {
                    if let Some(n) = cell.number() {
                        ws.write_number_with_format(row, col, n, &average)?;
                    }
                }
                Value::Cell(cell @ Cell::Count(_)) => {
                    if let Some(n) = cell.number() {
                        ws.write_number_with_format(row, col, n, &count)?;
                    }
                }
                Value::Cell(cell @ Cell::Percent(_)) => {
                    if let Some(n) = cell.number() {
                        ws.write_number_with_format(row, col, n, &percent)?;
                    }
                }
            }
        }
    }
    ws.set_column_width(0, 45)?;
    for col in 1..sheet.headings.len().max(1) as u16 {
        ws.set_column_width(col, 16)?;
    }
    book.save_to_buffer()
}

pub async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PageQuery>,
) -> PageResult<Response> {
    let t = &RU;
    viewer.visibility()?;
    let tab_slug = query.tab.clone().unwrap_or_default();
    let table_id = query.table.clone().unwrap_or_default();
    let is_bad = tab_slug == "bad";
    let is_feedback = tab_slug == "feedback";
    let is_review = tab_slug == "review";
    let tab = if is_bad || is_feedback || is_review {
        None
    } else {
        Some(Tab::parse(&tab_slug).ok_or_else(|| PageError::bad_request("unknown tab"))?)
    };
    let (selection, directory, names) = select(
        &state,
        &viewer,
        &query,
        is_bad || is_feedback || tab == Some(Tab::Employee),
    )
    .await?;
    let zone = state.zone.clone();
    let sheet: Sheet = match tab {
        None if is_review => {
            super::review::export_table(&state, &selection, &directory, &names, &query, &table_id)
                .await?
        }
        None if is_feedback => {
            super::feedback::export_table(&state, &viewer, &selection, &names, &query, &table_id)
                .await?
        }
        None => {
            let filters = super::bad::ArchiveFilters::parse(&query)?;
            let mut bad_query = BadVisitQuery {
                filter: selection.filter,
                limit: MAX_BAD_ROWS,
                ..BadVisitQuery::default()
            };
            filters.apply(&state, Timestamp::now(), &mut bad_query);
            let visits = state.db(move |db| db.bad_visits(&bad_query)).await?;
            let visitors = super::named::visitor_names(
                &state,
                &viewer,
                super::bad::shown(&visits),
                "XLSX «Анализ оценок «Плохо»»",
            )
            .await?;
            let retention = state.config.retention_days;
            let mut title = t.bad_title.to_string();
            for part in filters.describe() {
                title = format!("{title} — {part}");
            }
            Sheet {
                title,
                headings: vec![
                    t.col_employee.to_string(),
                    t.col_section.to_string(),
                    t.col_service.to_string(),
                    t.col_visitor.to_string(),
                    t.col_rated_at.to_string(),
                    t.col_audio.to_string(),
                    t.col_verdict.to_string(),
                    t.verdict_comment.to_string(),
                ],
                rows: visits
                    .iter()
                    .map(|v| {
                        let audio = match &v.recording {
                            crate::storage::RecordingState::Stored { duration_ms } => {
                                format!("{}.3gpp ({} с)", v.visit_id, duration_ms / 1000)
                            }
                            other => audio_note(other, &zone, retention),
                        };
                        vec![
                            Value::Text(v.employee_name.clone()),
                            Value::Text(v.section_name.clone()),
                            Value::Text(v.service_name.clone()),
                            Value::Text(
                                visitors
                                    .get(&v.visit_id)
                                    .cloned()
                                    .unwrap_or_else(|| t.visitor_unknown.to_string()),
                            ),
                            Value::Text(local_time(&zone, v.rated_at)),
                            Value::Text(audio),
                            Value::Text(match &v.verdict {
                                Some(verdict) if verdict.correct => t.verdict_correct.to_string(),
                                Some(_) => t.verdict_wrong.to_string(),
                                None => t.verdict_none.to_string(),
                            }),
                            Value::Text(
                                v.verdict
                                    .as_ref()
                                    .map(|x| x.comment.clone())
                                    .unwrap_or_default(),
                            ),
                        ]
                    })
                    .collect(),
            }
        }
        Some(tab) => {
            let built = load_tab(&state, tab, &selection, &directory).await?;
            if let Some(table) = built.tables.into_iter().find(|x| x.id == table_id) {
                table.into()
            } else if let Some(top) = built.top.filter(|x| x.id == table_id) {
                top.into()
            } else {
                return Err(PageError::not_found("table"));
            }
        }
    };
    let scope = selection.scope_label(t, &names);
    let now = Timestamp::now();
    let header_lines = vec![
        fill(t.export_scope, &[("scope", &scope)]),
        fill(
            t.export_made,
            &[
                ("date", &selection.date.strftime("%d.%m.%Y").to_string()),
                ("now", &local_time(&zone, now)),
                ("zone", &state.config.time_zone),
            ],
        ),
        periods_note(t, selection.date, &state.config.time_zone),
    ];
    let bytes = workbook(t, &sheet, &header_lines)
        .map_err(|e| PageError::internal(anyhow::anyhow!("cannot write the report: {e}")))?;
    let event = AuditEvent {
        at: now,
        account_id: Some(viewer.account.id),
        action: AuditAction::Export,
        visit_id: None,
        session_tag: viewer.session_tag.clone(),
        detail: format!("{} — {}", sheet.title, scope),
    };
    state.db(move |db| db.log_audit(&event)).await?;
    tracing::info!(table = ?table_id, by = viewer.account.id, "report exported");
    // A table id is one of the server's own (the export failed otherwise): safe in the header.
    let file = format!(
        "report-{}-{}.xlsx",
        if is_bad { "bad" } else { table_id.as_str() },
        selection.date.strftime("%Y-%m-%d")
    );
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
