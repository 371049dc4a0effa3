#!/usr/bin/env bash
# Installs what building and testing this project needs on a fresh Debian machine.
# Safe to run again: it installs only what is missing.
set -euo pipefail

# Debian packages: a C compiler for the bundled SQLite, ALSA headers for
# cpal; for the tests: ffmpeg (ffprobe checks recordings), Chromium and its driver (the kiosk
# screen in a real browser), espeak-ng (speech to feed a capture device).
# cmake and libclang-dev build libxaac (the AAC encoder). sox, PulseAudio and the ALSA pulse
# plugin give the capture test a real input device with no sound card. The JDK (javac, java)
# compiles the Android shell's plain-Java classes and loads the JNI library in a desktop JVM.
# Kannel (bearerbox + smsbox) is the SMS gateway the «Результат готов» tests send through.
# debootstrap makes the Debian 12 chroot the package is installed into (scripts/test-package.sh),
# and systemd's systemd-analyze checks the unit's confinement.
# The cross compilers (C, and C++ that libxaac's CMake project asks for) let
# scripts/check-android.sh compile the build scripts' C code for the tablets' ARM ABIs (a type
# check; nothing is linked). Node.js runs the kiosk page's lint (scripts/lint-page.sh);
# Debian's is used only where the machine has none.
packages=(build-essential pkg-config ca-certificates curl libasound2-dev cmake libclang-dev
  ffmpeg chromium chromium-driver espeak-ng sox pulseaudio pulseaudio-utils libasound2-plugins
  python3-venv openjdk-17-jdk-headless gcc-aarch64-linux-gnu g++-aarch64-linux-gnu
  gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf kannel debootstrap systemd)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Rust toolchain, with rustfmt and clippy.
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

# cargo-deb builds the Debian package (scripts/test-package.sh); pinned, as its options change.
if ! cargo deb --version 2>/dev/null | grep -q '^3\.8\.0'; then
  echo "setup: installing cargo-deb"
  cargo install cargo-deb --locked --version 3.8.0 --quiet
fi

# The Rust standard library for the tablets' ARM ABIs (scripts/check-android.sh).
if command -v rustup >/dev/null 2>&1; then
  for target in aarch64-linux-android armv7-linux-androideabi; do
    rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
  done
fi

# The SMTP server the e-mail notification tests send to (PyPI's aiosmtpd), in a virtual
# environment of its own, made again when its requirements change.
root="$(cd "$(dirname "$0")/.." && pwd)"
smtp="$root/tests/smtp"
req_sum=$(sha256sum "$smtp/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$smtp/.venv/.installed-requirements" 2>/dev/null)" != "$req_sum" ]; then
  echo "setup: installing the test SMTP server (aiosmtpd) into tests/smtp/.venv"
  rm -rf "$smtp/.venv"
  python3 -m venv "$smtp/.venv"
  "$smtp/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$smtp/requirements.txt"
  echo "$req_sum" >"$smtp/.venv/.installed-requirements"
fi

# npm packages, exactly as each folder's package-lock.json pins them: the kiosk page's lint tools,
# and the OpenID Connect provider the visitor-account tests and the demo start (the city
# portal's stand-in). npm ci replaces node_modules wholesale, so it runs only when the lockfile
# changed since.
for dir in "$root/kiosk-core/page-lint" "$root/tests/oidc-provider"; do
  lock_sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$dir/node_modules/.installed-lock" 2>/dev/null)" != "$lock_sum" ]; then
    echo "setup: installing ${dir#"$root"/}'s npm packages (npm ci)"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    echo "$lock_sum" >"$dir/node_modules/.installed-lock"
  fi
done
