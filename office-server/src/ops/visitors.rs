//! The visitor's personal account: a sign-in through the city portal kept until it comes back,
//! the visitor's session, attaching a visit from its link, detaching it, and deleting the
//! account (withdrawal of consent: the visits and their feedback stay, the person goes).
//!
//! The portal's own HTTP is in [`crate::portal`]; these are the rules around it.

use std::net::IpAddr;
use std::num::NonZeroU32;

use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use crate::auth::{AddressThrottle, random_token, token_digest};
use crate::config::PortalSettings;
use crate::portal::SignInStart;
use crate::storage::{Attached, PendingSignIn, PortalPerson, Storage, StorageError, Visitor};

#[derive(Debug, thiserror::Error)]
pub enum VisitorError {
    /// No sign-in under way with this state in this browser: tampered with, used already, or
    /// run out.
    #[error("no sign-in under way with this state")]
    UnknownSignIn,
    /// The authorization response names another issuer than the configured one.
    #[error("the answer names another issuer")]
    WrongIssuer,
    #[error("another person attached this visit first")]
    Taken,
    #[error("not a visit of this visitor")]
    NotYours,
    #[error("too many sign-ins from this address; try again in a minute")]
    Throttled,
    /// `portal.max_pending_sign_ins` are under way already (a flood, or the portal is stuck).
    #[error("too many sign-ins under way")]
    Busy,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Sign-ins started a minute, per client address.
pub struct SignInThrottle(AddressThrottle);

impl SignInThrottle {
    pub fn new(settings: &PortalSettings) -> Self {
        Self(AddressThrottle::per_minute(
            NonZeroU32::new(settings.sign_ins_per_address_per_minute).unwrap_or(NonZeroU32::MIN),
        ))
    }

    pub fn attempt(&self, client: IpAddr) -> Result<(), VisitorError> {
        if self.0.attempt(client) {
            Ok(())
        } else {
            Err(VisitorError::Throttled)
        }
    }

    pub fn forget_idle(&self) {
        self.0.forget_idle();
    }
}

/// Keeps the secrets of a sign-in sent to the portal until it comes back (or runs out).
pub fn keep_sign_in(
    db: &dyn Storage,
    start: &SignInStart,
    visit_id: Option<Uuid>,
    settings: &PortalSettings,
    now: Timestamp,
) -> Result<(), VisitorError> {
    let expires_at = now
        .saturating_add(SignedDuration::from_mins(i64::from(
            settings.sign_in_minutes,
        )))
        .unwrap_or(now);
    let kept = db.begin_sign_in(
        &token_digest(&start.state),
        &PendingSignIn {
            nonce: start.nonce.clone(),
            pkce_verifier: start.pkce_verifier.clone(),
            visit_id,
        },
        settings.max_pending_sign_ins,
        now,
        expires_at,
    )?;
    if kept {
        Ok(())
    } else {
        tracing::warn!(
            max = settings.max_pending_sign_ins,
            "a visitor's sign-in refused: too many under way"
        );
        Err(VisitorError::Busy)
    }
}

/// The sign-in the portal's answer continues: its `state` must be the one this browser was
/// given (`browser_state`, from its cookie) and still be under way; it can be taken once.
/// `iss`, when the portal sends it (RFC 9207), must be the configured issuer.
pub fn take_sign_in(
    db: &dyn Storage,
    state: &str,
    browser_state: Option<&str>,
    iss: Option<&str>,
    issuer: &str,
    now: Timestamp,
) -> Result<PendingSignIn, VisitorError> {
    let Some(browser_state) = browser_state else {
        return Err(VisitorError::UnknownSignIn);
    };
    // Digests are compared, not the secrets: no timing tells how much of a guess was right.
    let digest = token_digest(state);
    if state.is_empty() || digest != token_digest(browser_state) {
        return Err(VisitorError::UnknownSignIn);
    }
    // Taken before anything else is checked: a refused answer uses the sign-in up too.
    let pending = db
        .take_sign_in(&digest, now)?
        .ok_or(VisitorError::UnknownSignIn)?;
    // RFC 9207 §2.4: compared as strings, exactly.
    if iss.is_some_and(|iss| iss != issuer) {
        return Err(VisitorError::WrongIssuer);
    }
    Ok(pending)
}

/// A new session for the person the portal vouched for, with the visit the sign-in began at
/// attached. The token goes in the visitor's cookie.
pub struct SignedIn {
    pub visitor: Visitor,
    pub token: String,
    /// The visit could not be attached: another person has it.
    pub taken: bool,
}

pub fn sign_in(
    db: &dyn Storage,
    person: &PortalPerson,
    visit_id: Option<Uuid>,
    settings: &PortalSettings,
    now: Timestamp,
) -> Result<SignedIn, VisitorError> {
    let visitor = db.upsert_visitor(person, now)?;
    let taken = match visit_id {
        // Kept by another person: signed in all the same, and told so. Anything else fails.
        Some(visit_id) => match attach(db, &visitor, visit_id, now) {
            Ok(()) => false,
            Err(VisitorError::Taken) => true,
            Err(other) => return Err(other),
        },
        None => false,
    };
    let token = random_token();
    let expires_at = now
        .saturating_add(SignedDuration::from_mins(i64::from(
            settings.session_minutes,
        )))
        .unwrap_or(now);
    db.create_visitor_session(&token_digest(&token), visitor.id, now, expires_at)?;
    tracing::info!(
        visitor_id = visitor.id,
        "visitor signed in through the portal"
    );
    Ok(SignedIn {
        visitor,
        token,
        taken,
    })
}

/// The signed-in visitor a session token belongs to.
pub fn session_visitor(
    db: &dyn Storage,
    token: &str,
    now: Timestamp,
) -> Result<Option<Visitor>, VisitorError> {
    Ok(db.visitor_session(&token_digest(token), now)?)
}

pub fn sign_out(db: &dyn Storage, token: &str) -> Result<(), VisitorError> {
    Ok(db.end_visitor_session(&token_digest(token))?)
}

/// Attaches a visit; a visit is one person's: the first to attach it keeps it.
pub fn attach(
    db: &dyn Storage,
    visitor: &Visitor,
    visit_id: Uuid,
    now: Timestamp,
) -> Result<(), VisitorError> {
    match db.attach_visit(visitor.id, visit_id, now)? {
        Attached::Yours => Ok(()),
        Attached::Taken => Err(VisitorError::Taken),
    }
}

pub fn detach(db: &dyn Storage, visitor: &Visitor, visit_id: Uuid) -> Result<(), VisitorError> {
    if db.detach_visit(visitor.id, visit_id)? {
        tracing::info!(visitor_id = visitor.id, "visitor detached a visit");
        Ok(())
    } else {
        Err(VisitorError::NotYours)
    }
}

/// Whether the visit is in the visitor's account: what they may act on.
pub fn owns(db: &dyn Storage, visitor: &Visitor, visit_id: Uuid) -> Result<(), VisitorError> {
    if db
        .visitor_visits(visitor.id)?
        .iter()
        .any(|visit| visit.visit_id == visit_id)
    {
        Ok(())
    } else {
        Err(VisitorError::NotYours)
    }
}

/// Withdrawal of consent: the visitor's name, subject id, attachments and sessions go.
pub fn delete_account(db: &dyn Storage, visitor: &Visitor) -> Result<(), VisitorError> {
    db.delete_visitor(visitor.id)?;
    tracing::info!(
        visitor_id = visitor.id,
        "visitor deleted their account data"
    );
    Ok(())
}
