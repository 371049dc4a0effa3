#!/usr/bin/env bash
# Dashboard benchmark (opt-in, not part of the tests): generates a large office database
# (default 10 million visits: 5 departments, 20 sections, 300 employees, 40 services, 3 years),
# measures the department tab and the employee table through HTTP against the release server,
# and DuckDB (the PyPI package, in a virtual environment under target/) computing the same
# aggregates from the raw visits. See docs/benchmarks.md. Settings, from the environment:
#
#   BENCH_VISITS    visits to generate (default 10000000; the database is reused when it exists)
#   BENCH_REQUESTS  requests per page (default 200)
#   BENCH_DIR       where the database goes (default target/bench-dashboard/data-<visits>)
#   NO_DUCKDB=1     skip the DuckDB comparison
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export BENCH_VISITS="${BENCH_VISITS:-10000000}"
if [[ -n "${BENCH_REQUESTS:-}" ]]; then export BENCH_REQUESTS; fi
if [[ -n "${BENCH_DIR:-}" ]]; then export BENCH_DIR; fi
if [[ -z "${NO_DUCKDB:-}" ]]; then
  venv=target/bench-dashboard/venv
  if [[ ! -x "$venv/bin/python" ]]; then
    mkdir -p target/bench-dashboard
    python3 -m venv "$venv"
  fi
  "$venv/bin/python" -c 'import duckdb' 2>/dev/null || "$venv/bin/pip" install --quiet duckdb
  export BENCH_DUCKDB_PYTHON="$PWD/$venv/bin/python"
fi
exec cargo bench -p office-server --bench dashboard "$@"
