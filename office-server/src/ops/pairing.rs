//! Pairing a tablet to a specialist's working session: the tablet shows a code, the
//! specialist types it on their PC, the pairing lasts until the end of the working day, until
//! it is ended (by its specialist, an administrator or the tablet's staff panel) or replaced.

use std::net::IpAddr;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use shared_model::{
    Pairing, PairingCodeIssued, PairingCodeStatus, PairingEndReason, PairingStatus,
};
use uuid::Uuid;

use super::tablets::with_fresh_code;
use crate::auth::LoginThrottle;
use crate::config::WorkingHours;
use crate::domain::PairingCode;
use crate::storage::{
    Account, NewPairingRequest, PairingClaim, PairingRequestState, Role, Storage, StorageError,
};
use crate::workday::pairing_ends_at;

/// How long a tablet shows its pairing code.
pub const PAIRING_CODE_LIFETIME: SignedDuration = SignedDuration::from_mins(10);

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error(
        "no free code after {} draws: the code space is full; try again later",
        super::tablets::CODE_ATTEMPTS
    )]
    NoFreeCode,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(
        "no tablet shows this pairing code (it may have expired: ask the tablet for a new one)"
    )]
    UnknownCode,
    #[error("too many attempts; try again in a minute")]
    Throttled,
    #[error("only a specialist can pair a tablet to their working session")]
    NotASpecialist,
    #[error("only its specialist or an administrator can end a pairing")]
    NotYours,
    #[error("this pairing has already ended")]
    AlreadyEnded,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A tablet asks for a code to show.
pub fn request_code(
    db: &dyn Storage,
    tablet_id: i64,
    now: Timestamp,
) -> Result<PairingCodeIssued, PairingError> {
    let request_id = Uuid::new_v4();
    let expires_at = now + PAIRING_CODE_LIFETIME;
    let code = with_fresh_code(|code: &PairingCode| {
        db.create_pairing_request(&NewPairingRequest {
            id: request_id,
            tablet_id,
            code: code.as_str().to_string(),
            created_at: now,
            expires_at,
        })
        .map(|()| code.clone())
    })?
    .ok_or(PairingError::NoFreeCode)?;
    Ok(PairingCodeIssued {
        request_id,
        code: code.as_str().to_string(),
        expires_at,
    })
}

/// The tablet polls its code: still waiting, expired, or paired (with the pairing — which
/// also tells the tablet that its earlier pairings have ended).
pub fn code_status(
    db: &dyn Storage,
    tablet_id: i64,
    request_id: Uuid,
    now: Timestamp,
) -> Result<PairingCodeStatus, PairingError> {
    let state = db
        .pairing_request_state(request_id, tablet_id, now)?
        .ok_or(PairingError::NotFound("pairing request"))?;
    Ok(match state {
        PairingRequestState::Pending { expires_at } => PairingCodeStatus::Pending { expires_at },
        PairingRequestState::Expired => PairingCodeStatus::Expired,
        PairingRequestState::Paired { pairing_id } => {
            let pairing = db
                .pairing(pairing_id)?
                .ok_or(PairingError::NotFound("pairing"))?
                .pairing;
            db.note_ends_told(tablet_id, now)?;
            PairingCodeStatus::Paired { pairing }
        }
    })
}

/// Every request a tablet makes proves it read the answers before it: the pairings whose end
/// an earlier answer told it are acknowledged now (visits under them that claim to end later
/// were made after the tablet knew, and are refused).
pub fn tablet_request(
    db: &dyn Storage,
    tablet_id: i64,
    now: Timestamp,
) -> Result<(), StorageError> {
    db.acknowledge_told_ends(tablet_id, now)
}

/// The tablet's latest pairing, as the answer that tells the tablet about it: the pairings that
/// have ended by now count as told.
pub fn status(
    db: &dyn Storage,
    tablet_id: i64,
    now: Timestamp,
) -> Result<PairingStatus, StorageError> {
    let status = db.tablet_pairing_status(tablet_id, now)?;
    db.note_ends_told(tablet_id, now)?;
    Ok(status)
}

/// The specialist's employee id; other roles do not pair.
pub fn specialist_of(account: &Account) -> Result<i64, PairingError> {
    match account.role {
        Role::Specialist { employee_id } => Ok(employee_id),
        _ => Err(PairingError::NotASpecialist),
    }
}

/// What pairing needs to know of the office.
pub struct Workday<'a> {
    pub zone: &'a TimeZone,
    pub hours: &'a WorkingHours,
}

/// A specialist types the code their tablet shows: the tablet is theirs until the end of the
/// working day. Guesses are throttled per account and per address.
pub fn pair(
    db: &dyn Storage,
    throttle: &LoginThrottle,
    account: &Account,
    client: IpAddr,
    code: &PairingCode,
    workday: &Workday<'_>,
    now: Timestamp,
) -> Result<Pairing, PairingError> {
    let employee_id = specialist_of(account)?;
    if !throttle.attempt(&account.login, client) {
        return Err(PairingError::Throttled);
    }
    let claim = PairingClaim {
        code: code.as_str().to_string(),
        employee_id,
        pairing_id: Uuid::now_v7(),
        now,
        ends_at: pairing_ends_at(now, workday.zone, workday.hours),
    };
    let pairing = db.claim_pairing_code(&claim).map_err(|error| match error {
        StorageError::NotFound("pairing code") => PairingError::UnknownCode,
        StorageError::NotFound(what) => PairingError::NotFound(what),
        other => PairingError::Storage(other),
    })?;
    tracing::info!(
        pairing = %pairing.id,
        employee_id,
        ended_elsewhere = pairing.ended_elsewhere.len(),
        "tablet paired"
    );
    Ok(pairing)
}

/// The specialist's pairings that are still on.
pub fn active_pairings(
    db: &dyn Storage,
    account: &Account,
    now: Timestamp,
) -> Result<Vec<Pairing>, PairingError> {
    let employee_id = specialist_of(account)?;
    Ok(db.active_pairings_of_employee(employee_id, now)?)
}

/// Ends the pairing on behalf of `account`: its specialist or an administrator may.
pub fn end_pairing(
    db: &dyn Storage,
    account: &Account,
    id: Uuid,
    now: Timestamp,
) -> Result<(), PairingError> {
    let record = db.pairing(id)?.ok_or(PairingError::NotFound("pairing"))?;
    let allowed = match account.role {
        Role::Admin => true,
        Role::Specialist { employee_id } => employee_id == record.pairing.employee.id,
        _ => false,
    };
    if !allowed {
        return Err(PairingError::NotYours);
    }
    if !db.end_pairing(id, PairingEndReason::EndedByStaff, now)? {
        return Err(PairingError::AlreadyEnded);
    }
    tracing::info!(pairing = %id, by = account.id, "pairing ended");
    Ok(())
}

/// The tablet's staff panel ends its current pairing; returns the tablet's status after it.
pub fn end_own_pairing(
    db: &dyn Storage,
    tablet_id: i64,
    now: Timestamp,
) -> Result<PairingStatus, PairingError> {
    if let PairingStatus::Active { pairing } = db.tablet_pairing_status(tablet_id, now)? {
        db.end_pairing(pairing.id, PairingEndReason::EndedByStaff, now)?;
        tracing::info!(pairing = %pairing.id, tablet_id, "pairing ended from the tablet");
    }
    Ok(status(db, tablet_id, now)?)
}
