//! «Результат готов»: case numbers on visits, visitors' numbers, the SMS outbox and its
//! delivery reports.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{SqliteStorage, changed_one, instant, ms, optional_instant, unique};
use crate::domain::sms::problem;
use crate::reports::visit_instant_ms;
use crate::storage::*;

const RESULT_VISIT_SELECT: &str =
    "SELECT id, employee_id, department_id, section_id, case_number, result_ready_at FROM visits";

fn result_visit_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<(ResultVisit, Option<i64>)> {
    Ok((
        ResultVisit {
            visit_id: row.get(0)?,
            employee_id: row.get(1)?,
            department_id: row.get(2)?,
            section_id: row.get(3)?,
            case_number: row.get(4)?,
            result_ready_at: None,
        },
        row.get(5)?,
    ))
}

fn with_ready(found: Option<(ResultVisit, Option<i64>)>) -> StorageResult<Option<ResultVisit>> {
    found
        .map(|(mut visit, ready)| {
            visit.result_ready_at = optional_instant(ready)?;
            Ok(visit)
        })
        .transpose()
}

/// The most delivery reports kept for one message.
const MAX_REPORTS: i64 = 20;

/// A clock offset beyond this is not looked for when a day's visits are picked by the
/// tablet's clock before the exact, corrected comparison.
const OFFSET_SLACK_MS: i64 = 7 * 24 * 3600 * 1000;

const MESSAGE_SELECT: &str = "
    SELECT m.id, m.visit_id, v.department_id, v.section_id, e.full_name, s.name, v.case_number,
           m.state, m.masked, m.text, m.attempts, m.created_at, m.sent_at, m.last_error
    FROM sms_messages m
    JOIN visits v ON v.id = m.visit_id
    JOIN employees e ON e.id = v.employee_id
    JOIN services s ON s.id = v.service_id";

fn message_from(conn: &rusqlite::Connection, row: &rusqlite::Row<'_>) -> StorageResult<SmsMessage> {
    let id: i64 = row.get(0)?;
    let state: String = row.get(7)?;
    let mut statement = conn.prepare_cached(
        "SELECT at, status, detail FROM sms_reports WHERE message_id = ?1 ORDER BY at, id",
    )?;
    let reports = statement
        .query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .map(|found| {
            let (at, status, detail) = found?;
            Ok(SmsReport {
                at: instant(at)?,
                status,
                detail,
            })
        })
        .collect::<StorageResult<Vec<_>>>()?;
    Ok(SmsMessage {
        id,
        visit_id: row.get(1)?,
        department_id: row.get(2)?,
        section_id: row.get(3)?,
        employee: row.get(4)?,
        service: row.get(5)?,
        case_number: row.get(6)?,
        state: SmsState::parse(&state)
            .ok_or_else(|| StorageError::Corrupt(format!("message state {state:?}")))?,
        masked: row.get(8)?,
        text: row.get(9)?,
        attempts: row.get(10)?,
        created_at: instant(row.get(11)?)?,
        sent_at: optional_instant(row.get(12)?)?,
        last_error: row.get(13)?,
        reports,
    })
}

impl SmsStore for SqliteStorage {
    fn result_visit(&self, visit_id: Uuid) -> StorageResult<Option<ResultVisit>> {
        let conn = self.reader()?;
        let found = conn
            .prepare_cached(&format!("{RESULT_VISIT_SELECT} WHERE id = ?1"))?
            .query_row([visit_id], result_visit_from)
            .optional()?;
        with_ready(found)
    }

    fn result_visit_by_case(&self, case_number: &str) -> StorageResult<Option<ResultVisit>> {
        let conn = self.reader()?;
        let found = conn
            .prepare_cached(&format!("{RESULT_VISIT_SELECT} WHERE case_number = ?1"))?
            .query_row([case_number], result_visit_from)
            .optional()?;
        with_ready(found)
    }

    fn set_case_number(&self, visit_id: Uuid, case_number: Option<&str>) -> StorageResult<()> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE visits SET case_number = ?2 WHERE id = ?1",
                    params![visit_id, case_number],
                )
                .map_err(unique("case number"))?;
            changed_one(changed, "visit")
        })
    }

    fn employee_visit_at(
        &self,
        employee_id: i64,
        at: Timestamp,
        slack: jiff::SignedDuration,
    ) -> StorageResult<Option<ResultVisit>> {
        let conn = self.reader()?;
        let at = ms(at);
        let earliest = at.saturating_sub(i64::try_from(slack.as_millis()).unwrap_or(i64::MAX));
        let mut statement = conn.prepare_cached(
            "SELECT id, started_at, ended_at, clock_offset_ms FROM visits
             WHERE employee_id = ?1 AND ended_at >= ?2 AND started_at <= ?3",
        )?;
        let mut rows = statement.query(params![
            employee_id,
            earliest.saturating_sub(OFFSET_SLACK_MS),
            at.saturating_add(OFFSET_SLACK_MS)
        ])?;
        // (going on at `at`, corrected end, id): the visit going on wins, then the latest end.
        let mut best: Option<(bool, i64, Uuid)> = None;
        while let Some(row) = rows.next()? {
            let offset: i64 = row.get(3)?;
            let started = visit_instant_ms(row.get(1)?, offset);
            let ended = visit_instant_ms(row.get(2)?, offset);
            if ended < earliest || started > at {
                continue;
            }
            let candidate = (started <= at && at <= ended, ended.min(at), row.get(0)?);
            if best.is_none_or(|b| (candidate.0, candidate.1) > (b.0, b.1)) {
                best = Some(candidate);
            }
        }
        drop(rows);
        drop(statement);
        drop(conn);
        match best {
            Some((_, _, id)) => self.result_visit(id),
            None => Ok(None),
        }
    }

    fn specialist_visits(
        &self,
        employee_id: i64,
        from: Timestamp,
        until: Timestamp,
    ) -> StorageResult<Vec<SpecialistVisit>> {
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(
            "SELECT v.id, v.ended_at, v.clock_offset_ms, s.name, v.case_number, v.result_ready_at
             FROM visits v JOIN services s ON s.id = v.service_id
             WHERE v.employee_id = ?1 AND v.ended_at >= ?2 AND v.ended_at < ?3
             ORDER BY v.ended_at DESC",
        )?;
        let (from, until) = (ms(from), ms(until));
        let mut rows = statement.query(params![
            employee_id,
            from.saturating_sub(OFFSET_SLACK_MS),
            until.saturating_add(OFFSET_SLACK_MS)
        ])?;
        let mut visits = Vec::new();
        while let Some(row) = rows.next()? {
            let ended = visit_instant_ms(row.get(1)?, row.get(2)?);
            if !(from..until).contains(&ended) {
                continue;
            }
            visits.push(SpecialistVisit {
                visit_id: row.get(0)?,
                ended_at: instant(ended)?,
                service: row.get(3)?,
                case_number: row.get(4)?,
                result_ready_at: optional_instant(row.get(5)?)?,
            });
        }
        visits.sort_by_key(|visit| std::cmp::Reverse(visit.ended_at));
        Ok(visits)
    }

    fn give_sms_consent(&self, visit_id: Uuid, consent: &SmsConsent) -> StorageResult<bool> {
        self.write(|tx| {
            // Checked in the same statement as the insert: a result marked ready meanwhile
            // would leave a number kept for a message never queued.
            let kept = tx.execute(
                "INSERT OR REPLACE INTO sms_consents (visit_id, phone, masked, given_at,
                                                      expires_at)
                 SELECT ?1, ?2, ?3, ?4, ?5
                 WHERE NOT EXISTS (SELECT 1 FROM visits
                                   WHERE id = ?1 AND result_ready_at IS NOT NULL)",
                params![
                    visit_id,
                    consent.phone,
                    consent.masked,
                    ms(consent.given_at),
                    ms(consent.expires_at)
                ],
            )?;
            Ok(kept > 0)
        })
    }

    fn sms_consent(&self, visit_id: Uuid, now: Timestamp) -> StorageResult<Option<SmsConsent>> {
        let conn = self.reader()?;
        let found = conn
            .prepare_cached(
                "SELECT phone, masked, given_at, expires_at FROM sms_consents
                 WHERE visit_id = ?1 AND expires_at > ?2",
            )?
            .query_row(params![visit_id, ms(now)], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()?;
        found
            .map(
                |(phone, masked, given, expires): (String, String, i64, i64)| {
                    Ok(SmsConsent {
                        phone,
                        masked,
                        given_at: instant(given)?,
                        expires_at: instant(expires)?,
                    })
                },
            )
            .transpose()
    }

    fn withdraw_sms_consent(&self, visit_id: Uuid) -> StorageResult<bool> {
        self.write(|tx| {
            Ok(tx.execute("DELETE FROM sms_consents WHERE visit_id = ?1", [visit_id])? > 0)
        })
    }

    fn expire_sms_consents(&self, now: Timestamp) -> StorageResult<u64> {
        self.write(|tx| {
            let deleted =
                tx.execute("DELETE FROM sms_consents WHERE expires_at <= ?1", [ms(now)])?;
            Ok(deleted as u64)
        })
    }

    fn mark_result_ready(
        &self,
        visit_id: Uuid,
        sms: &NewSms,
        now: Timestamp,
    ) -> StorageResult<MarkedReady> {
        self.write(|tx| {
            let marked = tx.execute(
                "UPDATE visits SET result_ready_at = ?2 WHERE id = ?1 AND result_ready_at IS NULL",
                params![visit_id, ms(now)],
            )?;
            if marked == 0 {
                let exists: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM visits WHERE id = ?1)",
                    [visit_id],
                    |row| row.get(0),
                )?;
                return if exists {
                    Ok(MarkedReady::AlreadyReady)
                } else {
                    Err(StorageError::NotFound("visit"))
                };
            }
            let queued = tx.execute(
                "INSERT INTO sms_messages (visit_id, state, text, masked, next_attempt_at,
                                           created_at, report_key)
                 SELECT visit_id, 'pending', ?2, masked, ?3, ?3, ?4
                 FROM sms_consents WHERE visit_id = ?1 AND expires_at > ?3",
                params![visit_id, sms.text, ms(now), &sms.report_key[..]],
            )?;
            Ok(MarkedReady::Marked { queued: queued > 0 })
        })
    }

    fn claim_due_sms(&self, now: Timestamp, limit: u32) -> StorageResult<Vec<DueSms>> {
        self.write(|tx| {
            let now = ms(now);
            tx.execute(
                "UPDATE sms_messages SET state = 'cancelled', last_error = ?2
                 WHERE state = 'pending' AND next_attempt_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM sms_consents c
                                   WHERE c.visit_id = sms_messages.visit_id
                                     AND c.expires_at > ?1)",
                params![now, problem::NO_NUMBER],
            )?;
            let mut statement = tx.prepare_cached(
                "UPDATE sms_messages SET state = 'sending', attempts = attempts + 1
                 WHERE id IN (SELECT id FROM sms_messages
                              WHERE state = 'pending' AND next_attempt_at <= ?1
                              ORDER BY next_attempt_at, id LIMIT ?2)
                 RETURNING id, text, attempts, report_key,
                           (SELECT phone FROM sms_consents c
                            WHERE c.visit_id = sms_messages.visit_id)",
            )?;
            let due = statement
                .query_map(params![now, limit], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, u32>(2)?,
                        row.get::<_, Vec<u8>>(3)?,
                        row.get::<_, String>(4)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            due.into_iter()
                .map(|(id, text, attempts, key, phone)| {
                    Ok(DueSms {
                        id,
                        phone,
                        text,
                        attempts,
                        report_key: key.try_into().map_err(|_| {
                            StorageError::Corrupt(format!("message {id}: report key"))
                        })?,
                    })
                })
                .collect()
        })
    }

    fn finish_sms(&self, id: i64, outcome: &SmsOutcome, now: Timestamp) -> StorageResult<bool> {
        self.write(|tx| {
            let (state, next, error) = match outcome {
                SmsOutcome::Sent => ("sent", None, ""),
                // `last_error` is set in every case: a message sent after failed tries shows
                // no old error.
                SmsOutcome::Retry { at, error } => ("pending", Some(ms(*at)), error.as_str()),
                SmsOutcome::Failed { error } => ("failed", None, error.as_str()),
                SmsOutcome::Unconfirmed { error } => ("unconfirmed", None, error.as_str()),
            };
            let changed = tx.execute(
                "UPDATE sms_messages
                 SET state = ?2, next_attempt_at = COALESCE(?3, next_attempt_at),
                     last_error = ?4,
                     sent_at = CASE WHEN ?2 = 'sent' THEN ?5 ELSE sent_at END
                 WHERE id = ?1 AND state = 'sending'",
                params![id, state, next, error, ms(now)],
            )?;
            Ok(changed > 0)
        })
    }

    fn interrupted_sms_unconfirmed(&self) -> StorageResult<u64> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE sms_messages SET state = 'unconfirmed', last_error = ?1
                 WHERE state = 'sending'",
                [problem::INTERRUPTED],
            )?;
            Ok(changed as u64)
        })
    }

    fn record_sms_report(
        &self,
        id: i64,
        report_key: &[u8; 32],
        report: &SmsReport,
    ) -> StorageResult<bool> {
        use crate::domain::sms::{ReportKind, ReportMeaning};
        self.write(|tx| {
            let found: Option<(Vec<u8>, Uuid)> = tx
                .query_row(
                    "SELECT report_key, visit_id FROM sms_messages WHERE id = ?1",
                    [id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            // Compared as digests: how long the comparison takes tells nothing of the key.
            let matches = |key: &Vec<u8>| Sha256::digest(key) == Sha256::digest(report_key);
            let Some((_, visit_id)) = found.filter(|(key, _)| matches(key)) else {
                return Ok(false);
            };
            // Kept up to a bound: a gateway that repeats itself cannot grow the table.
            tx.execute(
                "INSERT INTO sms_reports (message_id, at, status, detail)
                 SELECT ?1, ?2, ?3, ?4
                 WHERE (SELECT COUNT(*) FROM sms_reports WHERE message_id = ?1) < ?5",
                params![id, ms(report.at), report.status, report.detail, MAX_REPORTS],
            )?;
            // Reports only move a message forward: a report proves it left (an unconfirmed
            // one was sent after all); on the phone is final; a failure waits for a person and
            // a late «accepted» does not take it back.
            let (state, from) = match ReportKind::of_kannel_type(report.status).meaning() {
                ReportMeaning::Underway => ("sent", "('sending', 'unconfirmed')"),
                ReportMeaning::Delivered => {
                    ("delivered", "('sending', 'sent', 'unconfirmed', 'failed')")
                }
                ReportMeaning::Failed => ("failed", "('sending', 'sent', 'unconfirmed')"),
                ReportMeaning::Unknown => return Ok(true),
            };
            let moved = tx.execute(
                &format!(
                    "UPDATE sms_messages SET state = ?2, sent_at = COALESCE(sent_at, ?3)
                     WHERE id = ?1 AND state IN {from}"
                ),
                params![id, state, ms(report.at)],
            )?;
            if moved > 0 && state == "delivered" {
                tx.execute("DELETE FROM sms_consents WHERE visit_id = ?1", [visit_id])?;
            }
            Ok(true)
        })
    }

    fn decide_sms(
        &self,
        id: i64,
        decision: &SmsDecision,
        by: Option<i64>,
        now: Timestamp,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            let changed = match decision {
                SmsDecision::Resend { report_key } => tx.execute(
                    "UPDATE sms_messages
                     SET state = 'pending', next_attempt_at = ?3, decided_by = ?2,
                         report_key = ?4
                     WHERE id = ?1 AND state IN ('failed', 'unconfirmed')",
                    params![id, by, ms(now), &report_key[..]],
                )?,
                SmsDecision::Cancel => tx.execute(
                    "UPDATE sms_messages SET state = 'cancelled', decided_by = ?2
                     WHERE id = ?1 AND state IN ('failed', 'unconfirmed')",
                    params![id, by],
                )?,
            };
            Ok(changed > 0)
        })
    }

    fn purge_sms_messages(&self, before: Timestamp) -> StorageResult<u64> {
        self.write(|tx| {
            let done = "state NOT IN ('pending', 'sending') AND created_at < ?1";
            tx.execute(
                &format!(
                    "DELETE FROM sms_reports WHERE message_id IN
                         (SELECT id FROM sms_messages WHERE {done})"
                ),
                [ms(before)],
            )?;
            let deleted = tx.execute(
                &format!("DELETE FROM sms_messages WHERE {done}"),
                [ms(before)],
            )?;
            Ok(deleted as u64)
        })
    }

    fn sms_message(&self, id: i64) -> StorageResult<Option<SmsMessage>> {
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(&format!("{MESSAGE_SELECT} WHERE m.id = ?1"))?;
        let mut rows = statement.query([id])?;
        match rows.next()? {
            Some(row) => Ok(Some(message_from(&conn, row)?)),
            None => Ok(None),
        }
    }

    fn sms_messages(&self, filter: &ReportFilter, limit: u32) -> StorageResult<Vec<SmsMessage>> {
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(&format!(
            "{MESSAGE_SELECT}
             WHERE (?1 IS NULL OR v.department_id = ?1) AND (?2 IS NULL OR v.section_id = ?2)
               AND (?3 IS NULL OR v.employee_id = ?3) AND (?4 IS NULL OR v.service_id = ?4)
             ORDER BY m.state IN ('failed', 'unconfirmed') DESC, m.created_at DESC, m.id DESC
             LIMIT ?5"
        ))?;
        let mut rows = statement.query(params![
            filter.department_id,
            filter.section_id,
            filter.employee_id,
            filter.service_id,
            limit
        ])?;
        let mut messages = Vec::new();
        while let Some(row) = rows.next()? {
            messages.push(message_from(&conn, row)?);
        }
        Ok(messages)
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use jiff::tz::TimeZone;

    use super::*;

    /// `sms.keep_number_days`: a number past its time is neither used nor kept.
    #[test]
    fn numbers_past_their_time_are_not_used_and_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let storage =
            SqliteStorage::open(&dir.path().join("office.sqlite3"), TimeZone::UTC).unwrap();
        let now = Timestamp::now();
        let day = SignedDuration::from_hours(24);
        let (old, fresh) = (Uuid::now_v7(), Uuid::now_v7());
        for (visit, expires_at) in [(old, now - day), (fresh, now + day)] {
            storage
                .give_sms_consent(
                    visit,
                    &SmsConsent {
                        phone: "+79123456789".into(),
                        masked: "+7 912 ***-**-89".into(),
                        given_at: expires_at - day * 30,
                        expires_at,
                    },
                )
                .unwrap();
        }
        assert_eq!(storage.sms_consent(old, now).unwrap(), None);
        assert!(storage.sms_consent(fresh, now).unwrap().is_some());
        assert_eq!(storage.expire_sms_consents(now).unwrap(), 1);
        assert_eq!(storage.expire_sms_consents(now).unwrap(), 0);
        assert!(storage.sms_consent(fresh, now).unwrap().is_some());
        assert!(storage.withdraw_sms_consent(fresh).unwrap());
        assert!(!storage.withdraw_sms_consent(fresh).unwrap());
    }
}
