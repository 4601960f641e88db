"""Benchmark: the load path alone, staged Parquet → warehouse (+ the published Parquet), in rows per second, and
page parsing → staged Parquet. Pages come from memory, so only our code is measured.

    .venv/bin/python benchmarks/load_path.py                       # the warehouse as it is (DuckLake)
    .venv/bin/python benchmarks/load_path.py --baseline 63500f8    # and, in the same run, the pipeline at a commit
                                                                    # before DuckLake (its single DuckDB file)

With --baseline the same measurement runs from a git worktree of that commit, in a virtualenv made for it once
(`benchmarks/.baseline-venv-<commit>`, its DuckDB from PyPI), and the ratio of the two is printed: one machine, one
run, so the figures compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
UTC = timezone.utc
# What the baseline needs to import the load path (not the whole project: no Dagster, no dbt).
BASELINE_PACKAGES = [
    "duckdb==2.0.1",
    "pyarrow>=26,<27",
    "requests",
    "tenacity",
    "pyrate-limiter>=4,<5",
    "filelock",
    "werkzeug",
]


def measure(
    rows: int, workdir: Path, seed: int = 42, scale: int = 4, now: datetime = datetime(2026, 11, 12, 14, 30, tzinfo=UTC)
) -> dict[str, float]:
    """Parse `rows` production records (25 a page, as the API sends them) into staged Parquet, then commit them.
    Runs against whichever `mfg_pipeline` the current folder holds (this tree, or the baseline's worktree)."""
    sys.path.insert(0, str(Path.cwd()))
    from mfg_pipeline.engine.load import PagesInHand, StreamLoad
    from mfg_pipeline.http.pagination import Page
    from mfg_pipeline.simulators.fusion_ops.data import FusionDataset
    from mfg_pipeline.sources.fusion_ops.streams import PRODUCTIONS
    from mfg_pipeline.warehouse.store import Warehouse

    dataset = FusionDataset(seed=seed, now=now, scale=scale, history_days=30)
    bodies = [r.body for r in dataset.productions]
    records = [
        {**body, "id": body["id"] + copy * 10_000_000} for copy in range(rows // len(bodies) + 1) for body in bodies
    ]
    records = records[:rows]
    warehouse = Warehouse(workdir)
    load = StreamLoad(PagesInHand("fusion_ops", UTC), PRODUCTIONS, warehouse, placement_timezone=UTC, kind="upsert")
    started = time.perf_counter()
    for number, start in enumerate(range(0, len(records), 25), 1):
        load.add_page(Page(number=number, records=records[start : start + 25], payload=None))
    staged = time.perf_counter()
    load.commit()
    committed = time.perf_counter()
    landed = warehouse.query("SELECT count(*) FROM fusion_ops.productions")[0][0]
    waste = warehouse.query("SELECT count(*) FROM fusion_ops.production_waste")[0][0]
    published = sum(1 for _ in (workdir / "parquet" / "fusion_ops" / "productions").rglob("*.parquet"))
    return {
        "rows": landed,
        "child_rows": waste,
        "published_files": published,
        "parse_rows_per_s": landed / (staged - started),
        "commit_rows_per_s": landed / (committed - staged),
        "commit_seconds": committed - staged,
    }


def baseline(commit: str, rows: int, workdir: Path) -> dict[str, float]:
    tree = workdir / f"baseline-{commit}"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), commit], check=True, capture_output=True
    )
    try:
        venv = BENCHMARKS / f".baseline-venv-{commit}"
        python = venv / "bin" / "python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *BASELINE_PACKAGES], check=True)
        done = subprocess.run(
            [
                str(python),
                str(Path(__file__).resolve()),
                "--rows",
                str(rows),
                "--json",
                "--workdir",
                str(workdir / "base"),
            ],
            cwd=tree,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(tree)},
        )
        if done.returncode != 0:
            raise SystemExit(f"the baseline failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--baseline", help="also measure the pipeline at this commit (before DuckLake: 63500f8)")
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mfg-load-path-") as temporary:
        workdir = args.workdir or Path(temporary)
        if args.json:  # the baseline's side
            print(json.dumps(measure(args.rows, workdir)))
            return
        ours = measure(args.rows, workdir / "lake")
        print(
            f"load path, {ours['rows']:,} production rows: parse → staged Parquet "
            f"{ours['parse_rows_per_s']:,.0f} rows/s; "
            f"staged Parquet → warehouse + published Parquet ({ours['published_files']} files) "
            f"{ours['commit_rows_per_s']:,.0f} rows/s ({ours['commit_seconds']:.2f}s)"
        )
        if args.baseline:
            theirs = baseline(args.baseline, args.rows, workdir)
            print(
                f"baseline {args.baseline} (one DuckDB file): staged Parquet → DuckDB + published Parquet "
                f"{theirs['commit_rows_per_s']:,.0f} rows/s; parse {theirs['parse_rows_per_s']:,.0f} rows/s"
            )
            print(f"ratio lake / file: {ours['commit_rows_per_s'] / theirs['commit_rows_per_s']:.2f}")


if __name__ == "__main__":
    main()
