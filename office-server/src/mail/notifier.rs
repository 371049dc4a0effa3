//! The worker: every `mail.check_secs` (or at once when something rings `mail_wake`) it
//! queues the notifications events call for, then sends what is due — one message per
//! notification for those who take each, one message for a day's notifications for those who
//! take a digest. A message is marked sent after the SMTP server took it; a stop in between
//! sends it again at the next start (a duplicate e-mail harms no one; a lost alert might).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{Mailer, SendError};
use crate::app::{AppState, DbError};
use crate::domain::sms::retry_delay;
use crate::sms::outbox::seconds;
use crate::storage::{DueMail, MailOutcome};
use crate::web::local_time;
use crate::web::strings::{MAIL_RU, fill};

/// Due notifications taken per look; more wait for the next.
const BATCH: u32 = 200;

/// Runs until aborted.
pub async fn run(state: AppState, mailer: Mailer) {
    let period = Duration::from_secs(state.config.mail.check_secs);
    loop {
        if let Err(error) = queue_events(&state).await {
            tracing::warn!(%error, "cannot look for events to mail; looked at again later");
        }
        if let Err(error) = deliver(&state, &mailer).await {
            tracing::warn!(%error, "cannot send notifications; tried again later");
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = state.mail_wake.notified() => {}
        }
    }
}

async fn queue_events(state: &AppState) -> Result<(), DbError> {
    let keep = SignedDuration::from_hours(24 * i64::from(state.config.mail.keep_days));
    let queued = state
        .blocking(move |s| {
            let now = Timestamp::now();
            s.storage.purge_mail(now - keep)?;
            let mail = crate::ops::notices::collect(s, now)?;
            s.storage.queue_mail(&mail)
        })
        .await??;
    if queued > 0 {
        tracing::info!(queued, "notifications queued");
    }
    Ok(())
}

/// One message to send: a notification, or a digest of an account's.
struct Outgoing {
    ids: Vec<i64>,
    account_id: i64,
    to: String,
    subject: String,
    body: String,
    attempts: u32,
}

async fn deliver(state: &AppState, mailer: &Mailer) -> Result<(), DbError> {
    let due = state
        .blocking(|s| s.storage.due_mail(Timestamp::now(), BATCH))
        .await??;
    for message in messages(state, due) {
        let outcome = send_one(state, mailer, &message).await;
        let ids = message.ids;
        state
            .blocking(move |s| s.storage.finish_mail(&ids, &outcome, Timestamp::now()))
            .await??;
    }
    Ok(())
}

/// Each notification taken one by one as a message of its own; an account's digest
/// notifications together as one.
fn messages(state: &AppState, due: Vec<DueMail>) -> Vec<Outgoing> {
    let mut out = Vec::new();
    let mut digests: BTreeMap<i64, Vec<DueMail>> = BTreeMap::new();
    for mail in due {
        if mail.digest {
            digests.entry(mail.account_id).or_default().push(mail);
        } else {
            out.push(Outgoing {
                ids: vec![mail.id],
                account_id: mail.account_id,
                to: mail.email,
                subject: mail.subject,
                body: format!("{}\n\n-- \n{}", mail.body, MAIL_RU.footer),
                attempts: mail.attempts,
            });
        }
    }
    for (account_id, items) in digests {
        let Some(first) = items.first() else { continue };
        let mut body = fill(
            MAIL_RU.digest_intro,
            &[("date", &local_time(&state.zone, first.created_at))],
        );
        for item in &items {
            body.push_str(&format!(
                "\n\n{} — {}\n{}",
                local_time(&state.zone, item.created_at),
                item.subject,
                item.body
            ));
        }
        body.push_str(&format!("\n\n-- \n{}", MAIL_RU.footer));
        out.push(Outgoing {
            ids: items.iter().map(|item| item.id).collect(),
            account_id,
            to: first.email.clone(),
            subject: fill(
                MAIL_RU.digest_subject,
                &[("count", &items.len().to_string())],
            ),
            body,
            attempts: items.iter().map(|item| item.attempts).max().unwrap_or(0),
        });
    }
    out
}

async fn send_one(state: &AppState, mailer: &Mailer, message: &Outgoing) -> MailOutcome {
    let settings = &state.config.mail;
    let account = message.account_id;
    // The transport has its own time limit; this one holds even if a server trickles.
    let limit = Duration::from_secs(settings.request_timeout_secs.saturating_mul(2));
    let sent = tokio::time::timeout(
        limit,
        mailer.send(&message.to, &message.subject, &message.body),
    )
    .await
    .unwrap_or_else(|_| Err(SendError::Again("no answer in time".into())));
    let tries = message.attempts + 1;
    match sent {
        Ok(()) => {
            tracing::info!(
                account,
                notifications = message.ids.len(),
                "notification mailed"
            );
            MailOutcome::Sent
        }
        Err(SendError::Again(error)) if tries < settings.max_attempts => {
            let wait = retry_delay(
                tries,
                seconds(settings.retry_first_secs),
                seconds(settings.retry_max_secs),
            );
            tracing::warn!(account, tries, %error, "notification not mailed; tried again later");
            MailOutcome::Retry {
                at: Timestamp::now() + wait,
                error,
            }
        }
        Err(error) => {
            tracing::error!(account, tries, %error, "notification not mailed; given up");
            MailOutcome::Failed {
                error: error.to_string(),
            }
        }
    }
}
