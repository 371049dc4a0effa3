use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{PairingStatus, Visit};

/// What the tablet says about itself at every sync; the server keeps the latest per tablet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TabletHealth {
    pub app_version: String,
    /// Visits waiting in the tablet's outbox, this batch included.
    pub queue_length: u32,
    /// Recordings waiting for upload.
    #[serde(default)]
    pub recordings_pending: u32,
    pub free_storage_bytes: u64,
    pub microphone: MicrophoneState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MicrophoneState {
    /// Permission granted and the last capture worked.
    Ok,
    /// The user or policy refused the microphone permission.
    PermissionDenied,
    /// Permission granted, but no input device could be opened.
    Unavailable,
    /// Not tried yet since start.
    Unknown,
}

impl MicrophoneState {
    pub fn as_str(self) -> &'static str {
        match self {
            MicrophoneState::Ok => "ok",
            MicrophoneState::PermissionDenied => "permission_denied",
            MicrophoneState::Unavailable => "unavailable",
            MicrophoneState::Unknown => "unknown",
        }
    }
}

/// `POST /api/tablet/sync`: up to [`crate::MAX_SYNC_BATCH`] visits and the tablet's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBatch {
    /// The tablet's clock when it sent the batch; the server derives the clock offset from it.
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: Timestamp,
    pub health: TabletHealth,
    pub visits: Vec<Visit>,
    /// The public key of the tablet's feedback links, sent until the server's answer carries
    /// [`SyncResponse::feedback_links`]: how a tablet enrolled before protocol 3 registers one.
    /// The server keeps the first key a tablet registers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_key: Option<crate::FeedbackKey>,
}

/// The server's answer to a sync: one result per visit, in the batch's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncResponse {
    #[schema(value_type = String, format = DateTime)]
    pub server_time: Timestamp,
    /// Tablet clock minus server clock, in milliseconds, as measured at this sync.
    pub clock_offset_ms: i64,
    pub results: Vec<VisitAck>,
    /// The state of the tablet's current pairing, so that a tablet learns when it has ended.
    pub pairing: PairingStatus,
    /// Where this tablet's feedback links lead: present once the server holds the tablet's key
    /// and has a public address (protocol 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_links: Option<crate::FeedbackLinks>,
}

impl SyncResponse {
    /// The answer as a tablet speaking `protocol` can read it.
    pub fn for_protocol(mut self, protocol: u32) -> Self {
        for ack in &mut self.results {
            if let VisitOutcome::Rejected { reason, .. } = &mut ack.outcome {
                *reason = reason.for_protocol(protocol);
            }
        }
        self.pairing = self.pairing.for_protocol(protocol);
        if protocol < 3 {
            self.feedback_links = None;
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VisitAck {
    pub id: Uuid,
    #[serde(flatten)]
    pub outcome: VisitOutcome,
}

/// What happened to one visit of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum VisitOutcome {
    /// Newly stored; safe to delete from the outbox.
    Stored,
    /// The same visit was stored before; safe to delete from the outbox.
    AlreadyStored,
    /// Refused for good; the tablet keeps it aside and does not resend it.
    Rejected {
        reason: RejectReason,
        message: String,
    },
}

impl VisitOutcome {
    /// Whether the server holds this visit now.
    pub fn is_stored(&self) -> bool {
        matches!(self, VisitOutcome::Stored | VisitOutcome::AlreadyStored)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The pairing id is not one the server issued to this tablet.
    UnknownPairing,
    /// The service was not offered under that pairing.
    UnknownService,
    /// A visit with this id was stored with different content.
    Conflict,
    /// Ends before it starts.
    InvalidInterval,
    /// Claims a recording although it is not rated Плохо.
    RecordingNotAllowed,
    /// The same id appears twice in one batch with different content.
    DuplicateInBatch,
    /// Ends before its pairing began (protocol 2).
    BeforePairing,
    /// Ends later than the server's clock when it arrived (protocol 2).
    InTheFuture,
    /// Made after the tablet was told its pairing had ended (protocol 2).
    AfterPairingEnded,
    /// Overlaps another visit of the same tablet (protocol 2).
    Overlapping,
    /// A reason this tablet app does not know yet (a newer server's).
    #[serde(other)]
    Unknown,
}

impl RejectReason {
    /// The reason as a tablet speaking `protocol` can read it: protocol 1 knows only the
    /// reasons it was built with, and reads the newer ones as an invalid interval (their
    /// message says what was wrong).
    pub fn for_protocol(self, protocol: u32) -> Self {
        match self {
            RejectReason::BeforePairing
            | RejectReason::InTheFuture
            | RejectReason::AfterPairingEnded
            | RejectReason::Overlapping
            | RejectReason::Unknown
                if protocol < 2 =>
            {
                RejectReason::InvalidInterval
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Fuzzing budget of the sync body decoder; printed so the closing note can cite it.
    const CASES: u32 = 20_000;

    const TEMPLATE: &str = r#"{"sent_at":"2026-11-24T05:00:00Z","health":{"app_version":"1.0.0","queue_length":2,"recordings_pending":0,"free_storage_bytes":123456,"microphone":"ok"},"visits":[{"id":"01936b2e-7f00-7000-8000-000000000001","pairing_id":"01936b2e-7f00-7000-8000-000000000002","service_id":3,"started_at":"2026-11-24T04:50:00Z","ended_at":"2026-11-24T05:00:00Z","rating":1,"has_recording":true},{"id":"01936b2e-7f00-7000-8000-000000000003","pairing_id":"01936b2e-7f00-7000-8000-000000000002","service_id":3,"started_at":"2026-11-24T04:50:00Z","ended_at":"2026-11-24T05:00:00Z","rating":null,"has_recording":false}]}"#;

    #[test]
    fn a_reason_a_tablet_does_not_know_is_read_as_unknown() {
        let reason: RejectReason = serde_json::from_str("\"something_new\"").unwrap();
        assert_eq!(reason, RejectReason::Unknown);
        assert_eq!(
            RejectReason::Overlapping.for_protocol(1),
            RejectReason::InvalidInterval
        );
        assert_eq!(
            RejectReason::Overlapping.for_protocol(2),
            RejectReason::Overlapping
        );
        assert_eq!(
            RejectReason::Conflict.for_protocol(1),
            RejectReason::Conflict
        );
    }

    #[test]
    fn the_template_decodes() {
        let batch: SyncBatch = serde_json::from_str(TEMPLATE).unwrap();
        assert_eq!(batch.visits.len(), 2);
        assert_eq!(batch.visits[0].rating, Some(crate::Rating::Bad));
        assert_eq!(batch.visits[1].rating, None);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = serde_json::from_slice::<SyncBatch>(&bytes);
        }

        #[test]
        fn decoding_a_mutated_batch_never_panics_and_re_encodes(
            flips in proptest::collection::vec((0..TEMPLATE.len(), any::<u8>()), 1..8),
        ) {
            let mut bytes = TEMPLATE.as_bytes().to_vec();
            for (at, value) in flips {
                bytes[at] = value;
            }
            if let Ok(batch) = serde_json::from_slice::<SyncBatch>(&bytes) {
                // Whatever decodes must survive a round trip unchanged.
                let again: SyncBatch = serde_json::from_str(&serde_json::to_string(&batch).unwrap()).unwrap();
                prop_assert_eq!(again, batch);
            }
        }
    }

    #[test]
    fn fuzz_budget_is_reported() {
        println!("sync body decoder fuzzing: {} inputs per run", 2 * CASES);
    }
}
