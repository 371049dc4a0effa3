package ru.gov.rating.kiosk;

import android.app.admin.DeviceAdminReceiver;

/**
 * The device-admin component that makes the app the tablet's device owner
 * ({@code adb shell dpm set-device-owner ru.gov.rating.kiosk/.KioskAdminReceiver}); as device
 * owner, {@link KioskActivity} may pin itself with lock task mode. It needs no policies.
 */
public final class KioskAdminReceiver extends DeviceAdminReceiver {}
