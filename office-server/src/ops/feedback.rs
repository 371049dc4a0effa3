//! A visitor's feedback from the link the tablet signed: open it, send it once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;

use jiff::{SignedDuration, Timestamp};
use shared_model::{FeedbackToken, TokenError};
use uuid::Uuid;

use crate::auth::{AddressThrottle, KeyedThrottle};
use crate::config::FeedbackSettings;
use crate::domain::InvalidText;
use crate::domain::feedback::{VisitorComment, submittable_until};
use crate::live::{LiveEvent, LiveHub};
use crate::storage::{FeedbackLinkState, NewFeedback, SentFeedback, Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    /// Malformed, altered, forged, or naming a tablet with no key: all look the same.
    #[error("the link is not valid")]
    InvalidLink,
    #[error("the link has expired")]
    Expired,
    #[error("feedback for this visit has been sent already")]
    AlreadySent,
    #[error("too many posts; try again in a minute")]
    Throttled,
    #[error("a score must be a whole number from 1 to 5")]
    BadScore,
    #[error("the comment {0}")]
    BadComment(InvalidText),
    #[error("nothing to send: no score, no comment, no thanks")]
    Empty,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Posts of feedback a minute, per client address and per link, each counted apart.
pub struct FeedbackThrottle {
    per_address: AddressThrottle,
    per_link: KeyedThrottle<Uuid>,
}

impl FeedbackThrottle {
    pub fn new(settings: &FeedbackSettings) -> Self {
        let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Self {
            per_address: AddressThrottle::per_minute(nonzero(
                settings.posts_per_address_per_minute,
            )),
            per_link: KeyedThrottle::per_minute(nonzero(settings.posts_per_link_per_minute)),
        }
    }

    fn attempt(&self, client: IpAddr, visit_id: Uuid) -> bool {
        // Both are counted, so a refused address still uses up the link's budget and the other
        // way round: neither can be worked around by the other.
        let address = self.per_address.attempt(client);
        let link = self.per_link.attempt(&visit_id);
        address && link
    }

    pub fn forget_idle(&self) {
        self.per_address.forget_idle();
        self.per_link.forget_idle();
    }
}

/// What the link shows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkPage {
    /// The form: nothing sent yet, and still in time.
    Form,
    /// What was sent, and the office's answer once there is one.
    Sent(SentFeedback),
}

/// What a submission holds, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub scores: Vec<(String, u8)>,
    pub comment: Option<VisitorComment>,
    pub thanks: bool,
}

impl Submission {
    /// From the form's fields: `score_<key>` = 1..=5 for the configured criteria (others are
    /// ignored; an empty one is not scored), `comment`, `thanks`.
    pub fn parse(
        fields: &HashMap<String, String>,
        settings: &FeedbackSettings,
    ) -> Result<Self, FeedbackError> {
        let mut scores = Vec::new();
        for criterion in &settings.criteria {
            let Some(value) = fields.get(&format!("score_{}", criterion.key)) else {
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let score: u8 = value.parse().map_err(|_| FeedbackError::BadScore)?;
            if !(1..=5).contains(&score) {
                return Err(FeedbackError::BadScore);
            }
            scores.push((criterion.key.clone(), score));
        }
        let comment = VisitorComment::parse(
            fields.get("comment").map_or("", String::as_str),
            settings.max_comment_chars as usize,
        )
        .map_err(FeedbackError::BadComment)?;
        let thanks = fields.get("thanks").is_some_and(|v| !v.is_empty());
        if scores.is_empty() && comment.is_none() && !thanks {
            return Err(FeedbackError::Empty);
        }
        Ok(Self {
            scores,
            comment,
            thanks,
        })
    }
}

/// Checks the link's signature against its tablet's key; what it names.
fn verify(db: &dyn Storage, token: &str) -> Result<FeedbackToken, FeedbackError> {
    let (claims, _) = FeedbackToken::read(token).map_err(|_| FeedbackError::InvalidLink)?;
    let key = db
        .feedback_key(claims.tablet_id)?
        .ok_or(FeedbackError::InvalidLink)?;
    FeedbackToken::verify(token, &key).map_err(|error| match error {
        TokenError::Malformed | TokenError::BadSignature => FeedbackError::InvalidLink,
    })
}

/// Opens the link: verified, its first opening noted, and whether it may still be sent.
fn open_link(
    db: &dyn Storage,
    token: &str,
    now: Timestamp,
) -> Result<(FeedbackToken, FeedbackLinkState), FeedbackError> {
    let claims = verify(db, token)?;
    let state = db.open_feedback_link(claims.visit_id, claims.tablet_id, now)?;
    // A stored visit of another tablet: the signer did not make it.
    if state
        .visit
        .is_some_and(|visit| visit.tablet_id != claims.tablet_id)
    {
        return Err(FeedbackError::InvalidLink);
    }
    Ok((claims, state))
}

fn validity(settings: &FeedbackSettings) -> SignedDuration {
    SignedDuration::from_hours(24 * i64::from(settings.link_valid_days))
}

/// What the link shows. What was sent stays readable while it is kept.
pub fn open(
    db: &dyn Storage,
    token: &str,
    settings: &FeedbackSettings,
    now: Timestamp,
) -> Result<LinkPage, FeedbackError> {
    let (_, state) = open_link(db, token, now)?;
    if let Some(sent) = state.feedback {
        return Ok(LinkPage::Sent(sent));
    }
    if now > submittable_until(&state, validity(settings)) {
        return Err(FeedbackError::Expired);
    }
    Ok(LinkPage::Form)
}

/// The visit a link names, while the link may still be used: what the visitor may attach to
/// their account from it.
pub fn linked_visit(
    db: &dyn Storage,
    token: &str,
    settings: &FeedbackSettings,
    now: Timestamp,
) -> Result<Uuid, FeedbackError> {
    let (claims, state) = open_link(db, token, now)?;
    if now > submittable_until(&state, validity(settings)) {
        return Err(FeedbackError::Expired);
    }
    Ok(claims.visit_id)
}

/// Counts a post to the link — the feedback, or the visitor's number: one budget — before
/// the signature is checked, so a flood of forged posts is refused as cheaply.
pub fn count_post(
    throttle: &FeedbackThrottle,
    client: IpAddr,
    token: &str,
) -> Result<(), FeedbackError> {
    let (named, _) = FeedbackToken::read(token).map_err(|_| FeedbackError::InvalidLink)?;
    if throttle.attempt(client, named.visit_id) {
        Ok(())
    } else {
        Err(FeedbackError::Throttled)
    }
}

/// Sends the visitor's feedback, once per visit.
#[allow(clippy::too_many_arguments)]
pub fn submit(
    db: &dyn Storage,
    live: &LiveHub,
    throttle: &FeedbackThrottle,
    client: IpAddr,
    token: &str,
    submission: Submission,
    settings: &FeedbackSettings,
    now: Timestamp,
) -> Result<(), FeedbackError> {
    count_post(throttle, client, token)?;
    let (claims, state) = open_link(db, token, now)?;
    if state.feedback.is_some() {
        return Err(FeedbackError::AlreadySent);
    }
    if now > submittable_until(&state, validity(settings)) {
        return Err(FeedbackError::Expired);
    }
    db.submit_feedback(&NewFeedback {
        visit_id: claims.visit_id,
        tablet_id: claims.tablet_id,
        scores: submission.scores,
        comment: submission.comment.map(|c| c.as_str().to_string()),
        thanks: submission.thanks,
        submitted_at: now,
    })
    .map_err(|error| match error {
        StorageError::AlreadyExists(_) => FeedbackError::AlreadySent,
        other => FeedbackError::Storage(other),
    })?;
    tracing::info!(tablet_id = claims.tablet_id, "visitor feedback received");
    // Joined at once (its visit is stored): the heads' pages in its scope show it now.
    // (It is stored whatever happens here: a failure only delays the pages' update.)
    match db.feedback_entry(claims.visit_id) {
        Ok(Some(entry)) => live.publish(LiveEvent::Feedback {
            department_id: entry.department_id,
            section_id: entry.section_id,
        }),
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "no live update for the feedback"),
    }
    Ok(())
}
