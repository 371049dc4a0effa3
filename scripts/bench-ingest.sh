#!/usr/bin/env bash
# Sync ingest benchmark: visits through HTTP /api/tablet/sync versus raw rusqlite inserts of the
# same batches, in batches of 100. See docs/benchmarks.md. Settings, from the environment:
#
#   BENCH_VISITS   visits per path and round (default 100000)
#   BENCH_CLIENTS  concurrent tablet clients (default 4)
#   BENCH_ROUNDS   rounds; the report gives medians (default 5)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export BENCH_VISITS="${BENCH_VISITS:-100000}"
if [[ -n "${BENCH_CLIENTS:-}" ]]; then export BENCH_CLIENTS; fi
if [[ -n "${BENCH_ROUNDS:-}" ]]; then export BENCH_ROUNDS; fi
exec cargo bench -p office-server --bench ingest "$@"
