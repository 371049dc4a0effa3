use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How much of a recording the server holds: the answer to both the status query and each
/// uploaded chunk. A tablet resumes at `received_bytes` and deletes its copy once `complete`
/// is true and `sha256` equals its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordingProgress {
    pub received_bytes: u64,
    pub complete: bool,
    /// Hex SHA-256 of the stored file, once complete.
    pub sha256: Option<String>,
    /// Duration of the stored audio in milliseconds, once complete.
    pub duration_ms: Option<u64>,
}
