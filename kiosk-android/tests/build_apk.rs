//! `scripts/build-apk.sh`, which cannot really run here (no Android SDK or NDK): it must refuse
//! cleanly with the list of what is missing, and — with stand-ins for cargo, rustup, Gradle,
//! the SDK and the NDK that record how they are called — build each ABI with the NDK's CMake
//! toolchain for libxaac and bindgen pointed at the NDK's sysroot, then package with Gradle.

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
# Records `cargo ndk ...` and makes the library cargo-ndk would copy to -o DIR/<abi>/.
if [ "$1" = ndk ] && [ "$2" = --version ]; then echo "cargo-ndk 4.1.2"; exit 0; fi
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
  env | grep -E '^(BINDGEN_EXTRA_CLANG_ARGS|CARGO_TARGET_.*_RUSTFLAGS)' | sort
} >>"$FAKE_LOG"
mkdir -p "$out/$abi" && echo so >"$out/$abi/libkiosk_android.so"
"#;

const FAKE_RUSTUP: &str = r#"#!/bin/bash
[ "$1 $2 $3" = "target list --installed" ] || exit 1
printf '%s\n' x86_64-unknown-linux-gnu aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
"#;

const FAKE_GRADLE: &str = r#"#!/bin/bash
if [ "$1" = --version ]; then echo; echo "Gradle 8.10.2"; exit 0; fi
echo "GRADLE $* ANDROID_HOME=$ANDROID_HOME" >>"$FAKE_LOG"
for abi in arm64-v8a armeabi-v7a x86_64; do
  [ -f android-manifest/build/jniLibs/$abi/libkiosk_android.so ] || { echo "no $abi library" >&2; exit 1; }
done
mkdir -p android-manifest/build/outputs/apk/release
echo apk >android-manifest/build/outputs/apk/release/kiosk-release.apk
"#;

#[test]
fn with_the_tools_it_builds_each_abi_with_the_ndk_toolchain_then_the_apk() {
    let temp = tempfile::tempdir().expect("temp");
    let repo = scratch_repo(temp.path());
    let bin = temp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    write_executable(&bin.join("cargo"), FAKE_CARGO);
    write_executable(&bin.join("rustup"), FAKE_RUSTUP);
    write_executable(&bin.join("gradle"), FAKE_GRADLE);
    // The JDK, CMake, make and libclang are the real ones (scripts/setup.sh installs them);
    // give stand-ins for any this machine lacks, since they are not what is tested here.
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
    let libclang = temp.path().join("libclang");
    std::fs::create_dir_all(&libclang).expect("libclang");

    let sdk = temp.path().join("sdk");
    std::fs::create_dir_all(sdk.join("platforms/android-35")).expect("platform");
    std::fs::write(sdk.join("platforms/android-35/android.jar"), "").expect("jar");
    std::fs::create_dir_all(sdk.join("build-tools/35.0.0")).expect("build-tools");
    write_executable(
        &sdk.join("build-tools/35.0.0/apksigner"),
        "#!/bin/bash\necho \"Signer #1 certificate DN: CN=kiosk ($*)\"\n",
    );
    let ndk = temp.path().join("ndk");
    std::fs::create_dir_all(ndk.join("build/cmake")).expect("ndk");
    std::fs::write(ndk.join("build/cmake/android.toolchain.cmake"), "").expect("toolchain");
    std::fs::write(
        ndk.join("source.properties"),
        "Pkg.Desc = Android NDK\nPkg.Revision = 27.2.12479018\n",
    )
    .expect("properties");
    let host_tag = if cfg!(target_os = "macos") {
        "darwin-x86_64"
    } else {
        "linux-x86_64"
    };
    let sysroot = ndk
        .join("toolchains/llvm/prebuilt")
        .join(host_tag)
        .join("sysroot");
    std::fs::create_dir_all(&sysroot).expect("sysroot");
    let keystore = temp.path().join("release.jks");
    std::fs::write(&keystore, "").expect("keystore");
    let log = temp.path().join("calls.log");

    let output = script(&repo)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("HOME", temp.path())
        .env("LIBCLANG_PATH", &libclang)
        .env("ANDROID_HOME", &sdk)
        .env("ANDROID_NDK_HOME", &ndk)
        .env("KIOSK_KEYSTORE", &keystore)
        .env("KIOSK_KEYSTORE_PASSWORD", "secret")
        .env("KIOSK_KEY_ALIAS", "kiosk")
        .env("KIOSK_VERSION_NAME", "1.2.3")
        .env("FAKE_LOG", &log)
        .output()
        .expect("run the script");
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(
        repo.join("target/android/kiosk-1.2.3.apk").is_file(),
        "{all}"
    );
    assert!(all.contains("Signer #1"), "apksigner verify ran: {all}");

    let calls = std::fs::read_to_string(&log).expect("log");
    let per_abi: Vec<&str> = calls.split("=== ").skip(1).collect();
    assert_eq!(per_abi.len(), 3, "{calls}");
    for (abi, triple, page_16k) in [
        ("arm64-v8a", "aarch64_linux_android", true),
        ("armeabi-v7a", "armv7_linux_androideabi", false),
        ("x86_64", "x86_64_linux_android", true),
    ] {
        let call = per_abi
            .iter()
            .find(|c| c.starts_with(abi))
            .unwrap_or_else(|| panic!("no build for {abi}: {calls}"));
        assert!(
            call.contains("-P 26")
                || call.contains("ARGS build --release --locked -p kiosk-android"),
            "{call}"
        );
        assert!(
            call.contains("build --release --locked -p kiosk-android"),
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
        assert!(
            call.contains(&format!(
                "BINDGEN_EXTRA_CLANG_ARGS_{triple}=--sysroot={}",
                sysroot.display()
            )),
            "{call}"
        );
        let rustflags = format!(
            "CARGO_TARGET_{}_RUSTFLAGS=-C link-arg=-Wl,-z,max-page-size=16384",
            triple.to_uppercase()
        );
        assert_eq!(call.contains(&rustflags), page_16k, "{call}");
    }
    assert!(
        calls.contains(&format!(
            "GRADLE -p android-manifest --no-daemon assembleRelease ANDROID_HOME={}",
            sdk.display()
        )),
        "{calls}"
    );
}
