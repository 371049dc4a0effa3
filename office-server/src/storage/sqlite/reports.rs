//! The report totals kept beside the visits, the Плохо analysis and its verdicts.

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{SqliteStorage, instant, ms};
use crate::reports::PeriodKeys;
use crate::storage::*;

/// The name the totals' time zone is recorded under.
pub(super) fn zone_name(zone: &TimeZone) -> String {
    zone.iana_name().map_or_else(
        || format!("{:?}", zone.to_fixed_offset().ok()),
        str::to_string,
    )
}

/// (level, period, department, section, employee, service), as the table's key.
pub(super) type TotalsKey = (i64, i64, i64, i64, i64, i64);
/// (level, period, department, section).
pub(super) type SectionKey = (i64, i64, i64, i64);

/// Report totals to add: visits are counted in memory and written with one upsert per key, so a
/// batch of a hundred visits of one specialist costs a handful of writes, not hundreds.
#[derive(Default)]
pub struct TotalsAccumulator {
    totals: HashMap<TotalsKey, Tally>,
    sections: HashMap<SectionKey, Tally>,
}

impl TotalsAccumulator {
    /// Counts one visit (rating score 3, 2, 1 or none) at every level of its office-local date.
    pub fn add(
        &mut self,
        keys: &PeriodKeys,
        department_id: i64,
        section_id: i64,
        employee_id: i64,
        service_id: i64,
        score: Option<u8>,
    ) {
        let one = Tally::one(score);
        for level in Level::ALL {
            let period = keys.key(level);
            self.totals
                .entry((
                    level.code(),
                    period,
                    department_id,
                    section_id,
                    employee_id,
                    service_id,
                ))
                .or_default()
                .add(&one);
            self.sections
                .entry((level.code(), period, department_id, section_id))
                .or_default()
                .add(&one);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
    }

    /// The counted totals, by the tables' keys.
    pub(super) fn into_parts(self) -> (HashMap<TotalsKey, Tally>, HashMap<SectionKey, Tally>) {
        (self.totals, self.sections)
    }

    /// Adds the counted visits to the stored totals and empties the accumulator.
    pub fn flush(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let mut totals = conn.prepare_cached(
            "INSERT INTO report_totals (level, period, department_id, section_id, employee_id,
                                        service_id, visits, good, medium, bad)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (level, period, department_id, section_id, employee_id, service_id)
             DO UPDATE SET visits = visits + excluded.visits, good = good + excluded.good,
                           medium = medium + excluded.medium, bad = bad + excluded.bad",
        )?;
        for ((level, period, department, section, employee, service), t) in self.totals.drain() {
            totals.execute(params![
                level, period, department, section, employee, service, t.visits, t.good, t.medium,
                t.bad
            ])?;
        }
        let mut sections = conn.prepare_cached(
            "INSERT INTO report_section_totals (level, period, department_id, section_id,
                                                visits, good, medium, bad)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (level, period, department_id, section_id)
             DO UPDATE SET visits = visits + excluded.visits, good = good + excluded.good,
                           medium = medium + excluded.medium, bad = bad + excluded.bad",
        )?;
        for ((level, period, department, section), t) in self.sections.drain() {
            sections.execute(params![
                level, period, department, section, t.visits, t.good, t.medium, t.bad
            ])?;
        }
        Ok(())
    }
}

/// The report totals every visit in `conn` adds up to, in `zone`'s calendar, and how many
/// visits there are: what a rebuild writes and what a check compares the stored totals with.
pub(super) fn count_visits(
    conn: &Connection,
    zone: &TimeZone,
) -> StorageResult<(TotalsAccumulator, u64)> {
    let mut totals = TotalsAccumulator::default();
    let mut stmt = conn.prepare(
        "SELECT department_id, section_id, employee_id, service_id,
                ended_at - clock_offset_ms, rating
         FROM visits",
    )?;
    let mut rows = stmt.query([])?;
    let mut count = 0u64;
    while let Some(row) = rows.next()? {
        let at: i64 = row.get(4)?;
        let keys = PeriodKeys::at(instant(at)?, zone);
        totals.add(
            &keys,
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(5)?,
        );
        count += 1;
    }
    Ok((totals, count))
}

/// The column of the totals tables (report and feedback alike) a report groups by.
pub(super) fn group_column(group: GroupBy) -> &'static str {
    match group {
        GroupBy::Department => "department_id",
        GroupBy::Section => "section_id",
        GroupBy::Employee => "employee_id",
        GroupBy::Service => "service_id",
        GroupBy::Period => "period",
        GroupBy::Total => "0",
    }
}

/// Records the time zone the totals are kept in.
pub fn set_totals_zone(conn: &Connection, zone: &TimeZone) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO report_meta (key, value) VALUES ('time_zone', ?1)",
        [zone_name(zone)],
    )?;
    Ok(())
}

/// Which Плохо visits a query means (`?1`–`?9`, bound by [`bad_visit_params`]); `after` is
/// the comparison that takes the visits after the cursor in the list's order.
fn bad_visit_where(after: &str) -> String {
    format!(
        "WHERE v.rating = 1
           AND (?1 IS NULL OR v.department_id = ?1) AND (?2 IS NULL OR v.section_id = ?2)
           AND (?3 IS NULL OR v.employee_id = ?3) AND (?4 IS NULL OR v.service_id = ?4)
           AND CASE ?5 WHEN 0 THEN 1 WHEN 1 THEN vd.visit_id IS NULL
                       WHEN 2 THEN vd.correct = 1 ELSE vd.correct = 0 END
           AND CASE ?6 WHEN 0 THEN 1 WHEN 1 THEN r.visit_id IS NOT NULL AND r.purged_at IS NULL
                       ELSE r.visit_id IS NULL OR r.purged_at IS NOT NULL END
           AND (?7 IS NULL OR v.ended_at - v.clock_offset_ms >= ?7)
           AND (?8 IS NULL OR v.ended_at - v.clock_offset_ms < ?8)
           AND (?10 IS NULL OR v.received_at < ?10)
           AND (?11 IS NULL OR v.employee_id <> ?11)
           AND (?9 IS NULL OR (v.ended_at - v.clock_offset_ms, v.id) {after}
                (SELECT c.ended_at - c.clock_offset_ms, c.id FROM visits c WHERE c.id = ?9))"
    )
}

fn bad_visit_params(query: &BadVisitQuery) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value;
    let f = &query.filter;
    let optional = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let verdict = match query.verdict {
        VerdictFilter::Any => 0,
        VerdictFilter::Undecided => 1,
        VerdictFilter::Correct => 2,
        VerdictFilter::Wrong => 3,
    };
    let recording = match query.recording {
        RecordingFilter::Any => 0,
        RecordingFilter::With => 1,
        RecordingFilter::Without => 2,
    };
    vec![
        optional(f.department_id),
        optional(f.section_id),
        optional(f.employee_id),
        optional(f.service_id),
        Value::Integer(verdict),
        Value::Integer(recording),
        optional(query.rated_from.map(ms)),
        optional(query.rated_before.map(ms)),
        query
            .after
            .map_or(Value::Null, |id| Value::Blob(id.as_bytes().to_vec())),
        optional(query.received_before.map(ms)),
        optional(query.except_employee),
    ]
}

const BAD_VISIT_SELECT: &str = "
    SELECT v.id, v.department_id, v.section_id, s.name, v.employee_id, e.full_name, v.service_id,
           sv.name, v.ended_at - v.clock_offset_ms, v.has_recording, r.visit_id IS NOT NULL,
           r.duration_ms, r.purged_at, vd.correct, vd.comment, vd.account_id, a.display_name,
           vd.decided_at, max(v.ended_at - v.started_at, 0), v.received_at
    FROM visits v
    JOIN sections s ON s.id = v.section_id
    JOIN employees e ON e.id = v.employee_id
    JOIN services sv ON sv.id = v.service_id
    LEFT JOIN recordings r ON r.visit_id = v.id
    LEFT JOIN verdicts vd ON vd.visit_id = v.id
    LEFT JOIN accounts a ON a.id = vd.account_id";

fn bad_visit_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<BadVisitRow> {
    Ok(BadVisitRow {
        visit_id: row.get(0)?,
        department_id: row.get(1)?,
        section_id: row.get(2)?,
        section_name: row.get(3)?,
        employee_id: row.get(4)?,
        employee_name: row.get(5)?,
        service_id: row.get(6)?,
        service_name: row.get(7)?,
        rated_at: row.get(8)?,
        has_recording: row.get(9)?,
        stored: row.get(10)?,
        duration_ms: row.get(11)?,
        purged_at: row.get(12)?,
        correct: row.get(13)?,
        comment: row.get(14)?,
        decided_by_id: row.get(15)?,
        decided_by: row.get(16)?,
        decided_at: row.get(17)?,
        served_ms: row.get(18)?,
        received_at: row.get(19)?,
    })
}

struct BadVisitRow {
    visit_id: Uuid,
    department_id: i64,
    section_id: i64,
    section_name: String,
    employee_id: i64,
    employee_name: String,
    service_id: i64,
    service_name: String,
    rated_at: i64,
    has_recording: bool,
    stored: bool,
    duration_ms: Option<u64>,
    purged_at: Option<i64>,
    correct: Option<bool>,
    comment: Option<String>,
    decided_by_id: Option<i64>,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    served_ms: u64,
    received_at: i64,
}

impl BadVisitRow {
    fn finish(self) -> StorageResult<BadVisit> {
        let recording = match (self.stored, self.purged_at, self.duration_ms) {
            (true, Some(at), _) => RecordingState::Purged { at: instant(at)? },
            (true, None, duration) => RecordingState::Stored {
                duration_ms: duration.unwrap_or(0),
            },
            (false, ..) if self.has_recording => RecordingState::Pending,
            (false, ..) => RecordingState::Missing,
        };
        let verdict = match (self.correct, self.decided_by_id, self.decided_at) {
            (Some(correct), Some(account_id), Some(at)) => Some(Verdict {
                correct,
                comment: self.comment.unwrap_or_default(),
                account_id,
                decided_by: self.decided_by.unwrap_or_default(),
                decided_at: instant(at)?,
            }),
            _ => None,
        };
        Ok(BadVisit {
            visit_id: self.visit_id,
            department_id: self.department_id,
            section_id: self.section_id,
            section_name: self.section_name,
            employee_id: self.employee_id,
            employee_name: self.employee_name,
            service_id: self.service_id,
            service_name: self.service_name,
            rated_at: instant(self.rated_at)?,
            received_at: instant(self.received_at)?,
            served_ms: self.served_ms,
            recording,
            verdict,
        })
    }
}

impl ReportStore for SqliteStorage {
    fn totals(
        &self,
        filter: &ReportFilter,
        group: GroupBy,
        span: PeriodSpan,
    ) -> StorageResult<Vec<(i64, Tally)>> {
        // Per-section totals answer whatever does not need the employee or the service.
        let by_section = filter.employee_id.is_none()
            && filter.service_id.is_none()
            && !matches!(group, GroupBy::Employee | GroupBy::Service);
        let key = group_column(group);
        let sql = if by_section {
            format!(
                "SELECT {key}, sum(visits), sum(good), sum(medium), sum(bad)
                 FROM report_section_totals
                 WHERE level = ?1 AND period BETWEEN ?2 AND ?3
                   AND (?4 IS NULL OR department_id = ?4) AND (?5 IS NULL OR section_id = ?5)
                 GROUP BY 1"
            )
        } else {
            format!(
                "SELECT {key}, sum(visits), sum(good), sum(medium), sum(bad)
                 FROM report_totals
                 WHERE level = ?1 AND period BETWEEN ?2 AND ?3
                   AND (?4 IS NULL OR department_id = ?4) AND (?5 IS NULL OR section_id = ?5)
                   AND (?6 IS NULL OR employee_id = ?6) AND (?7 IS NULL OR service_id = ?7)
                 GROUP BY 1"
            )
        };
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut bind = vec![
            rusqlite::types::Value::Integer(span.level.code()),
            rusqlite::types::Value::Integer(span.from),
            rusqlite::types::Value::Integer(span.to),
        ];
        let optional = |id: Option<i64>| {
            id.map_or(
                rusqlite::types::Value::Null,
                rusqlite::types::Value::Integer,
            )
        };
        bind.push(optional(filter.department_id));
        bind.push(optional(filter.section_id));
        if !by_section {
            bind.push(optional(filter.employee_id));
            bind.push(optional(filter.service_id));
        }
        let rows = stmt
            .query_map(rusqlite::params_from_iter(bind), |row| {
                Ok((
                    row.get(0)?,
                    Tally {
                        visits: row.get(1)?,
                        good: row.get(2)?,
                        medium: row.get(3)?,
                        bad: row.get(4)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn rebuild_totals(&self) -> StorageResult<u64> {
        self.write(|tx| {
            tx.execute("DELETE FROM report_totals", [])?;
            tx.execute("DELETE FROM report_section_totals", [])?;
            let (mut totals, count) = count_visits(tx, &self.zone)?;
            totals.flush(tx)?;
            super::feedback::rebuild_totals(tx, &self.zone)?;
            set_totals_zone(tx, &self.zone)?;
            Ok(count)
        })
    }

    fn bad_visits(&self, query: &BadVisitQuery) -> StorageResult<Vec<BadVisit>> {
        let conn = self.reader()?;
        // The two orders are two statements (each cached): SQLite cannot bind a direction.
        let (order, after) = if query.oldest_first {
            ("ASC", ">")
        } else {
            ("DESC", "<")
        };
        let mut stmt = conn.prepare_cached(&format!(
            "{BAD_VISIT_SELECT} {}
             ORDER BY v.ended_at - v.clock_offset_ms {order}, v.id {order}
             LIMIT ?12 OFFSET ?13",
            bad_visit_where(after)
        ))?;
        let mut bind = bad_visit_params(query);
        bind.push(query.limit.into());
        bind.push(query.offset.into());
        let rows = stmt
            .query_map(rusqlite::params_from_iter(bind), bad_visit_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(BadVisitRow::finish).collect()
    }

    fn bad_visit_count(&self, query: &BadVisitQuery) -> StorageResult<u64> {
        let conn = self.reader()?;
        let query = BadVisitQuery {
            after: None,
            ..*query
        };
        let count: i64 = conn
            .prepare_cached(&format!(
                "SELECT count(*) FROM visits v
                 LEFT JOIN recordings r ON r.visit_id = v.id
                 LEFT JOIN verdicts vd ON vd.visit_id = v.id {}",
                bad_visit_where("<")
            ))?
            .query_row(
                rusqlite::params_from_iter(bad_visit_params(&query)),
                |row| row.get(0),
            )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    fn bad_visit(&self, visit_id: Uuid) -> StorageResult<Option<BadVisit>> {
        let conn = self.reader()?;
        conn.prepare_cached(&format!(
            "{BAD_VISIT_SELECT} WHERE v.id = ?1 AND v.rating = 1"
        ))?
        .query_row([visit_id], bad_visit_from_row)
        .optional()?
        .map(BadVisitRow::finish)
        .transpose()
    }

    fn record_verdict(
        &self,
        visit_id: Uuid,
        account_id: i64,
        correct: bool,
        comment: &str,
        now: Timestamp,
    ) -> StorageResult<()> {
        self.write(|tx| {
            let bad: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM visits WHERE id = ?1 AND rating = 1",
                    [visit_id],
                    |row| row.get(0),
                )
                .optional()?;
            if bad.is_none() {
                return Err(StorageError::NotFound("visit rated Плохо"));
            }
            let verdict = params![visit_id, correct, comment, account_id, ms(now)];
            tx.execute(
                "INSERT OR REPLACE INTO verdicts (visit_id, correct, comment, account_id, decided_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                verdict,
            )?;
            tx.execute(
                "INSERT INTO verdict_history (visit_id, correct, comment, account_id, decided_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                verdict,
            )?;
            Ok(())
        })
    }

    fn review_facts(&self, filter: &ReportFilter) -> StorageResult<Vec<ReviewFact>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare_cached(
                "SELECT v.department_id, v.section_id, v.employee_id,
                        v.ended_at - v.clock_offset_ms, v.received_at,
                        (SELECT min(h.decided_at) FROM verdict_history h WHERE h.visit_id = v.id),
                        vd.correct
                 FROM visits v LEFT JOIN verdicts vd ON vd.visit_id = v.id
                 WHERE v.rating = 1
                   AND (?1 IS NULL OR v.department_id = ?1) AND (?2 IS NULL OR v.section_id = ?2)
                   AND (?3 IS NULL OR v.employee_id = ?3) AND (?4 IS NULL OR v.service_id = ?4)",
            )?
            .query_map(
                params![
                    filter.department_id,
                    filter.section_id,
                    filter.employee_id,
                    filter.service_id
                ],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                        row.get::<_, Option<bool>>(6)?,
                    ))
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(
                |(department_id, section_id, employee_id, rated, received, first, correct)| {
                    Ok(ReviewFact {
                        department_id,
                        section_id,
                        employee_id,
                        rated_at: instant(rated)?,
                        received_at: instant(received)?,
                        first_verdict_at: super::optional_instant(first)?,
                        correct,
                    })
                },
            )
            .collect()
    }

    fn verdict_history(&self, visit_id: Uuid) -> StorageResult<Vec<Verdict>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare_cached(
                "SELECT h.correct, h.comment, h.account_id, a.display_name, h.decided_at
                 FROM verdict_history h JOIN accounts a ON a.id = h.account_id
                 WHERE h.visit_id = ?1 ORDER BY h.id",
            )?
            .query_map([visit_id], |row| {
                Ok((
                    row.get::<_, bool>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(correct, comment, account_id, decided_by, at)| {
                Ok(Verdict {
                    correct,
                    comment,
                    account_id,
                    decided_by,
                    decided_at: instant(at)?,
                })
            })
            .collect()
    }
}
