//! The audit log.

use rusqlite::params;
use uuid::Uuid;

use super::{SqliteStorage, instant, ms};
use crate::storage::*;

/// Inserts one event; `false` when it is a delivery already logged (see below).
pub(super) fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    event: &AuditEvent,
) -> StorageResult<bool> {
    // A playback or a download is one row per account, recording and session, however many
    // Range requests it takes, and a visitor's name shown is one per account, visit and
    // session however often the page is reloaded; an export is a row each time.
    let changed = tx.execute(
        "INSERT OR IGNORE INTO audit_log (at, account_id, action, visit_id, session_tag, detail)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6
         WHERE ?3 NOT IN ('play', 'download', 'visitor_shown') OR NOT EXISTS (
             SELECT 1 FROM audit_log
             WHERE visit_id = ?4 AND account_id = ?2 AND session_tag = ?5 AND action = ?3)",
        params![
            ms(event.at),
            event.account_id,
            event.action.as_str(),
            event.visit_id,
            event.session_tag,
            event.detail
        ],
    )?;
    Ok(changed > 0)
}

impl AuditStore for SqliteStorage {
    fn log_audit(&self, event: &AuditEvent) -> StorageResult<bool> {
        self.write(|tx| insert_event(tx, event))
    }

    fn log_audits(&self, events: &[AuditEvent]) -> StorageResult<()> {
        self.write(|tx| {
            for event in events {
                insert_event(tx, event)?;
            }
            Ok(())
        })
    }

    fn audit_log(&self, limit: u32, before: Option<i64>) -> StorageResult<Vec<AuditEntry>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT l.id, l.at, a.login, a.display_name, l.action, l.visit_id, l.detail
             FROM audit_log l LEFT JOIN accounts a ON a.id = l.account_id
             WHERE (?1 IS NULL OR l.id < ?1)
             ORDER BY l.id DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![before, limit], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    row.get::<_, String>(4)?,
                    row.get::<_, Option<Uuid>>(5)?,
                    row.get::<_, String>(6)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(id, at, login, name, action, visit_id, detail)| {
                Ok(AuditEntry {
                    id,
                    at: instant(at)?,
                    account_login: login,
                    account_name: name,
                    action: AuditAction::parse(&action)
                        .ok_or_else(|| StorageError::Corrupt(format!("audit action {action}")))?,
                    visit_id,
                    detail,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use jiff::tz::TimeZone;

    use super::*;

    /// The table's CHECK lists the actions: one missing there would be dropped silently by the
    /// INSERT OR IGNORE above.
    #[test]
    fn every_action_can_be_logged() {
        let dir = tempfile::tempdir().unwrap();
        let storage =
            SqliteStorage::open(&dir.path().join("office.sqlite3"), TimeZone::UTC).unwrap();
        for action in AuditAction::ALL {
            let logged = storage
                .log_audit(&AuditEvent {
                    at: Timestamp::now(),
                    account_id: None,
                    action,
                    visit_id: None,
                    session_tag: "test".into(),
                    detail: String::new(),
                })
                .unwrap();
            assert!(logged, "{action:?} was not logged");
        }
        assert_eq!(
            storage.audit_log(100, None).unwrap().len(),
            AuditAction::ALL.len()
        );
    }
}
