//! «Посетитель»: the name of the person who attached a visit to their account, shown to heads
//! in scope only (`---` to everyone else). Each showing is audited before the page or the
//! report leaves, once per account, visit and session, like a playback.

use std::collections::HashMap;

use jiff::Timestamp;
use uuid::Uuid;

use super::error::PageResult;
use super::session::Viewer;
use crate::app::AppState;
use crate::domain::scope;
use crate::storage::{AuditAction, AuditEvent};

/// A visit about to be shown: its id and where it belongs.
pub struct ShownVisit {
    pub visit_id: Uuid,
    pub department_id: i64,
    pub section_id: i64,
}

/// The names this viewer may see for these visits, by visit; `place` says in the audit log
/// where they were shown.
pub async fn visitor_names(
    state: &AppState,
    viewer: &Viewer,
    visits: impl IntoIterator<Item = ShownVisit>,
    place: &'static str,
) -> PageResult<HashMap<Uuid, String>> {
    if !scope::may_see_visitor(&viewer.account.role) {
        return Ok(HashMap::new());
    }
    let visibility = viewer.visibility()?;
    let ids: Vec<Uuid> = visits
        .into_iter()
        .filter(|visit| visibility.sees(visit.department_id, visit.section_id))
        .map(|visit| visit.visit_id)
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let account_id = viewer.account.id;
    let session_tag = viewer.session_tag.clone();
    Ok(state
        .db(move |db| {
            let now = Timestamp::now();
            let names: HashMap<Uuid, String> = db
                .visitor_names(&ids)?
                .into_iter()
                .map(|(visit_id, name)| (visit_id, name.full()))
                .filter(|(_, full)| !full.is_empty())
                .collect();
            let events: Vec<AuditEvent> = names
                .keys()
                .map(|&visit_id| AuditEvent {
                    at: now,
                    account_id: Some(account_id),
                    action: AuditAction::VisitorShown,
                    visit_id: Some(visit_id),
                    session_tag: session_tag.clone(),
                    detail: place.to_string(),
                })
                .collect();
            db.log_audits(&events)?;
            Ok(names)
        })
        .await?)
}
