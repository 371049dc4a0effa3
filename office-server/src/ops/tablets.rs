//! Tablets: enrolment (the tablet asks, an administrator approves, the tablet collects its
//! credential), renaming, revocation, and which tablets have gone silent.

use std::net::IpAddr;

use jiff::{SignedDuration, Timestamp};
use shared_model::{EnrolmentRequest, EnrolmentStarted, EnrolmentStatus};
use uuid::Uuid;

use super::audit;
use crate::auth::{AddressThrottle, random_token, token_digest};
use crate::domain::{EnrolmentCode, TabletName};
use crate::storage::{AuditAction, EnrolmentState, NewEnrolment, Storage, StorageError};

/// How long a tablet shows its enrolment code.
pub const ENROLMENT_CODE_LIFETIME: SignedDuration = SignedDuration::from_hours(1);
/// Tries at drawing a code that no open request holds.
pub const CODE_ATTEMPTS: usize = 20;
/// The longest app version or device description a tablet may report.
pub const MAX_DEVICE_TEXT: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum EnrolmentError {
    #[error("{field} is longer than {MAX_DEVICE_TEXT} characters")]
    TextTooLong { field: &'static str },
    #[error("too many enrolments from this address; try again in a minute")]
    Throttled,
    #[error("{0} enrolments are already waiting for an administrator; try again later")]
    TooManyWaiting(u32),
    #[error("no free code after {CODE_ATTEMPTS} draws: the code space is full; try again later")]
    NoFreeCode,
    #[error("enrolment not found")]
    NotFound,
    #[error("feedback_key is not an Ed25519 public key in URL-safe base64")]
    BadFeedbackKey,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Checks a text a tablet reports about itself.
pub fn check_device_text(field: &'static str, value: &str) -> Result<(), EnrolmentError> {
    if value.chars().count() > MAX_DEVICE_TEXT {
        return Err(EnrolmentError::TextTooLong { field });
    }
    Ok(())
}

/// Draws codes until `attempt` finds one free (it fails with `AlreadyExists` on a taken one).
pub fn with_fresh_code<const N: usize, T>(
    mut attempt: impl FnMut(&crate::domain::Code<N>) -> Result<T, StorageError>,
) -> Result<Option<T>, StorageError> {
    for _ in 0..CODE_ATTEMPTS {
        match attempt(&crate::domain::Code::<N>::random()) {
            Err(StorageError::AlreadyExists(_)) => continue,
            other => return other.map(Some),
        }
    }
    Ok(None)
}

/// Who may start an enrolment: it needs no credential, so it is held per address and in number.
pub struct EnrolmentGate<'a> {
    pub throttle: &'a AddressThrottle,
    pub client: IpAddr,
    pub max_waiting: u32,
}

/// A tablet asks to be enrolled; it shows the code until an administrator approves it.
pub fn start_enrolment(
    db: &dyn Storage,
    gate: &EnrolmentGate<'_>,
    request: &EnrolmentRequest,
    now: Timestamp,
) -> Result<EnrolmentStarted, EnrolmentError> {
    check_device_text("app_version", &request.app_version)?;
    check_device_text("device_description", &request.device_description)?;
    let feedback_key = request
        .feedback_key
        .as_ref()
        .map(|key| key.to_bytes().ok_or(EnrolmentError::BadFeedbackKey))
        .transpose()?;
    if !gate.throttle.attempt(gate.client) {
        return Err(EnrolmentError::Throttled);
    }
    let waiting = db.open_enrolments(now)?;
    if waiting >= gate.max_waiting {
        return Err(EnrolmentError::TooManyWaiting(waiting));
    }
    let id = Uuid::new_v4();
    let expires_at = now + ENROLMENT_CODE_LIFETIME;
    let code = with_fresh_code(|code: &EnrolmentCode| {
        db.create_enrolment(&NewEnrolment {
            id,
            code: code.as_str().to_string(),
            device_description: request.device_description.clone(),
            app_version: request.app_version.clone(),
            created_at: now,
            expires_at,
            feedback_key,
        })
        .map(|()| code.clone())
    })?
    .ok_or(EnrolmentError::NoFreeCode)?;
    // Not its id: the tablet polls with it, so it is the tablet's secret until approval.
    tracing::info!("tablet enrolment started");
    Ok(EnrolmentStarted {
        enrolment_id: id,
        code: code.as_str().to_string(),
        expires_at,
    })
}

/// The tablet polls its enrolment. Once approved, every poll issues a fresh credential until
/// the tablet uses one: an answer lost on the way costs nothing, and only the latest works.
pub fn enrolment_status(
    db: &dyn Storage,
    id: Uuid,
    now: Timestamp,
) -> Result<EnrolmentStatus, EnrolmentError> {
    let state = db
        .enrolment_state(id, now)?
        .ok_or(EnrolmentError::NotFound)?;
    Ok(match state {
        EnrolmentState::Pending { expires_at } => EnrolmentStatus::Pending { expires_at },
        EnrolmentState::Closed => EnrolmentStatus::Expired,
        EnrolmentState::Approved {
            tablet_id,
            tablet_name,
        } => {
            let token = random_token();
            db.issue_tablet_token(tablet_id, &token_digest(&token))?;
            tracing::info!(tablet_id, "device credential issued");
            EnrolmentStatus::Approved {
                tablet_id,
                tablet_name,
                device_token: token,
            }
        }
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error(
        "no open enrolment has this code (it may have expired: restart enrolment on the tablet)"
    )]
    UnknownCode,
    #[error("no revoked tablet has this id")]
    NotRevoked,
    #[error(transparent)]
    Storage(StorageError),
}

/// An administrator approves the enrolment whose code the tablet shows — as a new tablet, or
/// (`readmit`) as a revoked one again, under its own id, so that the visits it kept queued
/// while revoked are accepted under their pairings. Returns the tablet id.
pub fn approve_enrolment(
    db: &dyn Storage,
    code: &EnrolmentCode,
    name: &TabletName,
    readmit: Option<i64>,
    by: i64,
    now: Timestamp,
) -> Result<i64, ApproveError> {
    let id = db
        .approve_enrolment(code.as_str(), name.as_str(), readmit, now)
        .map_err(|error| match error {
            StorageError::NotFound("revoked tablet") => ApproveError::NotRevoked,
            StorageError::NotFound(_) => ApproveError::UnknownCode,
            other => ApproveError::Storage(other),
        })?;
    tracing::info!(
        tablet_id = id,
        by,
        readmitted = readmit.is_some(),
        "tablet enrolment approved"
    );
    let action = if readmit.is_some() {
        AuditAction::TabletReadmit
    } else {
        AuditAction::TabletApprove
    };
    audit::changed(db, Some(by), action, format!("планшет #{id}: «{name}»"))
        .map_err(ApproveError::Storage)?;
    Ok(id)
}

#[derive(Debug, thiserror::Error)]
pub enum TabletError {
    #[error("tablet not found")]
    NotFound,
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for TabletError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::NotFound(_) => TabletError::NotFound,
            other => TabletError::Storage(other),
        }
    }
}

/// Revokes a tablet: its credential stops working and its open pairings end.
pub fn revoke_tablet(
    db: &dyn Storage,
    tablet_id: i64,
    by: i64,
    now: Timestamp,
) -> Result<(), TabletError> {
    db.revoke_tablet(tablet_id, now)?;
    tracing::info!(tablet_id, by, "tablet revoked");
    audit::changed(
        db,
        Some(by),
        AuditAction::TabletRevoke,
        format!("планшет #{tablet_id}"),
    )?;
    Ok(())
}

pub fn rename_tablet(
    db: &dyn Storage,
    tablet_id: i64,
    name: &TabletName,
    by: i64,
) -> Result<(), TabletError> {
    db.rename_tablet(tablet_id, name.as_str())?;
    tracing::info!(tablet_id, by, "tablet renamed");
    audit::changed(
        db,
        Some(by),
        AuditAction::TabletRename,
        format!("планшет #{tablet_id}: «{name}»"),
    )?;
    Ok(())
}
