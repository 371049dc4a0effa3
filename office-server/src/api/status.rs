//! `/healthz` for probes, and `/`: a plain page saying what this server holds.

use axum::extract::State;
use axum::response::Html;

use super::error::ApiResult;
use crate::app::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn index(State(state): State<AppState>) -> ApiResult<Html<String>> {
    let counts = state.db(|db| db.counts()).await?;
    let directory = state.db(|db| db.directory()).await?;
    let mut sections = String::new();
    for department in &directory.departments {
        sections.push_str(&format!("<li>{}<ul>", escape(&department.name)));
        for section in &department.sections {
            sections.push_str(&format!(
                "<li>{} — сотрудников: {}, услуг: {}</li>",
                escape(&section.name),
                section.employees.len(),
                section.service_ids.len()
            ));
        }
        sections.push_str("</ul></li>");
    }
    Ok(Html(format!(
        include_str!("status.html"),
        departments = counts.departments,
        sections_count = counts.sections,
        employees = counts.employees,
        services = counts.services,
        tablets = counts.tablets,
        visits = counts.visits,
        recordings = counts.recordings,
        sections = sections,
        zone = escape(&state.config.time_zone),
    )))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
