"""Benchmark: what one day's primary-key check costs as a table's published history grows, reading every day's
published file (the check without the run's snapshot) against reading the files the run's keys can be in (the
check after a run: the day's file and those of the days its keys were on before it).

    .venv/bin/python benchmarks/key_check.py                  # 30, 365 and 730 days of 100 rows
    .venv/bin/python benchmarks/key_check.py --days 30 1825   # other histories

For each history: one warehouse under a temporary folder, every day committed and published, then the check of
the middle day both ways, alternated, the median of `--repeat` runs each. The warehouse is the embedded default
(SQLite catalog, local files); in a bucket each published file read costs a request, so the gap is wider there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from report import print_markdown_table  # noqa: E402

from mfg_pipeline.records.schema import INT, STRING, Column, Table  # noqa: E402
from mfg_pipeline.warehouse.checks import primary_key_check  # noqa: E402
from mfg_pipeline.warehouse.store import PARTITION_COLUMN, TableLoad, Warehouse  # noqa: E402

TABLE = Table("events", (Column("id", INT, required=True), Column("label", STRING)), primary_key=("id",))
FIRST_DAY = date(2024, 1, 1)


def median_ms(check: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        check()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(days: int, rows_per_day: int, repeat: int, workdir: Path) -> list[str]:
    warehouse = Warehouse(workdir)
    stage = warehouse.new_stage("demo")
    staged = stage.file_for(TABLE.name)
    ids = list(range(days * rows_per_day))
    schema = TABLE.arrow_schema([pa.field(PARTITION_COLUMN, pa.date32(), nullable=False)])
    columns = {
        "id": ids,
        "label": ["x"] * len(ids),
        PARTITION_COLUMN: [FIRST_DAY + timedelta(days=i // rows_per_day) for i in ids],
    }
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), staged)
    warehouse.commit([TableLoad("demo", TABLE, staged, partitioned=True)])
    snapshot = warehouse.lake.snapshot_id()  # as a run that wrote the table gives it (its keys stayed on the day)
    day = FIRST_DAY + timedelta(days=days // 2)

    def every_file() -> None:
        assert primary_key_check(warehouse, "demo", TABLE, True, day).passed

    def the_runs_files() -> None:
        assert primary_key_check(warehouse, "demo", TABLE, True, day, snapshot_before=snapshot).passed

    every = the_runs = 0.0
    for _ in range(2):  # alternated, so both see the same machine
        every, the_runs = median_ms(every_file, repeat), median_ms(the_runs_files, repeat)
    return [f"{days:,}", f"{days:,}", f"{every:.0f}", f"{the_runs:.0f}", f"{every / the_runs:.1f}x"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, nargs="+", default=[30, 365, 730], help="histories, in days")
    parser.add_argument("--rows-per-day", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7, help="checks per way and round (the median is shown)")
    args = parser.parse_args()
    rows = []
    for days in args.days:
        with tempfile.TemporaryDirectory(prefix="mfg-key-check-") as workdir:
            rows.append(measure(days, args.rows_per_day, args.repeat, Path(workdir)))
    print_markdown_table(
        ["history (days)", "published files", "every file, ms", "the run's files, ms", "ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
