#!/usr/bin/env bash
# The kiosk crash test at full strength: SIGKILL at random points of visits, ratings,
# encoding, sync and upload, 200 times (CRASH_KILLS to change), then checks that every
# acknowledged rating is on the server exactly once and no non-Плохо recording exists.
# CI runs the same test with a smaller count as part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# The test kills the real `kiosk` binary, which it finds beside itself in target/release.
cargo build --release --locked -p kiosk-core --bin kiosk
CRASH_KILLS="${CRASH_KILLS:-200}" cargo test --release --locked -p test-support --test e2e -- crash --nocapture
