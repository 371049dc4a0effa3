package ru.gov.rating.kiosk;

import android.app.Notification;
import android.app.NotificationChannel;
import android.app.NotificationManager;
import android.app.Service;
import android.content.Intent;
import android.content.pm.ServiceInfo;
import android.os.Build;
import android.os.Handler;
import android.os.IBinder;
import android.os.Looper;
import android.util.Log;

/**
 * A foreground service of type microphone that runs while a visit records, so that the
 * recording goes on if the screen is covered or the app leaves the foreground. Started by
 * {@link KioskActivity} while it is visible (Android 14+ allows no other start); it stops itself
 * once the native kiosk no longer records.
 */
public final class RecordingService extends Service {
    private static final String TAG = "kiosk";
    private static final String CHANNEL = "recording";
    private static final int NOTIFICATION_ID = 1;
    private static final long CHECK_MS = 1000;
    private static volatile boolean running;

    private final Handler handler = new Handler(Looper.getMainLooper());
    private final Runnable check =
            new Runnable() {
                @Override
                public void run() {
                    boolean recording;
                    try {
                        recording = KioskNative.isRecording();
                    } catch (KioskException | LinkageError e) {
                        recording = false;
                    }
                    if (recording) {
                        handler.postDelayed(this, CHECK_MS);
                    } else {
                        stopForeground(STOP_FOREGROUND_REMOVE);
                        stopSelf();
                    }
                }
            };

    static boolean isRunning() {
        return running;
    }

    @Override
    public int onStartCommand(Intent intent, int flags, int startId) {
        Notification notification = notification();
        try {
            if (Build.VERSION.SDK_INT >= 30) {
                startForeground(NOTIFICATION_ID, notification,
                        ServiceInfo.FOREGROUND_SERVICE_TYPE_MICROPHONE);
            } else {
                startForeground(NOTIFICATION_ID, notification);
            }
        } catch (RuntimeException e) {
            // E.g. the microphone permission was withdrawn meanwhile.
            Log.w(TAG, "the recording service cannot run in the foreground", e);
            stopSelf();
            return START_NOT_STICKY;
        }
        running = true;
        handler.removeCallbacks(check);
        handler.postDelayed(check, CHECK_MS);
        // Not restarted after the process dies: the kiosk ends that visit unrated at its start.
        return START_NOT_STICKY;
    }

    private Notification notification() {
        NotificationManager manager = getSystemService(NotificationManager.class);
        if (manager != null) {
            manager.createNotificationChannel(new NotificationChannel(
                    CHANNEL, getString(R.string.recording_channel), NotificationManager.IMPORTANCE_LOW));
        }
        return new Notification.Builder(this, CHANNEL)
                .setSmallIcon(R.drawable.ic_recording)
                .setContentTitle(getString(R.string.recording_notification))
                .setOngoing(true)
                .build();
    }

    @Override
    public void onDestroy() {
        running = false;
        handler.removeCallbacks(check);
        super.onDestroy();
    }

    @Override
    public IBinder onBind(Intent intent) {
        return null;
    }
}
