//! Visits: reading them back. (Ingest, which writes them, is `ingest.rs`.)

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use shared_model::{Rating, Visit};
use uuid::Uuid;

use super::{SqliteStorage, instant};
use crate::storage::*;

/// The columns [`VisitRow::read`] reads, in its order.
pub(super) const VISIT_COLUMNS: &str = "id, pairing_id, service_id, started_at, ended_at, rating, \
     has_recording, tablet_id, employee_id, section_id, department_id, received_at, \
     clock_offset_ms";

/// A `visits` row as read, before its instants and rating are checked.
pub(super) struct VisitRow {
    id: Uuid,
    pairing_id: Uuid,
    service_id: i64,
    started_at: i64,
    ended_at: i64,
    rating: Option<u8>,
    has_recording: bool,
    pub(super) tablet_id: i64,
    employee_id: i64,
    section_id: i64,
    department_id: i64,
    received_at: i64,
    clock_offset_ms: i64,
}

impl VisitRow {
    pub(super) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
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

    pub(super) fn visit(&self) -> StorageResult<Visit> {
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
    fn ingest(&self, sync: IngestBatch, judge: Arc<Judge>) -> StorageResult<Ingested> {
        self.committer
            .as_ref()
            .ok_or(StorageError::ReadOnly)?
            .ingest(sync, judge)
    }

    fn commit_stats(&self) -> CommitStats {
        self.committer
            .as_ref()
            .map(super::ingest::Committer::stats)
            .unwrap_or_default()
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
