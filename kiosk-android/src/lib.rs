//! The kiosk as an Android app's native library (`libkiosk_android.so`): the JNI entry points
//! of `ru.gov.rating.kiosk.KioskNative` around kiosk-core. Thin on purpose: each entry point
//! converts its arguments, calls [`service`], and turns any error — or a panic — into a
//! `ru.gov.rating.kiosk.KioskException` with a clear message; nothing unwinds into the JVM.
//!
//! Everything here but the `android` module compiles and is tested on the host, where the same
//! Java class is loaded into a desktop JVM (`tests/jvm.rs`).

mod service;

#[cfg(target_os = "android")]
mod android;

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::OnceLock;

use jni::errors::ErrorPolicy;
use jni::objects::{Global, JClass, JObject, JString};
use jni::refs::Reference as _;
use jni::sys::{JNI_ERR, JNI_VERSION_1_6, jboolean, jint};
use jni::{Env, EnvUnowned, JavaVM, jni_sig, jni_str};

/// What an entry point can fail with.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error(transparent)]
    Kiosk(#[from] service::Error),
    #[error("JNI call failed: {0}")]
    Jni(#[from] jni::errors::Error),
    #[error("{0}")]
    BadArgument(String),
    #[cfg_attr(not(target_os = "android"), allow(dead_code))]
    #[error("cannot set up the Android platform: {0}")]
    Platform(String),
}

/// The JavaVM that loaded the library, kept for the process.
static JAVA_VM: OnceLock<JavaVM> = OnceLock::new();
/// The app's Context (its `getApplicationContext()`), kept for the process: ndk-context and
/// the platform verifier hold on to it.
static APP_CONTEXT: OnceLock<Global<JObject<'static>>> = OnceLock::new();

/// Called by the JVM when `System.loadLibrary` loads this library: keeps the JavaVM.
///
/// # Safety
/// Called by the JVM only, with its own valid `JavaVM` pointer.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn JNI_OnLoad(
    vm: *mut jni::sys::JavaVM,
    _reserved: *mut c_void,
) -> jint {
    catch_unwind(|| {
        if vm.is_null() {
            return JNI_ERR;
        }
        // SAFETY: the JVM passes its own, valid JavaVM pointer.
        let vm = unsafe { JavaVM::from_raw(vm) };
        let _ = JAVA_VM.set(vm);
        JNI_VERSION_1_6
    })
    .unwrap_or(JNI_ERR)
}

/// Throws `KioskException` (or, should that class be missing, `IllegalStateException`) for
/// any error or panic, unless a Java exception is already pending, and returns the default
/// value (`null`, `false`).
struct ThrowKioskException;

impl<T: Default> ErrorPolicy<T, Error> for ThrowKioskException {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut Self::Captures<'unowned_env_local, 'native_method>,
        error: Error,
    ) -> jni::errors::Result<T> {
        tracing::warn!(%error, "native call failed");
        throw(env, &error.to_string());
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut Self::Captures<'unowned_env_local, 'native_method>,
        payload: Box<dyn std::any::Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        let message = panic_message(payload);
        tracing::error!(%message, "native call panicked");
        throw(
            env,
            &format!("internal error in the kiosk library: {message}"),
        );
        Ok(T::default())
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send + 'static>) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        // Dropping a strange payload could itself panic: leak it instead.
        std::mem::forget(payload);
        "a panic with no message".to_string()
    }
}

fn throw(env: &mut Env<'_>, message: &str) {
    if env.exception_check() {
        return; // a Java exception is already on its way
    }
    let text = jni::strings::JNIString::new(message);
    match env.throw_new(jni_str!("ru/gov/rating/kiosk/KioskException"), &text) {
        // `throw_new` reports a thrown exception as `Err(JavaException)`.
        Ok(()) | Err(jni::errors::Error::JavaException) => {}
        Err(error) => {
            // KioskException itself could not be found or made: say so in a JDK exception.
            env.exception_clear();
            let text = jni::strings::JNIString::new(format!(
                "{message} (KioskException could not be thrown: {error})"
            ));
            let _ = env.throw_new(jni_str!("java/lang/IllegalStateException"), &text);
        }
    }
}

/// Runs an entry point's body: JNI errors, kiosk errors and panics all become a pending
/// Java exception and the default return value. Nothing unwinds into the JVM.
fn entry<'local, T: Default>(
    mut unowned: EnvUnowned<'local>,
    body: impl FnOnce(&mut Env<'local>) -> Result<T, Error>,
) -> T {
    // `with_env` already catches a panic in `body`; the outer guard covers the error policy.
    catch_unwind(AssertUnwindSafe(move || {
        unowned.with_env(body).resolve::<ThrowKioskException>()
    }))
    .unwrap_or_default()
}

fn string_arg(env: &Env<'_>, value: &JString<'_>, name: &str) -> Result<Option<String>, Error> {
    if value.is_null() {
        return Ok(None);
    }
    value
        .try_to_string(env)
        .map(Some)
        .map_err(|e| Error::BadArgument(format!("{name} cannot be read: {e}")))
}

fn required_string(env: &Env<'_>, value: &JString<'_>, name: &str) -> Result<String, Error> {
    string_arg(env, value, name)?.ok_or_else(|| Error::BadArgument(format!("{name} is null")))
}

/// The app's Context as a process-wide global reference: `context.getApplicationContext()`
/// (never the Activity itself, which Android recreates). Returns it as a local reference too.
fn application_context<'local>(
    env: &mut Env<'local>,
    context: &JObject<'_>,
) -> Result<JObject<'local>, Error> {
    let app = env
        .call_method(
            context,
            jni_str!("getApplicationContext"),
            jni_sig!("()Landroid/content/Context;"),
            &[],
        )
        .and_then(|value| value.l());
    let app = match app {
        Ok(app) if !app.is_null() => app,
        Ok(_) => {
            return Err(Error::BadArgument(
                "context.getApplicationContext() returned null".into(),
            ));
        }
        Err(error) => {
            env.exception_clear();
            return Err(Error::BadArgument(format!(
                "context must be an android.content.Context ({error})"
            )));
        }
    };
    if APP_CONTEXT.get().is_none() {
        let global = env.new_global_ref(&app)?;
        let _ = APP_CONTEXT.set(global);
    }
    Ok(app)
}

/// Once per process, with the app's Context: ndk-context (cpal opens the microphone through
/// it), the platform certificate verifier and logcat.
#[cfg(target_os = "android")]
fn init_platform<'local>(env: &mut Env<'local>, context: &JObject<'local>) -> Result<(), Error> {
    if context.is_null() {
        return Err(Error::BadArgument(
            "context is null: start needs the app's Context on Android".into(),
        ));
    }
    let app = application_context(env, context)?;
    let vm = match JAVA_VM.get() {
        Some(vm) => vm.clone(),
        None => env.get_java_vm()?,
    };
    let global = APP_CONTEXT
        .get()
        .ok_or_else(|| Error::Platform("the app's Context was not kept".into()))?;
    android::init(env, &vm, global, app).map_err(Error::Platform)
}

/// On the host: logging to stderr. No Android here, but a Context-like object given by the
/// desktop test still goes through the same JNI calls.
#[cfg(not(target_os = "android"))]
fn init_platform<'local>(env: &mut Env<'local>, context: &JObject<'local>) -> Result<(), Error> {
    init_host_logging();
    if !context.is_null() {
        application_context(env, context)?;
    }
    Ok(())
}

#[cfg(not(target_os = "android"))]
fn init_host_logging() {
    use tracing_subscriber::EnvFilter;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter =
            EnvFilter::try_from_env("KIOSK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    });
}

/// `static native String start(Object context, String dataDir, String serverUrl,
/// String officeCaPem, int retentionDays)`: starts the kiosk (or finds it running) and
/// returns its screen's URL with the secret token.
#[unsafe(no_mangle)]
pub extern "system" fn Java_ru_gov_rating_kiosk_KioskNative_start<'local>(
    env: EnvUnowned<'local>,
    _class: JClass<'local>,
    context: JObject<'local>,
    data_dir: JString<'local>,
    server_url: JString<'local>,
    office_ca_pem: JString<'local>,
    retention_days: jint,
) -> JString<'local> {
    entry(env, |env| {
        let args = service::StartArgs {
            data_dir: PathBuf::from(required_string(env, &data_dir, "dataDir")?),
            server: required_string(env, &server_url, "serverUrl")?,
            office_ca_pem: string_arg(env, &office_ca_pem, "officeCaPem")?
                .filter(|pem| !pem.trim().is_empty()),
            retention_days: u32::try_from(retention_days).map_err(|_| {
                Error::BadArgument(format!(
                    "retentionDays must be positive, got {retention_days}"
                ))
            })?,
        };
        init_platform(env, &context)?;
        let url = service::start(args)?;
        Ok(JString::from_str(env, url)?)
    })
}

/// `static native void stop()`: stops the kiosk if it runs.
#[unsafe(no_mangle)]
pub extern "system" fn Java_ru_gov_rating_kiosk_KioskNative_stop<'local>(
    env: EnvUnowned<'local>,
    _class: JClass<'local>,
) {
    entry(env, |_env| Ok(service::stop()?))
}

/// `static native void lifecycle(int event)`: `PAUSE`, `RESUME` or `LOW_MEMORY`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_ru_gov_rating_kiosk_KioskNative_lifecycle<'local>(
    env: EnvUnowned<'local>,
    _class: JClass<'local>,
    event: jint,
) {
    entry(env, |_env| {
        let event = service::lifecycle_of(event)?;
        Ok(service::lifecycle(event)?)
    })
}

/// `static native void setMicrophonePermission(boolean granted)`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_ru_gov_rating_kiosk_KioskNative_setMicrophonePermission<'local>(
    env: EnvUnowned<'local>,
    _class: JClass<'local>,
    granted: jboolean,
) {
    entry(env, |_env| Ok(service::set_microphone_permission(granted)?))
}

/// `static native boolean isRecording()`: whether a visit is being recorded now (the Activity
/// keeps the microphone foreground service running while it is).
#[unsafe(no_mangle)]
pub extern "system" fn Java_ru_gov_rating_kiosk_KioskNative_isRecording<'local>(
    env: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> jboolean {
    entry(env, |_env| Ok(service::is_recording()))
}

/// For the desktop test only (`KioskNativeTest.panicInNative`, a native method no class of the
/// app declares): a panic inside an entry point must become a `KioskException`, not a crash.
/// Built only with the `jni-test-entry` feature, which the tests enable and the app does not.
#[cfg(feature = "jni-test-entry")]
#[unsafe(no_mangle)]
pub extern "system" fn Java_ru_gov_rating_kiosk_KioskNativeTest_panicInNative<'local>(
    env: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> jboolean {
    entry(env, |_env| -> Result<jboolean, Error> {
        panic!("a deliberate panic, from the desktop test")
    })
}
