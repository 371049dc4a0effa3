#!/usr/bin/env python3
"""DuckDB's side of the dashboard benchmark (scripts/bench-dashboard.sh runs it through
office-server/benches/dashboard.rs).

Loads the raw visits (visits.csv, written by the generator) into an in-memory DuckDB table and,
for each page the server benchmark measures, runs the same aggregates over the raw visits: the
six period columns (day, ISO week, month, quarter, year of the report date in the office's time
zone, and all time), placed by the corrected instant ended_at - clock_offset_ms, as the server
does. Prints one JSON object: p50/p95 milliseconds per page, and the tallies of each page's
tables (visits, Хорошо, Средне, Плохо per group and period column) for the benchmark to compare
with the server's pages cell by cell.

usage: bench_dashboard_duckdb.py VISITS.csv YYYY-MM-DD TIME_ZONE REPEATS
"""
import json
import sys
import time
from datetime import date, datetime, time as dtime, timedelta
from zoneinfo import ZoneInfo

import duckdb


def main():
    csv_path, today_text, zone_name, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    zone = ZoneInfo(zone_name)
    today = date.fromisoformat(today_text)
    con = duckdb.connect()
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    started = time.perf_counter()
    con.execute(
        """CREATE TABLE visits AS SELECT * FROM read_csv(?, header = true, columns = {
             'department_id': 'INTEGER', 'section_id': 'INTEGER', 'employee_id': 'INTEGER',
             'service_id': 'INTEGER', 'ended_at': 'BIGINT', 'clock_offset_ms': 'BIGINT',
             'rating': 'TINYINT'})""",
        [csv_path],
    )
    load_seconds = time.perf_counter() - started

    def ms(day):
        return int(datetime.combine(day, dtime(0), zone).timestamp() * 1000)

    monday = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    quarter = today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    next_quarter = (quarter + timedelta(days=95)).replace(day=1)
    year = today.replace(month=1, day=1)
    periods = [
        (ms(today), ms(today + timedelta(days=1))),
        (ms(monday), ms(monday + timedelta(days=7))),
        (ms(month), ms(next_month)),
        (ms(quarter), ms(next_quarter)),
        (ms(year), ms(year.replace(year=year.year + 1))),
        (-(2**62), 2**62),
    ]
    trend = (ms(today - timedelta(days=29)), ms(today + timedelta(days=1)))
    offset_ms = int(datetime.combine(today, dtime(12), zone).utcoffset().total_seconds() * 1000)

    tally = """count(*), count(*) FILTER (rating = 3), count(*) FILTER (rating = 2),
               count(*) FILTER (rating = 1)"""
    at = "(ended_at - clock_offset_ms)"

    def by(group, where="TRUE"):
        """The six period columns' tallies by `group`: {key: [[visits, good, medium, bad] × 6]}."""
        def run():
            groups = {}
            for index, (start, end) in enumerate(periods):
                rows = con.execute(
                    f"SELECT {group}, {tally} FROM visits WHERE {where} AND {at} >= ? AND {at} < ? GROUP BY 1",
                    [start, end],
                ).fetchall()
                for key, *counts in rows:
                    groups.setdefault(str(key), [[0, 0, 0, 0] for _ in periods])[index] = counts
            return groups
        return run

    def month_by_service(where="TRUE"):
        con.execute(
            f"SELECT service_id, {tally} FROM visits WHERE {where} AND {at} >= ? AND {at} < ? GROUP BY 1",
            list(periods[2]),
        ).fetchall()

    def daily_trend(where="TRUE"):
        con.execute(
            f"SELECT ({at} + {offset_ms}) // 86400000 AS day, {tally} FROM visits "
            f"WHERE {where} AND {at} >= ? AND {at} < ? GROUP BY 1",
            list(trend),
        ).fetchall()

    def recent_bad(where):
        con.execute(
            f"SELECT * FROM visits WHERE {where} AND rating = 1 ORDER BY {at} DESC LIMIT 10"
        ).fetchall()

    # The tallies behind each page's tables, keyed by table id: rows by the group's id (the
    # summary table's single group is "0").
    tables = {
        "department_all": {"departments": by("department_id")},
        "department_one": {"sections": by("section_id", "department_id = 1")},
        "employees_all": {"employees": by("employee_id")},
        "employees_section": {
            "section_summary": by("0", "section_id = 1"),
            "employees": by("employee_id", "section_id = 1"),
            "services": by("service_id", "section_id = 1"),
        },
    }
    # The same work as each server page: its tables' groupings over six periods, and the charts.
    pages = {
        "department_all": [by("department_id"), month_by_service, daily_trend],
        "department_one": [
            by("section_id", "department_id = 1"),
            lambda: month_by_service("department_id = 1"),
            lambda: daily_trend("department_id = 1"),
        ],
        "employees_all": [by("employee_id")],
        "employees_section": [
            by("0", "section_id = 1"),
            by("employee_id", "section_id = 1"),
            by("service_id", "section_id = 1"),
            lambda: recent_bad("section_id = 1"),
        ],
    }
    report = {
        "version": duckdb.__version__,
        "threads": threads,
        "load_seconds": load_seconds,
        "rows": con.execute("SELECT count(*) FROM visits").fetchone()[0],
        "pages": {},
        "tallies": {page: {name: run() for name, run in groups.items()} for page, groups in tables.items()},
    }
    for name, steps in pages.items():
        for _ in range(2):  # warm-up
            for step in steps:
                step()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            for step in steps:
                step()
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        report["pages"][name] = {
            "p50": times[round((len(times) - 1) * 0.5)],
            "p95": times[round((len(times) - 1) * 0.95)],
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
