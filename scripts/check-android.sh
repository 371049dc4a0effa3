#!/usr/bin/env bash
# Type-checks and lints the tablet crates (kiosk-core and kiosk-android, with their Android-only
# code: android.rs, cpal's AAudio host, the platform verifier, ndk-context) for the two ARM
# ABIs the tablets use, so that the Android build can never silently stop compiling again.
#
# This machine has no Android NDK: the C code of the build scripts (bundled SQLite, libxaac,
# the TLS crypto) is compiled with Debian's cross compilers for Linux on the same CPU instead
# (gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf; scripts/setup.sh installs them). That is
# enough for `cargo clippy`, which compiles build scripts and C but links nothing; a real
# build needs the NDK (scripts/build-apk.sh).
#
#   scripts/check-android.sh            both ABIs
#   scripts/check-android.sh aarch64    one of them (aarch64 | armv7)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

check() {
  local target=$1 gnu=$2 processor=$3 extra_cflags=$4
  local env_target=${target//-/_}
  command -v "$gnu-gcc" >/dev/null && command -v "$gnu-g++" >/dev/null ||
    { echo "check-android: $gnu-gcc or $gnu-g++ is missing: run scripts/setup.sh" >&2; exit 1; }
  rustup target list --installed | grep -qx "$target" ||
    { echo "check-android: Rust target $target is missing: run scripts/setup.sh" >&2; exit 1; }
  # libxaac-sys runs cmake itself with no toolchain; CMake 3.21+ takes one from the environment.
  local toolchain=$CARGO_TARGET_DIR/android-check/$target.cmake
  mkdir -p "$(dirname "$toolchain")"
  cat >"$toolchain" <<CMAKE
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR $processor)
set(CMAKE_C_COMPILER $gnu-gcc)
set(CMAKE_CXX_COMPILER $gnu-g++)
set(CMAKE_C_FLAGS_INIT "$extra_cflags")
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
CMAKE
  echo "check-android: clippy for $target (C code with $gnu-gcc)"
  local started=$SECONDS
  env \
    "CC_$env_target=$gnu-gcc" \
    "AR_$env_target=$gnu-ar" \
    "CFLAGS_$env_target=-D_GNU_SOURCE $extra_cflags" \
    "BINDGEN_EXTRA_CLANG_ARGS_$env_target=--sysroot=/usr/$gnu $extra_cflags" \
    "CMAKE_TOOLCHAIN_FILE=$toolchain" \
    cargo clippy --locked --target "$target" -p kiosk-core -p kiosk-android -- -D warnings
  echo "check-android: $target clean in $((SECONDS - started)) s"
}

# Debian's armhf headers are hard-float only: glibc's gnu/stubs.h includes gnu/stubs-soft.h
# under the Android ABI's softfp, and armhf has none. That header only lists functions glibc
# lacks (`__stub_*` macros); an empty one lets the C code compile with the real ABI's flags.
# Nothing is linked, so nothing else of glibc's ABI matters.
softfp_stubs() {
  local dir=$CARGO_TARGET_DIR/android-check/softfp-include
  mkdir -p "$dir/gnu"
  echo "/* Empty: see scripts/check-android.sh. */" >"$dir/gnu/stubs-soft.h"
  echo "-isystem $dir"
}

case "${1:-all}" in
  all)
    check aarch64-linux-android aarch64-linux-gnu aarch64 ""
    check armv7-linux-androideabi arm-linux-gnueabihf armv7 "$(softfp_stubs)"
    ;;
  aarch64) check aarch64-linux-android aarch64-linux-gnu aarch64 "" ;;
  armv7) check armv7-linux-androideabi arm-linux-gnueabihf armv7 "$(softfp_stubs)" ;;
  *) echo "usage: $0 [aarch64|armv7]" >&2; exit 2 ;;
esac
