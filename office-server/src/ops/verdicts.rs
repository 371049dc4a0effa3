//! What heads decide: a verdict on a Плохо visit, the acknowledgement of an alert. Both act on
//! one visit or alert, which must be in the decider's scope (outside it is "not found").

use jiff::Timestamp;
use uuid::Uuid;

use crate::domain::{Comment, ReviewScope, Visibility};
use crate::live::{LiveEvent, LiveHub};
use crate::storage::{Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A head's decision on a Плохо visit.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Whether the specialist acted correctly.
    pub correct: bool,
    pub comment: Comment,
}

/// Records the verdict on a Плохо visit in view (replacing an earlier one).
pub fn record_verdict(
    db: &dyn Storage,
    live: &LiveHub,
    scope: ReviewScope,
    visit_id: Uuid,
    decision: &Decision,
    by: i64,
    now: Timestamp,
) -> Result<(), DecisionError> {
    let visit = db
        .bad_visit(visit_id)?
        .filter(|visit| scope.sees(visit.department_id, visit.section_id, visit.employee_id))
        .ok_or(DecisionError::NotFound("visit rated Плохо"))?;
    db.record_verdict(
        visit_id,
        by,
        decision.correct,
        decision.comment.as_str(),
        now,
    )?;
    tracing::info!(visit = %visit_id, by, correct = decision.correct, "verdict recorded");
    live.publish(LiveEvent::Decision {
        department_id: visit.department_id,
        section_id: visit.section_id,
    });
    Ok(())
}

/// Acknowledges an alert in view; acknowledging it again changes nothing.
pub fn acknowledge_alert(
    db: &dyn Storage,
    live: &LiveHub,
    visibility: Visibility,
    alert_id: i64,
    by: i64,
    now: Timestamp,
) -> Result<(), DecisionError> {
    let alert = db
        .alert(alert_id)?
        .filter(|a| visibility.sees(a.department_id, a.section_id))
        .ok_or(DecisionError::NotFound("alert"))?;
    db.acknowledge_alert(alert_id, by, now)?;
    tracing::info!(alert = alert_id, by, "alert acknowledged");
    live.publish(LiveEvent::Decision {
        department_id: alert.department_id,
        section_id: alert.section_id,
    });
    Ok(())
}
