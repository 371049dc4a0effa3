#!/usr/bin/env bash
# Backup benchmark (opt-in, not part of the tests): `office-server backup` of the dashboard
# benchmark's 10-million-visit database with 10,000 recordings while a tablet syncs, the
# longest pause it causes in ingest, then `office-server check` of the same directory. Makes
# the dashboard benchmark's database first when it is missing. See docs/benchmarks.md.
#
#   BENCH_RECORDINGS  recordings to add (default 10000)
#   BENCH_SOURCE      the database to copy (default target/bench-dashboard/data-10000000)
#   BENCH_WORK        where the copy and the backups go (default target/bench-backup)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source="${BENCH_SOURCE:-target/bench-dashboard/data-10000000}"
if [[ ! -f "$source/office.sqlite3" ]]; then
  echo "bench-backup: making the dashboard benchmark's database first"
  NO_DUCKDB=1 BENCH_REQUESTS=10 bash scripts/bench-dashboard.sh
fi
# cargo runs a bench in its package's directory: the paths go absolute.
BENCH_SOURCE="$(cd "$source" && pwd)"
BENCH_WORK="$(mkdir -p "${BENCH_WORK:-target/bench-backup}" && cd "${BENCH_WORK:-target/bench-backup}" && pwd)"
export BENCH_SOURCE BENCH_WORK
if [[ -n "${BENCH_RECORDINGS:-}" ]]; then export BENCH_RECORDINGS; fi
exec cargo bench -p office-server --bench backup "$@"
