//! The outbox worker: at start, messages a stopped server left `sending` become
//! `unconfirmed`; then, within the sending hours, it takes due messages (marked `sending`
//! durably before the gateway is asked), sends each once, and records how it ended — sent;
//! again later with backoff when it surely did not leave; for a person to decide when it was
//! refused, tried too often, or its outcome is unknown.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{Outgoing, SendError, SmsGateway};
use crate::app::{AppState, Shared};
use crate::domain::sms::{problem, retry_delay};
use crate::storage::{DueSms, SmsOutcome, StorageResult};

/// Runs until aborted.
pub async fn run<G: SmsGateway>(state: AppState, gateway: G) {
    match state
        .blocking(|s| s.storage.interrupted_sms_unconfirmed())
        .await
    {
        Ok(Ok(0)) => {}
        Ok(Ok(count)) => tracing::warn!(
            count,
            "SMS left mid-request by the last run are «не подтверждено»: a person decides"
        ),
        Ok(Err(error)) => tracing::warn!(%error, "cannot look for interrupted SMS"),
        Err(error) => tracing::warn!(%error, "looking for interrupted SMS panicked"),
    }
    let settings = &state.config.sms;
    let period = Duration::from_secs(settings.check_secs);
    loop {
        let full = match pass(&state, &gateway).await {
            Ok(full) => full,
            Err(error) => {
                tracing::warn!(%error, "the SMS outbox failed; it is looked at again later");
                false
            }
        };
        // A full batch: more may be due at once.
        if full {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = state.sms_wake.notified() => {}
        }
    }
}

/// Sends what is due now, one message at a time, at most `sms.batch`; whether the batch was
/// used up (more may be due).
///
/// Each message is claimed alone, just before it is sent: a stop then leaves at most the one
/// in flight `sending` — truly of unknown outcome —, never a batch that was never tried.
async fn pass<G: SmsGateway>(state: &AppState, gateway: &G) -> StorageResult<bool> {
    let settings = &state.config.sms;
    for _ in 0..settings.batch {
        if !settings.hours().allow(&state.zone, Timestamp::now()) {
            return Ok(false);
        }
        let Ok(claimed) = state
            .blocking(|s| s.storage.claim_due_sms(Timestamp::now(), 1))
            .await
        else {
            return Ok(false);
        };
        let Some(sms) = claimed?.pop() else {
            return Ok(false);
        };
        let outcome = send_one(state, gateway, &sms).await;
        let id = sms.id;
        match state
            .blocking(move |s| s.storage.finish_sms(id, &outcome, Timestamp::now()))
            .await
        {
            Ok(Ok(true)) => {}
            // A delivery report came first and moved it on: it was sent.
            Ok(Ok(false)) => {
                tracing::info!(message = id, "SMS reported on before its try was recorded")
            }
            // Left `sending`: the next start makes it `unconfirmed`; the others go on.
            Ok(Err(error)) => {
                tracing::warn!(%error, message = id, "cannot record an SMS's outcome")
            }
            Err(error) => {
                tracing::warn!(%error, message = id, "recording an SMS's outcome panicked")
            }
        }
    }
    Ok(true)
}

fn report_url(s: &Shared, sms: &DueSms) -> String {
    format!(
        "{}/api/sms/reports/{}?key={}",
        s.config.sms.report_base(&s.config.public_url),
        sms.id,
        hex::encode(sms.report_key)
    )
}

async fn send_one<G: SmsGateway>(state: &AppState, gateway: &G, sms: &DueSms) -> SmsOutcome {
    let settings = &state.config.sms;
    let report_url = report_url(state, sms);
    let outgoing = Outgoing {
        to: &sms.phone,
        text: &sms.text,
        report_url: &report_url,
    };
    // The gateway has its own time limit; this one holds even if a gateway's does not.
    let limit = Duration::from_secs(settings.request_timeout_secs.saturating_add(5));
    let sent = tokio::time::timeout(limit, gateway.send(outgoing))
        .await
        .unwrap_or_else(|_| Err(SendError::Unknown(problem::NO_ANSWER.into())));
    match sent {
        Ok(()) => {
            tracing::info!(message = sms.id, attempt = sms.attempts, "SMS sent");
            SmsOutcome::Sent
        }
        Err(SendError::NotSent(error)) if sms.attempts < settings.max_attempts => {
            let wait = retry_delay(
                sms.attempts,
                seconds(settings.retry_first_secs),
                seconds(settings.retry_max_secs),
            );
            tracing::warn!(message = sms.id, attempt = sms.attempts, %error, "SMS not sent; it is tried again");
            SmsOutcome::Retry {
                at: Timestamp::now() + wait,
                error,
            }
        }
        Err(SendError::NotSent(error)) => {
            tracing::warn!(message = sms.id, %error, "SMS not sent after the last try; a person decides");
            SmsOutcome::Failed { error }
        }
        Err(SendError::Refused(error)) => {
            tracing::warn!(message = sms.id, %error, "SMS refused by the gateway; a person decides");
            SmsOutcome::Failed { error }
        }
        Err(SendError::Unknown(error)) => {
            tracing::warn!(message = sms.id, %error, "SMS outcome unknown; not sent again without a person");
            SmsOutcome::Unconfirmed { error }
        }
    }
}

/// A setting in seconds as a duration (the mail worker's backoff too).
pub(crate) fn seconds(secs: u64) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))
}
