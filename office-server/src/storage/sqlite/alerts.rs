//! Alerts about an employee's share of Плохо.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStorage, instant, ms, optional_instant};
use crate::storage::*;

/// The ratings of an employee in a window: the latest 500 at most, which no real desk reaches
/// in minutes but which bounds the work of a pathological backlog.
const WINDOW_COUNT: &str = "
    SELECT count(*), coalesce(sum(rating = 1), 0) FROM (
        SELECT rating FROM visits
        WHERE employee_id = ?1 AND ended_at - clock_offset_ms > ?2
          AND ended_at - clock_offset_ms <= ?3 AND rating IS NOT NULL
        ORDER BY ended_at - clock_offset_ms DESC LIMIT 500)";

const ALERT_SELECT: &str = "
    SELECT al.id, al.employee_id, e.full_name, al.section_id, s.name, al.department_id,
           al.window_start, al.window_end, al.rated, al.bad, al.raised_at, al.acknowledged_at,
           a.display_name
    FROM alerts al
    JOIN employees e ON e.id = al.employee_id
    JOIN sections s ON s.id = al.section_id
    LEFT JOIN accounts a ON a.id = al.acknowledged_by";

type AlertRow = (
    i64,
    i64,
    String,
    i64,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn alert_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
    ))
}

fn finish_alert(r: AlertRow) -> StorageResult<Alert> {
    Ok(Alert {
        id: r.0,
        employee_id: r.1,
        employee_name: r.2,
        section_id: r.3,
        section_name: r.4,
        department_id: r.5,
        window_start: instant(r.6)?,
        window_end: instant(r.7)?,
        rated: r.8,
        bad: r.9,
        raised_at: instant(r.10)?,
        acknowledged_at: optional_instant(r.11)?,
        acknowledged_by: r.12,
    })
}

fn load_alert(conn: &Connection, id: i64) -> StorageResult<Option<Alert>> {
    conn.prepare_cached(&format!("{ALERT_SELECT} WHERE al.id = ?1"))?
        .query_row([id], alert_from_row)
        .optional()?
        .map(finish_alert)
        .transpose()
}

impl AlertStore for SqliteStorage {
    fn ratings_in_window(
        &self,
        employee_id: i64,
        start: Timestamp,
        end: Timestamp,
    ) -> StorageResult<WindowCount> {
        let conn = self.reader()?;
        Ok(conn.prepare_cached(WINDOW_COUNT)?.query_row(
            params![employee_id, ms(start), ms(end)],
            |row| {
                Ok(WindowCount {
                    rated: row.get(0)?,
                    bad: row.get(1)?,
                })
            },
        )?)
    }

    fn raise_alert(&self, alert: &NewAlert) -> StorageResult<Option<Alert>> {
        let (start, end) = (ms(alert.window_start), ms(alert.window_end));
        let id = self.write(|tx| {
            let covered: Option<i64> = tx
                .prepare_cached(
                    "SELECT id FROM alerts
                     WHERE employee_id = ?1 AND window_end > ?2 AND window_start < ?3 LIMIT 1",
                )?
                .query_row(params![alert.employee_id, start, end], |row| row.get(0))
                .optional()?;
            if covered.is_some() {
                return Ok(None);
            }
            // The alert belongs where the employee's latest visit in the window was made.
            let place: Option<(i64, i64)> = tx
                .prepare_cached(
                    "SELECT section_id, department_id FROM visits
                     WHERE employee_id = ?1 AND ended_at - clock_offset_ms > ?2
                       AND ended_at - clock_offset_ms <= ?3
                     ORDER BY ended_at - clock_offset_ms DESC LIMIT 1",
                )?
                .query_row(params![alert.employee_id, start, end], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            let Some((section_id, department_id)) = place else {
                return Err(StorageError::NotFound(
                    "visit of the employee in the window",
                ));
            };
            tx.execute(
                "INSERT INTO alerts (employee_id, section_id, department_id, window_start,
                                     window_end, rated, bad, raised_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    alert.employee_id,
                    section_id,
                    department_id,
                    start,
                    end,
                    alert.rated,
                    alert.bad,
                    ms(alert.raised_at)
                ],
            )?;
            Ok(Some(tx.last_insert_rowid()))
        })?;
        match id {
            Some(id) => self.alert(id),
            None => Ok(None),
        }
    }

    fn alerts(
        &self,
        filter: &ReportFilter,
        open_only: bool,
        limit: u32,
    ) -> StorageResult<Vec<Alert>> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "{ALERT_SELECT}
             WHERE (?1 IS NULL OR al.department_id = ?1) AND (?2 IS NULL OR al.section_id = ?2)
               AND (?3 IS NULL OR al.employee_id = ?3) AND (?4 = 0 OR al.acknowledged_at IS NULL)
             ORDER BY al.raised_at DESC, al.id DESC LIMIT ?5"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    filter.department_id,
                    filter.section_id,
                    filter.employee_id,
                    open_only,
                    limit
                ],
                alert_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(finish_alert).collect()
    }

    fn alert(&self, id: i64) -> StorageResult<Option<Alert>> {
        let conn = self.reader()?;
        load_alert(&conn, id)
    }

    fn acknowledge_alert(&self, id: i64, account_id: i64, now: Timestamp) -> StorageResult<bool> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE alerts SET acknowledged_at = ?1, acknowledged_by = ?2
                 WHERE id = ?3 AND acknowledged_at IS NULL",
                params![ms(now), account_id, id],
            )?;
            Ok(changed > 0)
        })
    }
}
