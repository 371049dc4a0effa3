//! A head names a deputy to cover their review of Плохо while away: the deputy works through
//! the head's inbox — the visits, their recordings, the verdicts — until the cover ends, and
//! sees nothing else of the head's. A specialist named deputy never sees their own visits.

use jiff::{SignedDuration, Timestamp};

use crate::domain::ReviewScope;
use crate::domain::Visibility;
use crate::domain::scope::may_deputise;
use crate::storage::{Account, AuditAction, AuditEvent, Deputy, Role, Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum DeputyError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The cover must end after now and within the configured longest cover.
    #[error("the cover must end within {max_days} days from now")]
    Until { max_days: u32 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Who the head may name: other heads and specialists, by name.
pub fn candidates(db: &dyn Storage, head: &Account) -> Result<Vec<Account>, StorageError> {
    let mut accounts: Vec<Account> = db
        .accounts()?
        .into_iter()
        .map(|summary| summary.account)
        .filter(|account| account.id != head.id && may_deputise(&account.role))
        .collect();
    accounts.sort_by(|a, b| a.display_name.cmp(&b.display_name).then(a.id.cmp(&b.id)));
    Ok(accounts)
}

/// Names `deputy_id` the head's deputy until `until` — the end of the cover's last day, at
/// most `max_days` days after today, so within `max_days + 1` days of now — replacing any
/// earlier one.
pub fn name_deputy(
    db: &dyn Storage,
    head: &Account,
    session_tag: &str,
    deputy_id: i64,
    until: Timestamp,
    max_days: u32,
    now: Timestamp,
) -> Result<(), DeputyError> {
    if !matches!(head.role, Role::Head { .. }) {
        return Err(DeputyError::NotFound("head"));
    }
    let deputy = candidates(db, head)?
        .into_iter()
        .find(|account| account.id == deputy_id)
        .ok_or(DeputyError::NotFound("account"))?;
    let longest = SignedDuration::from_hours(24 * (i64::from(max_days) + 1));
    if until <= now || until.duration_since(now) > longest {
        return Err(DeputyError::Until { max_days });
    }
    db.set_deputy(
        head.id,
        Some((deputy.id, until)),
        &AuditEvent {
            at: now,
            account_id: Some(head.id),
            action: AuditAction::DeputyNamed,
            visit_id: None,
            session_tag: session_tag.to_string(),
            detail: format!("{} ({}) · {until}", deputy.display_name, deputy.login),
        },
    )?;
    tracing::info!(head = head.id, deputy = deputy.id, %until, "deputy named");
    Ok(())
}

/// Ends the head's cover now, if there is one.
pub fn end_deputy(
    db: &dyn Storage,
    head: &Account,
    session_tag: &str,
    now: Timestamp,
) -> Result<(), DeputyError> {
    let Some(current) = db.deputy_of(head.id, now)? else {
        return Ok(());
    };
    db.set_deputy(
        head.id,
        None,
        &AuditEvent {
            at: now,
            account_id: Some(head.id),
            action: AuditAction::DeputyEnded,
            visit_id: None,
            session_tag: session_tag.to_string(),
            detail: format!("{} ({})", current.deputy.display_name, current.deputy.login),
        },
    )?;
    tracing::info!(
        head = head.id,
        deputy = current.deputy.id,
        "deputy cover ended"
    );
    Ok(())
}

/// The cover of `head_id` by `deputy` at `now`, and what it lets the deputy review; `None`
/// when there is none (or the head is no longer a head).
pub fn cover(
    db: &dyn Storage,
    deputy: &Account,
    head_id: i64,
    now: Timestamp,
) -> Result<Option<(Deputy, ReviewScope)>, StorageError> {
    Ok(db
        .covered_by(deputy.id, now)?
        .into_iter()
        .find(|cover| cover.head.id == head_id)
        .and_then(|cover| {
            let visibility = Visibility::of(&cover.head.role)?;
            matches!(cover.head.role, Role::Head { .. }).then(|| {
                (
                    cover.clone(),
                    ReviewScope::covering(visibility, &deputy.role),
                )
            })
        }))
}

/// Every scope `reviewer` may review in at `now`: their own (when they decide) and each
/// head's they cover for.
pub fn review_scopes(
    db: &dyn Storage,
    reviewer: &Account,
    now: Timestamp,
) -> Result<Vec<ReviewScope>, StorageError> {
    let mut scopes = Vec::new();
    if crate::domain::scope::may_decide(&reviewer.role)
        && let Some(visibility) = Visibility::of(&reviewer.role)
    {
        scopes.push(ReviewScope::own(visibility));
    }
    for cover in db.covered_by(reviewer.id, now)? {
        if let (Role::Head { .. }, Some(visibility)) =
            (&cover.head.role, Visibility::of(&cover.head.role))
        {
            scopes.push(ReviewScope::covering(visibility, &reviewer.role));
        }
    }
    Ok(scopes)
}
