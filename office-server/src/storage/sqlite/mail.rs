//! E-mail notifications: each account's address and mode, and the outbox.

use jiff::Timestamp;
use rusqlite::params;

use super::accounts::{ACCOUNT_COLUMNS, account_from_row};
use super::audit::insert_event;
use super::{SqliteStorage, instant, ms};
use crate::storage::*;

impl MailStore for SqliteStorage {
    fn set_account_mail(
        &self,
        account_id: i64,
        mail: &AccountMail,
        audit: &AuditEvent,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE accounts SET email = ?2, mail_mode = ?3 WHERE id = ?1",
                params![account_id, mail.email, mail.mode.as_str()],
            )?;
            if changed == 0 {
                return Ok(false);
            }
            insert_event(tx, audit)?;
            Ok(true)
        })
    }

    fn mail_recipients(&self) -> StorageResult<Vec<MailRecipient>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS}, a.email, a.mail_mode FROM accounts a
                 WHERE a.email IS NOT NULL AND a.mail_mode <> 'off' ORDER BY a.id"
            ))?
            .query_map([], |row| {
                Ok(MailRecipient {
                    account: account_from_row(row)?,
                    email: row.get(7)?,
                    digest: row.get::<_, String>(8)? == MailMode::Digest.as_str(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn queue_mail(&self, mail: &[NewMail]) -> StorageResult<u64> {
        if mail.is_empty() {
            return Ok(0);
        }
        self.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO mail_outbox
                     (account_id, event_key, subject, body, digest, created_at, due_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut queued = 0;
            for m in mail {
                queued += insert.execute(params![
                    m.account_id,
                    m.event_key,
                    m.subject,
                    m.body,
                    m.digest,
                    ms(m.created_at),
                    ms(m.due_at)
                ])? as u64;
            }
            Ok(queued)
        })
    }

    fn due_mail(&self, now: Timestamp, limit: u32) -> StorageResult<Vec<DueMail>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare_cached(
                "SELECT m.id, m.account_id, a.email, m.subject, m.body, m.digest, m.created_at,
                        m.attempts
                 FROM mail_outbox m JOIN accounts a ON a.id = m.account_id
                 WHERE m.sent_at IS NULL AND m.failed_at IS NULL AND m.due_at <= ?1
                   AND a.email IS NOT NULL AND a.mail_mode <> 'off'
                 ORDER BY m.id LIMIT ?2",
            )?
            .query_map(params![ms(now), limit], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, bool>(5)?,
                    row.get::<_, i64>(6)?,
                    row.get::<_, u32>(7)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(
                |(id, account_id, email, subject, body, digest, created_at, attempts)| {
                    Ok(DueMail {
                        id,
                        account_id,
                        email,
                        subject,
                        body,
                        digest,
                        created_at: instant(created_at)?,
                        attempts,
                    })
                },
            )
            .collect()
    }

    fn finish_mail(&self, ids: &[i64], outcome: &MailOutcome, now: Timestamp) -> StorageResult<()> {
        let (sent, failed, retry, error) = match outcome {
            MailOutcome::Sent => (Some(ms(now)), None, None, ""),
            MailOutcome::Retry { at, error } => (None, None, Some(ms(*at)), error.as_str()),
            MailOutcome::Failed { error } => (None, Some(ms(now)), None, error.as_str()),
        };
        self.write(|tx| {
            let mut update = tx.prepare_cached(
                "UPDATE mail_outbox
                 SET attempts = attempts + 1, sent_at = ?2, failed_at = ?3,
                     due_at = coalesce(?4, due_at), last_error = ?5
                 WHERE id = ?1",
            )?;
            for id in ids {
                update.execute(params![id, sent, failed, retry, error])?;
            }
            Ok(())
        })
    }

    fn purge_mail(&self, before: Timestamp) -> StorageResult<u64> {
        self.write(|tx| {
            Ok(tx.execute(
                "DELETE FROM mail_outbox WHERE created_at < ?1",
                [ms(before)],
            )? as u64)
        })
    }
}
