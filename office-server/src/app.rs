//! Building and running the server: shared state, listener, TLS, graceful shutdown.

use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use jiff::SignedDuration;
use jiff::tz::TimeZone;
use tokio_util::task::TaskTracker;

use crate::workday::Calendar;

use crate::api::claims::UploadClaims;
use crate::auth::{AddressThrottle, LoginThrottle};
use crate::config::{Config, ConfigError, TlsFiles};
use crate::http::Origin;
use crate::http::client::RequestCounts;
use crate::http::connections::{ConnectionLimits, LimitAcceptor};
use crate::live::LiveHub;
use crate::recordings::RecordingFiles;
use crate::storage::{SqliteStorage, Storage, StorageError, StorageResult};
use ipnet::IpNet;

/// How long shutdown waits for in-flight requests before it closes connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open storage: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot load TLS certificate or key: {0}")]
    Tls(std::io::Error),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Portal(#[from] crate::portal::PortalError),
    #[error(transparent)]
    Sms(crate::sms::kannel::KannelSetupError),
    #[error(transparent)]
    Mail(crate::config::ConfigError),
}

/// Blocking work that panicked (the panic is caught by tokio and costs one request).
#[derive(Debug, thiserror::Error)]
#[error("blocking work panicked: {0}")]
pub struct Panicked(tokio::task::JoinError);

/// Why [`AppState::db`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Panicked(#[from] Panicked),
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub storage: Arc<dyn Storage>,
    pub config: Config,
    pub zone: TimeZone,
    /// The office's production calendar, in its zone.
    pub calendar: Calendar,
    pub recordings: RecordingFiles,
    pub login_throttle: LoginThrottle,
    /// Guesses at pairing codes, per account.
    pub pairing_throttle: LoginThrottle,
    /// Enrolments started, per address.
    pub enrolment_throttle: AddressThrottle,
    /// Live updates for open dashboard pages.
    pub live: LiveHub,
    /// `public_url`'s origin: the one origin forms and cookie-authenticated requests may
    /// come from, when it is set.
    pub public_origin: Option<Origin>,
    /// Whether people reach the server over HTTPS (it serves TLS itself, or `public_url` is
    /// https): cookies are `Secure` and HSTS is sent.
    pub https: bool,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub proxies: Vec<IpNet>,
    /// Requests in progress per client.
    pub request_counts: Arc<RequestCounts>,
    /// Recording uploads running now.
    pub uploads: Arc<UploadClaims>,
    /// Where visitors' feedback links lead (`{public_url}/f/`), when `public_url` is set.
    pub feedback_base_url: Option<String>,
    /// Feedback posts, per client address and per link.
    pub feedback_throttle: crate::ops::feedback::FeedbackThrottle,
    /// The city portal visitors sign in through, when `portal.issuer` is set.
    pub portal: Option<crate::portal::Portal>,
    /// Visitors' sign-ins started, per client address.
    pub sign_in_throttle: crate::ops::visitors::SignInThrottle,
    /// Rung when a message is queued: the SMS outbox looks at once.
    pub sms_wake: tokio::sync::Notify,
    /// Rung when a notification is queued outside the mail worker (a failed backup).
    pub mail_wake: tokio::sync::Notify,
    /// The case-management system's tokens, as SHA-256 digests.
    pub case_tokens: Vec<[u8; 32]>,
    /// Who may read `/metrics`: these networks, and the holders of these tokens.
    pub metrics_networks: Vec<IpNet>,
    pub metrics_tokens: Vec<[u8; 32]>,
    /// Every piece of blocking work and every task a request leaves running: shutdown waits
    /// for them before it checkpoints, so that nothing writes to the database after that.
    pub background: TaskTracker,
}

impl Shared {
    /// What marking a result ready needs.
    pub fn outbox(&self) -> crate::ops::results::Outbox<'_> {
        crate::ops::results::Outbox {
            settings: &self.config.sms,
            wake: &self.sms_wake,
        }
    }
}

impl Shared {
    /// Плохо that reached the server before this are overdue if they have no verdict yet.
    pub fn verdicts_overdue_before(&self, now: jiff::Timestamp) -> jiff::Timestamp {
        self.calendar
            .overdue_before(now, self.config.review.verdict_working_days)
    }

    /// When a Плохо that reached the server at `received` must have its verdict.
    pub fn verdict_due(&self, received: jiff::Timestamp) -> jiff::Timestamp {
        self.calendar
            .due(received, self.config.review.verdict_working_days)
    }

    /// The office's working day, which bounds a pairing.
    pub fn workday(&self) -> crate::ops::pairing::Workday<'_> {
        crate::ops::pairing::Workday {
            zone: &self.zone,
            hours: &self.config.working_hours,
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(config: Config, storage: Arc<dyn Storage>) -> Result<Self, StartError> {
        let zone = config.office_time_zone()?;
        let recordings_dir = config.recordings_dir();
        let recordings =
            RecordingFiles::open(&recordings_dir).map_err(|source| StartError::DataDir {
                path: recordings_dir,
                source,
            })?;
        let public_origin = config.public_origin()?;
        let https = config.tls.is_some() || public_origin.as_ref().is_some_and(Origin::is_https);
        let proxies = config.proxies()?;
        // Installed before anything is counted.
        crate::metrics::handle();
        Ok(Self(Arc::new(Shared {
            storage,
            calendar: Calendar::new(zone.clone(), &config.calendar),
            zone,
            recordings,
            login_throttle: LoginThrottle::new(
                nonzero(config.throttle.sign_in_per_account),
                nonzero(config.throttle.sign_in_per_address),
            ),
            pairing_throttle: LoginThrottle::new(
                nonzero(config.throttle.pairing_per_account),
                nonzero(config.throttle.pairing_per_address),
            ),
            enrolment_throttle: AddressThrottle::per_minute(nonzero(
                config.throttle.enrolment_per_address,
            )),
            live: LiveHub::new(),
            public_origin,
            https,
            proxies,
            request_counts: Arc::default(),
            uploads: Arc::default(),
            feedback_base_url: config.feedback_base_url(),
            feedback_throttle: crate::ops::feedback::FeedbackThrottle::new(&config.feedback),
            portal: crate::portal::Portal::new(&config.portal, &config.public_url)?,
            sign_in_throttle: crate::ops::visitors::SignInThrottle::new(&config.portal),
            sms_wake: tokio::sync::Notify::new(),
            mail_wake: tokio::sync::Notify::new(),
            background: TaskTracker::new(),
            case_tokens: config.case_system.digests()?,
            metrics_networks: config.metrics.networks()?,
            metrics_tokens: config.metrics.digests()?,
            config,
        })))
    }

    /// Runs blocking work — a use case, storage, password hashing — on tokio's blocking pool.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, Panicked>
    where
        T: Send + 'static,
        F: FnOnce(&Shared) -> T + Send + 'static,
    {
        let state = self.clone();
        // The request's span goes with its work, so what the work logs names the request.
        let span = tracing::Span::current();
        self.background
            .spawn_blocking(move || span.in_scope(|| work(&state)))
            .await
            .map_err(Panicked)
    }

    /// Reads (or writes) storage on the blocking pool.
    pub async fn db<T, F>(&self, work: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Storage) -> StorageResult<T> + Send + 'static,
    {
        Ok(self
            .blocking(move |state| work(state.storage.as_ref()))
            .await??)
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Opens the SQLite storage in the configured data directory.
pub fn open_storage(config: &Config) -> Result<Arc<dyn Storage>, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    Ok(Arc::new(SqliteStorage::open_with(
        &config.database_path(),
        config.office_time_zone()?,
        config.group_commit(),
    )?))
}

/// A server bound to its port, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    handle: Handle<SocketAddr>,
}

impl Application {
    /// Opens storage and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let storage = open_storage(&config)?;
        Self::with_storage(config, storage)
    }

    pub fn with_storage(config: Config, storage: Arc<dyn Storage>) -> Result<Self, StartError> {
        let addr = config.listen;
        let listener =
            TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| StartError::Bind { addr, source })?;
        let state = AppState::new(config, storage)?;
        Ok(Self {
            listener,
            state,
            handle: Handle::new(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.config.listen)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that can stop the server gracefully from elsewhere.
    pub fn handle(&self) -> Handle<SocketAddr> {
        self.handle.clone()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish and checkpoints
    /// the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let Application {
            listener,
            state,
            handle,
        } = self;
        let local = listener.local_addr().map_err(StartError::Serve)?;
        let app =
            crate::api::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let graceful = handle.clone();
        let live = state.live.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests in flight");
            // Live-update streams never finish by themselves: end them first.
            live.shut_down();
            graceful.graceful_shutdown(Some(SHUTDOWN_GRACE));
        });
        let housekeeping = tokio::spawn(housekeeping(state.clone()));
        let retention = tokio::spawn(periodically(
            state.clone(),
            minutes(state.config.retention_check_minutes),
            "recordings deleted by the retention rule",
            crate::retention::pass,
        ));
        let uploads = tokio::spawn(periodically(
            state.clone(),
            Duration::from_secs(state.config.uploads.check_secs),
            "abandoned uploads deleted",
            |state| {
                crate::ops::uploads::expire_abandoned(
                    state.storage.as_ref(),
                    &state.recordings,
                    SignedDuration::from_secs(
                        i64::try_from(state.config.uploads.abandoned_after_secs)
                            .unwrap_or(i64::MAX),
                    ),
                    jiff::Timestamp::now(),
                )
            },
        ));
        let analysis = tokio::spawn(periodically(
            state.clone(),
            Duration::from_secs(state.config.review.analysis_check_secs),
            "recordings analysed for the player",
            |state| crate::ops::analysis::catch_up(state.storage.as_ref(), &state.recordings),
        ));
        let backups = state
            .config
            .backup
            .enabled()
            .then(|| tokio::spawn(crate::backup::scheduled(state.clone())));
        let mail = match state.config.mail.enabled() {
            true => {
                let mailer =
                    crate::mail::Mailer::new(&state.config.mail).map_err(StartError::Mail)?;
                Some(tokio::spawn(crate::mail::notifier::run(
                    state.clone(),
                    mailer,
                )))
            }
            false => None,
        };
        let sms = match state.config.sms.enabled() {
            true => {
                let kannel =
                    crate::sms::kannel::Kannel::new(&state.config.sms).map_err(StartError::Sms)?;
                Some(tokio::spawn(crate::sms::outbox::run(state.clone(), kannel)))
            }
            false => None,
        };
        let network = &state.config.network;
        let limits = ConnectionLimits::new(
            network.max_connections,
            network.max_connections_per_address,
            state.proxies.clone(),
        );
        let mut server = axum_server::from_tcp(listener)
            .map_err(StartError::Serve)?
            .handle(handle)
            // A connection must send its first request in time, whatever the protocol.
            .first_request_timeout(Duration::from_secs(network.header_read_timeout_secs))
            .accept_error_handler(|peer, error| {
                tracing::debug!(?peer, %error, "connection not accepted");
            });
        let builder = server.http_builder();
        builder
            .http1()
            // Covers the headers of every request, a kept-alive connection's next one too:
            // a slow or idle client loses its connection.
            .header_read_timeout(Duration::from_secs(network.header_read_timeout_secs));
        builder
            .http2()
            .keep_alive_interval(Duration::from_secs(network.http2_keep_alive_secs))
            .keep_alive_timeout(Duration::from_secs(network.http2_keep_alive_secs));
        let acceptor = LimitAcceptor::new(limits);
        let mut reload = None;
        let served = match &state.config.tls {
            Some(tls) => {
                let rustls =
                    axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                        .await
                        .map_err(StartError::Tls)?;
                reload = Some(tokio::spawn(reload_certificates(
                    rustls.clone(),
                    tls.clone(),
                    Duration::from_secs(network.tls_reload_check_secs),
                )));
                let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls)
                    .handshake_timeout(Duration::from_secs(network.tls_handshake_timeout_secs))
                    .acceptor(acceptor);
                tracing::info!(addr = %local, "serving HTTPS");
                server.acceptor(acceptor).serve(app).await
            }
            None => {
                tracing::info!(addr = %local, "serving HTTP");
                server.acceptor(acceptor).serve(app).await
            }
        };
        if let Some(reload) = reload {
            reload.abort();
        }
        housekeeping.abort();
        retention.abort();
        if let Some(sms) = sms {
            sms.abort();
        }
        if let Some(mail) = mail {
            mail.abort();
        }
        uploads.abort();
        analysis.abort();
        if let Some(backups) = backups {
            backups.abort();
        }
        // An aborted job's blocking work and an upload's analysis run on: let them finish.
        state.background.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, state.background.wait())
            .await
            .is_err()
        {
            tracing::warn!("background work still running at shutdown; checkpointing anyway");
        }
        let storage = Arc::clone(&state.storage);
        let checkpoint = tokio::task::spawn_blocking(move || storage.checkpoint()).await;
        match checkpoint {
            Ok(Ok(())) => tracing::info!("database checkpointed; stopped cleanly"),
            Ok(Err(error)) => tracing::warn!(%error, "checkpoint at shutdown failed"),
            Err(error) => tracing::warn!(%error, "checkpoint at shutdown panicked"),
        }
        served.map_err(StartError::Serve)
    }
}

/// Loads the certificate files again on SIGHUP, and when they change (checked every `every`),
/// so that a renewed certificate needs no restart. A file that does not load keeps the
/// certificate in use and says why.
async fn reload_certificates(
    rustls: axum_server::tls_rustls::RustlsConfig,
    files: TlsFiles,
    every: Duration,
) {
    let stamp = |files: &TlsFiles| {
        [&files.cert, &files.key].map(|path| {
            std::fs::metadata(path)
                .and_then(|meta| Ok((meta.modified()?, meta.len())))
                .ok()
        })
    };
    let mut seen = stamp(&files);
    let mut tick = tokio::time::interval(every);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let signalled = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<Option<()>>();
        let why = tokio::select! {
            _ = signalled => "SIGHUP",
            _ = tick.tick() => {
                let now = stamp(&files);
                if now == seen {
                    continue;
                }
                seen = now;
                "the files changed"
            }
        };
        match rustls.reload_from_pem_file(&files.cert, &files.key).await {
            Ok(()) => tracing::info!(reason = why, "TLS certificate reloaded"),
            Err(error) => {
                tracing::warn!(reason = why, %error, "TLS certificate not reloaded; the old one stays")
            }
        }
    }
}

fn minutes(n: u32) -> Duration {
    Duration::from_secs(60 * u64::from(n.max(1)))
}

/// Runs `job` on the blocking pool at once and then every `period`, until aborted; says how
/// many things it did (`done`), or that it failed — it runs again at the next period.
async fn periodically<E: std::fmt::Display + Send + 'static>(
    state: AppState,
    period: Duration,
    done: &'static str,
    job: fn(&Shared) -> Result<u64, E>,
) {
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        match state.blocking(job).await {
            Ok(Ok(0)) => {}
            Ok(Ok(count)) => tracing::info!(count, "{done}"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "periodic job failed ({done}); it runs again later")
            }
            Err(error) => tracing::warn!(%error, "periodic job panicked ({done})"),
        }
    }
}

/// Periodic chores that keep memory bounded.
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.login_throttle.forget_idle();
        state.pairing_throttle.forget_idle();
        state.enrolment_throttle.forget_idle();
        state.feedback_throttle.forget_idle();
        state.sign_in_throttle.forget_idle();
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
