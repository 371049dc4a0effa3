//! The kiosk: the state machine wired to its adapters — the store, the audio path, the office
//! server and the screen. One task owns the machine's state; everything else talks to it
//! through channels.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use shared_model::{PairingEndReason, PairingStatus, Rating, Visit};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::audio::{self, Capture, Source, SpoolInfo};
use crate::feedback::{self, FeedbackQr};
use crate::machine::{Effect, Event, State, Timings, step};
use crate::order::draw_order;
use crate::provisioning::{self, ProvisioningRequest};
use crate::screen::{Action, Screen, ScreenError, ScreenView, StaffStatus, View};
use crate::store::{ActiveVisit, QueuedRecording, Store, StoreError};
use crate::sync::{ServerClient, SyncStatus};

/// Below this much free space the kiosk rates without audio rather than fill the disk.
const MIN_FREE_BYTES_FOR_AUDIO: u64 = 64 * 1024 * 1024;
const TICK: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct KioskConfig {
    /// The office server's base URL, e.g. `https://office.example:8443`.
    pub server: String,
    pub data_dir: PathBuf,
    /// Port of the local screen server on 127.0.0.1; 0 picks a free one.
    pub screen_port: u16,
    /// Where visit audio comes from.
    pub audio: AudioChoice,
    pub timings: Timings,
    /// Shown in the 152-FZ notice: how long a Плохо recording may be kept.
    pub retention_days: u32,
    pub app_version: String,
    /// An extra trusted root (PEM) for an office CA.
    pub office_ca_pem: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioChoice {
    Microphone,
    /// Generated speech-like audio, for the simulator.
    Synthetic,
}

#[derive(Debug, thiserror::Error)]
pub enum KioskError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Screen(#[from] ScreenError),
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The office server's client could not be set up (its address, the office CA).
    #[error(transparent)]
    Client(#[from] crate::sync::ClientError),
    #[error("the kiosk task failed: {0}")]
    Task(String),
}

/// What the app around the kiosk tells it about its own life (on Android: the Activity's
/// callbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// The screen is covered or the app goes to the background. Everything already done is
    /// durable (every change is committed as it happens); a visit under way goes on recording.
    /// The sync loop is woken to send what is queued while the process may still run.
    Pause,
    /// Back on screen: the sync loop is woken (the network may be back) and the microphone is
    /// looked at again for the staff panel.
    Resume,
    /// The system is short of memory: SQLite gives back its page cache. Nothing else is
    /// dropped; the visit under way and its recording go on.
    LowMemory,
}

/// What [`RunningKiosk`] passes to the kiosk task besides taps.
#[derive(Debug, Clone, Copy)]
enum Control {
    Lifecycle(Lifecycle),
    MicrophonePermission(bool),
}

/// A running kiosk: its screen's URL, and handles to drive and stop it.
pub struct RunningKiosk {
    pub url: String,
    actions: mpsc::Sender<Action>,
    controls: mpsc::Sender<Control>,
    views: watch::Receiver<View>,
    recording: Arc<AtomicBool>,
    microphone_permitted: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    screen: JoinHandle<Result<(), ScreenError>>,
}

impl RunningKiosk {
    /// Whether the user (or policy) lets the app use the microphone; assumed until told
    /// otherwise. Refused: the staff panel says so and visits are rated without audio.
    /// Callable from any thread, inside or outside the async runtime.
    pub fn set_microphone_permission(&self, granted: bool) -> Result<(), KioskError> {
        self.microphone_permitted.store(granted, Ordering::SeqCst);
        self.control(Control::MicrophonePermission(granted))
    }

    /// Passes a lifecycle change of the app to the kiosk (see [`Lifecycle`]). Callable from
    /// any thread, inside or outside the async runtime; it does not wait for the kiosk.
    pub fn lifecycle(&self, event: Lifecycle) -> Result<(), KioskError> {
        self.control(Control::Lifecycle(event))
    }

    /// Whether a visit's audio is being captured now (on Android the foreground service of
    /// type microphone runs exactly while this is true).
    pub fn is_recording(&self) -> bool {
        self.recording.load(Ordering::SeqCst)
    }

    fn control(&self, control: Control) -> Result<(), KioskError> {
        self.controls.try_send(control).map_err(|error| {
            KioskError::Task(match error {
                mpsc::error::TrySendError::Full(_) => "the kiosk is not responding".into(),
                mpsc::error::TrySendError::Closed(_) => "the kiosk has stopped".into(),
            })
        })
    }

    /// Sends a tap, exactly as the page does.
    pub async fn act(&self, action: Action) -> bool {
        self.actions.send(action).await.is_ok()
    }

    /// The view the page shows, as it changes.
    pub fn views(&self) -> watch::Receiver<View> {
        self.views.clone()
    }

    /// Stops cleanly: the visit under way (if any) is left for recovery at the next start.
    pub async fn stop(self) -> Result<(), KioskError> {
        let _ = self.shutdown.send(true);
        self.task
            .await
            .map_err(|e| KioskError::Task(e.to_string()))?;
        self.screen
            .await
            .map_err(|e| KioskError::Task(e.to_string()))??;
        Ok(())
    }
}

/// Opens the store, recovers what a crash left, binds the screen and starts every task.
pub async fn start(config: KioskConfig) -> Result<RunningKiosk, KioskError> {
    let paths = Paths::create(&config.data_dir)?;
    let store = {
        let path = paths.database.clone();
        Arc::new(blocking(move || Store::open(&path)).await??)
    };
    let client = ServerClient::new(&config.server, config.office_ca_pem.as_deref())?;
    let screen = Screen::bind(config.screen_port).await?;
    let url = screen.url();

    let (actions_tx, actions_rx) = mpsc::channel(64);
    let (controls_tx, controls_rx) = mpsc::channel(16);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let initial = View {
        screen: ScreenView::Enrolment { code: None },
        staff: StaffStatus::default(),
        retention_days: config.retention_days,
    };
    let (views_tx, views_rx) = watch::channel(initial);
    let screen_shutdown = wait_for(shutdown_rx.clone());
    let screen_task =
        tokio::spawn(screen.serve(views_rx.clone(), actions_tx.clone(), screen_shutdown));

    let runtime = Runtime::new(config, paths, store, client, views_tx, shutdown_rx).await?;
    let recording = Arc::clone(&runtime.recording);
    let microphone_permitted = Arc::clone(&runtime.microphone_permitted);
    let task = tokio::spawn(runtime.run(actions_rx, controls_rx));
    tracing::info!(%url, "kiosk screen ready");
    Ok(RunningKiosk {
        url,
        actions: actions_tx,
        controls: controls_tx,
        views: views_rx,
        recording,
        microphone_permitted,
        shutdown: shutdown_tx,
        task,
        screen: screen_task,
    })
}

/// Sleeps until `deadline`, or for ever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn wait_for(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, KioskError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| KioskError::Task(e.to_string()))
}

#[derive(Debug, Clone)]
struct Paths {
    database: PathBuf,
    spool: PathBuf,
    recordings: PathBuf,
}

impl Paths {
    fn create(data_dir: &Path) -> Result<Self, KioskError> {
        let paths = Paths {
            database: data_dir.join("kiosk.sqlite3"),
            spool: data_dir.join("spool"),
            recordings: data_dir.join("recordings"),
        };
        for dir in [data_dir, &paths.spool, &paths.recordings] {
            std::fs::create_dir_all(dir).map_err(|source| KioskError::DataDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        Ok(paths)
    }

    fn spool_of(&self, visit: Uuid) -> PathBuf {
        self.spool.join(format!("{visit}.wav"))
    }

    fn recording_of(&self, visit: Uuid) -> PathBuf {
        self.recordings.join(format!("{visit}.3gpp"))
    }
}

/// Why the staff panel shows a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    DiskFull,
    MicrophoneUnavailable,
    /// The app may not use the microphone (Android's permission refused). The catalogue has no
    /// text of its own for it yet: it says the microphone is unavailable, and the staff panel's
    /// microphone line says "denied".
    MicrophoneDenied,
    AppTooOld,
    SavingFailed,
    /// This tablet's pairing ended because its specialist paired another tablet.
    SpecialistMoved,
    /// Pairing here ended the specialist's pairing on another tablet.
    EndedElsewhere,
}

impl Notice {
    fn key(self) -> &'static str {
        match self {
            Notice::DiskFull => "notice_no_audio_disk_full",
            Notice::MicrophoneUnavailable | Notice::MicrophoneDenied => {
                "notice_microphone_unavailable"
            }
            Notice::AppTooOld => "notice_app_too_old",
            Notice::SavingFailed => "notice_saving_failed",
            Notice::SpecialistMoved => "notice_specialist_moved",
            Notice::EndedElsewhere => "notice_ended_elsewhere",
        }
    }
}

struct Runtime {
    config: KioskConfig,
    paths: Paths,
    store: Arc<Store>,
    client: ServerClient,
    state: State,
    views: watch::Sender<View>,
    shutdown: watch::Receiver<bool>,
    provisioning: mpsc::Sender<ProvisioningRequest>,
    provisioning_events: mpsc::Receiver<Event>,
    sync_wake: Arc<Notify>,
    sync_status: watch::Receiver<SyncStatus>,
    capture: Option<(Uuid, Capture)>,
    /// True exactly while `capture` holds a running capture; read by [`RunningKiosk`].
    recording: Arc<AtomicBool>,
    /// Whether the app may use the microphone; written by [`RunningKiosk`].
    microphone_permitted: Arc<AtomicBool>,
    spool: Option<(Uuid, SpoolInfo)>,
    /// Finished visits that could not be written yet (e.g. a full disk); retried every tick.
    unsaved: Vec<Visit>,
    /// The QR code of the last rated visit's feedback link, for its thank-you screen.
    feedback_qr: Option<FeedbackQr>,
    /// Плохо spools to encode once no thank-you screen is on (see [`Runtime::handle`]), so
    /// that nothing on the screen (a stutter of a slow tablet) follows Плохо only.
    encode_after_thanks: Vec<(Uuid, PathBuf)>,
    notices: Vec<Notice>,
    microphone: &'static str,
    /// Set when the server reports the pairing ended while a visit was under way.
    pairing_ended: bool,
    tasks: Vec<JoinHandle<()>>,
}

impl Runtime {
    async fn new(
        config: KioskConfig,
        paths: Paths,
        store: Arc<Store>,
        client: ServerClient,
        views: watch::Sender<View>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, KioskError> {
        let (provisioning_tx, provisioning_rx) = mpsc::channel(8);
        let (events_tx, events_rx) = mpsc::channel(8);
        let provisioning_task = tokio::spawn(provisioning::run(
            client.clone(),
            Arc::clone(&store),
            config.app_version.clone(),
            provisioning_rx,
            events_tx,
        ));
        let sync_wake = Arc::new(Notify::new());
        let (status_tx, status_rx) = watch::channel(SyncStatus::default());
        let microphone_permitted = Arc::new(AtomicBool::new(true));
        let sync_task = tokio::spawn(crate::sync::run_sync_loop(
            Arc::clone(&store),
            client.clone(),
            health_reporter(
                config.app_version.clone(),
                config.data_dir.clone(),
                Arc::clone(&store),
                Arc::clone(&microphone_permitted),
            ),
            Arc::clone(&sync_wake),
            status_tx,
            shutdown.clone(),
        ));
        let microphone = match config.audio {
            AudioChoice::Microphone if audio::microphone_available() => "ok",
            AudioChoice::Microphone => "unavailable",
            AudioChoice::Synthetic => "synthetic",
        };
        let mut runtime = Runtime {
            config,
            paths,
            store,
            client,
            state: State::Enrolment { code: None },
            views,
            shutdown,
            provisioning: provisioning_tx,
            provisioning_events: events_rx,
            sync_wake,
            sync_status: status_rx,
            capture: None,
            recording: Arc::new(AtomicBool::new(false)),
            microphone_permitted,
            spool: None,
            unsaved: Vec::new(),
            feedback_qr: None,
            encode_after_thanks: Vec::new(),
            notices: Vec::new(),
            microphone,
            pairing_ended: false,
            tasks: vec![provisioning_task, sync_task],
        };
        runtime.recover().await?;
        Ok(runtime)
    }

    /// Applies the rules of steps 4 and 5 to whatever a crash left: an open visit ends unrated,
    /// and a spool is encoded only if its visit was rated Плохо; any other spool is deleted.
    async fn recover(&mut self) -> Result<(), KioskError> {
        let store = Arc::clone(&self.store);
        let active = blocking(move || store.active_visit()).await??;
        if let Some(active) = active {
            let cap_end = active.started_at + self.config.timings.visit_cap;
            let visit = Visit {
                id: active.id,
                pairing_id: active.pairing_id,
                service_id: active.service_id,
                started_at: active.started_at,
                ended_at: Timestamp::now().clamp(active.started_at, cap_end),
                rating: None,
                has_recording: false,
            };
            tracing::warn!(visit = %visit.id, "a visit was open at the last stop; it ends unrated");
            let store = Arc::clone(&self.store);
            blocking(move || store.finish_visit(&visit)).await??;
        }
        // An encoding cut short leaves `<visit>.3gpp.part`; its spool is still there and is
        // encoded again below, so the fragment is of no use.
        let recordings_dir = self.paths.recordings.clone();
        blocking(move || remove_unfinished_encodings(&recordings_dir)).await?;
        let spool_dir = self.paths.spool.clone();
        let leftovers = blocking(move || audio::leftover_spools(&spool_dir))
            .await?
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cannot list leftover spools");
                Vec::new()
            });
        for (visit_id, path) in leftovers {
            let store = Arc::clone(&self.store);
            let wanted = blocking(move || store.visit_wants_recording(visit_id)).await??;
            if wanted {
                tracing::info!(visit = %visit_id, "encoding a recording left by the last stop");
                self.encode_in_background(visit_id, path);
            } else {
                remove_file(&path);
            }
        }
        let store = Arc::clone(&self.store);
        let (credentials, pairing) =
            blocking(move || Ok::<_, StoreError>((store.credentials()?, store.pairing()?)))
                .await??;
        let first = match (credentials, pairing) {
            (None, _) => (State::Enrolment { code: None }, Effect::RequestEnrolment),
            (Some(_), None) => (State::Pairing { code: None }, Effect::RequestPairingCode),
            (Some(_), Some(pairing)) => {
                self.state = State::Idle { pairing };
                self.publish();
                return Ok(());
            }
        };
        self.state = first.0;
        self.apply(vec![first.1]).await;
        self.publish();
        Ok(())
    }

    async fn run(
        mut self,
        mut actions: mpsc::Receiver<Action>,
        mut controls: mpsc::Receiver<Control>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let thanks_end = self.thanks_end();
            tokio::select! {
                Some(action) = actions.recv() => {
                    if let Some(event) = self.event_of(action).await {
                        self.handle(event).await;
                    }
                }
                Some(event) = self.provisioning_events.recv() => self.handle(event).await,
                Some(control) = controls.recv() => self.on_control(control).await,
                Ok(()) = self.sync_status.changed() => self.on_sync_status().await,
                _ = tick.tick() => {
                    self.retry_unsaved().await;
                    self.handle(Event::Tick { now: Timestamp::now() }).await;
                }
                // The thank-you screen ends on time, not at the next tick: its length must not
                // vary by a tick's 250 ms from one visit to the next.
                () = sleep_until(thanks_end) => {
                    self.handle(Event::Tick { now: Timestamp::now() }).await;
                }
                _ = self.shutdown.changed() => break,
            }
        }
        // Stop recording without deciding anything: the open visit is recovered at the next
        // start by the same rules as after a crash.
        if let Some((_, capture)) = self.capture.take() {
            let _ = tokio::task::spawn_blocking(move || capture.stop()).await;
        }
        self.recording.store(false, Ordering::SeqCst);
        for task in &self.tasks {
            task.abort();
        }
    }

    /// When the thank-you screen on show ends, on the monotonic clock.
    fn thanks_end(&self) -> Option<tokio::time::Instant> {
        let State::Thanks { until, .. } = &self.state else {
            return None;
        };
        let left = until.duration_since(Timestamp::now());
        // A millisecond late rather than early: the machine ends the screen at `until` or after.
        let left = Duration::try_from(left).unwrap_or_default() + Duration::from_millis(1);
        Some(tokio::time::Instant::now() + left)
    }

    async fn event_of(&mut self, action: Action) -> Option<Event> {
        let now = Timestamp::now();
        Some(match action {
            Action::Start => Event::StartPressed,
            Action::ChooseService { service_id } => Event::ServiceChosen {
                service_id,
                visit_id: Uuid::now_v7(),
                now,
            },
            Action::Cancel => Event::ServiceChoiceCancelled,
            Action::End => match draw_order() {
                Ok(order) => Event::EndPressed { now, order },
                Err(error) => {
                    // Without a fair order the visitor is not asked: the visit ends unrated.
                    tracing::error!(%error, "no button order");
                    return None;
                }
            },
            Action::Rate { position } => Event::RatingTapped { position, now },
            Action::EndSession => {
                if let State::Idle { pairing } | State::ServiceChoice { pairing } = &self.state {
                    let client = self.client.clone();
                    let pairing_id = pairing.id;
                    // Best effort: offline, the server ends it at the close of the day anyway.
                    tokio::spawn(async move {
                        if let Err(error) = client.end_pairing().await {
                            tracing::warn!(%error, %pairing_id, "could not tell the server the session ended");
                        }
                    });
                }
                Event::PairingEnded
            }
        })
    }

    async fn handle(&mut self, event: Event) {
        // What the pairing notices say lasts until the next pairing, or its first visit.
        match &event {
            Event::Paired(pairing) => {
                self.notices
                    .retain(|n| !matches!(n, Notice::SpecialistMoved | Notice::EndedElsewhere));
                if !pairing.ended_elsewhere.is_empty() {
                    self.notices.push(Notice::EndedElsewhere);
                }
            }
            Event::StartPressed => self.notices.retain(|n| *n != Notice::EndedElsewhere),
            _ => {}
        }
        let state = std::mem::replace(&mut self.state, State::Enrolment { code: None });
        let was_thanks = matches!(state, State::Thanks { .. });
        let (next, effects) = step(state, event, &self.config.timings);
        self.state = next;
        self.apply(effects).await;
        // The machine counts the thank-you screen from the tap; it is shown only once the
        // rating is saved and its QR code drawn, which takes longer after some ratings (a Плохо
        // keeps a row more) and on the first visit. Counted from when it is shown, its length
        // is the same after every rating.
        if let State::Thanks { until, .. } = &mut self.state
            && !was_thanks
        {
            *until = Timestamp::now() + self.config.timings.thanks;
        }
        if self.pairing_ended && matches!(self.state, State::Idle { .. }) {
            self.pairing_ended = false;
            let state = std::mem::replace(&mut self.state, State::Enrolment { code: None });
            let (next, effects) = step(state, Event::PairingEnded, &self.config.timings);
            self.state = next;
            self.apply(effects).await;
        }
        self.publish();
        if !matches!(self.state, State::Thanks { .. }) {
            self.feedback_qr = None;
            for (visit_id, spool) in std::mem::take(&mut self.encode_after_thanks) {
                self.encode_in_background(visit_id, spool);
            }
        }
    }

    async fn on_control(&mut self, control: Control) {
        match control {
            Control::Lifecycle(event) => {
                tracing::info!(?event, "app lifecycle");
                match event {
                    Lifecycle::Pause => self.sync_wake.notify_one(),
                    Lifecycle::Resume => {
                        self.sync_wake.notify_one();
                        self.refresh_microphone().await;
                    }
                    Lifecycle::LowMemory => {
                        // SQLite is built with SQLITE_ENABLE_MEMORY_MANAGEMENT (bundled), so this
                        // frees the page caches of every connection in the process.
                        let freed = blocking(|| {
                            // SAFETY: a plain call into the thread-safe SQLite library; it takes
                            // each connection's own mutex.
                            unsafe { rusqlite::ffi::sqlite3_release_memory(i32::MAX) }
                        })
                        .await;
                        tracing::info!(freed_bytes = ?freed.ok(), "low memory: SQLite caches released");
                    }
                }
            }
            Control::MicrophonePermission(granted) => {
                tracing::info!(granted, "microphone permission");
                self.refresh_microphone().await;
            }
        }
        self.publish();
    }

    /// Brings the staff panel's microphone line and notices in line with the permission and,
    /// when no visit is recording, with the device.
    async fn refresh_microphone(&mut self) {
        if self.config.audio != AudioChoice::Microphone {
            return;
        }
        if !self.microphone_permitted.load(Ordering::SeqCst) {
            self.notices.retain(|n| *n != Notice::MicrophoneUnavailable);
            if !self.notices.contains(&Notice::MicrophoneDenied) {
                self.notices.push(Notice::MicrophoneDenied);
            }
            self.microphone = "denied";
            return;
        }
        self.notices.retain(|n| *n != Notice::MicrophoneDenied);
        if self.capture.is_none() {
            let available = blocking(audio::microphone_available).await.unwrap_or(false);
            self.microphone = if available { "ok" } else { "unavailable" };
        }
    }

    async fn on_sync_status(&mut self) {
        let status = self.sync_status.borrow_and_update().clone();
        self.notices.retain(|n| *n != Notice::AppTooOld);
        if status.app_too_old {
            self.notices.push(Notice::AppTooOld);
        }
        if status.credential_revoked {
            self.handle(Event::CredentialRevoked {
                now: Timestamp::now(),
            })
            .await;
            return;
        }
        let current = match &self.state {
            State::Idle { pairing }
            | State::ServiceChoice { pairing }
            | State::InVisit { pairing, .. }
            | State::Rating { pairing, .. }
            | State::Thanks { pairing, .. } => Some(pairing.id),
            _ => None,
        };
        match (&status.pairing, current) {
            (
                Some(PairingStatus::Ended {
                    pairing_id, reason, ..
                }),
                Some(current),
            ) if *pairing_id == current => {
                if *reason == PairingEndReason::MovedToAnotherTablet
                    && !self.notices.contains(&Notice::SpecialistMoved)
                {
                    self.notices.push(Notice::SpecialistMoved);
                }
                if matches!(self.state, State::Idle { .. } | State::ServiceChoice { .. }) {
                    self.handle(Event::PairingEnded).await;
                } else {
                    self.pairing_ended = true;
                }
            }
            (Some(PairingStatus::Active { pairing }), Some(current)) if pairing.id != current => {
                // Paired elsewhere meanwhile (e.g. from another code): take the new pairing.
                let pairing = pairing.clone();
                let store = Arc::clone(&self.store);
                let saved = pairing.clone();
                let _ = blocking(move || store.save_pairing(&saved)).await;
                self.handle(Event::Paired(pairing)).await;
            }
            _ => self.publish(),
        }
    }

    async fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::RequestEnrolment => {
                    let _ = self.provisioning.send(ProvisioningRequest::Enrol).await;
                }
                Effect::RequestPairingCode => {
                    let _ = self.provisioning.send(ProvisioningRequest::Pair).await;
                }
                Effect::BeginVisit(visit) => self.begin_visit(visit).await,
                Effect::StopRecording { visit_id } => self.stop_recording(visit_id).await,
                Effect::FinishVisit(visit) => self.finish_visit(visit).await,
                Effect::ForgetPairing => {
                    let store = Arc::clone(&self.store);
                    if let Ok(Err(error)) = blocking(move || store.clear_pairing()).await {
                        tracing::warn!(%error, "cannot forget the pairing");
                    }
                }
            }
        }
    }

    async fn begin_visit(&mut self, visit: crate::machine::OpenVisit) {
        let active = ActiveVisit {
            id: visit.id,
            pairing_id: visit.pairing_id,
            service_id: visit.service_id,
            started_at: visit.started_at,
        };
        let store = Arc::clone(&self.store);
        if let Ok(Err(error)) = blocking(move || store.begin_visit(&active)).await {
            // The visit still runs; only its crash recovery is lost.
            tracing::warn!(%error, "cannot persist the open visit");
        }
        self.notices
            .retain(|n| !matches!(n, Notice::DiskFull | Notice::MicrophoneUnavailable));
        if free_bytes(&self.config.data_dir).is_some_and(|free| free < MIN_FREE_BYTES_FOR_AUDIO) {
            self.notices.push(Notice::DiskFull);
            return;
        }
        if self.config.audio == AudioChoice::Microphone
            && !self.microphone_permitted.load(Ordering::SeqCst)
        {
            // The notice is already up (set when the permission was refused).
            tracing::info!(visit = %visit.id, "no microphone permission: the visit runs without audio");
            return;
        }
        let source = match self.config.audio {
            AudioChoice::Microphone => Source::Microphone,
            AudioChoice::Synthetic => Source::Synthetic {
                seed: visit.id.as_u128() as u64,
            },
        };
        let path = self.paths.spool_of(visit.id);
        match blocking(move || Capture::start(source, &path)).await {
            Ok(Ok(capture)) => {
                if self.config.audio == AudioChoice::Microphone {
                    self.microphone = "ok";
                }
                self.capture = Some((visit.id, capture));
                self.recording.store(true, Ordering::SeqCst);
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "recording could not start; the visit runs without audio");
                self.notices.push(Notice::MicrophoneUnavailable);
                self.microphone = "unavailable";
            }
            Err(error) => tracing::error!(%error, "recording task failed"),
        }
    }

    async fn stop_recording(&mut self, visit_id: Uuid) {
        let Some((id, capture)) = self.capture.take() else {
            return;
        };
        self.recording.store(false, Ordering::SeqCst);
        if id != visit_id {
            tracing::warn!(%id, %visit_id, "a capture of another visit was running; stopping it");
        }
        match blocking(move || capture.stop()).await {
            Ok(Ok(info)) => self.spool = Some((id, info)),
            Ok(Err(error)) => tracing::warn!(%error, "stopping the recording failed"),
            Err(error) => tracing::error!(%error, "recording task failed"),
        }
    }

    async fn finish_visit(&mut self, mut visit: Visit) {
        let spool = match self.spool.take() {
            Some((id, info)) if id == visit.id => Some(info.path),
            Some((_, other)) => {
                remove_file(&other.path);
                None
            }
            None => None,
        };
        let keep_audio = visit.rating == Some(Rating::Bad) && spool.is_some();
        visit.has_recording = keep_audio;
        let saved = self.save(visit.clone()).await;
        if visit.rating.is_some() {
            // The thank-you screen follows: the same work after every rating.
            self.prepare_feedback_qr(visit.id).await;
        }
        match (keep_audio, spool) {
            (true, Some(path)) if saved => self.encode_after_thanks.push((visit.id, path)),
            // Not Плохо, or unrated: the recording serves no purpose and goes at once. If the
            // rating is not saved yet, the spool waits for the retry to decide.
            (_, Some(path)) if saved || !keep_audio => remove_file(&path),
            _ => {}
        }
        self.sync_wake.notify_one();
    }

    /// Signs the visit's feedback link and draws its QR code, if the server has said where
    /// links lead. Without it the thank-you screen shows no code, whatever was pressed.
    async fn prepare_feedback_qr(&mut self, visit_id: Uuid) {
        let store = Arc::clone(&self.store);
        self.feedback_qr = match blocking(move || feedback::visit_qr(&store, visit_id)).await {
            Ok(Ok(qr)) => qr,
            Ok(Err(error)) => {
                tracing::warn!(%error, "no feedback QR code for this visit");
                None
            }
            Err(error) => {
                tracing::error!(%error, "feedback QR code task failed");
                None
            }
        };
    }

    /// Writes the finished visit; on failure keeps it to retry, so no rating is lost.
    async fn save(&mut self, visit: Visit) -> bool {
        let store = Arc::clone(&self.store);
        let attempt = visit.clone();
        match blocking(move || store.finish_visit(&attempt)).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::error!(%error, visit = %visit.id, "cannot save the rating yet; retrying");
                self.unsaved.push(visit);
                if !self.notices.contains(&Notice::SavingFailed) {
                    self.notices.push(Notice::SavingFailed);
                }
                false
            }
            Err(error) => {
                tracing::error!(%error, "saving task failed");
                self.unsaved.push(visit);
                false
            }
        }
    }

    async fn retry_unsaved(&mut self) {
        if self.unsaved.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.unsaved);
        for visit in pending {
            let id = visit.id;
            let wants_audio = visit.has_recording;
            if self.save(visit).await {
                let spool = self.paths.spool_of(id);
                if wants_audio && spool.exists() {
                    // Started by the tick's `handle` that follows, unless a thank-you screen
                    // is on.
                    self.encode_after_thanks.push((id, spool));
                } else {
                    remove_file(&spool);
                }
            }
        }
        if self.unsaved.is_empty() {
            self.notices.retain(|n| *n != Notice::SavingFailed);
            self.sync_wake.notify_one();
        }
    }

    /// Encodes a Плохо visit's spool off the visit's path, queues the file for upload and
    /// deletes the spool.
    fn encode_in_background(&mut self, visit_id: Uuid, spool: PathBuf) {
        let out = self.paths.recording_of(visit_id);
        let store = Arc::clone(&self.store);
        let wake = Arc::clone(&self.sync_wake);
        self.tasks.retain(|task| !task.is_finished());
        self.tasks.push(tokio::spawn(async move {
            let result = tokio::task::spawn_blocking(move || {
                let encoded = audio::encode_spool(&spool, &out)?;
                store
                    .queue_recording(&QueuedRecording {
                        visit_id,
                        path: encoded.path.clone(),
                        size_bytes: encoded.size_bytes,
                        sha256: encoded.sha256.clone(),
                    })
                    .map_err(|e| anyhow::anyhow!(e))?;
                remove_file(&spool);
                Ok::<_, anyhow::Error>(encoded)
            })
            .await;
            match result {
                Ok(Ok(encoded)) => {
                    tracing::info!(visit = %visit_id, bytes = encoded.size_bytes, "recording encoded");
                    wake.notify_one();
                }
                Ok(Err(error)) => tracing::error!(%error, visit = %visit_id, "encoding failed"),
                Err(error) => tracing::error!(%error, "encoding task failed"),
            }
        }));
    }

    fn publish(&self) {
        let status = self.sync_status.borrow().clone();
        let mut notices: Vec<&'static str> = self.notices.iter().map(|n| n.key()).collect();
        notices.dedup();
        let paired = matches!(
            self.state,
            State::Idle { .. }
                | State::ServiceChoice { .. }
                | State::InVisit { .. }
                | State::Rating { .. }
                | State::Thanks { .. }
        );
        let view = View {
            screen: ScreenView::of(&self.state, self.feedback_qr.as_ref()),
            staff: StaffStatus {
                queued: status.queued + self.unsaved.len() as u32,
                rejected: status.rejected,
                recordings_pending: status.recordings_pending,
                last_sync: status.last_success.map(|t| t.to_string()),
                online: status.online,
                microphone: self.microphone,
                notices,
                paired,
            },
            retention_days: self.config.retention_days,
        };
        self.views.send_if_modified(|current| {
            if *current == view {
                false
            } else {
                *current = view;
                true
            }
        });
    }
}

fn remove_unfinished_encodings(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "part") {
            tracing::info!(path = %path.display(), "removing an encoding cut short");
            remove_file(&path);
        }
    }
}

fn remove_file(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::error!(%error, path = %path.display(), "cannot delete a recording"),
    }
}

/// Free bytes on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// What each sync reports about the tablet.
fn health_reporter(
    app_version: String,
    data_dir: PathBuf,
    store: Arc<Store>,
    microphone_permitted: Arc<AtomicBool>,
) -> impl Fn() -> shared_model::TabletHealth + Send + Sync + 'static {
    move || {
        let counts = store.counts().unwrap_or_default();
        shared_model::TabletHealth {
            app_version: app_version.clone(),
            queue_length: counts.queued,
            recordings_pending: counts.recordings_pending,
            free_storage_bytes: free_bytes(&data_dir).unwrap_or(0),
            microphone: if !microphone_permitted.load(Ordering::SeqCst) {
                shared_model::MicrophoneState::PermissionDenied
            } else if audio::microphone_available() {
                shared_model::MicrophoneState::Ok
            } else {
                shared_model::MicrophoneState::Unavailable
            },
        }
    }
}
