"""An analyst's session on the warehouse, as a separate process using only a plain DuckDB client and attach.sql
(what the README tells analysts to do). Run by the concurrency tests:

    python -m mfg_pipeline_tests.analyst_session hold ATTACH_SQL QUERY
        opens a session and a transaction, prints the query's answer, waits for a line on stdin, answers again in
        the same transaction, commits, answers a third time; prints one JSON line: {"answers": [...]}
    python -m mfg_pipeline_tests.analyst_session poll ATTACH_SQL QUERY STOP_FILE INTERVAL
        opens a new session every INTERVAL seconds, answers QUERY and closes it, until STOP_FILE exists; prints
        one JSON line: {"reads": n, "errors": [...]}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]


def start(mode: str, attach_file: Path | str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """This module as its own process (the analyst's client), its stdin and stdout piped to the test."""
    return subprocess.Popen(
        [sys.executable, "-m", "mfg_pipeline_tests.analyst_session", mode, str(attach_file), *args],
        cwd=REPO,
        env=env if env is not None else os.environ.copy(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def session(attach_sql: str) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(Path(attach_sql).read_text())
    return connection


def hold(attach_sql: str, query: str) -> None:
    connection = session(attach_sql)
    connection.execute("BEGIN TRANSACTION")
    answers = [connection.execute(query).fetchall()]
    print("open", flush=True)
    sys.stdin.readline()
    answers.append(connection.execute(query).fetchall())
    connection.execute("COMMIT")
    answers.append(connection.execute(query).fetchall())
    print(json.dumps({"answers": answers}, default=str), flush=True)


def poll(attach_sql: str, query: str, stop_file: str, interval: float, most_seconds: float = 900) -> None:
    reads, errors = 0, []
    started_at = time.monotonic()
    while not Path(stop_file).exists() and time.monotonic() - started_at < most_seconds:
        started = time.monotonic()
        try:
            connection = session(attach_sql)
            connection.execute(query).fetchall()
            connection.close()
            reads += 1
        except duckdb.Error as exc:
            errors.append(str(exc).splitlines()[0])
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    print(json.dumps({"reads": reads, "errors": errors}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2], sys.argv[3])
    else:
        poll(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
