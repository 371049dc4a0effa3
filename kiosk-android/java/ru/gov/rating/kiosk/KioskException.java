package ru.gov.rating.kiosk;

/** A failure of the native kiosk library, with a message that says what went wrong. */
public final class KioskException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public KioskException(String message) {
        super(message);
    }
}
