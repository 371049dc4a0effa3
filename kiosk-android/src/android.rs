//! Android only (cannot be compiled off Android): what needs the Android runtime itself.
//! Called once per process, from the first `KioskNative.start`, with the app's Context:
//! - logcat, through android_logger (tracing's events reach it as `log` records);
//! - ndk-context with the JavaVM and the app's Context: cpal's AAudio host asks Android's
//!   AudioManager for the input devices through it;
//! - rustls-platform-verifier's JNI set-up, so that reqwest verifies the office server's
//!   certificate with Android's trust manager, then kiosk-core's hook is told it may use it.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use jni::objects::{Global, JObject};
use jni::{Env, JavaVM};

pub(crate) fn init(
    env: &mut Env<'_>,
    vm: &JavaVM,
    app_context: &'static Global<JObject<'static>>,
    app_context_local: JObject<'_>,
) -> Result<(), String> {
    static NDK_CONTEXT: Once = Once::new();
    static VERIFIER_READY: AtomicBool = AtomicBool::new(false);

    android_logger::init_once(
        android_logger::Config::default()
            .with_tag("kiosk")
            .with_max_level(log::LevelFilter::Info),
    );

    NDK_CONTEXT.call_once(|| {
        // SAFETY: both pointers stay valid for the life of the process: the JavaVM is the
        // process's only one, and the Context is a global reference kept in a static.
        unsafe {
            ndk_context::initialize_android_context(
                vm.get_raw().cast(),
                app_context.as_raw().cast(),
            );
        }
    });

    if !VERIFIER_READY.load(Ordering::SeqCst) {
        // Tried again at the next start if it fails; it initialises only once.
        rustls_platform_verifier::android::init_with_env(env, app_context_local)
            .map_err(|e| format!("the platform certificate verifier: {e}"))?;
        kiosk_core::sync::platform_verifier_initialised();
        VERIFIER_READY.store(true, Ordering::SeqCst);
    }
    Ok(())
}
