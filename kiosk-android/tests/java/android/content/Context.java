package android.content;

/**
 * A stand-in for Android's Context on the desktop JVM: just the one method the native library
 * calls on it, with the same signature, so the desktop test drives that JNI call as well.
 */
public abstract class Context {
    public Context getApplicationContext() {
        return this;
    }
}
