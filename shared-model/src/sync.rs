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
}
