//! A tablet's sync: its visits are judged by the acceptance rule and stored in one
//! transaction; then the alert rule looks at each employee with new ratings, and the open
//! dashboards of the sections concerned are told.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use shared_model::{FeedbackLinks, MAX_SYNC_BATCH, SyncBatch, SyncResponse, VisitAck};
use uuid::Uuid;

use super::tablets::{EnrolmentError, check_device_text};
use crate::domain::acceptance::{self, Acceptance};
use crate::domain::alerts;
use crate::live::{LiveEvent, LiveHub};
use crate::storage::{Alert, AlertRule, IngestBatch, NewAlert, Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("a batch may carry at most {MAX_SYNC_BATCH} visits, this one has {0}")]
    TooManyVisits(usize),
    #[error("{0}")]
    BadHealth(String),
    #[error("feedback_key is not an Ed25519 public key in URL-safe base64")]
    BadFeedbackKey,
    #[error("the server's disk is full; nothing of this sync was kept, send it again later")]
    StorageFull,
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for SyncError {
    fn from(error: StorageError) -> Self {
        if error.is_disk_full() {
            SyncError::StorageFull
        } else {
            SyncError::Storage(error)
        }
    }
}

/// The rules a sync is judged by, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub acceptance: Acceptance,
    pub alert: AlertRule,
}

/// The tablet a sync comes from.
#[derive(Debug, Clone, Copy)]
pub struct SyncingTablet<'a> {
    pub id: i64,
    /// Whether it has registered its feedback key already.
    pub has_feedback_key: bool,
    /// Where feedback links lead (`{public_url}/f/`), if the server has a public address.
    pub feedback_base_url: Option<&'a str>,
}

/// Stores a sync and answers it. Every stored visit is durable before the answer exists.
pub fn sync(
    db: &dyn Storage,
    live: &LiveHub,
    rules: &Rules,
    tablet: SyncingTablet<'_>,
    batch: SyncBatch,
    received_at: Timestamp,
) -> Result<SyncResponse, SyncError> {
    let tablet_id = tablet.id;
    if batch.visits.len() > MAX_SYNC_BATCH {
        return Err(SyncError::TooManyVisits(batch.visits.len()));
    }
    check_device_text("health.app_version", &batch.health.app_version).map_err(
        |error| match error {
            EnrolmentError::Storage(error) => SyncError::Storage(error),
            other => SyncError::BadHealth(other.to_string()),
        },
    )?;
    let clock_offset_ms = batch
        .sent_at
        .duration_since(received_at)
        .as_millis()
        .clamp(i64::MIN.into(), i64::MAX.into()) as i64;
    // A tablet enrolled before feedback links existed registers its key here, once.
    let has_feedback_key = match &batch.feedback_key {
        Some(key) if !tablet.has_feedback_key => {
            let key = key.to_bytes().ok_or(SyncError::BadFeedbackKey)?;
            db.register_feedback_key(tablet_id, &key)?;
            tracing::info!(tablet_id, "feedback key registered");
            true
        }
        _ => tablet.has_feedback_key,
    };
    let ids: Vec<Uuid> = batch.visits.iter().map(|visit| visit.id).collect();
    let acceptance = rules.acceptance;
    let ingested = db.ingest(
        IngestBatch {
            tablet_id,
            received_at,
            clock_offset_ms,
            health: batch.health,
            visits: batch.visits,
        },
        Arc::new(move |facts| acceptance::judge(facts, &acceptance)),
    )?;
    let pairing = super::pairing::status(db, tablet_id, received_at)?;

    // Each employee's latest newly rated visit closes the window the alert rule looks at.
    let mut latest: BTreeMap<i64, Timestamp> = BTreeMap::new();
    for place in ingested.stored.iter().filter(|p| p.rating.is_some()) {
        let at = latest.entry(place.employee_id).or_insert(place.at);
        *at = (*at).max(place.at);
    }
    let mut raised = Vec::new();
    for (employee_id, window_end) in latest {
        if let Some(alert) = check_alert(db, &rules.alert, employee_id, window_end)? {
            raised.push(alert);
        }
    }

    // Committed: tell the open dashboards.
    let places: BTreeSet<(i64, i64)> = ingested
        .stored
        .iter()
        .map(|p| (p.department_id, p.section_id))
        .collect();
    for (department_id, section_id) in places {
        live.publish(LiveEvent::Visits {
            department_id,
            section_id,
        });
    }
    for alert in &raised {
        tracing::info!(
            alert = alert.id,
            employee_id = alert.employee_id,
            bad = alert.bad,
            rated = alert.rated,
            "alert raised: share of Плохо"
        );
        live.publish(LiveEvent::Alert {
            department_id: alert.department_id,
            section_id: alert.section_id,
            alert_id: alert.id,
        });
    }
    let results: Vec<VisitAck> = ids
        .into_iter()
        .zip(ingested.outcomes)
        .map(|(id, outcome)| VisitAck { id, outcome })
        .collect();
    tracing::debug!(
        tablet_id,
        visits = results.len(),
        stored = ingested.stored.len(),
        clock_offset_ms,
        "sync"
    );
    Ok(SyncResponse {
        server_time: received_at,
        clock_offset_ms,
        results,
        pairing,
        feedback_links: tablet
            .feedback_base_url
            .filter(|_| has_feedback_key)
            .map(|base_url| FeedbackLinks {
                base_url: base_url.to_string(),
                tablet_id,
            }),
    })
}

/// Raises an alert on the employee when the rule says so, unless one already covers the window.
fn check_alert(
    db: &dyn Storage,
    rule: &AlertRule,
    employee_id: i64,
    window_end: Timestamp,
) -> Result<Option<Alert>, StorageError> {
    let (start, end) = alerts::window(window_end, rule);
    let count = db.ratings_in_window(employee_id, start, end)?;
    if !alerts::is_due(count.rated, count.bad, rule) {
        return Ok(None);
    }
    db.raise_alert(&NewAlert {
        employee_id,
        window_start: start,
        window_end: end,
        rated: count.rated,
        bad: count.bad,
        raised_at: Timestamp::now(),
    })
}
