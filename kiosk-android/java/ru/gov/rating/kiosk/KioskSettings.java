package ru.gov.rating.kiosk;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Properties;

/**
 * Where the tablet finds its office server: {@code kiosk.properties} (and optionally
 * {@code office-ca.pem}) in the app's external files directory, put there by the administrator
 * with {@code adb push} (see docs/android.md). Plain Java, so the desktop test checks it too.
 *
 * <pre>
 * server_url=https://office.example:8443
 * retention_days=90        # optional, default 90
 * kiosk_mode=on            # optional; off releases the tablet from kiosk mode
 * </pre>
 */
public final class KioskSettings {
    public static final String FILE = "kiosk.properties";
    public static final String CA_FILE = "office-ca.pem";
    static final int DEFAULT_RETENTION_DAYS = 90;

    /** The settings file is not there: the tablet is not provisioned yet. */
    public static final class MissingException extends IOException {
        private static final long serialVersionUID = 1L;

        MissingException(File file) {
            super(file.getPath());
        }
    }

    public final String serverUrl;
    /** PEM of the office CA, or null to trust the system's CAs. */
    public final String officeCaPem;
    public final int retentionDays;
    /** False when the administrator released the tablet from kiosk mode. */
    public final boolean kioskMode;

    private KioskSettings(String serverUrl, String officeCaPem, int retentionDays, boolean kioskMode) {
        this.serverUrl = serverUrl;
        this.officeCaPem = officeCaPem;
        this.retentionDays = retentionDays;
        this.kioskMode = kioskMode;
    }

    /**
     * Reads the settings from {@code dir}.
     *
     * @throws MissingException if {@code kiosk.properties} is not there
     * @throws IOException if it cannot be read
     * @throws IllegalArgumentException if a value is wrong; the message says which and why
     */
    public static KioskSettings load(File dir) throws IOException {
        if (dir == null) {
            throw new IOException("the app's external files directory is not available");
        }
        File file = new File(dir, FILE);
        if (!file.isFile()) {
            throw new MissingException(file);
        }
        Properties properties = new Properties();
        try (InputStream in = new FileInputStream(file);
                Reader reader = new InputStreamReader(in, StandardCharsets.UTF_8)) {
            properties.load(reader);
        }
        String server = properties.getProperty("server_url", "").trim();
        if (server.isEmpty()) {
            throw new IllegalArgumentException(FILE + ": server_url is missing");
        }
        if (!server.startsWith("https://")) {
            throw new IllegalArgumentException(
                    FILE + ": server_url must start with https:// (the office server is reached over TLS), got " + server);
        }
        int retention = DEFAULT_RETENTION_DAYS;
        String days = properties.getProperty("retention_days", "").trim();
        if (!days.isEmpty()) {
            try {
                retention = Integer.parseInt(days);
            } catch (NumberFormatException e) {
                retention = 0;
            }
            if (retention < 1) {
                throw new IllegalArgumentException(
                        FILE + ": retention_days must be a whole number of days, at least 1, got " + days);
            }
        }
        String mode = properties.getProperty("kiosk_mode", "on").trim();
        if (!mode.equals("on") && !mode.equals("off")) {
            throw new IllegalArgumentException(FILE + ": kiosk_mode must be on or off, got " + mode);
        }
        String pem = null;
        File ca = new File(dir, CA_FILE);
        if (ca.isFile()) {
            pem = new String(Files.readAllBytes(ca.toPath()), StandardCharsets.UTF_8);
            if (!pem.contains("-----BEGIN CERTIFICATE-----")) {
                throw new IllegalArgumentException(CA_FILE + " holds no PEM certificate");
            }
        }
        return new KioskSettings(server, pem, retention, mode.equals("on"));
    }
}
