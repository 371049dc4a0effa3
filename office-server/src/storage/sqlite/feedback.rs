//! The visitors' feedback: links opened, submissions, their join with the visit and the
//! feedback totals.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use uuid::Uuid;

use super::{SqliteStorage, instant, ms, optional_instant, unique};
use crate::reports::{Level, PeriodKeys, visit_instant_ms};
use crate::storage::*;

/// Where a visit is counted: its place in the directory and its corrected end.
struct CountedAt {
    department_id: i64,
    section_id: i64,
    employee_id: i64,
    service_id: i64,
    at: Timestamp,
}

/// Whether any submission waits for its visit: ingest probes each new visit for one only then.
pub(super) fn any_waiting(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM feedback WHERE joined_at IS NULL)")?
        .query_row([], |row| row.get(0))
}

/// Joins the visit's waiting submission, if there is one, to the visit just stored: from now on
/// it counts in the feedback totals.
pub(super) fn join_waiting(
    tx: &Transaction<'_>,
    zone: &jiff::tz::TimeZone,
    visit_id: Uuid,
    now: Timestamp,
) -> StorageResult<bool> {
    let joined = tx
        .prepare_cached(
            "UPDATE feedback SET joined_at = ?2
             WHERE visit_id = ?1 AND joined_at IS NULL
               AND tablet_id = (SELECT tablet_id FROM visits WHERE id = ?1)",
        )?
        .execute(params![visit_id, ms(now)])?;
    if joined == 0 {
        return Ok(false);
    }
    if let Some(place) = counted_at(tx, visit_id)? {
        count(tx, zone, visit_id, &place)?;
    }
    Ok(true)
}

fn counted_at(conn: &Connection, visit_id: Uuid) -> StorageResult<Option<CountedAt>> {
    let row = conn
        .prepare_cached(
            "SELECT department_id, section_id, employee_id, service_id, ended_at, clock_offset_ms
             FROM visits WHERE id = ?1",
        )?
        .query_row([visit_id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })
        .optional()?;
    row.map(
        |(department_id, section_id, employee_id, service_id, ended, offset)| {
            Ok(CountedAt {
                department_id,
                section_id,
                employee_id,
                service_id,
                at: instant(visit_instant_ms(ended, offset))?,
            })
        },
    )
    .transpose()
}

/// Adds one joined submission to the feedback totals at every level of its visit's date.
fn count(
    conn: &Connection,
    zone: &jiff::tz::TimeZone,
    visit_id: Uuid,
    place: &CountedAt,
) -> StorageResult<()> {
    let thanks: bool = conn
        .prepare_cached("SELECT thanks FROM feedback WHERE visit_id = ?1")?
        .query_row([visit_id], |row| row.get(0))?;
    let mut rows: Vec<(String, i64)> = vec![(String::new(), i64::from(thanks))];
    rows.extend(
        conn.prepare_cached("SELECT criterion, score FROM feedback_scores WHERE visit_id = ?1")?
            .query_map([visit_id], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    );
    let keys = PeriodKeys::at(place.at, zone);
    let mut upsert = conn.prepare_cached(
        "INSERT INTO feedback_totals (level, period, department_id, section_id, employee_id,
                                      service_id, criterion, score_sum, scores)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1)
         ON CONFLICT (level, period, department_id, section_id, employee_id, service_id,
                      criterion)
         DO UPDATE SET score_sum = score_sum + excluded.score_sum, scores = scores + 1",
    )?;
    for level in Level::ALL {
        for (criterion, score) in &rows {
            upsert.execute(params![
                level.code(),
                keys.key(level),
                place.department_id,
                place.section_id,
                place.employee_id,
                place.service_id,
                criterion,
                score
            ])?;
        }
    }
    Ok(())
}

/// Counts every joined submission again (the report calendar's time zone changed).
pub(super) fn rebuild_totals(conn: &Connection, zone: &jiff::tz::TimeZone) -> StorageResult<()> {
    conn.execute("DELETE FROM feedback_totals", [])?;
    let joined: Vec<Uuid> = conn
        .prepare("SELECT visit_id FROM feedback WHERE joined_at IS NOT NULL")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for visit_id in joined {
        if let Some(place) = counted_at(conn, visit_id)? {
            count(conn, zone, visit_id, &place)?;
        }
    }
    Ok(())
}

const ENTRY_SELECT: &str = "
    SELECT f.visit_id, v.department_id, v.section_id, e.full_name, s.name, sv.name,
           v.ended_at - v.clock_offset_ms, v.rating, f.submitted_at, f.comment, f.thanks,
           f.answer, ans.display_name, f.answered_at, hid.display_name, f.hidden_at
    FROM feedback f
    JOIN visits v ON v.id = f.visit_id
    JOIN sections s ON s.id = v.section_id
    JOIN employees e ON e.id = v.employee_id
    JOIN services sv ON sv.id = v.service_id
    LEFT JOIN accounts ans ON ans.id = f.answered_by
    LEFT JOIN accounts hid ON hid.id = f.hidden_by";

fn entry_from_row(conn: &Connection, row: &rusqlite::Row<'_>) -> StorageResult<FeedbackEntry> {
    let visit_id: Uuid = row.get(0)?;
    let hidden = match (
        row.get::<_, Option<String>>(14)?,
        row.get::<_, Option<i64>>(15)?,
    ) {
        (Some(by), Some(at)) => Some((by, instant(at)?)),
        _ => None,
    };
    Ok(FeedbackEntry {
        visit_id,
        department_id: row.get(1)?,
        section_id: row.get(2)?,
        employee_name: row.get(3)?,
        section_name: row.get(4)?,
        service_name: row.get(5)?,
        rated_at: instant(row.get(6)?)?,
        rating: row.get(7)?,
        submitted_at: instant(row.get(8)?)?,
        scores: scores_of(conn, visit_id)?,
        comment: row.get(9)?,
        thanks: row.get(10)?,
        answer: row.get(11)?,
        answered_by: row.get(12)?,
        answered_at: optional_instant(row.get(13)?)?,
        hidden,
    })
}

fn scores_of(conn: &Connection, visit_id: Uuid) -> StorageResult<Vec<(String, u8)>> {
    Ok(conn
        .prepare_cached("SELECT criterion, score FROM feedback_scores WHERE visit_id = ?1")?
        .query_map([visit_id], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(super) fn sent_feedback(
    conn: &Connection,
    visit_id: Uuid,
) -> StorageResult<Option<SentFeedback>> {
    let row = conn
        .prepare_cached(
            "SELECT submitted_at, comment, thanks, answer, answered_at
             FROM feedback WHERE visit_id = ?1",
        )?
        .query_row([visit_id], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, bool>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, Option<i64>>(4)?,
            ))
        })
        .optional()?;
    let Some((submitted_at, comment, thanks, answer, answered_at)) = row else {
        return Ok(None);
    };
    let scores = scores_of(conn, visit_id)?;
    Ok(Some(SentFeedback {
        submitted_at: instant(submitted_at)?,
        scores,
        comment,
        thanks,
        answer,
        answered_at: optional_instant(answered_at)?,
    }))
}

impl FeedbackStore for SqliteStorage {
    fn open_feedback_link(
        &self,
        visit_id: Uuid,
        tablet_id: i64,
        now: Timestamp,
    ) -> StorageResult<FeedbackLinkState> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO feedback_links (visit_id, tablet_id, first_opened_at)
                 VALUES (?1, ?2, ?3) ON CONFLICT (visit_id) DO NOTHING",
            )?
            .execute(params![visit_id, tablet_id, ms(now)])?;
            let first_opened_at: i64 = tx
                .prepare_cached("SELECT first_opened_at FROM feedback_links WHERE visit_id = ?1")?
                .query_row([visit_id], |row| row.get(0))?;
            let visit = tx
                .prepare_cached(
                    "SELECT tablet_id, ended_at - clock_offset_ms FROM visits WHERE id = ?1",
                )?
                .query_row([visit_id], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
                })
                .optional()?
                .map(|(tablet_id, end)| {
                    Ok::<_, StorageError>(LinkedVisit {
                        tablet_id,
                        corrected_end: instant(end)?,
                    })
                })
                .transpose()?;
            Ok(FeedbackLinkState {
                visit,
                first_opened_at: instant(first_opened_at)?,
                feedback: sent_feedback(tx, visit_id)?,
            })
        })
    }

    fn submit_feedback(&self, feedback: &NewFeedback) -> StorageResult<()> {
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO feedback (visit_id, tablet_id, submitted_at, comment, thanks)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                feedback.visit_id,
                feedback.tablet_id,
                ms(feedback.submitted_at),
                feedback.comment,
                feedback.thanks
            ])
            .map_err(unique("feedback"))?;
            let mut score = tx.prepare_cached(
                "INSERT INTO feedback_scores (visit_id, criterion, score) VALUES (?1, ?2, ?3)",
            )?;
            for (criterion, value) in &feedback.scores {
                score.execute(params![feedback.visit_id, criterion, value])?;
            }
            join_waiting(tx, &self.zone, feedback.visit_id, feedback.submitted_at)?;
            Ok(())
        })
    }

    fn purge_feedback(
        &self,
        unjoined_before: Timestamp,
        comments_before: Timestamp,
    ) -> StorageResult<FeedbackPurged> {
        self.write(|tx| {
            let unjoined = tx.execute(
                "DELETE FROM feedback WHERE joined_at IS NULL AND submitted_at < ?1",
                [ms(unjoined_before)],
            )?;
            // A link's first opening matters only while its visit has not synced; one that has
            // not synced by now never will (its tablet was revoked, or it was refused).
            tx.execute(
                "DELETE FROM feedback_links WHERE first_opened_at < ?1",
                [ms(unjoined_before)],
            )?;
            let comments = tx.execute(
                "UPDATE feedback SET comment = NULL
                 WHERE comment IS NOT NULL AND submitted_at < ?1",
                [ms(comments_before)],
            )?;
            Ok(FeedbackPurged {
                unjoined: unjoined as u64,
                comments: comments as u64,
            })
        })
    }

    fn feedback_totals(
        &self,
        filter: &ReportFilter,
        group: GroupBy,
        span: PeriodSpan,
    ) -> StorageResult<Vec<FeedbackTotal>> {
        let key = super::reports::group_column(group);
        let sql = format!(
            "SELECT {key}, criterion, sum(score_sum), sum(scores)
             FROM feedback_totals
             WHERE level = ?1 AND period BETWEEN ?2 AND ?3
               AND (?4 IS NULL OR department_id = ?4) AND (?5 IS NULL OR section_id = ?5)
               AND (?6 IS NULL OR employee_id = ?6) AND (?7 IS NULL OR service_id = ?7)
             GROUP BY 1, 2"
        );
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement
            .query_map(
                params![
                    span.level.code(),
                    span.from,
                    span.to,
                    filter.department_id,
                    filter.section_id,
                    filter.employee_id,
                    filter.service_id
                ],
                |row| {
                    Ok(FeedbackTotal {
                        key: row.get(0)?,
                        criterion: row.get(1)?,
                        score_sum: row.get(2)?,
                        scores: row.get(3)?,
                    })
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn feedback_entries(&self, query: &FeedbackQuery) -> StorageResult<Vec<FeedbackEntry>> {
        let f = &query.filter;
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(&format!(
            "{ENTRY_SELECT}
             WHERE f.joined_at IS NOT NULL
               AND (?1 IS NULL OR v.department_id = ?1) AND (?2 IS NULL OR v.section_id = ?2)
               AND (?3 IS NULL OR v.employee_id = ?3) AND (?4 IS NULL OR v.service_id = ?4)
               AND (?5 = 0 OR f.answer IS NULL)
             ORDER BY f.submitted_at DESC, f.visit_id
             LIMIT ?6 OFFSET ?7"
        ))?;
        let mut rows = statement.query(params![
            f.department_id,
            f.section_id,
            f.employee_id,
            f.service_id,
            query.unanswered_only,
            query.limit,
            query.offset
        ])?;
        let mut entries = Vec::new();
        while let Some(row) = rows.next()? {
            entries.push(entry_from_row(&conn, row)?);
        }
        Ok(entries)
    }

    fn feedback_entry(&self, visit_id: Uuid) -> StorageResult<Option<FeedbackEntry>> {
        let conn = self.reader()?;
        let mut statement = conn.prepare_cached(&format!(
            "{ENTRY_SELECT} WHERE f.visit_id = ?1 AND f.joined_at IS NOT NULL"
        ))?;
        let mut rows = statement.query([visit_id])?;
        match rows.next()? {
            Some(row) => Ok(Some(entry_from_row(&conn, row)?)),
            None => Ok(None),
        }
    }

    fn answer_feedback(
        &self,
        visit_id: Uuid,
        answer: &str,
        by: i64,
        at: Timestamp,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE feedback SET answer = ?2, answered_by = ?3, answered_at = ?4
                 WHERE visit_id = ?1 AND joined_at IS NOT NULL",
                params![visit_id, answer, by, ms(at)],
            )?;
            Ok(changed > 0)
        })
    }

    fn set_feedback_hidden(
        &self,
        visit_id: Uuid,
        hidden: bool,
        by: i64,
        at: Timestamp,
    ) -> StorageResult<bool> {
        self.write(|tx| {
            let changed = if hidden {
                tx.execute(
                    "UPDATE feedback SET hidden_by = ?2, hidden_at = ?3
                     WHERE visit_id = ?1 AND joined_at IS NOT NULL",
                    params![visit_id, by, ms(at)],
                )?
            } else {
                tx.execute(
                    "UPDATE feedback SET hidden_by = NULL, hidden_at = NULL
                     WHERE visit_id = ?1 AND joined_at IS NOT NULL",
                    [visit_id],
                )?
            };
            Ok(changed > 0)
        })
    }
}
