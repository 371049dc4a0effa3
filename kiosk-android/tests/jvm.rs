//! The JNI layer in a desktop JVM: the cdylib cargo built for this package is loaded by the
//! same `KioskNative` class the Activity uses, compiled here with javac, and driven by a Java
//! test program (`tests/java/…/KioskNativeTest.java`) under `java -Xcheck:jni` against a real
//! office server on port 0. The JVM must exit 0 and print no `WARNING` line (what -Xcheck:jni
//! prints for a misuse of JNI).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const JAVA_TIMEOUT: Duration = Duration::from_secs(180);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `libkiosk_android.so` as cargo built it for this test run: in `target/<profile>/deps/`,
/// beside this test's executable (the copy in `target/<profile>/` is refreshed only by
/// `cargo build`).
fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let deps = exe.parent().expect("target/<profile>/deps");
    let name = format!(
        "{}kiosk_android{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let lib = deps.join(&name);
    assert!(
        lib.is_file(),
        "{} is missing: cargo builds it with this package's tests (`cargo test -p kiosk-android`)",
        lib.display()
    );
    lib
}

/// A directory holding only the library, for `-Djava.library.path`.
fn library_dir(lib: &Path, temp: &Path) -> PathBuf {
    let dir = temp.join("lib");
    std::fs::create_dir_all(&dir).expect("lib dir");
    let link = dir.join(lib.file_name().expect("file name"));
    std::os::unix::fs::symlink(lib, &link).expect("link the library");
    dir
}

/// A JDK tool: from JAVA_HOME if set, else from PATH.
fn jdk_tool(name: &str) -> PathBuf {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let tool = PathBuf::from(home).join("bin").join(name);
        if tool.is_file() {
            return tool;
        }
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|tool| tool.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name} not found: install a JDK (scripts/setup.sh installs openjdk-17-jdk-headless)"
        )
    })
}

fn text(output: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Compiles the plain-Java classes of the app (no Android types in them) and the test program.
fn compile_java(classes: &Path) {
    let app = manifest_dir().join("java/ru/gov/rating/kiosk");
    let tests = manifest_dir().join("tests/java");
    let sources = [
        app.join("KioskNative.java"),
        app.join("KioskException.java"),
        app.join("KioskSettings.java"),
        tests.join("android/content/Context.java"),
        tests.join("ru/gov/rating/kiosk/KioskNativeTest.java"),
    ];
    let started = Instant::now();
    let output = std::process::Command::new(jdk_tool("javac"))
        .args([
            "-encoding",
            "UTF-8",
            "--release",
            "17",
            "-Xlint:all",
            "-Werror",
            "-d",
        ])
        .arg(classes)
        .args(&sources)
        .output()
        .expect("run javac");
    assert!(output.status.success(), "javac failed\n{}", text(&output));
    eprintln!("javac: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jni_layer_runs_the_kiosk_in_a_desktop_jvm_with_checked_jni() {
    let lib = cdylib();
    let temp = tempfile::tempdir().expect("temp dir");
    let classes = temp.path().join("classes");
    let scratch = temp.path().join("scratch");
    std::fs::create_dir_all(&scratch).expect("scratch");
    compile_java(&classes);

    // A real office server in this process, on 127.0.0.1 port 0, with the demo organisation.
    let server = test_support::spawn_default_app().await;
    let started = Instant::now();
    let child = tokio::process::Command::new(jdk_tool("java"))
        .arg("-Xcheck:jni")
        .arg(format!(
            "-Djava.library.path={}",
            library_dir(&lib, temp.path()).display()
        ))
        .arg("-cp")
        .arg(&classes)
        .arg("ru.gov.rating.kiosk.KioskNativeTest")
        .arg(&server.base)
        .arg(&scratch)
        .env("KIOSK_LOG", "info")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(JAVA_TIMEOUT, child)
        .await
        .expect("the Java test finishes in time")
        .expect("run java");
    eprintln!("java -Xcheck:jni: {:?}", started.elapsed());
    server.stop().await;

    let all = text(&output);
    eprintln!("{all}");
    assert!(
        output.status.success(),
        "the Java test failed ({})",
        output.status
    );
    let warnings: Vec<&str> = all.lines().filter(|l| l.contains("WARNING")).collect();
    assert!(
        warnings.is_empty(),
        "-Xcheck:jni reported problems: {warnings:#?}"
    );
    assert!(
        !all.contains("FATAL ERROR in native method"),
        "-Xcheck:jni aborted"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("OK: "), "the Java test did not finish");
    assert!(
        stdout.contains("ENROLMENT "),
        "no enrolment code reached the page"
    );
}

/// Every native method of `KioskNative` is exported by the library and called by the test
/// program, so the JVM test covers the whole JNI surface.
#[test]
fn every_native_method_is_exported_and_exercised() {
    let java =
        std::fs::read_to_string(manifest_dir().join("java/ru/gov/rating/kiosk/KioskNative.java"))
            .expect("KioskNative.java");
    let test = std::fs::read_to_string(
        manifest_dir().join("tests/java/ru/gov/rating/kiosk/KioskNativeTest.java"),
    )
    .expect("KioskNativeTest.java");
    let rust = std::fs::read_to_string(manifest_dir().join("src/lib.rs")).expect("lib.rs");
    let natives: Vec<String> = java
        .lines()
        .map(str::trim_start)
        .filter(|line| !line.starts_with('*') && !line.starts_with('/'))
        .filter(|line| line.split_whitespace().any(|word| word == "native") && line.contains('('))
        .filter_map(|line| {
            let before_paren = line.split('(').next()?;
            before_paren.split_whitespace().last().map(str::to_string)
        })
        .collect();
    assert_eq!(natives.len(), 5, "native methods found: {natives:?}");
    for name in &natives {
        assert!(
            rust.contains(&format!("fn Java_ru_gov_rating_kiosk_KioskNative_{name}<")),
            "lib.rs exports no {name}"
        );
        assert!(
            test.contains(&format!("KioskNative.{name}(")),
            "the Java test never calls {name}"
        );
    }
}

/// The entry point that panics on purpose is in the library these tests build (the
/// dev-dependency on this package enables `jni-test-entry`), and only behind that feature,
/// which is not a default one and which build-apk.sh does not ask for.
#[test]
fn the_panicking_test_entry_point_is_exported_only_with_its_feature() {
    const SYMBOL: &str = "Java_ru_gov_rating_kiosk_KioskNativeTest_panicInNative";
    // At compile time: these tests do not even build without the feature.
    const {
        assert!(
            cfg!(feature = "jni-test-entry"),
            "the tests build kiosk-android without jni-test-entry"
        )
    };
    let output = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(cdylib())
        .output()
        .expect("nm (binutils) reads the library's symbols");
    assert!(output.status.success(), "{}", text(&output));
    let symbols = String::from_utf8_lossy(&output.stdout);
    assert!(
        symbols.lines().any(|l| l.ends_with(&format!(" {SYMBOL}"))),
        "{SYMBOL} is not exported by the test build"
    );

    let rust = std::fs::read_to_string(manifest_dir().join("src/lib.rs")).expect("lib.rs");
    let at = rust
        .find(&format!("fn {SYMBOL}<"))
        .expect("the entry point in lib.rs");
    let attributes: Vec<&str> = rust[..at]
        .lines()
        .rev()
        .skip(1)
        .take_while(|l| l.starts_with("#[") || l.starts_with("///"))
        .collect();
    assert!(
        attributes.contains(&"#[cfg(feature = \"jni-test-entry\")]"),
        "{attributes:?}"
    );
    let cargo = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        cargo.contains("\njni-test-entry = []\n"),
        "declared, with nothing else"
    );
    assert!(!cargo.contains("\ndefault ="), "no default features");
    let script = std::fs::read_to_string(manifest_dir().join("../scripts/build-apk.sh"))
        .expect("build-apk.sh");
    assert!(script.contains("build --release --locked -p kiosk-android\n"));
    assert!(!script.contains("--features") && !script.contains("--all-features"));
}
