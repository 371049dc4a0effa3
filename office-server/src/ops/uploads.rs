//! Unfinished recording uploads: a tablet that stops sending leaves its bytes behind. After
//! `uploads.abandoned_after_hours` they go, so the disk never fills with halves.

use std::io;

use jiff::{SignedDuration, Timestamp};

use crate::recordings::RecordingFiles;
use crate::storage::{Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ExpireError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot delete an abandoned upload: {0}")]
    Io(#[from] io::Error),
}

/// Deletes the uploads begun more than `after` ago and not finished — their rows and their
/// bytes — and any partial file left without a row for as long. Returns how many.
pub fn expire_abandoned(
    db: &dyn Storage,
    files: &RecordingFiles,
    after: SignedDuration,
    now: Timestamp,
) -> Result<u64, ExpireError> {
    let cutoff = now.checked_sub(after).unwrap_or(Timestamp::MIN);
    let mut expired = 0;
    for visit in db.uploads_begun_before(cutoff)? {
        // The file first: if the process stops in between, the row finds it gone next time.
        files.discard_partial(visit)?;
        db.abandon_recording_upload(visit)?;
        expired += 1;
    }
    let untouched_since = std::time::UNIX_EPOCH
        + std::time::Duration::from_millis(u64::try_from(cutoff.as_millisecond()).unwrap_or(0));
    for visit in files.partials_untouched_since(untouched_since)? {
        if db.recording_upload(visit)?.is_none() {
            files.discard_partial(visit)?;
            expired += 1;
        }
    }
    Ok(expired)
}
