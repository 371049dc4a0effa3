//! `scripts/build-apk.sh`, which cannot really run here (no Android SDK or NDK): it must refuse
//! cleanly with the list of what is missing, and — with stand-ins for cargo, rustup, Gradle,
//! the SDK and the NDK that record how they are called — build each ABI with the NDK's CMake
//! toolchain for libxaac, one NDK for every tool (the one build.gradle pins), leave only
//! `libkiosk_android.so` in each ABI folder, then package with Gradle.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write_executable(path: &Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, script).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A copy of what the script reads, so that nothing it writes lands in the work tree.
fn scratch_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("scripts")).expect("scripts");
    std::fs::create_dir_all(repo.join("android-manifest")).expect("android-manifest");
    std::fs::copy(
        root().join("scripts/build-apk.sh"),
        repo.join("scripts/build-apk.sh"),
    )
    .expect("copy script");
    std::fs::copy(
        root().join("android-manifest/build.gradle"),
        repo.join("android-manifest/build.gradle"),
    )
    .expect("copy build.gradle");
    repo
}

fn script(repo: &Path) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(repo.join("scripts/build-apk.sh"))
        .env_clear()
        .env("LANG", "C.UTF-8");
    command
}

#[test]
fn without_the_android_tools_it_lists_what_is_missing_and_fails() {
    let temp = tempfile::tempdir().expect("temp");
    let repo = scratch_repo(temp.path());
    // A bare system PATH: no cargo, rustup, cargo-ndk or Gradle; no SDK, NDK or key.
    let output = script(&repo)
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", temp.path())
        .output()
        .expect("run the script");
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(all.contains("missing:"), "{all}");
    for expected in [
        "ANDROID_HOME",
        "ANDROID_NDK_HOME",
        "KIOSK_KEYSTORE",
        "cargo",
        "rustup",
        "Gradle",
    ] {
        assert!(all.contains(expected), "{expected} not listed:\n{all}");
    }
    for crash in ["unbound variable", "command not found", "syntax error"] {
        assert!(!all.contains(crash), "the script itself failed:\n{all}");
    }
}

const FAKE_CARGO: &str = r#"#!/bin/bash
# Records `cargo ndk ...` and makes what cargo-ndk would copy to -o DIR/<abi>/: every cdylib
# of the build, ours and a dependency's.
if [ "$1" = ndk ] && [ "$2" = --version ]; then echo "${FAKE_CARGO_NDK_VERSION:-cargo-ndk 4.1.2}"; exit 0; fi
[ "$1" = ndk ] || { echo "unexpected cargo $*" >&2; exit 1; }
shift
args="$*"
abi= out=
while [ $# -gt 0 ]; do
  case "$1" in -t) abi=$2; shift ;; -o) out=$2; shift ;; esac
  shift
done
{
  echo "=== $abi"
  echo "ARGS $args"
  echo "TOOLCHAIN $CMAKE_TOOLCHAIN_FILE"
  sed 's/^/  /' "$CMAKE_TOOLCHAIN_FILE"
  echo "NDK_HOME ${ANDROID_NDK_HOME:-unset} NDK_ROOT ${ANDROID_NDK_ROOT:-unset} SDK ${ANDROID_HOME:-unset}"
  env | grep -E '^(BINDGEN_EXTRA_CLANG_ARGS|CARGO_TARGET_.*_RUSTFLAGS|RUSTFLAGS)' | sort
} >>"$FAKE_LOG"
mkdir -p "$out/$abi" && echo so >"$out/$abi/libkiosk_android.so" && echo so >"$out/$abi/libxaac_rs.so"
"#;

const FAKE_RUSTUP: &str = r#"#!/bin/bash
[ "$1 $2 $3" = "target list --installed" ] || exit 1
printf '%s\n' x86_64-unknown-linux-gnu aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
"#;

const FAKE_GRADLE: &str = r#"#!/bin/bash
if [ "$1" = --version ]; then echo; echo "Gradle 8.10.2"; exit 0; fi
echo "GRADLE $* ANDROID_HOME=$ANDROID_HOME ANDROID_NDK_HOME=$ANDROID_NDK_HOME" >>"$FAKE_LOG"
for abi in arm64-v8a armeabi-v7a x86_64; do
  libs=$(cd android-manifest/build/jniLibs/$abi && echo *)
  [ "$libs" = libkiosk_android.so ] || { echo "jniLibs/$abi holds: $libs" >&2; exit 1; }
done
mkdir -p android-manifest/build/outputs/apk/release
echo apk >android-manifest/build/outputs/apk/release/kiosk-release.apk
"#;

/// What build.gradle pins: the script must use exactly these.
fn gradle_pin(key: &str) -> String {
    let gradle = std::fs::read_to_string(root().join("android-manifest/build.gradle"))
        .expect("build.gradle");
    gradle
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(&format!("{key} ")))
        .map(|value| value.trim_matches(|c| c == '\'' || c == '"').to_string())
        .unwrap_or_else(|| panic!("{key} in build.gradle"))
}

/// A scratch repository with stand-ins for every tool, an SDK and an NDK of the pinned
/// versions, and a release key.
struct Fixture {
    temp: tempfile::TempDir,
    repo: PathBuf,
    sdk: PathBuf,
    ndk: PathBuf,
    log: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let temp = tempfile::tempdir().expect("temp");
        let repo = scratch_repo(temp.path());
        let bin = temp.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        write_executable(&bin.join("cargo"), FAKE_CARGO);
        write_executable(&bin.join("rustup"), FAKE_RUSTUP);
        write_executable(&bin.join("gradle"), FAKE_GRADLE);
        // The JDK, CMake, make and libclang are the real ones (scripts/setup.sh installs
        // them); give stand-ins for any this machine lacks, since they are not what is tested.
        for (tool, fake) in [
            ("javac", "#!/bin/bash\necho 'javac 17.0.15'\n"),
            ("keytool", "#!/bin/bash\n"),
            ("cmake", "#!/bin/bash\necho 'cmake version 3.25.1'\n"),
            ("make", "#!/bin/bash\n"),
        ] {
            if !Path::new("/usr/bin").join(tool).exists() {
                write_executable(&bin.join(tool), fake);
            }
        }
        std::fs::create_dir_all(temp.path().join("libclang")).expect("libclang");

        let sdk = temp.path().join("sdk");
        std::fs::create_dir_all(sdk.join("platforms/android-35")).expect("platform");
        std::fs::write(sdk.join("platforms/android-35/android.jar"), "").expect("jar");
        let build_tools = sdk
            .join("build-tools")
            .join(gradle_pin("buildToolsVersion"));
        std::fs::create_dir_all(&build_tools).expect("build-tools");
        write_executable(
            &build_tools.join("apksigner"),
            "#!/bin/bash\necho \"Signer #1 certificate DN: CN=kiosk ($*)\"\n",
        );
        // The pinned NDK where sdkmanager puts it, and a newer one beside it that must not be
        // picked.
        let ndk = sdk.join("ndk").join(gradle_pin("ndkVersion"));
        make_ndk(&ndk, &gradle_pin("ndkVersion"));
        make_ndk(&sdk.join("ndk/29.0.13113456"), "29.0.13113456");
        std::fs::write(temp.path().join("release.jks"), "").expect("keystore");
        let log = temp.path().join("calls.log");
        Fixture {
            temp,
            repo,
            sdk,
            ndk,
            log,
        }
    }

    /// The script with every prerequisite in place; `ANDROID_NDK_HOME` is left unset.
    fn script(&self) -> Command {
        let t = self.temp.path();
        let mut command = script(&self.repo);
        command
            .env("PATH", format!("{}:/usr/bin:/bin", t.join("bin").display()))
            .env("HOME", t)
            .env("LIBCLANG_PATH", t.join("libclang"))
            .env("ANDROID_HOME", &self.sdk)
            .env("KIOSK_KEYSTORE", t.join("release.jks"))
            .env("KIOSK_KEYSTORE_PASSWORD", "secret")
            .env("KIOSK_KEY_ALIAS", "kiosk")
            .env("KIOSK_VERSION_NAME", "1.2.3")
            .env("FAKE_LOG", &self.log);
        command
    }
}

fn make_ndk(ndk: &Path, revision: &str) {
    std::fs::create_dir_all(ndk.join("build/cmake")).expect("ndk");
    std::fs::write(ndk.join("build/cmake/android.toolchain.cmake"), "").expect("toolchain");
    std::fs::write(
        ndk.join("source.properties"),
        format!("Pkg.Desc = Android NDK\nPkg.Revision = {revision}\n"),
    )
    .expect("properties");
    let host_tag = if cfg!(target_os = "macos") {
        "darwin-x86_64"
    } else {
        "linux-x86_64"
    };
    std::fs::create_dir_all(
        ndk.join("toolchains/llvm/prebuilt")
            .join(host_tag)
            .join("sysroot"),
    )
    .expect("sysroot");
}

#[test]
fn with_the_tools_it_builds_each_abi_with_the_pinned_ndk_then_the_apk() {
    let fixture = Fixture::new();
    let ndk = &fixture.ndk;
    let output = fixture.script().output().expect("run the script");
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(
        fixture
            .repo
            .join("target/android/kiosk-1.2.3.apk")
            .is_file(),
        "{all}"
    );
    assert!(all.contains("Signer #1"), "apksigner verify ran: {all}");
    // xaac's (or any other dependency's) cdylib is not shipped.
    for abi in ["arm64-v8a", "armeabi-v7a", "x86_64"] {
        assert!(
            all.contains(&format!(
                "removing android-manifest/build/jniLibs/{abi}/libxaac_rs.so"
            )),
            "{all}"
        );
    }

    let calls = std::fs::read_to_string(&fixture.log).expect("log");
    let per_abi: Vec<&str> = calls.split("=== ").skip(1).collect();
    assert_eq!(per_abi.len(), 3, "{calls}");
    for abi in ["arm64-v8a", "armeabi-v7a", "x86_64"] {
        let call = per_abi
            .iter()
            .find(|c| c.starts_with(abi))
            .unwrap_or_else(|| panic!("no build for {abi}: {calls}"));
        assert!(
            call.contains(&format!("ARGS -t {abi} -P 26 -o android-manifest/build/jniLibs build --release --locked -p kiosk-android\n")),
            "{call}"
        );
        assert!(
            call.contains(&format!("set(ANDROID_ABI \"{abi}\")")),
            "{call}"
        );
        assert!(
            call.contains("set(ANDROID_PLATFORM \"android-26\")"),
            "{call}"
        );
        assert!(
            call.contains(&format!(
                "include(\"{}/build/cmake/android.toolchain.cmake\")",
                ndk.display()
            )),
            "{call}"
        );
        // cargo-ndk and CMake see the same NDK: the pinned one, not the newest.
        assert!(
            call.contains(&format!(
                "NDK_HOME {} NDK_ROOT unset SDK {}",
                ndk.display(),
                fixture.sdk.display()
            )),
            "{call}"
        );
        // What cargo-ndk 4 sets itself is not set again.
        for variable in ["BINDGEN_EXTRA_CLANG_ARGS", "RUSTFLAGS"] {
            assert!(!call.contains(variable), "{variable} set: {call}");
        }
    }
    assert!(
        calls.contains(&format!(
            "GRADLE -p android-manifest --no-daemon assembleRelease ANDROID_HOME={} ANDROID_NDK_HOME={}",
            fixture.sdk.display(),
            ndk.display()
        )),
        "{calls}"
    );
}

#[test]
fn an_ndk_build_tools_or_cargo_ndk_other_than_the_pinned_ones_is_refused() {
    let fixture = Fixture::new();
    let ndk_version = gradle_pin("ndkVersion");
    let build_tools = gradle_pin("buildToolsVersion");
    // ANDROID_NDK_HOME at the newer NDK; build-tools of another version only; cargo-ndk 3.
    std::fs::rename(
        fixture.sdk.join("build-tools").join(&build_tools),
        fixture.sdk.join("build-tools/36.0.0"),
    )
    .expect("move build-tools");
    let output = fixture
        .script()
        .env("ANDROID_NDK_HOME", fixture.sdk.join("ndk/29.0.13113456"))
        .env("FAKE_CARGO_NDK_VERSION", "cargo-ndk 3.5.4")
        .output()
        .expect("run the script");
    let all = text(&output);
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "NDK {ndk_version}, the one build.gradle's ndkVersion names (found 29.0.13113456"
        )),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "Android build-tools {build_tools} (build.gradle's buildToolsVersion)"
        )),
        "{all}"
    );
    assert!(
        all.contains("cargo-ndk 4 or newer (found cargo-ndk 3.5.4)"),
        "{all}"
    );
    assert!(!fixture.log.exists(), "nothing was built");
}
