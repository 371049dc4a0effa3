//! What the server tells the office's monitoring, in Prometheus' text format at `/metrics`.
//! Events are counted where they happen, through the `metrics` facade, into the process's one
//! recorder (metrics-exporter-prometheus, rendered by the route: no listener of its own).
//! What is a state rather than an event — tablets by state and their queues, open live
//! streams, the newest backup's age, free disk — is read when scraped.

use std::sync::OnceLock;

use jiff::Timestamp;
use metrics::{counter, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use shared_model::{RejectReason, VisitOutcome};

use crate::app::Shared;
use crate::domain::tablets::silent_tablets;
use crate::storage::StorageError;

pub const SYNC_REQUESTS: &str = "office_sync_requests_total";
pub const SYNC_SECONDS: &str = "office_sync_duration_seconds";
pub const VISITS: &str = "office_visits_total";
pub const VISITS_REJECTED: &str = "office_visits_rejected_total";
pub const UPLOAD_REQUESTS: &str = "office_recording_upload_requests_total";
pub const RECORDINGS_STORED: &str = "office_recordings_stored_total";
pub const RECORDING_BYTES: &str = "office_recording_bytes_total";
pub const RECORDINGS_REFUSED: &str = "office_recordings_refused_total";
pub const LOGIN_FAILURES: &str = "office_login_failures_total";
pub const LOGIN_THROTTLED: &str = "office_login_throttled_total";
pub const LIVE_STREAMS: &str = "office_live_streams";
pub const TABLETS: &str = "office_tablets";
pub const TABLET_QUEUE: &str = "office_tablet_queue_visits";
pub const TABLET_RECORDINGS_PENDING: &str = "office_tablet_recordings_pending";
pub const BACKUPS: &str = "office_backups";
pub const BACKUP_AGE: &str = "office_backup_age_seconds";
pub const DISK_FREE: &str = "office_disk_free_bytes";

/// Sync latencies, in seconds: a sync waits for its group commit (a few ms) and, at worst, a
/// slow disk.
const SYNC_BUCKETS: &[f64] = &[
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed the first time it is asked for (one per process, however
/// many servers a test runs in it).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder
            .set_buckets_for_metric(Matcher::Full(SYNC_SECONDS.to_string()), SYNC_BUCKETS)
        {
            Ok(with_buckets) => with_buckets,
            // Only an empty list is refused; the constant is not empty.
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder was installed first; /metrics stays empty");
        }
        handle
    })
}

/// Counts one visit's outcome in a sync's answer.
pub fn visit_outcome(outcome: &VisitOutcome) {
    match outcome {
        VisitOutcome::Stored => counter!(VISITS, "outcome" => "stored").increment(1),
        VisitOutcome::AlreadyStored => counter!(VISITS, "outcome" => "already_stored").increment(1),
        VisitOutcome::Rejected { reason, .. } => {
            counter!(VISITS, "outcome" => "rejected").increment(1);
            counter!(VISITS_REJECTED, "reason" => reason_label(*reason)).increment(1);
        }
    }
}

/// The reason as the protocol spells it (`conflict`, `unknown_service`, …).
fn reason_label(reason: RejectReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// The page `/metrics` serves: the counted events, and the states read now.
pub fn render(shared: &Shared) -> Result<String, StorageError> {
    let now = Timestamp::now();
    let tablets = shared.storage.tablets()?;
    let silent = silent_tablets(
        &tablets,
        now,
        &shared.calendar,
        &shared.config.working_hours,
        shared.config.tablet_silent_minutes,
    )
    .len();
    let revoked = tablets.iter().filter(|t| t.revoked_at.is_some()).count();
    gauge!(TABLETS, "state" => "active").set((tablets.len() - revoked - silent) as f64);
    gauge!(TABLETS, "state" => "silent").set(silent as f64);
    gauge!(TABLETS, "state" => "revoked").set(revoked as f64);
    for tablet in &tablets {
        let id = tablet.id.to_string();
        // A revoked tablet sends nothing more: what it last said is no longer waiting here.
        let (queue, pending) = match tablet.revoked_at {
            Some(_) => (0, 0),
            None => (
                tablet.queue_length.unwrap_or(0),
                tablet.recordings_pending.unwrap_or(0),
            ),
        };
        gauge!(TABLET_QUEUE, "tablet" => id.clone()).set(queue as f64);
        gauge!(TABLET_RECORDINGS_PENDING, "tablet" => id).set(pending as f64);
    }
    gauge!(LIVE_STREAMS).set(shared.live.open_streams() as f64);
    if let Ok(free) = shared.recordings.free_bytes() {
        gauge!(DISK_FREE).set(free as f64);
    }
    if shared.config.backup.enabled() {
        let backups = crate::backup::list(&shared.config.backup.dir).unwrap_or_default();
        gauge!(BACKUPS).set(backups.len() as f64);
        if let Some(newest) = backups.first() {
            gauge!(BACKUP_AGE).set(now.duration_since(newest.taken_at).as_secs_f64());
        }
    }
    Ok(handle().render())
}
