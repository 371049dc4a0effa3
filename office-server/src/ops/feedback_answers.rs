//! What the office does with a visitor's feedback: answer it (the answer appears on the
//! visitor's link) and hide an abusive comment, or show it again. Each acts on one submission
//! in the decider's scope (outside it is "not found") and is written to the audit log.

use jiff::Timestamp;
use uuid::Uuid;

use crate::domain::{Comment, Visibility};
use crate::live::{LiveEvent, LiveHub};
use crate::ops::verdicts::DecisionError;
use crate::storage::{AuditAction, AuditEvent, FeedbackEntry, Storage};

/// Who acts, as the audit log records them.
pub struct Actor<'a> {
    pub account_id: i64,
    pub session_tag: &'a str,
}

fn in_view(
    db: &dyn Storage,
    visibility: &Visibility,
    visit_id: Uuid,
) -> Result<FeedbackEntry, DecisionError> {
    db.feedback_entry(visit_id)?
        .filter(|entry| visibility.sees(entry.department_id, entry.section_id))
        .ok_or(DecisionError::NotFound("visitor feedback"))
}

fn audit(
    db: &dyn Storage,
    actor: &Actor<'_>,
    action: AuditAction,
    entry: &FeedbackEntry,
    now: Timestamp,
) -> Result<(), DecisionError> {
    db.log_audit(&AuditEvent {
        at: now,
        account_id: Some(actor.account_id),
        action,
        visit_id: Some(entry.visit_id),
        session_tag: actor.session_tag.to_string(),
        detail: format!("{} / {}", entry.employee_name, entry.service_name),
    })?;
    Ok(())
}

/// Writes (or replaces) the office's answer to a submission in view.
pub fn answer(
    db: &dyn Storage,
    live: &LiveHub,
    visibility: Visibility,
    visit_id: Uuid,
    answer: &Comment,
    actor: &Actor<'_>,
    now: Timestamp,
) -> Result<(), DecisionError> {
    let entry = in_view(db, &visibility, visit_id)?;
    if !db.answer_feedback(visit_id, answer.as_str(), actor.account_id, now)? {
        return Err(DecisionError::NotFound("visitor feedback"));
    }
    audit(db, actor, AuditAction::FeedbackAnswer, &entry, now)?;
    tracing::info!(visit = %visit_id, by = actor.account_id, "visitor feedback answered");
    live.publish(LiveEvent::Feedback {
        department_id: entry.department_id,
        section_id: entry.section_id,
    });
    Ok(())
}

/// Hides a submission's comment (`hidden`), or shows it again.
pub fn set_hidden(
    db: &dyn Storage,
    live: &LiveHub,
    visibility: Visibility,
    visit_id: Uuid,
    hidden: bool,
    actor: &Actor<'_>,
    now: Timestamp,
) -> Result<(), DecisionError> {
    let entry = in_view(db, &visibility, visit_id)?;
    if !db.set_feedback_hidden(visit_id, hidden, actor.account_id, now)? {
        return Err(DecisionError::NotFound("visitor feedback"));
    }
    let action = if hidden {
        AuditAction::FeedbackHide
    } else {
        AuditAction::FeedbackShow
    };
    audit(db, actor, action, &entry, now)?;
    tracing::info!(visit = %visit_id, by = actor.account_id, hidden, "visitor comment hidden or shown");
    live.publish(LiveEvent::Feedback {
        department_id: entry.department_id,
        section_id: entry.section_id,
    });
    Ok(())
}
