use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The organisation: departments → sections → employees, and the service catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Directory {
    pub departments: Vec<DepartmentEntry>,
    pub services: Vec<ServiceEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DepartmentEntry {
    pub id: i64,
    pub name: String,
    pub sections: Vec<SectionEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SectionEntry {
    pub id: i64,
    pub name: String,
    pub employees: Vec<EmployeeEntry>,
    /// Ids of the services the section offers, in display order.
    pub service_ids: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EmployeeEntry {
    pub id: i64,
    pub full_name: String,
    pub position: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceEntry {
    pub id: i64,
    pub name: String,
}

/// Sizes of what the server holds, for the status page and the demo loader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    pub departments: i64,
    pub sections: i64,
    pub employees: i64,
    pub services: i64,
    pub accounts: i64,
    pub tablets: i64,
    pub visits: i64,
    pub recordings: i64,
}

/// What an account may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// Keeps the directory, accounts and tablets; sees the whole organisation.
    Admin,
    /// Reads the whole organisation, changes nothing.
    Observer,
    /// Reads one department or one section.
    Head { scope: Scope },
    /// Pairs tablets to their own working session.
    Specialist { employee_id: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Scope {
    Department(i64),
    Section(i64),
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Observer => "observer",
            Role::Head { .. } => "head",
            Role::Specialist { .. } => "specialist",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub login: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Account {
    pub id: i64,
    pub login: String,
    pub display_name: String,
    #[serde(flatten)]
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct NewEnrolment {
    pub id: Uuid,
    pub code: String,
    pub device_description: String,
    pub app_version: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrolmentState {
    Pending {
        expires_at: Timestamp,
    },
    /// Approved and its credential not used yet: the tablet may collect one.
    Approved {
        tablet_id: i64,
        tablet_name: String,
    },
    /// Expired unapproved, or its credential already in use.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabletIdentity {
    pub id: i64,
    pub name: String,
}

/// A tablet with the health it last reported, for administrators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TabletInfo {
    pub id: i64,
    pub name: String,
    pub device_description: String,
    #[schema(value_type = String, format = DateTime)]
    pub enrolled_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<Timestamp>,
    pub app_version: Option<String>,
    pub queue_length: Option<i64>,
    pub recordings_pending: Option<i64>,
    pub free_storage_bytes: Option<i64>,
    pub microphone: Option<String>,
    pub clock_offset_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewPairingRequest {
    pub id: Uuid,
    pub tablet_id: i64,
    pub code: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingRequestState {
    Pending { expires_at: Timestamp },
    Paired { pairing_id: Uuid },
    Expired,
}

/// A specialist typing the code a tablet shows.
#[derive(Debug, Clone)]
pub struct PairingClaim {
    pub code: String,
    pub employee_id: i64,
    pub pairing_id: Uuid,
    pub now: Timestamp,
    /// The end of the working day the pairing belongs to.
    pub ends_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingRecord {
    pub pairing: shared_model::Pairing,
    pub tablet_id: i64,
    pub ended_at: Option<Timestamp>,
}

/// What a tablet declared when it began uploading a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPromise {
    pub size_bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecording {
    pub size_bytes: u64,
    pub sha256: String,
    pub duration_ms: u64,
    pub stored_at: Timestamp,
}
