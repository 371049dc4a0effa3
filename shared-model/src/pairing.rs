use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /api/tablet/pairing-codes`: a code for the specialist to type on their own PC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PairingCodeIssued {
    /// The tablet polls `GET /api/tablet/pairing-codes/{request_id}` with this.
    pub request_id: Uuid,
    pub code: String,
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// The answer to a pairing-code poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PairingCodeStatus {
    /// No specialist has entered the code yet.
    Pending {
        #[schema(value_type = String, format = DateTime)]
        expires_at: Timestamp,
    },
    /// A specialist entered the code; the tablet now rates under this pairing.
    Paired { pairing: Pairing },
    /// Nobody entered the code in time; ask for a new one.
    Expired,
}

/// A specialist's session on one tablet, with what the tablet needs to run visits offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pairing {
    pub id: Uuid,
    pub employee: NamedRef,
    pub section: NamedRef,
    pub department: NamedRef,
    /// The services the section offers, in display order.
    pub services: Vec<NamedRef>,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// The end of the working day; the server ends the pairing then.
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: Timestamp,
    /// The tablets whose pairing with the same specialist this one ended (a specialist works
    /// at one desk at a time), for the screen to say so. Protocol 2; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ended_elsewhere: Vec<String>,
}

/// An id and its display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NamedRef {
    pub id: i64,
    pub name: String,
}

impl PairingStatus {
    /// The status as a tablet speaking `protocol` can read it.
    pub fn for_protocol(self, protocol: u32) -> Self {
        match self {
            PairingStatus::Ended {
                pairing_id,
                reason,
                ended_at,
            } => PairingStatus::Ended {
                pairing_id,
                reason: reason.for_protocol(protocol),
                ended_at,
            },
            other => other,
        }
    }
}

/// The state of a tablet's most recent pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PairingStatus {
    /// Never paired, or the last pairing was ended and nothing replaced it long ago.
    None,
    Active {
        pairing: Pairing,
    },
    Ended {
        pairing_id: Uuid,
        reason: PairingEndReason,
        #[schema(value_type = String, format = DateTime)]
        ended_at: Timestamp,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PairingEndReason {
    /// The specialist (or an administrator) ended it.
    EndedByStaff,
    /// The tablet was paired to someone else.
    Replaced,
    /// The working day ended.
    WorkdayOver,
    /// The tablet's credential was revoked.
    TabletRevoked,
    /// The specialist paired another tablet (protocol 2).
    MovedToAnotherTablet,
    /// A reason this tablet app does not know yet (a newer server's).
    #[serde(other)]
    Unknown,
}

impl PairingEndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PairingEndReason::EndedByStaff => "ended_by_staff",
            PairingEndReason::Replaced => "replaced",
            PairingEndReason::WorkdayOver => "workday_over",
            PairingEndReason::TabletRevoked => "tablet_revoked",
            PairingEndReason::MovedToAnotherTablet => "moved_to_another_tablet",
            PairingEndReason::Unknown => "unknown",
        }
    }

    /// The reason as a tablet speaking `protocol` can read it.
    pub fn for_protocol(self, protocol: u32) -> Self {
        match self {
            PairingEndReason::MovedToAnotherTablet | PairingEndReason::Unknown if protocol < 2 => {
                PairingEndReason::EndedByStaff
            }
            other => other,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            PairingEndReason::EndedByStaff,
            PairingEndReason::Replaced,
            PairingEndReason::WorkdayOver,
            PairingEndReason::TabletRevoked,
            PairingEndReason::MovedToAnotherTablet,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }
}
