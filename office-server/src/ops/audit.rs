//! The audit log of administrators' changes: who changed what, when. (Looks at personal data —
//! playbacks, downloads, exports — are logged where they happen, in `web`.)

use jiff::Timestamp;

use crate::storage::{AuditAction, AuditEvent, Storage, StorageResult};

/// Writes that `by` (`None`: the command line) did `action`, described by `detail`. Called once
/// the change has been made, so that the log never claims a change that failed.
pub fn changed(
    db: &dyn Storage,
    by: Option<i64>,
    action: AuditAction,
    detail: String,
) -> StorageResult<()> {
    db.log_audit(&AuditEvent {
        at: Timestamp::now(),
        account_id: by,
        action,
        visit_id: None,
        session_tag: String::new(),
        detail,
    })?;
    Ok(())
}
