package ru.gov.rating.kiosk;

import android.Manifest;
import android.app.Activity;
import android.app.ActivityManager;
import android.app.admin.DevicePolicyManager;
import android.content.ComponentName;
import android.content.Intent;
import android.content.IntentFilter;
import android.content.SharedPreferences;
import android.content.pm.PackageInfo;
import android.content.pm.PackageManager;
import android.graphics.Color;
import android.os.Build;
import android.os.Bundle;
import android.os.Handler;
import android.os.Looper;
import android.util.Log;
import android.view.Gravity;
import android.view.View;
import android.view.WindowInsets;
import android.view.WindowInsetsController;
import android.view.WindowManager;
import android.webkit.RenderProcessGoneDetail;
import android.webkit.WebResourceRequest;
import android.webkit.WebSettings;
import android.webkit.WebView;
import android.webkit.WebViewClient;
import android.widget.FrameLayout;
import android.widget.TextView;
import android.window.OnBackInvokedDispatcher;
import java.io.File;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * The tablet's only screen: the kiosk page of the native core in a full-screen WebView. It is
 * the Home app (so it is what the tablet shows after boot), keeps the screen on, hides the
 * system bars, ignores Back, and — when the app is the device owner — pins itself with lock
 * task mode, so neither Home nor Recents leaves it.
 *
 * <p>The page in the WebView must run on the factory Android System WebView of the oldest
 * supported tablet (Chrome 58 on Android 8): tablets provisioned without a Google account never
 * update it. The WebView's version is logged at each start.
 */
public final class KioskActivity extends Activity {
    private static final String TAG = "kiosk";
    private static final int REQUEST_MICROPHONE = 1;
    private static final String PREF_ASKED_MICROPHONE = "asked_microphone";
    /** How often, while visible, the Activity looks whether a visit is recording. */
    private static final long RECORDING_POLL_MS = 1000;

    /** start/stop may block for a moment: never on the main thread. */
    private final ExecutorService nativeCalls = Executors.newSingleThreadExecutor();
    private final Handler main = new Handler(Looper.getMainLooper());
    private WebView webView;
    private TextView message;
    private TextView microphoneBanner;
    private String loadedUrl;
    private boolean visible;
    private boolean askingMicrophone;
    /** From the settings file: false once the administrator released the tablet. */
    private boolean kioskMode = true;
    /**
     * Whether this process has set the device-owner policies (permission grants, lock task
     * packages, default Home app). Android keeps them across restarts; setting them again at
     * every resume would only repeat binder calls, so once per process is enough.
     */
    private static boolean deviceOwnerPoliciesApplied;

    private final Runnable pollRecording =
            new Runnable() {
                @Override
                public void run() {
                    if (!visible) {
                        return;
                    }
                    // Android 14+ lets a microphone foreground service start only while the app
                    // is visible: start it from here; it stops itself when the visit ends.
                    if (isRecording() && !RecordingService.isRunning()) {
                        startRecordingService();
                    }
                    main.postDelayed(this, RECORDING_POLL_MS);
                }
            };

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        getWindow().addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON);

        FrameLayout root = new FrameLayout(this);
        root.setBackgroundColor(Color.rgb(0xf4, 0xf6, 0xf8));
        webView = new WebView(this);
        configureWebView(webView);
        root.addView(webView, new FrameLayout.LayoutParams(
                FrameLayout.LayoutParams.MATCH_PARENT, FrameLayout.LayoutParams.MATCH_PARENT));

        message = new TextView(this);
        message.setTextSize(24);
        message.setTextColor(Color.rgb(0x1d, 0x27, 0x33));
        message.setGravity(Gravity.CENTER);
        message.setPadding(48, 48, 48, 48);
        message.setText(R.string.starting);
        message.setOnClickListener(v -> startKiosk());
        root.addView(message, new FrameLayout.LayoutParams(
                FrameLayout.LayoutParams.MATCH_PARENT, FrameLayout.LayoutParams.MATCH_PARENT));

        microphoneBanner = new TextView(this);
        microphoneBanner.setTextSize(18);
        microphoneBanner.setTextColor(Color.WHITE);
        microphoneBanner.setBackgroundColor(Color.rgb(0xb2, 0x3c, 0x17));
        microphoneBanner.setPadding(32, 24, 32, 24);
        microphoneBanner.setText(R.string.microphone_refused);
        microphoneBanner.setVisibility(View.GONE);
        microphoneBanner.setOnClickListener(v -> askForMicrophone());
        root.addView(microphoneBanner, new FrameLayout.LayoutParams(
                FrameLayout.LayoutParams.MATCH_PARENT, FrameLayout.LayoutParams.WRAP_CONTENT,
                Gravity.BOTTOM));

        setContentView(root);
        logWebViewVersion();
        ignoreBack();
        // Before the first permission check: as device owner the app grants itself the
        // microphone, so no permission dialog can race startLockTask().
        applyDeviceOwnerPolicies();
        checkMicrophone(true);
        startKiosk();
    }

    /** Logs which WebView renders the kiosk page (never updated on a provisioned tablet). */
    private void logWebViewVersion() {
        PackageInfo webView = WebView.getCurrentWebViewPackage();
        if (webView == null) {
            Log.w(TAG, "no WebView package is installed or enabled");
            return;
        }
        Log.i(TAG, "WebView " + webView.packageName + " " + webView.versionName
                + " on Android " + Build.VERSION.RELEASE + " (API " + Build.VERSION.SDK_INT + ")");
    }

    private void configureWebView(WebView view) {
        WebSettings settings = view.getSettings();
        settings.setJavaScriptEnabled(true); // the kiosk page is driven by its script
        settings.setAllowFileAccess(false);
        settings.setAllowContentAccess(false);
        settings.setSupportZoom(false);
        settings.setBuiltInZoomControls(false);
        view.setLongClickable(false);
        view.setOnLongClickListener(v -> true);
        view.setHapticFeedbackEnabled(false);
        view.setWebViewClient(new WebViewClient() {
            @Override
            public boolean shouldOverrideUrlLoading(WebView v, WebResourceRequest request) {
                // Only the local kiosk page; nothing else can be navigated to.
                return !isKioskAddress(request.getUrl().toString());
            }

            @Override
            public boolean onRenderProcessGone(WebView v, RenderProcessGoneDetail detail) {
                Log.w(TAG, "the WebView's renderer is gone; recreating the screen");
                recreate(); // the kiosk core runs on; start() returns its URL again
                return true;
            }
        });
    }

    private static boolean isKioskAddress(String url) {
        return url.startsWith("http://127.0.0.1:");
    }

    /** Reads the settings and starts the native kiosk off the main thread, then shows it. */
    private void startKiosk() {
        message.setText(R.string.starting);
        message.setVisibility(View.VISIBLE);
        final File settingsDir = getExternalFilesDir(null);
        final String dataDir = new File(getFilesDir(), "kiosk").getAbsolutePath();
        nativeCalls.execute(() -> {
            String url = null;
            String problem = null;
            boolean mode = true;
            try {
                KioskSettings settings = KioskSettings.load(settingsDir);
                mode = settings.kioskMode;
                url = KioskNative.start(getApplicationContext(), dataDir, settings.serverUrl,
                        settings.officeCaPem, settings.retentionDays);
            } catch (KioskSettings.MissingException e) {
                problem = getString(R.string.not_configured, e.getMessage());
            } catch (IllegalArgumentException | java.io.IOException e) {
                problem = getString(R.string.settings_invalid, e.getMessage());
            } catch (KioskException | LinkageError e) {
                Log.e(TAG, "the kiosk did not start", e);
                problem = getString(R.string.start_failed, String.valueOf(e.getMessage()));
            }
            final String shownUrl = url;
            final String shownProblem = problem;
            final boolean shownMode = mode;
            main.post(() -> show(shownUrl, shownProblem, shownMode));
        });
    }

    private void show(String url, String problem, boolean mode) {
        if (isDestroyed()) {
            return;
        }
        kioskMode = mode;
        applyKioskMode();
        if (problem != null) {
            message.setText(problem);
            message.setVisibility(View.VISIBLE);
            return;
        }
        message.setVisibility(View.GONE);
        if (!url.equals(loadedUrl)) {
            loadedUrl = url;
            webView.loadUrl(url);
        }
    }

    @Override
    protected void onStart() {
        super.onStart();
        visible = true;
        main.removeCallbacks(pollRecording);
        main.post(pollRecording);
    }

    @Override
    protected void onResume() {
        super.onResume();
        hideSystemBars();
        applyKioskMode();
        checkMicrophone(false);
        lifecycle(KioskNative.RESUME);
    }

    @Override
    protected void onPause() {
        lifecycle(KioskNative.PAUSE);
        super.onPause();
    }

    @Override
    protected void onStop() {
        visible = false;
        main.removeCallbacks(pollRecording);
        super.onStop();
    }

    @Override
    protected void onDestroy() {
        main.removeCallbacks(pollRecording);
        if (isFinishing()) {
            // Only when the app really closes; a recreated Activity finds the kiosk running.
            nativeCalls.execute(() -> {
                try {
                    KioskNative.stop();
                } catch (KioskException | LinkageError e) {
                    Log.w(TAG, "the kiosk did not stop cleanly", e);
                }
            });
        }
        nativeCalls.shutdown();
        webView.destroy();
        super.onDestroy();
    }

    @Override
    public void onLowMemory() {
        super.onLowMemory();
        lifecycle(KioskNative.LOW_MEMORY);
    }

    @Override
    public void onTrimMemory(int level) {
        super.onTrimMemory(level);
        if (level >= TRIM_MEMORY_BACKGROUND || level == TRIM_MEMORY_RUNNING_CRITICAL) {
            lifecycle(KioskNative.LOW_MEMORY);
        }
    }

    @Override
    public void onWindowFocusChanged(boolean hasFocus) {
        super.onWindowFocusChanged(hasFocus);
        if (hasFocus) {
            hideSystemBars();
        }
    }

    /** Back does nothing: the kiosk has nowhere to go back to. */
    @Override
    @SuppressWarnings("deprecation")
    public void onBackPressed() {}

    private void ignoreBack() {
        if (Build.VERSION.SDK_INT >= 33) {
            getOnBackInvokedDispatcher().registerOnBackInvokedCallback(
                    OnBackInvokedDispatcher.PRIORITY_DEFAULT, () -> {});
        }
    }

    @SuppressWarnings("deprecation")
    private void hideSystemBars() {
        if (Build.VERSION.SDK_INT >= 30) {
            WindowInsetsController controller = getWindow().getInsetsController();
            if (controller != null) {
                controller.hide(WindowInsets.Type.systemBars());
                controller.setSystemBarsBehavior(
                        WindowInsetsController.BEHAVIOR_SHOW_TRANSIENT_BARS_BY_SWIPE);
            }
        } else {
            getWindow().getDecorView().setSystemUiVisibility(
                    View.SYSTEM_UI_FLAG_IMMERSIVE_STICKY
                            | View.SYSTEM_UI_FLAG_FULLSCREEN
                            | View.SYSTEM_UI_FLAG_HIDE_NAVIGATION
                            | View.SYSTEM_UI_FLAG_LAYOUT_STABLE
                            | View.SYSTEM_UI_FLAG_LAYOUT_FULLSCREEN
                            | View.SYSTEM_UI_FLAG_LAYOUT_HIDE_NAVIGATION);
        }
    }

    /** The DevicePolicyManager when this app is the device owner; null otherwise. */
    private DevicePolicyManager deviceOwnerPolicies() {
        DevicePolicyManager dpm = getSystemService(DevicePolicyManager.class);
        return dpm != null && dpm.isDeviceOwnerApp(getPackageName()) ? dpm : null;
    }

    /**
     * As the device owner, once per process: grants the app the microphone (and, on Android 13+,
     * the notification of its recording service) — lock task blocks Settings, so a permission
     * refused twice (permanent on Android 11+) could otherwise only be restored with adb —
     * allows lock task for this app and makes this Activity the default Home app, so that the
     * tablet never asks which launcher to use.
     */
    private void applyDeviceOwnerPolicies() {
        if (deviceOwnerPoliciesApplied) {
            return;
        }
        DevicePolicyManager dpm = deviceOwnerPolicies();
        if (dpm == null) {
            return;
        }
        ComponentName admin = new ComponentName(this, KioskAdminReceiver.class);
        grantPermission(dpm, admin, Manifest.permission.RECORD_AUDIO);
        if (Build.VERSION.SDK_INT >= 33) {
            grantPermission(dpm, admin, Manifest.permission.POST_NOTIFICATIONS);
        }
        dpm.setLockTaskPackages(admin, new String[] {getPackageName()});
        IntentFilter home = new IntentFilter(Intent.ACTION_MAIN);
        home.addCategory(Intent.CATEGORY_HOME);
        home.addCategory(Intent.CATEGORY_DEFAULT);
        dpm.addPersistentPreferredActivity(admin, home, new ComponentName(this, KioskActivity.class));
        deviceOwnerPoliciesApplied = true;
        Log.i(TAG, "device-owner policies set: permissions, lock task, default Home app");
    }

    private void grantPermission(DevicePolicyManager dpm, ComponentName admin, String permission) {
        if (Build.VERSION.SDK_INT >= 31 && permission.equals(Manifest.permission.RECORD_AUDIO)
                && !dpm.canAdminGrantSensorsPermissions()) {
            // Provisioning opted out of sensor grants: the first start asks instead.
            Log.w(TAG, "the device owner may not grant " + permission + " on this tablet");
            return;
        }
        boolean granted = dpm.setPermissionGrantState(admin, getPackageName(), permission,
                DevicePolicyManager.PERMISSION_GRANT_STATE_GRANTED);
        if (!granted) {
            Log.w(TAG, "could not grant " + permission + " as the device owner");
        }
    }

    /**
     * As the device owner: pins the app with lock task mode (again, if something ended it); or —
     * when the settings file says {@code kiosk_mode=off} — undoes the device-owner policies and
     * gives up device ownership, which takes the tablet out of kiosk mode.
     */
    @SuppressWarnings("deprecation") // clearDeviceOwnerApp: deprecated, and still the way out
    private void applyKioskMode() {
        DevicePolicyManager dpm = deviceOwnerPolicies();
        if (dpm == null) {
            return;
        }
        ActivityManager am = getSystemService(ActivityManager.class);
        boolean locked = am != null && am.getLockTaskModeState() != ActivityManager.LOCK_TASK_MODE_NONE;
        if (!kioskMode) {
            if (locked) {
                stopLockTask();
            }
            ComponentName admin = new ComponentName(this, KioskAdminReceiver.class);
            dpm.clearPackagePersistentPreferredActivities(admin, getPackageName());
            dpm.setLockTaskPackages(admin, new String[0]);
            // The permissions stay granted, but the user may change them again.
            dpm.setPermissionGrantState(admin, getPackageName(), Manifest.permission.RECORD_AUDIO,
                    DevicePolicyManager.PERMISSION_GRANT_STATE_DEFAULT);
            if (Build.VERSION.SDK_INT >= 33) {
                dpm.setPermissionGrantState(admin, getPackageName(),
                        Manifest.permission.POST_NOTIFICATIONS,
                        DevicePolicyManager.PERMISSION_GRANT_STATE_DEFAULT);
            }
            dpm.clearDeviceOwnerApp(getPackageName());
            deviceOwnerPoliciesApplied = false;
            Log.i(TAG, "released from kiosk mode by the settings file");
            return;
        }
        applyDeviceOwnerPolicies();
        if (!locked) {
            try {
                startLockTask();
            } catch (IllegalStateException | SecurityException e) {
                Log.w(TAG, "cannot enter lock task mode", e);
            }
        }
    }

    // ---- microphone ----

    /** Reports the permission to the kiosk; asks for it once, at the first start. */
    private void checkMicrophone(boolean mayAsk) {
        boolean granted = checkSelfPermission(Manifest.permission.RECORD_AUDIO)
                == PackageManager.PERMISSION_GRANTED;
        reportMicrophone(granted);
        if (granted || askingMicrophone) {
            return;
        }
        SharedPreferences prefs = getPreferences(MODE_PRIVATE);
        if (mayAsk && !prefs.getBoolean(PREF_ASKED_MICROPHONE, false)) {
            prefs.edit().putBoolean(PREF_ASKED_MICROPHONE, true).apply();
            askForMicrophone();
        }
    }

    private void askForMicrophone() {
        askingMicrophone = true;
        requestPermissions(new String[] {Manifest.permission.RECORD_AUDIO}, REQUEST_MICROPHONE);
    }

    @Override
    public void onRequestPermissionsResult(int requestCode, String[] permissions, int[] results) {
        super.onRequestPermissionsResult(requestCode, permissions, results);
        if (requestCode != REQUEST_MICROPHONE) {
            return;
        }
        askingMicrophone = false;
        boolean granted = results.length > 0 && results[0] == PackageManager.PERMISSION_GRANTED;
        reportMicrophone(granted);
    }

    /** Tells the kiosk (its staff panel says so too) and explains on screen when refused. */
    private void reportMicrophone(boolean granted) {
        microphoneBanner.setVisibility(granted || askingMicrophone ? View.GONE : View.VISIBLE);
        try {
            KioskNative.setMicrophonePermission(granted);
        } catch (KioskException | LinkageError e) {
            Log.w(TAG, "cannot pass the microphone permission on", e);
        }
    }

    // ---- native calls that do not block ----

    private void lifecycle(int event) {
        try {
            KioskNative.lifecycle(event);
        } catch (KioskException | LinkageError e) {
            Log.w(TAG, "lifecycle event " + event + " not passed on", e);
        }
    }

    private boolean isRecording() {
        try {
            return KioskNative.isRecording();
        } catch (KioskException | LinkageError e) {
            return false;
        }
    }

    private void startRecordingService() {
        try {
            startForegroundService(new Intent(this, RecordingService.class));
        } catch (IllegalStateException | SecurityException e) {
            // Not allowed now (e.g. no longer in the foreground): the visit records on while
            // the Activity is visible, and the next poll tries again.
            Log.w(TAG, "cannot start the recording service", e);
        }
    }
}
