"""Benchmark: the memory a partition run holds before it loads a single row, stage by stage.

    .venv/bin/python benchmarks/run_floor.py

A run process (as `run_partition.py` starts it, and as Dagster's run worker does) imports the definitions, which
builds them (reading the lake for its first partition day, so the lake is attached), opens the Dagster instance
and resolves its job before its first request. Against a data directory whose lake exists, each stage runs in that
order in a fresh process, and the script prints the process's RSS after it (anonymous and file-backed: shared
libraries and DuckDB's extensions count as file-backed). So the floor under `fusion_backfill.py`'s "peak RSS/run"
is a measured figure, not a guess.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent

# Each stage, cumulative, in the order a run process goes through them.
STAGES = {
    "interpreter": "",
    "import dagster": "import dagster",
    "import duckdb": "import duckdb",
    "import pyarrow (+ parquet)": "import pyarrow.parquet",
    "import mfg_pipeline.definitions (builds them: attaches the lake)": "import mfg_pipeline.definitions",
    "open the Dagster instance": "from dagster import DagsterInstance; DagsterInstance.get().get_runs_count()",
    "build the definitions again, resolve the job": (
        "mfg_pipeline.definitions.build_definitions().resolve_job_def('fusion_ops_daily')"
    ),
}
# The lake the run finds: made once, before the stages.
MAKE_LAKE = "from mfg_pipeline import config; from mfg_pipeline.warehouse.store import Warehouse; " + (
    "Warehouse(config.data_dir()).query('SELECT 1')"
)
PROBE = """
from pathlib import Path
def mb(field):
    line = next(l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith(field + ':'))
    return int(line.split()[1]) / 1024
print(round(mb('VmHWM')), round(mb('RssAnon')), round(mb('RssFile')))
"""


def measure(data_dir: Path) -> list[tuple[str, int, int, int]]:
    env = {**os.environ, "MFG_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(data_dir / "dagster_home")}
    subprocess.run([sys.executable, "-c", MAKE_LAKE], env=env, check=True)
    rows, done = [], []
    for label, statement in STAGES.items():
        done.append(statement)
        out = subprocess.run(
            [sys.executable, "-c", "\n".join([*done, PROBE])], env=env, capture_output=True, text=True, check=True
        ).stdout
        peak, anon, file = (int(v) for v in out.split())
        rows.append((label, peak, anon, file))
    return rows


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    with tempfile.TemporaryDirectory(prefix="mfg-floor-") as tmp:
        data_dir = Path(tmp) / "data"
        (data_dir / "dagster_home").mkdir(parents=True)
        shutil.copy(BENCHMARKS.parent / "dagster.yaml", data_dir / "dagster_home" / "dagster.yaml")
        rows = measure(data_dir)
    print("| stage (cumulative) | peak RSS MB | + MB | anonymous MB | file-backed MB |")
    print("|---|---|---|---|---|")
    previous = 0
    for label, peak, anon, file in rows:
        print(f"| {label} | {peak} | {peak - previous:+d} | {anon} | {file} |")
        previous = peak


if __name__ == "__main__":
    main()
