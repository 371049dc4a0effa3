#!/usr/bin/env bash
# Audio benchmark: encode speed (× real time) and size (MB per hour) of kiosk-core's
# spool → AAC-LC 3GP encoder, and the speed of the capture path's downmix + resampler.
# See docs/benchmarks.md, section "Audio (kiosk-core)". Settings, from the environment:
#
#   AUDIO_BENCH_MINUTES   minutes of audio per input (default 10)
#
# espeak-ng and sox (Debian packages) add an espeak-ng speech input; without them only the
# synthetic speech is measured.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export AUDIO_BENCH_MINUTES="${AUDIO_BENCH_MINUTES:-10}"
exec cargo bench -p kiosk-core --bench audio_encode "$@"
