//! Recording uploads, stored recordings and the retention rule's marks.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

use super::{SqliteStorage, instant, ms, unique};
use crate::analysis::Analysis;
use crate::storage::*;

impl RecordingStore for SqliteStorage {
    fn recording_upload(&self, visit_id: Uuid) -> StorageResult<Option<UploadPromise>> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT size_bytes, sha256 FROM recording_uploads WHERE visit_id = ?1",
                [visit_id],
                |row| {
                    Ok(UploadPromise {
                        size_bytes: row.get(0)?,
                        sha256: row.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    fn begin_recording_upload(
        &self,
        visit_id: Uuid,
        promise: &UploadPromise,
        now: Timestamp,
    ) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO recording_uploads (visit_id, size_bytes, sha256, started_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![visit_id, promise.size_bytes, promise.sha256, ms(now)],
            )?;
            Ok(())
        })
    }

    fn abandon_recording_upload(&self, visit_id: Uuid) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM recording_uploads WHERE visit_id = ?1",
                [visit_id],
            )?;
            Ok(())
        })
    }

    fn unfinished_upload_bytes(&self, tablet_id: i64, except: Uuid) -> StorageResult<u64> {
        let conn = self.reader()?;
        let bytes: i64 = conn
            .prepare_cached(
                "SELECT coalesce(sum(u.size_bytes), 0) FROM recording_uploads u
                 JOIN visits v ON v.id = u.visit_id
                 WHERE v.tablet_id = ?1 AND u.visit_id <> ?2",
            )?
            .query_row(params![tablet_id, except], |row| row.get(0))?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    fn uploads_begun_before(&self, before: Timestamp) -> StorageResult<Vec<Uuid>> {
        let conn = self.reader()?;
        let ids = conn
            .prepare_cached("SELECT visit_id FROM recording_uploads WHERE started_at < ?1")?
            .query_map([ms(before)], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<Uuid>>>()?;
        Ok(ids)
    }

    fn complete_recording(&self, visit_id: Uuid, recording: &StoredRecording) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO recordings (visit_id, size_bytes, sha256, duration_ms, stored_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    visit_id,
                    recording.size_bytes,
                    recording.sha256,
                    recording.duration_ms,
                    ms(recording.stored_at)
                ],
            )
            .map_err(unique("recording"))?;
            tx.execute(
                "DELETE FROM recording_uploads WHERE visit_id = ?1",
                [visit_id],
            )?;
            Ok(())
        })
    }

    fn recording(&self, visit_id: Uuid) -> StorageResult<Option<StoredRecording>> {
        let conn = self.reader()?;
        let row: Option<(u64, String, u64, i64)> = conn
            .query_row(
                "SELECT size_bytes, sha256, duration_ms, stored_at FROM recordings WHERE visit_id = ?1",
                [visit_id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        row.map(|(size_bytes, sha256, duration_ms, stored_at)| {
            Ok(StoredRecording {
                size_bytes,
                sha256,
                duration_ms,
                stored_at: instant(stored_at)?,
            })
        })
        .transpose()
    }

    fn recording_ids(&self) -> StorageResult<Vec<Uuid>> {
        let conn = self.reader()?;
        let ids = conn
            .prepare_cached("SELECT visit_id FROM recordings ORDER BY visit_id")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<Uuid>>>()?;
        Ok(ids)
    }

    fn recordings_rated_before(
        &self,
        rated_before: Timestamp,
        limit: u32,
    ) -> StorageResult<Vec<Uuid>> {
        let conn = self.reader()?;
        let ids = conn
            .prepare_cached(
                "SELECT r.visit_id FROM recordings r JOIN visits v ON v.id = r.visit_id
                 WHERE r.purged_at IS NULL AND v.ended_at - v.clock_offset_ms < ?1
                 LIMIT ?2",
            )?
            .query_map(params![ms(rated_before), limit], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<Uuid>>>()?;
        Ok(ids)
    }

    fn mark_recording_purged(&self, visit_id: Uuid, now: Timestamp) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE recordings SET purged_at = ?1 WHERE visit_id = ?2 AND purged_at IS NULL",
                params![ms(now), visit_id],
            )?;
            // The waveform and the speech are the recording's shadow: they go with it.
            tx.execute(
                "DELETE FROM recording_analysis WHERE visit_id = ?1",
                [visit_id],
            )?;
            Ok(())
        })
    }

    fn store_recording_analysis(
        &self,
        visit_id: Uuid,
        analysis: Option<&Analysis>,
    ) -> StorageResult<()> {
        let json = analysis
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StorageError::Corrupt(format!("analysis not serialisable: {e}")))?;
        self.write(|tx| {
            // Only while the recording is stored: an analysis that finishes after retention
            // purged its audio must not outlive it.
            let inserted = tx.execute(
                "INSERT OR REPLACE INTO recording_analysis (visit_id, analysis)
                 SELECT visit_id, ?2 FROM recordings WHERE visit_id = ?1 AND purged_at IS NULL",
                params![visit_id, json],
            )?;
            if inserted == 0 {
                return Err(StorageError::NotFound("stored recording"));
            }
            Ok(())
        })
    }

    fn recordings_awaiting_analysis(&self, limit: u32) -> StorageResult<Vec<Uuid>> {
        let conn = self.reader()?;
        let ids = conn
            .prepare_cached(
                "SELECT r.visit_id FROM recordings r
                 WHERE r.purged_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM recording_analysis a WHERE a.visit_id = r.visit_id)
                 ORDER BY r.stored_at DESC
                 LIMIT ?1",
            )?
            .query_map([limit], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<Uuid>>>()?;
        Ok(ids)
    }

    fn recording_analysis(&self, visit_id: Uuid) -> StorageResult<Option<Analysis>> {
        let conn = self.reader()?;
        let json: Option<String> = conn
            .prepare_cached(
                "SELECT a.analysis FROM recording_analysis a
                 JOIN recordings r ON r.visit_id = a.visit_id
                 WHERE a.visit_id = ?1 AND r.purged_at IS NULL",
            )?
            .query_row([visit_id], |row| row.get::<_, Option<String>>(0))
            .optional()?
            .flatten();
        json.map(|json| {
            serde_json::from_str(&json)
                .map_err(|e| StorageError::Corrupt(format!("recording analysis: {e}")))
        })
        .transpose()
    }
}
