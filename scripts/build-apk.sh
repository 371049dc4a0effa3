#!/usr/bin/env bash
# Builds the kiosk's Android app: the native library (kiosk-android, with kiosk-core and its
# libxaac encoder) for arm64-v8a, armeabi-v7a and x86_64 with cargo-ndk, then a signed release
# APK with Gradle from android-manifest/. Every prerequisite is checked first, and all that are
# missing are listed at once. See docs/android.md.
#
#   scripts/build-apk.sh           build target/android/kiosk-<version>.apk
#   scripts/build-apk.sh --check   only check the prerequisites
#
# Environment:
#   ANDROID_HOME        the Android SDK (platforms;android-35, build-tools;35.0.0); or ANDROID_SDK_ROOT
#   ANDROID_NDK_HOME    the NDK build.gradle's ndkVersion names; default: $ANDROID_HOME/ndk/<ndkVersion>
#   KIOSK_KEYSTORE, KIOSK_KEYSTORE_PASSWORD, KIOSK_KEY_ALIAS [, KIOSK_KEY_PASSWORD]
#                       the release key; every update of a device-owner app needs the same one
#   KIOSK_VERSION_NAME, KIOSK_VERSION_CODE   default 0.1.0 and 1
#   ABIS                default "arm64-v8a armeabi-v7a x86_64"
set -euo pipefail
cd "$(dirname "$0")/.."

check_only=false
case "${1:-}" in
  --check) check_only=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

ABIS=${ABIS:-"arm64-v8a armeabi-v7a x86_64"}
MIN_SDK=$(sed -n 's/^ *minSdk \([0-9][0-9]*\).*/\1/p' android-manifest/build.gradle)
COMPILE_SDK=$(sed -n 's/^ *compileSdk \([0-9][0-9]*\).*/\1/p' android-manifest/build.gradle)
# Pinned in build.gradle, so that AGP uses exactly these and downloads nothing else.
BUILD_TOOLS=$(sed -n "s/^ *buildToolsVersion ['\"]\([0-9.]*\)['\"].*/\1/p" android-manifest/build.gradle)
NDK_VERSION=$(sed -n "s/^ *ndkVersion ['\"]\([0-9.]*\)['\"].*/\1/p" android-manifest/build.gradle)
MIN_GRADLE=8.9   # Android Gradle plugin 8.7
MIN_CMAKE=3.21   # reads CMAKE_TOOLCHAIN_FILE from the environment
MIN_NDK=27       # 16 KB page support (required by Android 15 devices and Google Play)
MIN_CARGO_NDK=4  # sets bindgen's sysroot and the 16 KB page alignment itself

missing=()
miss() { missing+=("$1"); }

# version_at_least HAVE NEED: true when dotted version HAVE >= NEED.
version_at_least() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

rust_target() {
  case "$1" in
    arm64-v8a) echo aarch64-linux-android ;;
    armeabi-v7a) echo armv7-linux-androideabi ;;
    x86_64) echo x86_64-linux-android ;;
    x86) echo i686-linux-android ;;
    *) return 1 ;;
  esac
}

for abi in $ABIS; do
  rust_target "$abi" >/dev/null || miss "ABIS: unknown ABI '$abi' (use arm64-v8a, armeabi-v7a, x86_64, x86)"
done
[ -n "$BUILD_TOOLS" ] || miss "buildToolsVersion in android-manifest/build.gradle"
if [ -z "$NDK_VERSION" ]; then
  miss "ndkVersion in android-manifest/build.gradle"
elif [ "${NDK_VERSION%%.*}" -lt "$MIN_NDK" ]; then
  miss "build.gradle's ndkVersion $NDK_VERSION: r$MIN_NDK or newer is needed"
fi

# --- Java and Gradle ---
if command -v javac >/dev/null 2>&1 && command -v keytool >/dev/null 2>&1; then
  java_major=$(javac -version 2>&1 | sed -n 's/^javac \([0-9][0-9]*\).*/\1/p')
  if [ -z "$java_major" ] || [ "$java_major" -lt 17 ]; then
    miss "JDK 17 or newer (found javac ${java_major:-?}): apt-get install openjdk-17-jdk-headless"
  fi
else
  miss "a JDK (javac, keytool), 17 or newer: apt-get install openjdk-17-jdk-headless"
fi
if command -v gradle >/dev/null 2>&1; then
  gradle_version=$(gradle --version 2>/dev/null | sed -n 's/^Gradle \([0-9.]*\).*/\1/p')
  version_at_least "${gradle_version:-0}" "$MIN_GRADLE" ||
    miss "Gradle $MIN_GRADLE or newer (found ${gradle_version:-?}): https://gradle.org/install/ (Debian's gradle is too old)"
else
  miss "Gradle $MIN_GRADLE or newer on PATH: https://gradle.org/install/ (Debian's gradle is too old)"
fi

# --- Rust ---
if command -v cargo >/dev/null 2>&1; then
  if cargo_ndk_version=$(cargo ndk --version 2>/dev/null); then
    cargo_ndk_major=$(sed -n 's/^cargo-ndk \([0-9][0-9]*\)\..*/\1/p' <<<"$cargo_ndk_version")
    [ "${cargo_ndk_major:-0}" -ge "$MIN_CARGO_NDK" ] ||
      miss "cargo-ndk $MIN_CARGO_NDK or newer (found ${cargo_ndk_version:-?}): cargo install cargo-ndk"
  else
    miss "cargo-ndk $MIN_CARGO_NDK or newer: cargo install cargo-ndk"
  fi
else
  miss "cargo (Rust): scripts/setup.sh installs it"
fi
if command -v rustup >/dev/null 2>&1; then
  installed=$(rustup target list --installed 2>/dev/null || true)
  for abi in $ABIS; do
    target=$(rust_target "$abi" 2>/dev/null) || continue
    grep -qx "$target" <<<"$installed" || miss "Rust target $target ($abi): rustup target add $target"
  done
else
  miss "rustup, to add the Android targets: https://rustup.rs"
fi

# --- C build of libxaac (cmake with the NDK's toolchain file; bindgen needs libclang) ---
if command -v cmake >/dev/null 2>&1; then
  cmake_version=$(cmake --version | sed -n 's/^cmake version \([0-9.]*\).*/\1/p')
  version_at_least "${cmake_version:-0}" "$MIN_CMAKE" ||
    miss "CMake $MIN_CMAKE or newer (found ${cmake_version:-?}): apt-get install cmake"
else
  miss "CMake $MIN_CMAKE or newer: apt-get install cmake"
fi
command -v make >/dev/null 2>&1 || miss "make (CMake's generator): apt-get install build-essential"
if [ -z "${LIBCLANG_PATH:-}" ] && ! ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/*/libclang*.so* >/dev/null 2>&1; then
  miss "libclang (bindgen): apt-get install libclang-dev, or set LIBCLANG_PATH"
fi

# --- Android SDK and NDK ---
sdk=${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}
if [ -z "$sdk" ]; then
  miss "ANDROID_HOME: the Android SDK directory (sdkmanager \"platforms;android-$COMPILE_SDK\" \"build-tools;$BUILD_TOOLS\")"
elif [ ! -d "$sdk" ]; then
  miss "ANDROID_HOME=$sdk is not a directory"
else
  [ -f "$sdk/platforms/android-$COMPILE_SDK/android.jar" ] ||
    miss "Android platform $COMPILE_SDK in $sdk: sdkmanager \"platforms;android-$COMPILE_SDK\""
  [ -x "$sdk/build-tools/$BUILD_TOOLS/apksigner" ] ||
    miss "Android build-tools $BUILD_TOOLS (build.gradle's buildToolsVersion) in $sdk: sdkmanager \"build-tools;$BUILD_TOOLS\""
fi
ndk=${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}
if [ -z "$ndk" ] && [ -n "$sdk" ] && [ -d "$sdk/ndk/$NDK_VERSION" ]; then
  ndk=$sdk/ndk/$NDK_VERSION
fi
case "$(uname -s)" in
  Linux) host_tag=linux-x86_64 ;;
  Darwin) host_tag=darwin-x86_64 ;;
  *) host_tag=unsupported ;;
esac
if [ -z "$ndk" ]; then
  miss "ANDROID_NDK_HOME: the Android NDK $NDK_VERSION (build.gradle's ndkVersion): sdkmanager \"ndk;$NDK_VERSION\""
elif [ ! -f "$ndk/build/cmake/android.toolchain.cmake" ]; then
  miss "ANDROID_NDK_HOME=$ndk has no build/cmake/android.toolchain.cmake (not an NDK?)"
else
  ndk_revision=$(sed -n 's/^Pkg.Revision *= *\([0-9.]*\).*/\1/p' "$ndk/source.properties" 2>/dev/null)
  if [ "$ndk_revision" != "$NDK_VERSION" ]; then
    miss "NDK $NDK_VERSION, the one build.gradle's ndkVersion names (found ${ndk_revision:-?} in $ndk): sdkmanager \"ndk;$NDK_VERSION\""
  fi
  [ -d "$ndk/toolchains/llvm/prebuilt/$host_tag/sysroot" ] ||
    miss "the NDK's sysroot for this host: $ndk/toolchains/llvm/prebuilt/$host_tag/sysroot"
fi

# --- signing ---
if [ -z "${KIOSK_KEYSTORE:-}" ]; then
  miss "KIOSK_KEYSTORE (+ KIOSK_KEYSTORE_PASSWORD, KIOSK_KEY_ALIAS): the release key, e.g. keytool -genkeypair -keystore kiosk-release.jks -alias kiosk -keyalg RSA -keysize 4096 -validity 10000 (keep it: updates need the same key)"
else
  [ -f "$KIOSK_KEYSTORE" ] || miss "KIOSK_KEYSTORE=$KIOSK_KEYSTORE does not exist"
  [ -n "${KIOSK_KEYSTORE_PASSWORD:-}" ] || miss "KIOSK_KEYSTORE_PASSWORD: the keystore's password"
  [ -n "${KIOSK_KEY_ALIAS:-}" ] || miss "KIOSK_KEY_ALIAS: the key's alias in the keystore"
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "build-apk: cannot build the APK; missing:" >&2
  for m in "${missing[@]}"; do
    echo "  - $m" >&2
  done
  exit 1
fi
echo "build-apk: all prerequisites found (SDK $sdk, NDK $ndk)"
if $check_only; then
  exit 0
fi

# One SDK and one NDK for every tool below: cargo-ndk, the CMake build of libxaac, Gradle.
export ANDROID_HOME="$sdk" ANDROID_NDK_HOME="$ndk"
unset ANDROID_SDK_ROOT ANDROID_NDK_ROOT

# --- the native library, one ABI at a time ---
jni_libs=android-manifest/build/jniLibs
rm -rf "$jni_libs"
mkdir -p "$jni_libs" target/android/cmake
for abi in $ABIS; do
  target=$(rust_target "$abi")
  # libxaac-sys runs `cmake` itself, with no toolchain: CMake takes the toolchain file from the
  # environment, and this one picks the ABI and API level before including the NDK's.
  toolchain=$PWD/target/android/cmake/$abi.cmake
  cat >"$toolchain" <<EOF
set(ANDROID_ABI "$abi")
set(ANDROID_PLATFORM "android-$MIN_SDK")
include("$ndk/build/cmake/android.toolchain.cmake")
EOF
  echo "build-apk: building libkiosk_android.so for $abi ($target)"
  # cargo-ndk 4 points bindgen at the NDK's sysroot and links 64-bit ABIs for 16 KB pages
  # itself; only the CMake toolchain is left to give.
  CMAKE_TOOLCHAIN_FILE="$toolchain" \
    cargo ndk -t "$abi" -P "$MIN_SDK" -o "$jni_libs" build --release --locked -p kiosk-android
  # cargo-ndk copies every cdylib it built (a dependency's too); the app loads only ours.
  [ -f "$jni_libs/$abi/libkiosk_android.so" ] ||
    { echo "build-apk: cargo-ndk made no $jni_libs/$abi/libkiosk_android.so" >&2; exit 1; }
  for so in "$jni_libs/$abi"/*.so; do
    if [ "$(basename "$so")" != libkiosk_android.so ]; then
      echo "build-apk: removing $so (not loaded by the app)"
      rm -f "$so"
    fi
  done
done

# --- the APK ---
gradle -p android-manifest --no-daemon assembleRelease
apk=android-manifest/build/outputs/apk/release/kiosk-release.apk
[ -f "$apk" ] || { echo "build-apk: Gradle made no $apk" >&2; exit 1; }
version=${KIOSK_VERSION_NAME:-0.1.0}
mkdir -p target/android
cp "$apk" "target/android/kiosk-$version.apk"
apksigner="$sdk/build-tools/$BUILD_TOOLS/apksigner"
"$apksigner" verify --print-certs "target/android/kiosk-$version.apk" | head -n3
echo "build-apk: target/android/kiosk-$version.apk"
