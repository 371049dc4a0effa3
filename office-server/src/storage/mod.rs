//! Everything the server keeps, behind one trait so that a PostgreSQL backend can follow the
//! SQLite one. Methods are blocking: the HTTP layer calls them on tokio's blocking pool.

mod sqlite;
mod types;

pub use sqlite::{SqliteStorage, configure_connection, migrations};
pub use types::*;

use jiff::Timestamp;
use shared_model::{PairingEndReason, PairingStatus, TabletHealth, Visit, VisitOutcome};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("could not open the data directory: {0}")]
    Io(#[from] std::io::Error),
    /// A uniqueness rule was broken (a login or a name that already exists).
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// A referenced row does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the checkpoint was blocked by a reader; the log stays for the next start")]
    CheckpointBlocked,
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// The server's persistent state. Every write that is acknowledged to a client is durable when
/// the method returns.
pub trait Storage: Send + Sync + 'static {
    // --- directory -------------------------------------------------------------------------
    fn create_department(&self, name: &str) -> StorageResult<i64>;
    fn create_section(&self, department_id: i64, name: &str) -> StorageResult<i64>;
    fn create_employee(
        &self,
        section_id: i64,
        full_name: &str,
        position: &str,
    ) -> StorageResult<i64>;
    fn create_service(&self, name: &str) -> StorageResult<i64>;
    /// Replaces the services a section offers, in display order.
    fn set_section_services(&self, section_id: i64, service_ids: &[i64]) -> StorageResult<()>;
    fn directory(&self) -> StorageResult<Directory>;
    fn counts(&self) -> StorageResult<Counts>;

    // --- accounts and sessions -------------------------------------------------------------
    fn create_account(&self, account: &NewAccount) -> StorageResult<i64>;
    fn account_credentials(&self, login: &str) -> StorageResult<Option<(Account, String)>>;
    fn create_session(
        &self,
        token_hash: &[u8; 32],
        account_id: i64,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StorageResult<()>;
    fn session_account(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<Account>>;
    fn delete_session(&self, token_hash: &[u8; 32]) -> StorageResult<()>;

    // --- tablets and enrolment -------------------------------------------------------------
    fn create_enrolment(&self, enrolment: &NewEnrolment) -> StorageResult<()>;
    /// Approves the open enrolment with this code and creates its tablet.
    fn approve_enrolment(
        &self,
        code: &str,
        tablet_name: &str,
        now: Timestamp,
    ) -> StorageResult<i64>;
    fn enrolment_state(&self, id: Uuid, now: Timestamp) -> StorageResult<Option<EnrolmentState>>;
    /// Sets a fresh credential for an approved tablet that has not used one yet.
    fn issue_tablet_token(&self, tablet_id: i64, token_hash: &[u8; 32]) -> StorageResult<()>;
    /// The tablet this credential belongs to, unless revoked; marks the credential as used.
    fn authenticate_tablet(
        &self,
        token_hash: &[u8; 32],
        now: Timestamp,
    ) -> StorageResult<Option<TabletIdentity>>;
    fn revoke_tablet(&self, tablet_id: i64, now: Timestamp) -> StorageResult<()>;
    fn tablets(&self) -> StorageResult<Vec<TabletInfo>>;

    // --- pairing ---------------------------------------------------------------------------
    fn create_pairing_request(&self, request: &NewPairingRequest) -> StorageResult<()>;
    fn pairing_request_state(
        &self,
        request_id: Uuid,
        tablet_id: i64,
        now: Timestamp,
    ) -> StorageResult<Option<PairingRequestState>>;
    /// Pairs the tablet that shows `code` to the employee, ending the tablet's previous pairing.
    fn claim_pairing_code(&self, claim: &PairingClaim) -> StorageResult<shared_model::Pairing>;
    fn pairing(&self, id: Uuid) -> StorageResult<Option<PairingRecord>>;
    fn tablet_pairing_status(&self, tablet_id: i64, now: Timestamp)
    -> StorageResult<PairingStatus>;
    fn active_pairings_of_employee(
        &self,
        employee_id: i64,
        now: Timestamp,
    ) -> StorageResult<Vec<shared_model::Pairing>>;
    fn end_pairing(
        &self,
        id: Uuid,
        reason: PairingEndReason,
        now: Timestamp,
    ) -> StorageResult<bool>;

    // --- sync ------------------------------------------------------------------------------
    /// Stores a batch in one transaction, records the tablet's health and clock offset, and
    /// returns one outcome per visit in order.
    fn ingest(&self, sync: &IngestBatch<'_>) -> StorageResult<Vec<VisitOutcome>>;

    // --- recordings ------------------------------------------------------------------------
    fn visit_of_tablet(&self, visit_id: Uuid, tablet_id: i64) -> StorageResult<Option<Visit>>;
    fn recording_upload(&self, visit_id: Uuid) -> StorageResult<Option<UploadPromise>>;
    fn begin_recording_upload(
        &self,
        visit_id: Uuid,
        promise: &UploadPromise,
        now: Timestamp,
    ) -> StorageResult<()>;
    fn abandon_recording_upload(&self, visit_id: Uuid) -> StorageResult<()>;
    fn complete_recording(&self, visit_id: Uuid, recording: &StoredRecording) -> StorageResult<()>;
    fn recording(&self, visit_id: Uuid) -> StorageResult<Option<StoredRecording>>;

    /// Flushes the write-ahead log into the database file; called at shutdown.
    fn checkpoint(&self) -> StorageResult<()>;
}

/// One sync, as the storage layer needs it.
pub struct IngestBatch<'a> {
    pub tablet_id: i64,
    pub received_at: Timestamp,
    pub clock_offset_ms: i64,
    pub health: &'a TabletHealth,
    pub visits: &'a [Visit],
}
