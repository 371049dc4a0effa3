//! The kiosk of this process: one Tokio runtime and at most one running kiosk core, shared by
//! every JNI call. Plain Rust, no JNI: the entry points in `lib.rs` only convert arguments and
//! errors.
//!
//! The kiosk lives as long as the process, not as long as an Activity: Android recreates an
//! Activity for many reasons (a configuration change, a return from the background), and each
//! new one calls `start` again; with the same arguments it gets the running kiosk's URL, so a
//! visit under way goes on.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use kiosk_core::kiosk::{self, AudioChoice, KioskConfig, KioskError, Lifecycle, RunningKiosk};
use kiosk_core::machine::Timings;
use tokio::runtime::Runtime;

/// Opening the store, recovering what a crash left and binding the screen take milliseconds;
/// past this something is wrong, and the caller gets an error rather than a hung thread.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Stopping waits for the recording under way to be finalised and the screen to close.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

const APP_VERSION: &str = concat!("kiosk-android ", env!("CARGO_PKG_VERSION"));

/// What `start` is given.
#[derive(Clone, PartialEq, Eq)]
pub struct StartArgs {
    /// The app's private directory for the kiosk's database, spool and recordings.
    pub data_dir: PathBuf,
    /// The office server, e.g. `https://office.example:8443`.
    pub server: String,
    /// The office's own CA (PEM); when given, only it is trusted.
    pub office_ca_pem: Option<String>,
    /// Shown in the visitor's 152-FZ notice.
    pub retention_days: u32,
}

impl std::fmt::Debug for StartArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartArgs")
            .field("data_dir", &self.data_dir)
            .field("server", &self.server)
            .field(
                "office_ca_pem",
                &self.office_ca_pem.as_ref().map(|_| "<pem>"),
            )
            .field("retention_days", &self.retention_days)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller's mistake: the message names the argument and what is wrong with it.
    #[error("{0}")]
    BadArgument(String),
    #[error("cannot create the kiosk's async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the kiosk did not start: {0}")]
    Start(#[source] KioskError),
    #[error("the kiosk did not stop cleanly: {0}")]
    Stop(#[source] KioskError),
    #[error("the kiosk did not {what} within {seconds} s")]
    Timeout { what: &'static str, seconds: u64 },
    #[error("the kiosk cannot take this now: {0}")]
    Control(#[source] KioskError),
}

struct Running {
    kiosk: RunningKiosk,
    args: StartArgs,
}

/// Serialises `start` and `stop` (each may block for a while); never held by the quick calls.
static START_STOP: Mutex<()> = Mutex::new(());
/// The running kiosk; held only for quick calls that do not wait.
static RUNNING: Mutex<Option<Running>> = Mutex::new(None);

const PERMISSION_UNKNOWN: u8 = 0;
const PERMISSION_GRANTED: u8 = 1;
const PERMISSION_DENIED: u8 = 2;
/// The last microphone permission reported, kept for a kiosk started after the report.
static MICROPHONE: AtomicU8 = AtomicU8::new(PERMISSION_UNKNOWN);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a value that is still consistent (an Option
    // that is either set or not), so the poison is ignored.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The library's one Tokio runtime, made at the first start and kept for the process.
fn runtime() -> Result<&'static Runtime, Error> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("kiosk-rt")
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    // Two first calls at once: one runtime wins, the other is dropped unused.
    Ok(RUNTIME.get_or_init(|| built))
}

impl StartArgs {
    /// Checks what can be checked without starting anything; the rest (the address's form,
    /// the CA's certificates) is checked by kiosk-core, whose messages are passed on.
    fn check(&self) -> Result<(), Error> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(Error::BadArgument(
                "dataDir is empty: give the app's private directory for the kiosk's data".into(),
            ));
        }
        if !self.data_dir.is_absolute() {
            return Err(Error::BadArgument(format!(
                "dataDir must be an absolute path, got {:?}",
                self.data_dir
            )));
        }
        if self.server.trim().is_empty() {
            return Err(Error::BadArgument(
                "serverUrl is empty: the office server's address is not configured \
                 (e.g. https://office.example:8443)"
                    .into(),
            ));
        }
        if self.retention_days == 0 {
            return Err(Error::BadArgument(
                "retentionDays must be at least 1".into(),
            ));
        }
        Ok(())
    }

    fn config(&self) -> KioskConfig {
        KioskConfig {
            server: self.server.trim().to_string(),
            data_dir: self.data_dir.clone(),
            screen_port: 0,
            audio: AudioChoice::Microphone,
            timings: Timings::default(),
            retention_days: self.retention_days,
            app_version: APP_VERSION.to_string(),
            office_ca_pem: self.office_ca_pem.clone().map(String::into_bytes),
        }
    }
}

/// Starts the kiosk and returns the URL of its screen (with the secret token). Already
/// running with the same arguments: returns the running kiosk's URL. Running with other
/// arguments (e.g. a new server address): stops it and starts anew.
pub fn start(args: StartArgs) -> Result<String, Error> {
    args.check()?;
    let _serial = lock(&START_STOP);
    let previous = {
        let mut running = lock(&RUNNING);
        match running.as_ref() {
            Some(current) if current.args == args => return Ok(current.kiosk.url.clone()),
            Some(_) => running.take(),
            None => None,
        }
    };
    let runtime = runtime()?;
    if let Some(previous) = previous {
        tracing::info!("the kiosk's settings changed; restarting it");
        if let Err(error) = stop_kiosk(runtime, previous.kiosk) {
            tracing::warn!(%error, "the previous kiosk did not stop cleanly");
        }
    }
    tracing::info!(?args, "starting the kiosk");
    let kiosk = runtime
        .block_on(async { tokio::time::timeout(START_TIMEOUT, kiosk::start(args.config())).await })
        .map_err(|_| Error::Timeout {
            what: "start",
            seconds: START_TIMEOUT.as_secs(),
        })?
        .map_err(Error::Start)?;
    match MICROPHONE.load(Ordering::SeqCst) {
        PERMISSION_GRANTED => kiosk.set_microphone_permission(true),
        PERMISSION_DENIED => kiosk.set_microphone_permission(false),
        _ => Ok(()),
    }
    .map_err(Error::Control)?;
    let url = kiosk.url.clone();
    *lock(&RUNNING) = Some(Running { kiosk, args });
    Ok(url)
}

/// Stops the kiosk if it runs; the visit under way, if any, is left for recovery at the next
/// start (it ends unrated, as after a crash).
pub fn stop() -> Result<(), Error> {
    let _serial = lock(&START_STOP);
    let Some(running) = lock(&RUNNING).take() else {
        return Ok(());
    };
    stop_kiosk(runtime()?, running.kiosk)
}

fn stop_kiosk(runtime: &Runtime, kiosk: RunningKiosk) -> Result<(), Error> {
    runtime
        .block_on(async { tokio::time::timeout(STOP_TIMEOUT, kiosk.stop()).await })
        .map_err(|_| Error::Timeout {
            what: "stop",
            seconds: STOP_TIMEOUT.as_secs(),
        })?
        .map_err(Error::Stop)?;
    tracing::info!("the kiosk stopped");
    Ok(())
}

/// The Java side's lifecycle codes (`KioskNative.PAUSE`, `RESUME`, `LOW_MEMORY`).
pub fn lifecycle_of(code: i32) -> Result<Lifecycle, Error> {
    match code {
        1 => Ok(Lifecycle::Pause),
        2 => Ok(Lifecycle::Resume),
        3 => Ok(Lifecycle::LowMemory),
        other => Err(Error::BadArgument(format!(
            "unknown lifecycle event {other}: use KioskNative.PAUSE (1), RESUME (2) or LOW_MEMORY (3)"
        ))),
    }
}

/// Passes a lifecycle change on; with no kiosk running there is nothing to tell.
pub fn lifecycle(event: Lifecycle) -> Result<(), Error> {
    match lock(&RUNNING).as_ref() {
        Some(running) => running.kiosk.lifecycle(event).map_err(Error::Control),
        None => {
            tracing::debug!(?event, "lifecycle event with no kiosk running");
            Ok(())
        }
    }
}

/// Records the microphone permission and passes it on (now, or at the next start).
pub fn set_microphone_permission(granted: bool) -> Result<(), Error> {
    let value = if granted {
        PERMISSION_GRANTED
    } else {
        PERMISSION_DENIED
    };
    MICROPHONE.store(value, Ordering::SeqCst);
    match lock(&RUNNING).as_ref() {
        Some(running) => running
            .kiosk
            .set_microphone_permission(granted)
            .map_err(Error::Control),
        None => Ok(()),
    }
}

/// Whether a visit is being recorded now.
pub fn is_recording() -> bool {
    lock(&RUNNING)
        .as_ref()
        .is_some_and(|running| running.kiosk.is_recording())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(server: &str) -> StartArgs {
        StartArgs {
            data_dir: PathBuf::from("/tmp/kiosk"),
            server: server.into(),
            office_ca_pem: None,
            retention_days: 90,
        }
    }

    #[test]
    fn arguments_are_checked_with_clear_messages() {
        for (bad, expected) in [
            (args("  "), "serverUrl is empty"),
            (
                StartArgs {
                    data_dir: PathBuf::new(),
                    ..args("https://office")
                },
                "dataDir is empty",
            ),
            (
                StartArgs {
                    data_dir: PathBuf::from("relative"),
                    ..args("https://office")
                },
                "absolute",
            ),
            (
                StartArgs {
                    retention_days: 0,
                    ..args("https://office")
                },
                "retentionDays",
            ),
        ] {
            let message = bad.check().expect_err("refused").to_string();
            assert!(message.contains(expected), "{message}");
        }
        args("https://office.example:8443").check().expect("good");
    }

    #[test]
    fn lifecycle_codes_match_the_java_constants() {
        assert_eq!(lifecycle_of(1).unwrap(), Lifecycle::Pause);
        assert_eq!(lifecycle_of(2).unwrap(), Lifecycle::Resume);
        assert_eq!(lifecycle_of(3).unwrap(), Lifecycle::LowMemory);
        let message = lifecycle_of(7).unwrap_err().to_string();
        assert!(message.contains("unknown lifecycle event 7"), "{message}");
    }

    #[test]
    fn the_ca_stays_out_of_logs() {
        let shown = format!(
            "{:?}",
            StartArgs {
                office_ca_pem: Some("-----BEGIN CERTIFICATE-----".into()),
                ..args("https://office")
            }
        );
        assert!(!shown.contains("BEGIN"), "{shown}");
    }
}
