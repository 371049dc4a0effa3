//! The retention rule: recordings of visits rated more than `retention_days` ago are deleted by a
//! background task. The visit and its verdict stay; the dashboard says the file was removed by
//! the rule.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::app::AppState;
use crate::recordings::RecordingFiles;
use crate::storage::{Storage, StorageResult};

/// How many recordings one pass handles before it looks again.
const BATCH: u32 = 500;

/// Runs the purge now and then every `retention_check_minutes`, until aborted.
pub async fn run(state: AppState) {
    let every = Duration::from_secs(60 * u64::from(state.config.retention_check_minutes.max(1)));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let storage = std::sync::Arc::clone(&state.storage);
        let files = state.recordings.clone();
        let days = state.config.retention_days;
        let result = tokio::task::spawn_blocking(move || {
            purge(storage.as_ref(), &files, days, Timestamp::now())
        })
        .await;
        match result {
            Ok(Ok(0)) => {}
            Ok(Ok(purged)) => {
                tracing::info!(purged, days, "recordings deleted by the retention rule")
            }
            Ok(Err(error)) => tracing::warn!(%error, "retention pass failed; it runs again later"),
            Err(error) => tracing::warn!(%error, "retention pass panicked"),
        }
    }
}

/// Deletes the recordings of visits rated before `now - days`; returns how many.
///
/// The file goes first, then the row is marked: if the process stops in between, the next pass
/// finds the row unmarked, finds the file already gone, and marks it.
pub fn purge(
    storage: &dyn Storage,
    files: &RecordingFiles,
    days: u32,
    now: Timestamp,
) -> StorageResult<u64> {
    let cutoff = now
        .checked_sub(SignedDuration::from_hours(24 * i64::from(days)))
        .unwrap_or(Timestamp::MIN);
    let mut purged = 0u64;
    loop {
        let due = storage.recordings_rated_before(cutoff, BATCH)?;
        if due.is_empty() {
            return Ok(purged);
        }
        for visit_id in &due {
            files.delete(*visit_id)?;
            storage.mark_recording_purged(*visit_id, now)?;
            purged += 1;
        }
        if due.len() < BATCH as usize {
            return Ok(purged);
        }
    }
}
