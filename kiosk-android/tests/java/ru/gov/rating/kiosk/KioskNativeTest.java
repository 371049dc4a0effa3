package ru.gov.rating.kiosk;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Drives the native kiosk library the way KioskActivity does, in a desktop JVM run with
 * -Xcheck:jni: start against a real office server, fetch the kiosk page, send lifecycle events
 * and the microphone permission, stop; and check that bad arguments become KioskExceptions.
 *
 * <p>Arguments: the office server's URL and a scratch directory. Exit status 0 when every check
 * passes; otherwise a message on stderr and status 1.
 */
public final class KioskNativeTest {
    private static final Pattern KIOSK_URL = Pattern.compile("http://127\\.0\\.0\\.1:(\\d+)/k/([0-9a-f]{48})/");
    private static int checks;

    /** Panics inside a native entry point (exported by the library for this test only). */
    private static native boolean panicInNative();

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: KioskNativeTest SERVER_URL SCRATCH_DIR");
            System.exit(2);
        }
        String server = args[0];
        File scratch = new File(args[1]);
        try {
            run(server, scratch);
        } catch (Throwable t) {
            System.err.println("FAILED: " + t);
            t.printStackTrace();
            System.exit(1);
        }
        System.out.println("OK: " + checks + " checks passed");
        System.exit(0);
    }

    private static void run(String server, File scratch) throws Exception {
        String data = new File(scratch, "data").getAbsolutePath();

        badArguments(data);

        // A Rust panic inside the library is a KioskException, and the library goes on working.
        expectKioskException(() -> panicInNative(), "internal error in the kiosk library: a deliberate panic");

        // Before any start: nothing runs, nothing records, lifecycle events are ignored.
        check(!KioskNative.isRecording(), "not recording before start");
        KioskNative.lifecycle(KioskNative.PAUSE);
        KioskNative.stop();

        // The permission may arrive before the kiosk starts; it starts with it.
        KioskNative.setMicrophonePermission(false);
        long started = System.nanoTime();
        String url = KioskNative.start(null, data, server, null, 90);
        System.out.println("kiosk started in " + (System.nanoTime() - started) / 1_000_000 + " ms: " + redact(url));
        Matcher m = KIOSK_URL.matcher(url);
        check(m.matches(), "the URL is the local kiosk screen with its token: " + redact(url));

        String page = get(url);
        check(page.contains("<div id=\"app\">") || page.contains("id=\"app\""), "the page has the app root");
        check(page.contains("Оценка качества обслуживания"), "the page carries the Russian catalogue");
        check(get404(url.replace(m.group(2), "0".repeat(48))), "a wrong token is refused");

        // The core reached the office server: an enrolment code is on screen.
        String view = waitForView(url, "\"code\":\"", "an enrolment code from the office server");
        System.out.println("ENROLMENT " + field(view, "code"));

        // Microphone refused before start: the staff panel says so.
        waitForView(url, "\"microphone\":\"denied\"", "the staff panel shows the microphone denied");
        check(view.contains("notice_microphone_unavailable") || get(url + "view").contains("notice_microphone_unavailable"),
                "the staff panel has the microphone notice");
        KioskNative.setMicrophonePermission(true);
        waitForViewWithout(url, "\"microphone\":\"denied\"", "the denial is lifted once granted");

        // Lifecycle events, as the Activity sends them; the kiosk keeps serving.
        KioskNative.lifecycle(KioskNative.PAUSE);
        KioskNative.lifecycle(KioskNative.RESUME);
        KioskNative.lifecycle(KioskNative.LOW_MEMORY);
        check(get(url + "view").contains("\"screen\""), "the kiosk serves after lifecycle events");
        expectKioskException(() -> KioskNative.lifecycle(42), "unknown lifecycle event 42");
        check(!KioskNative.isRecording(), "no visit, no recording");

        // A recreated Activity starts again: same arguments, the same running kiosk.
        check(url.equals(KioskNative.start(null, data, server, null, 90)), "start again returns the running kiosk");
        // ... and with a Context: the library keeps its application context.
        check(url.equals(KioskNative.start(new FakeContext(), data, server, null, 90)), "start with a Context");
        expectKioskException(() -> KioskNative.start("not a context", data, server, null, 90),
                "context must be an android.content.Context");

        long stopping = System.nanoTime();
        KioskNative.stop();
        System.out.println("kiosk stopped in " + (System.nanoTime() - stopping) / 1_000_000 + " ms");
        check(refused(url), "the screen is gone after stop");
        KioskNative.stop(); // twice is fine
        KioskNative.lifecycle(KioskNative.RESUME); // ignored when stopped
        check(!KioskNative.isRecording(), "not recording after stop");

        // Settings: what the Activity reads from the provisioning file.
        settings(scratch);
    }

    private static void badArguments(String data) {
        expectKioskException(() -> KioskNative.start(null, data, "", null, 90), "serverUrl is empty");
        expectKioskException(() -> KioskNative.start(null, data, null, null, 90), "serverUrl is null");
        expectKioskException(() -> KioskNative.start(null, null, "https://office.example", null, 90), "dataDir is null");
        expectKioskException(() -> KioskNative.start(null, "relative/dir", "https://office.example", null, 90), "absolute");
        expectKioskException(() -> KioskNative.start(null, data, "https://office.example", null, 0), "retentionDays");
        expectKioskException(() -> KioskNative.start(null, data, "https://office.example", null, -5), "retentionDays");
        expectKioskException(() -> KioskNative.start(null, data, "ftp://office.example", null, 90), "https://");
        expectKioskException(() -> KioskNative.start(null, data, "https://office.example", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 90), "certificate");
        check(!KioskNative.isRecording(), "nothing started by bad arguments");
    }

    private static void settings(File scratch) throws IOException {
        File dir = new File(scratch, "provisioning");
        check(dir.mkdirs() || dir.isDirectory(), "provisioning dir");
        try {
            KioskSettings.load(dir);
            throw new AssertionError("no settings file accepted");
        } catch (KioskSettings.MissingException expected) {
            checks++;
        }
        write(new File(dir, KioskSettings.FILE), "server_url=http://office.example\n");
        expectSettingsError(dir, "https://");
        write(new File(dir, KioskSettings.FILE), "server_url=https://office.example:8443\nretention_days=abc\n");
        expectSettingsError(dir, "retention_days");
        write(new File(dir, KioskSettings.FILE), "server_url=https://office.example:8443\nkiosk_mode=maybe\n");
        expectSettingsError(dir, "kiosk_mode");
        write(new File(dir, KioskSettings.FILE), "# office\nserver_url = https://office.example:8443 \n");
        KioskSettings s = KioskSettings.load(dir);
        check(s.serverUrl.equals("https://office.example:8443") && s.retentionDays == 90 && s.kioskMode
                && s.officeCaPem == null, "defaults");
        write(new File(dir, KioskSettings.CA_FILE), "not a certificate");
        expectSettingsError(dir, KioskSettings.CA_FILE);
        write(new File(dir, KioskSettings.CA_FILE), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        write(new File(dir, KioskSettings.FILE), "server_url=https://office.example:8443\nretention_days=30\nkiosk_mode=off\n");
        s = KioskSettings.load(dir);
        check(s.retentionDays == 30 && !s.kioskMode && s.officeCaPem.startsWith("-----BEGIN"), "all settings");
    }

    /** Something with getApplicationContext(), as Android's Context has. */
    private static final class FakeContext extends android.content.Context {}

    private interface Call {
        void run() throws Exception;
    }

    private static void expectKioskException(Call call, String expected) {
        try {
            call.run();
        } catch (KioskException e) {
            String message = e.getMessage();
            check(message != null && message.contains(expected),
                    "KioskException mentions \"" + expected + "\": " + message);
            System.out.println("refused as expected: " + message);
            return;
        } catch (Exception e) {
            throw new AssertionError("expected a KioskException with \"" + expected + "\", got " + e, e);
        }
        throw new AssertionError("expected a KioskException with \"" + expected + "\", got none");
    }

    private static void expectSettingsError(File dir, String expected) throws IOException {
        try {
            KioskSettings.load(dir);
        } catch (IllegalArgumentException e) {
            check(e.getMessage().contains(expected), "settings error mentions " + expected + ": " + e.getMessage());
            return;
        }
        throw new AssertionError("settings accepted; expected an error about " + expected);
    }

    private static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
        checks++;
    }

    private static String waitForView(String url, String needle, String what) throws Exception {
        long deadline = System.nanoTime() + 20_000_000_000L;
        String view = "";
        while (System.nanoTime() < deadline) {
            view = get(url + "view");
            if (view.contains(needle)) {
                checks++;
                return view;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(what + ": the view stayed " + view);
    }

    private static void waitForViewWithout(String url, String needle, String what) throws Exception {
        long deadline = System.nanoTime() + 20_000_000_000L;
        String view = "";
        while (System.nanoTime() < deadline) {
            view = get(url + "view");
            if (!view.contains(needle)) {
                checks++;
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError(what + ": the view stayed " + view);
    }

    private static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\":\"([^\"]*)\"").matcher(json);
        return m.find() ? m.group(1) : "?";
    }

    private static String get(String url) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        c.setConnectTimeout(5000);
        c.setReadTimeout(5000);
        try {
            int status = c.getResponseCode();
            if (status != 200) {
                throw new AssertionError("GET " + redact(url) + ": HTTP " + status);
            }
            try (InputStream in = c.getInputStream()) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                in.transferTo(out);
                return out.toString(StandardCharsets.UTF_8);
            }
        } finally {
            c.disconnect();
        }
    }

    private static boolean get404(String url) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        c.setConnectTimeout(5000);
        c.setReadTimeout(5000);
        try {
            return c.getResponseCode() == 404;
        } finally {
            c.disconnect();
        }
    }

    private static boolean refused(String url) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        c.setConnectTimeout(2000);
        c.setReadTimeout(2000);
        try {
            c.getResponseCode();
            return false;
        } catch (ConnectException expected) {
            return true;
        } finally {
            c.disconnect();
        }
    }

    private static void write(File file, String text) throws IOException {
        try (OutputStream out = new FileOutputStream(file)) {
            out.write(text.getBytes(StandardCharsets.UTF_8));
        }
    }

    private static String redact(String url) {
        return url.replaceAll("/k/[0-9a-f]{48}/", "/k/<token>/");
    }
}
