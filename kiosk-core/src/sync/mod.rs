//! The client of the office server's tablet API, and the loop that drains the outbox.
//!
//! The loop: drain the outbox in batches, then upload the recordings of visits the server
//! already holds, then sleep until woken (a new rating) or the poll interval passes. On failure
//! it waits an exponential backoff with full jitter, capped, reset by a success. A visit leaves
//! the outbox only by an explicit per-visit answer of the server; nothing else drops a rating.
//! A recording's file is deleted only after the server reported it complete with our SHA-256,
//! or when the server refused it for good (then it is counted).

mod backoff;
mod client;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use shared_model::{FeedbackKey, MAX_SYNC_BATCH, PairingStatus, SyncBatch, TabletHealth, VisitAck};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

pub use backoff::Backoff;
pub use client::{
    ClientConfig, ClientError, ClientResult, DEFAULT_CHUNK_BYTES, RecordingFate, ServerClient,
    TlsTrust, UploadOutcome, platform_verifier_initialised,
};

use crate::store::{OutboxCounts, QueuedRecording, Store, StoreError};

#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Visits per sync request, 1..=500.
    pub batch_size: usize,
    /// How long the loop sleeps after a successful round when nothing wakes it.
    pub poll_interval: Duration,
    /// When the outbox is empty, a round sends an empty sync (the tablet's health) at most this
    /// often, and otherwise only asks for the pairing status, which writes nothing on the server.
    pub heartbeat_interval: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// After a protocol mismatch (426) the loop retries this rarely, or when woken.
    pub blocked_interval: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            batch_size: 200,
            poll_interval: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5 * 60),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(5 * 60),
            blocked_interval: Duration::from_secs(60 * 60),
        }
    }
}

/// What the staff panel shows about syncing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// The server answered the last attempt.
    pub online: bool,
    pub last_success: Option<Timestamp>,
    pub queued: u32,
    pub rejected: u32,
    pub recordings_pending: u32,
    pub recordings_dropped: u32,
    pub last_error: Option<String>,
    /// The pairing status from the server's last answer.
    pub pairing: Option<PairingStatus>,
    /// No device credential in the store: nothing is sent until the tablet is enrolled.
    pub not_enrolled: bool,
    /// The server refused the credential (401) and it was forgotten: enrol the tablet again.
    /// Stays true until a credential is stored.
    pub credential_revoked: bool,
    /// The server refused this app's protocol version (426): update the app.
    pub app_too_old: bool,
    /// The server is older than this app's protocol: update the office server.
    pub server_too_old: bool,
}

impl SyncStatus {
    /// The server took a request: it is reachable and speaks our protocol, and the last error
    /// is history.
    fn mark_answered(&mut self) {
        self.online = true;
        self.last_error = None;
        self.app_too_old = false;
        self.server_too_old = false;
    }

    fn set_counts(&mut self, counts: OutboxCounts) {
        self.queued = counts.queued;
        self.rejected = counts.rejected;
        self.recordings_pending = counts.recordings_pending;
        self.recordings_dropped = counts.recordings_dropped;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a storage task failed: {0}")]
    Task(String),
    #[error("cannot delete the uploaded recording {path}: {source}")]
    DeleteFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The server answered without acknowledging any visit of a batch; retried later rather
    /// than resending in a tight loop.
    #[error("the server acknowledged none of {0} visits")]
    NoProgress(usize),
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Sync requests that carried visits.
    pub batches: usize,
    pub visits_sent: usize,
    /// Visits the server now holds (stored or already stored) that left the outbox.
    pub visits_acknowledged: usize,
    pub visits_rejected: usize,
    pub recordings_uploaded: usize,
    /// Bytes of recordings sent (a resumed upload sends only the rest).
    pub recording_bytes_sent: u64,
    pub recordings_dropped: usize,
    /// No credential: nothing was attempted.
    pub not_enrolled: bool,
}

/// The sync loop's state. [`SyncLoop::round`] is one pass; [`SyncLoop::run`] repeats it.
pub struct SyncLoop {
    store: Arc<Store>,
    client: ServerClient,
    config: SyncConfig,
    health: Box<dyn Fn() -> TabletHealth + Send + Sync>,
    status: watch::Sender<SyncStatus>,
    backoff: Backoff,
    last_heartbeat: Option<Instant>,
    /// The credential the current round uses.
    token: Option<String>,
}

/// Runs the sync loop with [`SyncConfig::default`] until `shutdown` turns true (or its sender
/// is dropped). `wake` is notified after each new rating (a wake-up while the loop is busy is
/// kept for after it). `health` reports the app version, microphone and free storage; the loop
/// fills in the queue lengths.
pub async fn run_sync_loop(
    store: Arc<Store>,
    client: ServerClient,
    health: impl Fn() -> TabletHealth + Send + Sync + 'static,
    wake: Arc<Notify>,
    status: watch::Sender<SyncStatus>,
    shutdown: watch::Receiver<bool>,
) {
    SyncLoop::new(store, client, SyncConfig::default(), health, status)
        .run(wake, shutdown)
        .await;
}

impl SyncLoop {
    pub fn new(
        store: Arc<Store>,
        client: ServerClient,
        mut config: SyncConfig,
        health: impl Fn() -> TabletHealth + Send + Sync + 'static,
        status: watch::Sender<SyncStatus>,
    ) -> Self {
        config.batch_size = config.batch_size.clamp(1, MAX_SYNC_BATCH);
        let backoff = Backoff::new(config.backoff_base, config.backoff_cap);
        Self {
            store,
            client,
            config,
            health: Box::new(health),
            status,
            backoff,
            last_heartbeat: None,
            token: None,
        }
    }

    /// Rounds until `shutdown` turns true or its sender is dropped. Stopping in the middle of a
    /// request is safe: the outbox changes only after the server's answer, in one transaction.
    pub async fn run(mut self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let stopped = async move {
            // An error means the sender is gone: nobody can ask for a stop any more, so stop.
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        let mut shutdown = std::pin::pin!(stopped);
        loop {
            let wait = tokio::select! {
                biased;
                () = &mut shutdown => break,
                result = self.round() => self.wait_after(result),
            };
            tracing::trace!(?wait, "sync loop sleeps");
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("sync loop stopped");
    }

    /// Applies `change` to the published status; watchers wake only if it really changed.
    fn publish(&self, change: impl FnOnce(&mut SyncStatus)) {
        self.status.send_if_modified(|status| {
            let before = status.clone();
            change(status);
            *status != before
        });
    }

    fn wait_after(&mut self, result: Result<RoundReport, SyncError>) -> Duration {
        match result {
            Ok(_) => {
                self.backoff.reset();
                self.config.poll_interval
            }
            // Nothing will change until someone enrols the tablet (and wakes the loop).
            Err(SyncError::Client(ClientError::Unauthorized(_))) => self.config.poll_interval,
            Err(SyncError::Client(ClientError::AppTooOld(_) | ClientError::ServerTooOld(_))) => {
                self.config.blocked_interval
            }
            Err(_) => {
                let wait = self.backoff.next_delay();
                tracing::debug!(failures = self.backoff.failures(), ?wait, "sync backs off");
                wait
            }
        }
    }

    /// One pass: drain the outbox, then upload recordings. Publishes the status as it goes.
    pub async fn round(&mut self) -> Result<RoundReport, SyncError> {
        if self.status.borrow().last_success.is_none() {
            // After a restart the staff panel still knows when the tablet last synced.
            if let Ok(Some(at)) = store_call(&self.store, Store::last_sync).await {
                self.publish(|status| status.last_success = Some(at));
            }
        }
        let result = self.round_inner().await;
        if let Err(error) = &result {
            tracing::warn!(%error, "sync round failed");
            if let SyncError::Client(ClientError::Unauthorized(_)) = error {
                // The token is dead; keep everything else for after re-enrolment.
                self.client.set_token(None);
                if let Some(token) = self.token.take() {
                    let forgotten = store_call(&self.store, move |store| {
                        store.forget_credentials_if(&token)
                    })
                    .await;
                    if let Err(error) = forgotten {
                        tracing::error!(%error, "cannot forget the revoked credential");
                    }
                }
            }
        }
        let counts = store_call(&self.store, Store::counts).await;
        self.publish(|status| {
            if let Ok(counts) = counts {
                status.set_counts(counts);
            }
            let Err(error) = &result else {
                status.last_error = None;
                return;
            };
            status.last_error = Some(error.to_string());
            let SyncError::Client(error) = error else {
                return;
            };
            // A refusal means the server is there; only a failed exchange means offline.
            status.online = !matches!(
                error,
                ClientError::Network(_)
                    | ClientError::Unavailable { .. }
                    | ClientError::InvalidResponse(_)
            );
            match error {
                ClientError::Unauthorized(_) => {
                    status.credential_revoked = true;
                    status.not_enrolled = true;
                }
                ClientError::AppTooOld(_) => status.app_too_old = true,
                ClientError::ServerTooOld(_) => status.server_too_old = true,
                _ => {}
            }
        });
        result
    }

    async fn round_inner(&mut self) -> Result<RoundReport, SyncError> {
        let mut report = RoundReport::default();
        // The store is the source of truth for the credential; the client holds a copy.
        let Some(credentials) = store_call(&self.store, Store::credentials).await? else {
            self.client.set_token(None);
            report.not_enrolled = true;
            self.publish(|status| status.not_enrolled = true);
            return Ok(report);
        };
        self.publish(|status| {
            status.not_enrolled = false;
            status.credential_revoked = false;
        });
        self.client
            .set_token(Some(credentials.device_token.clone()));
        self.token = Some(credentials.device_token);
        self.drain(&mut report).await?;
        let now = Timestamp::now();
        store_call(&self.store, move |store| store.set_last_sync(now)).await?;
        self.publish(|status| status.last_success = Some(now));
        self.recordings(&mut report).await?;
        Ok(report)
    }

    /// Sends the outbox, oldest first, until it is empty. With an empty outbox it sends one
    /// empty batch when the heartbeat is due, or else asks for the pairing status.
    async fn drain(&mut self, report: &mut RoundReport) -> Result<(), SyncError> {
        let mut batch_size = self.config.batch_size;
        loop {
            let visits =
                store_call(&self.store, move |store| store.outbox_batch(batch_size)).await?;
            if visits.is_empty() {
                let heartbeat_due = self
                    .last_heartbeat
                    .is_none_or(|at| at.elapsed() >= self.config.heartbeat_interval);
                if report.batches > 0 || !heartbeat_due {
                    if report.batches == 0 {
                        let pairing = self.client.pairing_status().await?;
                        self.publish(|status| {
                            status.mark_answered();
                            status.pairing = Some(pairing);
                        });
                    }
                    return Ok(());
                }
            }
            let counts = store_call(&self.store, Store::counts).await?;
            let mut health = (self.health)();
            health.queue_length = counts.queued;
            health.recordings_pending = counts.recordings_pending;
            // Until the server says where feedback links lead, it may not hold our key (a
            // tablet enrolled before protocol 3): send it.
            let feedback_key = store_call(&self.store, |store| {
                Ok(match store.feedback_links()? {
                    Some(_) => None,
                    None => Some(FeedbackKey::of(&store.feedback_signing_key()?)),
                })
            })
            .await?;
            let batch = SyncBatch {
                sent_at: Timestamp::now(),
                health,
                visits,
                feedback_key,
            };
            let response = match self.client.sync(&batch).await {
                Ok(response) => response,
                Err(ClientError::Refused { status: 413, .. }) if batch_size > 1 => {
                    // The server takes smaller batches than we thought: halve and go on.
                    batch_size /= 2;
                    tracing::info!(batch_size, "sync batch too large; halving");
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            self.last_heartbeat = Some(Instant::now());
            let links = response.feedback_links;
            store_call(&self.store, move |store| {
                store.set_feedback_links(links.as_ref())
            })
            .await?;
            let sent = batch.visits.len();
            // Only answers about visits of this batch count.
            let ids: HashSet<Uuid> = batch.visits.iter().map(|visit| visit.id).collect();
            let acks: Vec<VisitAck> = response
                .results
                .into_iter()
                .filter(|ack| ids.contains(&ack.id))
                .collect();
            let summary = store_call(&self.store, move |store| store.apply_acks(&acks)).await?;
            let counts = store_call(&self.store, Store::counts).await?;
            let pairing = response.pairing;
            self.publish(|status| {
                status.mark_answered();
                status.pairing = Some(pairing);
                status.set_counts(counts);
            });
            if sent == 0 {
                return Ok(());
            }
            report.batches += 1;
            report.visits_sent += sent;
            report.visits_acknowledged += summary.removed;
            report.visits_rejected += summary.rejected;
            tracing::debug!(
                sent,
                acknowledged = summary.removed,
                rejected = summary.rejected,
                queued = counts.queued,
                "sync batch"
            );
            if summary.removed + summary.rejected == 0 {
                return Err(SyncError::NoProgress(sent));
            }
        }
    }

    /// Discards recordings of rejected visits, then uploads the others one by one.
    async fn recordings(&mut self, report: &mut RoundReport) -> Result<(), SyncError> {
        for recording in store_call(&self.store, Store::recordings_to_discard).await? {
            self.give_up(&recording, "visit_rejected").await?;
            report.recordings_dropped += 1;
        }
        for recording in store_call(&self.store, Store::recordings_to_upload).await? {
            let uploaded = self
                .client
                .upload_recording(
                    recording.visit_id,
                    &recording.path,
                    recording.size_bytes,
                    &recording.sha256,
                )
                .await;
            match uploaded {
                Ok(outcome) => {
                    // The server confirmed our checksum: only now may the file go.
                    remove_file(&recording.path).await?;
                    let visit_id = recording.visit_id;
                    store_call(&self.store, move |store| store.recording_done(visit_id)).await?;
                    report.recordings_uploaded += 1;
                    report.recording_bytes_sent += outcome.bytes_sent;
                    tracing::info!(
                        visit = %visit_id,
                        resumed_from = outcome.resumed_from,
                        chunks = outcome.chunks_sent,
                        "recording uploaded"
                    );
                }
                Err(error) => match error.recording_fate() {
                    RecordingFate::GiveUp(reason) => {
                        tracing::warn!(visit = %recording.visit_id, %error, "recording refused");
                        self.give_up(&recording, reason).await?;
                        report.recordings_dropped += 1;
                    }
                    RecordingFate::Retry => return Err(error.into()),
                },
            }
            let counts = store_call(&self.store, Store::counts).await?;
            self.publish(|status| status.set_counts(counts));
        }
        Ok(())
    }

    async fn give_up(
        &self,
        recording: &QueuedRecording,
        reason: &'static str,
    ) -> Result<(), SyncError> {
        remove_file(&recording.path).await?;
        let visit_id = recording.visit_id;
        store_call(&self.store, move |store| {
            store.drop_recording(visit_id, reason)
        })
        .await?;
        Ok(())
    }
}

async fn remove_file(path: &std::path::Path) -> Result<(), SyncError> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SyncError::DeleteFile {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Runs blocking store work on tokio's blocking pool.
async fn store_call<T: Send + 'static>(
    store: &Arc<Store>,
    work: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, SyncError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|e| SyncError::Task(e.to_string()))?
        .map_err(SyncError::from)
}
