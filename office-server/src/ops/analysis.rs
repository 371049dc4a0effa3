//! The player's analysis of each stored recording: made right after the upload finishes, and
//! by a periodic pass for any recording still without one (the server stopped in between, or
//! the recording predates the analysis).

use std::time::Instant;

use uuid::Uuid;

use crate::analysis::analyse_file;
use crate::recordings::RecordingFiles;
use crate::storage::{Storage, StorageError};

/// Recordings one pass analyses at most; the rest wait for the next.
pub const PER_PASS: u32 = 50;

/// Analyses one stored recording and keeps the result. A recording that cannot be decoded is
/// noted as such (the page shows the plain player) rather than failing: the audio itself was
/// already accepted.
pub fn analyse_recording(
    db: &dyn Storage,
    files: &RecordingFiles,
    visit_id: Uuid,
) -> Result<(), StorageError> {
    let started = Instant::now();
    let analysis = match analyse_file(&files.final_path(visit_id)) {
        Ok(analysis) => Some(analysis),
        Err(error) => {
            tracing::warn!(%visit_id, %error, "recording not analysed; the plain player serves it");
            None
        }
    };
    match db.store_recording_analysis(visit_id, analysis.as_ref()) {
        // Purged while it was being analysed: nothing to keep.
        Err(StorageError::NotFound(_)) => return Ok(()),
        other => other?,
    }
    if let Some(analysis) = &analysis {
        tracing::debug!(
            %visit_id,
            duration_ms = analysis.duration_ms,
            speech = analysis.speech.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "recording analysed"
        );
    }
    Ok(())
}

/// Analyses up to [`PER_PASS`] recordings that have none yet; returns how many.
pub fn catch_up(db: &dyn Storage, files: &RecordingFiles) -> Result<u64, StorageError> {
    let waiting = db.recordings_awaiting_analysis(PER_PASS)?;
    for &visit_id in &waiting {
        analyse_recording(db, files, visit_id)?;
    }
    Ok(waiting.len() as u64)
}
