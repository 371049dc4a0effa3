#!/usr/bin/env bash
# Sync ingest benchmark: the same visits, in batches of 100, through HTTP /api/tablet/sync and
# through raw rusqlite loops that write what ingest writes (plain inserts; visits with the
# report totals, the tablet's health and the sync log, one transaction per batch; the same,
# grouped as the server grouped its commits), at each concurrency level. See docs/benchmarks.md.
# Settings, from the environment:
#
#   BENCH_VISITS   visits per path, level and round (default 100000)
#   BENCH_CLIENTS  comma-separated numbers of tablets syncing at once (default 4,32)
#   BENCH_ROUNDS   rounds; the report gives medians (default 3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export BENCH_VISITS="${BENCH_VISITS:-100000}"
if [[ -n "${BENCH_CLIENTS:-}" ]]; then export BENCH_CLIENTS; fi
if [[ -n "${BENCH_ROUNDS:-}" ]]; then export BENCH_ROUNDS; fi
exec cargo bench -p office-server --bench ingest "$@"
