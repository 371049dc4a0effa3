//! Visits: ingest, and reading them back.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Transaction, params};
use shared_model::{Rating, Visit};
use uuid::Uuid;

use super::reports::TotalsAccumulator;
use super::{SqliteStorage, instant, ms};
use crate::domain::acceptance::{Judgement, LONGEST_VISIT, PairingFacts, StoredVisit, VisitFacts};
use crate::reports::{PeriodKeys, visit_instant_ms};
use crate::storage::*;

/// What the acceptance rule needs to know of a pairing.
fn pairing_facts(tx: &Transaction<'_>, id: Uuid) -> StorageResult<Option<PairingFacts>> {
    let row = tx
        .prepare_cached(
            "SELECT tablet_id, employee_id, section_id, department_id, started_at,
                    end_acknowledged_at
             FROM pairings WHERE id = ?1",
        )?
        .query_row([id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Option<i64>>(5)?,
            ))
        })
        .optional()?;
    let Some((tablet_id, employee_id, section_id, department_id, started_at, acknowledged)) = row
    else {
        return Ok(None);
    };
    let services = tx
        .prepare_cached("SELECT service_id FROM pairing_services WHERE pairing_id = ?1")?
        .query_map([id], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(Some(PairingFacts {
        tablet_id,
        employee_id,
        section_id,
        department_id,
        services,
        started_at: instant(started_at)?,
        end_acknowledged_at: acknowledged.map(instant).transpose()?,
    }))
}

/// Whether a stored visit of the tablet overlaps `[start, end]` in corrected time. Closed
/// intervals: two visits at the same instant overlap, however short.
fn overlaps_stored(
    tx: &Transaction<'_>,
    tablet_id: i64,
    (start, end): (Timestamp, Timestamp),
) -> StorageResult<bool> {
    let found: Option<i64> = tx
        .prepare_cached(
            "SELECT 1 FROM visits
             WHERE tablet_id = ?1
               AND ended_at - clock_offset_ms >= ?2 AND ended_at - clock_offset_ms <= ?3 + ?4
               AND started_at - clock_offset_ms <= ?3
             LIMIT 1",
        )?
        .query_row(
            // A stored visit lasts at most LONGEST_VISIT: one that overlaps ends before this.
            params![
                tablet_id,
                ms(start),
                ms(end),
                LONGEST_VISIT.as_millis() as i64
            ],
            |row| row.get(0),
        )
        .optional()?;
    Ok(found.is_some())
}

/// The columns [`VisitRow::read`] reads, in its order.
const VISIT_COLUMNS: &str = "id, pairing_id, service_id, started_at, ended_at, rating, \
     has_recording, tablet_id, employee_id, section_id, department_id, received_at, \
     clock_offset_ms";

/// A `visits` row as read, before its instants and rating are checked.
struct VisitRow {
    id: Uuid,
    pairing_id: Uuid,
    service_id: i64,
    started_at: i64,
    ended_at: i64,
    rating: Option<u8>,
    has_recording: bool,
    tablet_id: i64,
    employee_id: i64,
    section_id: i64,
    department_id: i64,
    received_at: i64,
    clock_offset_ms: i64,
}

impl VisitRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            pairing_id: row.get(1)?,
            service_id: row.get(2)?,
            started_at: row.get(3)?,
            ended_at: row.get(4)?,
            rating: row.get(5)?,
            has_recording: row.get(6)?,
            tablet_id: row.get(7)?,
            employee_id: row.get(8)?,
            section_id: row.get(9)?,
            department_id: row.get(10)?,
            received_at: row.get(11)?,
            clock_offset_ms: row.get(12)?,
        })
    }

    fn visit(&self) -> StorageResult<Visit> {
        let rating = self
            .rating
            .map(Rating::try_from)
            .transpose()
            .map_err(|_| StorageError::Corrupt(format!("rating of visit {}", self.id)))?;
        Ok(Visit {
            id: self.id,
            pairing_id: self.pairing_id,
            service_id: self.service_id,
            started_at: instant(self.started_at)?,
            ended_at: instant(self.ended_at)?,
            rating,
            has_recording: self.has_recording,
        })
    }

    fn record(self) -> StorageResult<VisitRecord> {
        Ok(VisitRecord {
            visit: self.visit()?,
            tablet_id: self.tablet_id,
            employee_id: self.employee_id,
            section_id: self.section_id,
            department_id: self.department_id,
            received_at: instant(self.received_at)?,
            clock_offset_ms: self.clock_offset_ms,
        })
    }
}

impl VisitStore for SqliteStorage {
    fn ingest(&self, sync: &IngestBatch<'_>, judge: &Judge<'_>) -> StorageResult<Ingested> {
        self.write(|tx| {
            let received_at = ms(sync.received_at);
            let mut totals = TotalsAccumulator::default();
            let mut newly_stored = Vec::new();
            let mut pairings: HashMap<Uuid, Option<PairingFacts>> = HashMap::new();
            let mut existing = tx.prepare_cached(&format!(
                "SELECT {VISIT_COLUMNS} FROM visits WHERE id = ?1"
            ))?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO visits (id, pairing_id, tablet_id, employee_id, section_id, department_id,
                                     service_id, started_at, ended_at, rating, has_recording,
                                     received_at, clock_offset_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            let mut outcomes = Vec::with_capacity(sync.visits.len());
            for visit in sync.visits {
                let stored = existing
                    .query_row([visit.id], VisitRow::read)
                    .optional()?
                    .map(|row| {
                        Ok::<_, StorageError>(StoredVisit {
                            visit: row.visit()?,
                            tablet_id: row.tablet_id,
                        })
                    })
                    .transpose()?;
                if let Entry::Vacant(slot) = pairings.entry(visit.pairing_id) {
                    slot.insert(pairing_facts(tx, visit.pairing_id)?);
                }
                let mut facts = VisitFacts {
                    tablet_id: sync.tablet_id,
                    visit,
                    stored: stored.as_ref(),
                    pairing: pairings.get(&visit.pairing_id).and_then(Option::as_ref),
                    received_at: sync.received_at,
                    clock_offset_ms: sync.clock_offset_ms,
                    overlaps: false,
                };
                // A visit already stored is judged by its id alone.
                if facts.stored.is_none() {
                    facts.overlaps = overlaps_stored(tx, sync.tablet_id, facts.corrected())?;
                }
                let judgement = judge(&facts);
                if let Judgement::Store(place) = &judgement {
                    let score = visit.rating.map(Rating::score);
                    insert.execute(params![
                        visit.id,
                        visit.pairing_id,
                        sync.tablet_id,
                        place.employee_id,
                        place.section_id,
                        place.department_id,
                        visit.service_id,
                        ms(visit.started_at),
                        ms(visit.ended_at),
                        score,
                        visit.has_recording,
                        received_at,
                        sync.clock_offset_ms
                    ])?;
                    let at_ms = visit_instant_ms(ms(visit.ended_at), sync.clock_offset_ms);
                    let at = Timestamp::from_millisecond(at_ms).unwrap_or(visit.ended_at);
                    totals.add(
                        &PeriodKeys::at(at, &self.zone),
                        place.department_id,
                        place.section_id,
                        place.employee_id,
                        visit.service_id,
                        score,
                    );
                    newly_stored.push(VisitPlace {
                        visit_id: visit.id,
                        department_id: place.department_id,
                        section_id: place.section_id,
                        employee_id: place.employee_id,
                        rating: score,
                        at,
                    });
                }
                outcomes.push(judgement.outcome());
            }
            let health = sync.health;
            tx.execute(
                "UPDATE tablets SET last_seen_at = ?1, app_version = ?2, queue_length = ?3,
                        recordings_pending = ?4, free_storage_bytes = ?5, microphone = ?6,
                        clock_offset_ms = ?7
                 WHERE id = ?8",
                params![
                    received_at,
                    health.app_version,
                    health.queue_length,
                    health.recordings_pending,
                    i64::try_from(health.free_storage_bytes).unwrap_or(i64::MAX),
                    health.microphone.as_str(),
                    sync.clock_offset_ms,
                    sync.tablet_id
                ],
            )?;
            tx.execute(
                "INSERT INTO sync_log (tablet_id, received_at, clock_offset_ms, visits)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    sync.tablet_id,
                    received_at,
                    sync.clock_offset_ms,
                    sync.visits.len() as i64
                ],
            )?;
            totals.flush(tx)?;
            Ok(Ingested {
                outcomes,
                stored: newly_stored,
            })
        })
    }

    fn visit_of_tablet(&self, visit_id: Uuid, tablet_id: i64) -> StorageResult<Option<Visit>> {
        let conn = self.reader()?;
        conn.prepare_cached(&format!(
            "SELECT {VISIT_COLUMNS} FROM visits WHERE id = ?1 AND tablet_id = ?2"
        ))?
        .query_row(params![visit_id, tablet_id], VisitRow::read)
        .optional()?
        .map(|row| row.visit())
        .transpose()
    }

    fn visits(&self, tablet_id: Option<i64>) -> StorageResult<Vec<VisitRecord>> {
        let conn = self.reader()?;
        let rows = conn
            .prepare_cached(&format!(
                "SELECT {VISIT_COLUMNS} FROM visits WHERE ?1 IS NULL OR tablet_id = ?1 ORDER BY id"
            ))?
            .query_map([tablet_id], VisitRow::read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(VisitRow::record).collect()
    }
}
