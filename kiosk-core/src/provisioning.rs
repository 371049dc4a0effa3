//! Enrolment and pairing: ask the server for a code, show it, poll until a person enters it.
//! Each new request replaces the one in progress.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use shared_model::{EnrolmentRequest, EnrolmentStatus, FeedbackKey, PairingCodeStatus};
use tokio::sync::mpsc;

use crate::machine::Event;
use crate::store::{Credentials, Store};
use crate::sync::{Backoff, ServerClient};

/// How often the tablet asks whether its code was entered.
const POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisioningRequest {
    Enrol,
    Pair,
}

pub async fn run(
    client: ServerClient,
    store: Arc<Store>,
    app_version: String,
    mut requests: mpsc::Receiver<ProvisioningRequest>,
    events: mpsc::Sender<Event>,
) {
    let mut current = requests.recv().await;
    while let Some(request) = current {
        let flow = async {
            match request {
                ProvisioningRequest::Enrol => enrol(&client, &store, &app_version, &events).await,
                ProvisioningRequest::Pair => pair(&client, &store, &events).await,
            }
        };
        current = tokio::select! {
            () = flow => requests.recv().await,
            next = requests.recv() => next,
        };
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}

async fn enrol(
    client: &ServerClient,
    store: &Arc<Store>,
    app_version: &str,
    events: &mpsc::Sender<Event>,
) {
    let mut backoff = Backoff::default();
    loop {
        let stored = {
            let store = Arc::clone(store);
            blocking(move || store.pending_enrolment())
                .await
                .and_then(Result::ok)
                .flatten()
        };
        let started = match stored {
            Some(started) if started.expires_at > Timestamp::now() => started,
            _ => {
                let feedback_key = {
                    let store = Arc::clone(store);
                    blocking(move || store.feedback_signing_key())
                        .await
                        .and_then(|key| {
                            key.inspect_err(|error| {
                                tracing::warn!(%error, "no feedback key: it goes with a sync later");
                            })
                            .ok()
                        })
                        .map(|key| FeedbackKey::of(&key))
                };
                let request = EnrolmentRequest {
                    app_version: app_version.to_string(),
                    device_description: device_description(),
                    feedback_key,
                };
                match client.start_enrolment(&request).await {
                    Ok(started) => {
                        let store = Arc::clone(store);
                        let saved = started.clone();
                        blocking(move || store.save_pending_enrolment(&saved)).await;
                        started
                    }
                    Err(error) => {
                        tracing::info!(%error, "enrolment: server unreachable; retrying");
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                }
            }
        };
        backoff.reset();
        let _ = events
            .send(Event::EnrolmentCode(started.code.clone()))
            .await;
        loop {
            tokio::time::sleep(POLL).await;
            match client.poll_enrolment(started.enrolment_id).await {
                Ok(EnrolmentStatus::Pending { .. }) => {}
                Ok(EnrolmentStatus::Approved {
                    tablet_id,
                    tablet_name,
                    device_token,
                }) => {
                    let credentials = Credentials {
                        tablet_id,
                        tablet_name,
                        device_token,
                    };
                    let store = Arc::clone(store);
                    let saved = credentials.clone();
                    let stored = blocking(move || {
                        store.save_credentials(&saved)?;
                        store.clear_pending_enrolment()
                    })
                    .await;
                    if !matches!(stored, Some(Ok(()))) {
                        // Poll again: the next answer carries a fresh credential.
                        tracing::error!("cannot store the tablet's credential; retrying");
                        continue;
                    }
                    client.set_token(Some(credentials.device_token));
                    tracing::info!(tablet_id, "enrolled");
                    let _ = events.send(Event::Enrolled).await;
                    return;
                }
                Ok(EnrolmentStatus::Expired) => {
                    let store = Arc::clone(store);
                    blocking(move || store.clear_pending_enrolment()).await;
                    break;
                }
                Err(error) => tracing::info!(%error, "enrolment poll failed; retrying"),
            }
        }
    }
}

async fn pair(client: &ServerClient, store: &Arc<Store>, events: &mpsc::Sender<Event>) {
    let mut backoff = Backoff::default();
    loop {
        let issued = match client.request_pairing_code().await {
            Ok(issued) => issued,
            Err(error) => {
                tracing::info!(%error, "pairing: server unreachable; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        backoff.reset();
        let _ = events.send(Event::PairingCode(issued.code.clone())).await;
        loop {
            tokio::time::sleep(POLL).await;
            match client.poll_pairing_code(issued.request_id).await {
                Ok(PairingCodeStatus::Pending { .. }) => {}
                Ok(PairingCodeStatus::Paired { pairing }) => {
                    let store = Arc::clone(store);
                    let saved = pairing.clone();
                    blocking(move || store.save_pairing(&saved)).await;
                    tracing::info!(pairing = %pairing.id, "paired");
                    let _ = events.send(Event::Paired(pairing)).await;
                    return;
                }
                Ok(PairingCodeStatus::Expired) => break,
                Err(error) => tracing::info!(%error, "pairing poll failed; retrying"),
            }
        }
    }
}

/// What the administrator sees when approving: the host's name, where there is one.
fn device_description() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|name| format!("kiosk on {}", name.trim()))
        .unwrap_or_else(|_| "kiosk".to_string())
}
