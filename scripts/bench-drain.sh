#!/usr/bin/env bash
# Sync drain benchmark: a backlog of ratings in the tablet store drains to a real office server
# started in-process on 127.0.0.1. See docs/benchmarks.md. Settings, from the environment:
#
#   BENCH_VISITS   ratings in the backlog (default 10000)
#   BENCH_BATCHES  comma-separated sync batch sizes (default 200; the loop's default)
#   BENCH_RUNS     runs per batch size (default 2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export BENCH_VISITS="${BENCH_VISITS:-10000}"
if [[ -n "${BENCH_BATCHES:-}" ]]; then export BENCH_BATCHES; fi
if [[ -n "${BENCH_RUNS:-}" ]]; then export BENCH_RUNS; fi
exec cargo bench -p test-support --bench drain "$@"
