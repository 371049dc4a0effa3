//! The retention rule: recordings of visits rated more than `retention_days` ago are deleted by a
//! background task. The visit and its verdict stay; the dashboard says the file was removed by
//! the rule.

use jiff::{SignedDuration, Timestamp};

use crate::app::Shared;
use crate::recordings::RecordingFiles;
use crate::storage::{Storage, StorageResult};

/// How many recordings one pass handles before it looks again.
const BATCH: u32 = 500;

/// One pass of the rule, as the server's periodic job runs it.
pub fn pass(state: &Shared) -> StorageResult<u64> {
    let now = Timestamp::now();
    let days = |n: u32| SignedDuration::from_hours(24 * i64::from(n));
    let feedback = &state.config.feedback;
    let purged = state.storage.purge_feedback(
        now - days(feedback.unjoined_keep_days),
        now - days(feedback.comment_keep_days),
    )?;
    if purged != Default::default() {
        tracing::info!(
            unjoined = purged.unjoined,
            comments = purged.comments,
            "visitor feedback past its keeping time removed"
        );
    }
    let messages = state
        .storage
        .purge_sms_messages(now - days(state.config.sms.keep_messages_days))?;
    if messages > 0 {
        tracing::info!(messages, "SMS messages past sms.keep_messages_days deleted");
    }
    let numbers = state.storage.expire_sms_consents(now)?;
    if numbers > 0 {
        tracing::info!(
            numbers,
            "visitors' numbers past sms.keep_number_days deleted"
        );
    }
    purge(
        state.storage.as_ref(),
        &state.recordings,
        state.config.retention_days,
        now,
    )
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
