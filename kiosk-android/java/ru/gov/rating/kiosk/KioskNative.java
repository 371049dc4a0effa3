package ru.gov.rating.kiosk;

/**
 * The kiosk core, in the native library {@code libkiosk_android.so} (the Rust crate
 * {@code kiosk-android}). Plain Java with no Android types, so that the same class is used by
 * {@link KioskActivity} on the tablet and by the desktop JVM test.
 *
 * <p>Every method throws {@link KioskException} (unchecked) with a clear message when the native
 * side fails; nothing in the library crashes the app. {@code start} and {@code stop} may block
 * for a moment (opening the database, finishing a recording): call them off the main thread.
 * The others return at once.
 */
public final class KioskNative {
    /** {@link #lifecycle} events, as the Activity sees them. */
    public static final int PAUSE = 1;
    public static final int RESUME = 2;
    public static final int LOW_MEMORY = 3;

    static {
        System.loadLibrary("kiosk_android");
    }

    private KioskNative() {}

    /**
     * Starts the kiosk core, or finds it already running with the same arguments (a recreated
     * Activity calls this again), and returns the URL of the kiosk screen on 127.0.0.1 with its
     * secret token, for the WebView.
     *
     * @param context the app's {@code android.content.Context} (an Activity or the Application);
     *     the library keeps {@code getApplicationContext()}. Typed {@code Object} so that this
     *     class compiles without Android; on a desktop JVM it may be {@code null}.
     * @param dataDir absolute path of the app's private directory for the kiosk's data
     * @param serverUrl the office server, e.g. {@code https://office.example:8443}
     * @param officeCaPem the office's own CA certificate(s) in PEM, trusted alone; or {@code null}
     *     to trust the system's certificate authorities
     * @param retentionDays days a «Плохо» recording may be kept, shown in the visitor's notice
     */
    public static native String start(
            Object context, String dataDir, String serverUrl, String officeCaPem, int retentionDays);

    /** Stops the kiosk if it runs. A visit under way ends unrated at the next start. */
    public static native void stop();

    /** Passes {@link #PAUSE}, {@link #RESUME} or {@link #LOW_MEMORY} to the kiosk. */
    public static native void lifecycle(int event);

    /**
     * Whether the app may use the microphone. Refused: the staff panel says so and visits are
     * rated without audio. May be called before {@link #start}; the kiosk then starts with it.
     */
    public static native void setMicrophonePermission(boolean granted);

    /** Whether a visit is being recorded now (the microphone foreground service runs then). */
    public static native boolean isRecording();
}
