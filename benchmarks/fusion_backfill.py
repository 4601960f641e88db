"""Benchmark: a Fusion Operations backfill against the rate-limit ceiling, beside dlt's `rest_api`, and the load path.

    .venv/bin/python benchmarks/fusion_backfill.py            # ~10 minutes on 2 cores; --help for the knobs

Three measurements, printed as one table:

1. **mfg_pipeline**: `--days` daily partitions of `fusion_ops_daily`, each run in its own process (as Dagster's run
   launcher does), `--concurrency` at once, while the changes-feed sensor ticks every 30 s against a simulator in
   live mode (a change every second). The simulator's limit is scaled (`--limit`, default 600/minute instead of
   120) so the run takes minutes while the ratios are the same. From the simulator's own request log: the busiest
   60-second window / limit (must be <= 1.00), the overall rate / limit over the busy span (first to last request),
   429s; rows landed per minute (and a check that exactly the simulator's records for those days landed); the
   peak RSS of each run process.
2. **dlt `rest_api`** (the reference a user would pick instead): the same days, parallelism and simulator settings,
   dlt's documented defaults (see `dlt_reference.py`), in its own virtualenv (`benchmarks/.dlt-venv`, created on
   first use). No sensor: dlt has no changes-feed equivalent.
3. **Load path alone**: staged Parquet → DuckDB (+ published Parquet) in rows/second, and page parsing → staged
   Parquet, so it is clear whether the API or our code is the bottleneck.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))
sys.path.insert(0, str(BENCHMARKS))

from dagster import DagsterInstance  # noqa: E402
from load_path import measure as measure_load_path  # noqa: E402

from mfg_pipeline.simulators.base import SimulatorServer, busiest_window  # noqa: E402
from mfg_pipeline.simulators.fusion_ops.app import FusionOpsSimulator  # noqa: E402
from mfg_pipeline.simulators.fusion_ops.data import FusionDataset  # noqa: E402
from mfg_pipeline.simulators.fusion_ops.live import LiveShop  # noqa: E402
from mfg_pipeline.warehouse.store import Warehouse  # noqa: E402

UTC = timezone.utc
API_KEY, API_SECRET = "bench-key-5c1e", "bench-secret-90af"
ENTITIES = {"productions": "productions", "downtimes": "downtimes", "punch_clocks": "punchclocks"}


@dataclass
class Outcome:
    name: str
    requests: int = 0
    throttled: int = 0
    busiest_window_ratio: float = 0.0
    overall_ratio: float = 0.0
    rows: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_per_minute(self) -> float:
        return self.rows / self.seconds * 60 if self.seconds else 0.0


def request_figures(outcome: Outcome, simulator: FusionOpsSimulator, limit: int) -> None:
    served = simulator.requests()
    times = [r.time for r in served]
    outcome.requests = len(served)
    outcome.throttled = sum(r.status == 429 for r in served)
    outcome.busiest_window_ratio = busiest_window(times, 60.0) / limit
    span = max(times) - min(times) if len(times) > 1 else 0.0
    outcome.overall_ratio = (len(times) / span * 60 / limit) if span else 0.0


def make_simulator(args: argparse.Namespace, now: datetime) -> FusionOpsSimulator:
    dataset = FusionDataset(seed=args.seed, now=now, scale=args.scale, history_days=args.days + 2)
    return FusionOpsSimulator(dataset, api_key=API_KEY, api_secret=API_SECRET, rate_limit_per_minute=args.limit)


def expected_rows(simulator: FusionOpsSimulator, days: list[date]) -> dict[str, int]:
    first, last = (
        datetime.combine(days[0], datetime.min.time(), UTC),
        datetime.combine(days[-1], datetime.min.time(), UTC),
    )
    end = last + timedelta(days=1)
    return {
        table: sum(1 for r in getattr(simulator.data, attr) if first <= r.start < end)
        for table, attr in ENTITIES.items()
    }


# --- 1. our pipeline -------------------------------------------------------------------------------------------
class SensorTicker(threading.Thread):
    """The changes-feed sensor's work every `interval` seconds (journal the feed, apply it), on the shared budget."""

    def __init__(self, data_dir: Path, interval: float = 30.0):
        super().__init__(daemon=True)
        self.data_dir, self.interval = data_dir, interval
        self.stop_event = threading.Event()
        self.ticks = self.changes = 0
        self.errors: list[str] = []

    def run(self) -> None:
        from mfg_pipeline.engine.feed import apply_pending, read_feed
        from mfg_pipeline.sources.fusion_ops import make_client
        from mfg_pipeline.sources.fusion_ops.changes import FEED

        journal = FEED.journal(Warehouse(self.data_dir))
        stopping = False
        while not stopping:  # one last tick after the stop, so every change the shop made is applied
            stopping = self.stop_event.wait(self.interval)
            try:
                max_calls, seconds = FEED.tick_budget()
                deadline = time.monotonic() + seconds
                client = make_client(self.data_dir)
                for channel in FEED.channels():
                    max_calls -= read_feed(client, channel, journal, max_calls=max_calls, deadline=deadline).calls
                client.close()
                report = apply_pending(journal, Warehouse(self.data_dir), naive_timezone=UTC, partition_timezone=UTC)
                self.ticks += 1
                self.changes += report.changes
            except Exception as exc:  # a failed tick is reported, the next one goes on (as in Dagster)
                self.errors.append(f"{type(exc).__name__}: {exc}")


def run_pipeline(args: argparse.Namespace, days: list[date], now: datetime, workdir: Path) -> Outcome:
    outcome = Outcome("mfg_pipeline")
    simulator = make_simulator(args, now)
    data_dir = workdir / "pipeline"
    with SimulatorServer(simulator) as server:
        env = {
            **os.environ,
            "MFG_DATA_DIR": str(data_dir),
            "DAGSTER_HOME": str(data_dir / "dagster_home"),
            "FUSION_OPS_BASE_URL": server.url,
            "FUSION_OPS_API_KEY": API_KEY,
            "FUSION_OPS_API_SECRET": API_SECRET,
            "FUSION_OPS_RATE_LIMIT_PER_MINUTE": str(args.limit),
            "MFG_PARTITION_START_DATE": days[0].isoformat(),
        }
        (data_dir / "dagster_home").mkdir(parents=True)
        shutil.copy(BENCHMARKS.parent / "dagster.yaml", data_dir / "dagster_home" / "dagster.yaml")
        os.environ.update({k: env[k] for k in env if k.startswith(("MFG_", "FUSION_OPS_", "DAGSTER_"))})
        with DagsterInstance.get():  # create the instance's storage once, before runs race to migrate it
            pass
        sensor = SensorTicker(data_dir)
        reports: list[dict] = []

        def one_run(day: date) -> None:
            done = subprocess.run(
                [sys.executable, str(BENCHMARKS / "run_partition.py"), day.isoformat()],
                env=env,
                capture_output=True,
                text=True,
                timeout=3600,
            )
            if done.returncode != 0 or not done.stdout.strip():
                outcome.failed.append(f"{day}: exit {done.returncode}: {done.stderr[-500:]}")
                return
            report = json.loads(done.stdout.strip().splitlines()[-1])
            reports.append(report)
            if not report["success"]:
                outcome.failed.append(f"{day}: run failed")
            print(
                f"  mfg_pipeline {day}: {sum(report['rows'].values())} rows (children included), "
                f"{report['seconds']:.0f}s, "
                f"{report['peak_rss_mb']:.0f} MB",
                flush=True,
            )

        with LiveShop(simulator, interval_seconds=1.0, seed=args.seed):
            sensor.start()
            started = time.monotonic()
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(one_run, days))
            outcome.seconds = time.monotonic() - started
        sensor.stop_event.set()  # the shop has stopped: the final tick sees its last change
        sensor.join(timeout=120)
        request_figures(outcome, simulator, args.limit)

        warehouse = Warehouse(data_dir)
        landed = {
            t: warehouse.query(
                f"SELECT count(*) FROM fusion_ops.{t} WHERE partition_date BETWEEN ? AND ?", [days[0], days[-1]]
            )[0][0]
            for t in ENTITIES
        }
        expected = expected_rows(simulator, days)
        outcome.rows = sum(landed.values())  # records of the three entities, as dlt's figure (child rows aside)
        outcome.peak_rss_mb = max((r["peak_rss_mb"] for r in reports), default=0.0)
        outcome.notes.append(
            "landed == simulator's records for the days: "
            + ("yes" if landed == expected else f"NO ({landed} != {expected})")
        )
        outcome.notes.append(
            f"sensor: {sensor.ticks} ticks applied {sensor.changes} live changes"
            + (f", {len(sensor.errors)} failed ticks: {sensor.errors[:2]}" if sensor.errors else "")
        )
        if reports:  # memory must not grow with the partition: compare the smallest and the largest
            by_size = sorted(reports, key=lambda r: sum(r["rows"].values()))
            small, large = by_size[0], by_size[-1]
            outcome.notes.append(
                f"peak RSS: smallest partition ({sum(small['rows'].values())} rows) "
                f"{small['peak_rss_mb']:.0f} MB, largest ({sum(large['rows'].values())} rows) "
                f"{large['peak_rss_mb']:.0f} MB"
            )
        run_seconds = [r["seconds"] for r in reports]
        if run_seconds:
            outcome.notes.append(f"run duration median {statistics.median(run_seconds):.0f}s (process start included)")
    return outcome


# --- 2. dlt ----------------------------------------------------------------------------------------------------
def run_dlt(args: argparse.Namespace, days: list[date], now: datetime, workdir: Path) -> Outcome:
    from dlt_reference import ensure_dlt_venv, run_dlt_backfill

    outcome = Outcome("dlt rest_api")
    python = ensure_dlt_venv(BENCHMARKS / ".dlt-venv")
    simulator = make_simulator(args, now)
    with SimulatorServer(simulator) as server:
        result = run_dlt_backfill(python, server.url, API_KEY, API_SECRET, days, args.concurrency, workdir / "dlt")
    request_figures(outcome, simulator, args.limit)
    outcome.rows, outcome.seconds = result["rows"], result["seconds"]
    outcome.peak_rss_mb = result["peak_rss_mb"]
    outcome.failed = [str(d) for d in result.get("failed_days", [])]
    expected = sum(expected_rows(simulator, days).values())
    outcome.notes.append(f"rows loaded {outcome.rows} of the simulator's {expected}")
    outcome.notes += [f"error: {e}" for e in result.get("errors", [])[:2]]
    return outcome


# --- 3. the load path ------------------------------------------------------------------------------------------
def run_load_path(args: argparse.Namespace, now: datetime, workdir: Path) -> dict[str, float]:
    """Parse `--load-rows` production records (25-record pages, as the API sends) into staged Parquet, then
    commit them (the lake's merge + published Parquet for every touched day): `load_path.py`'s measurement."""
    return measure_load_path(args.load_rows, workdir / "load_path", seed=args.seed, scale=args.scale, now=now)


# --- report ----------------------------------------------------------------------------------------------------
def print_table(outcomes: list[Outcome], load: dict[str, float] | None, args: argparse.Namespace) -> None:
    print(
        f"\nFusion backfill: {args.days} daily partitions, {args.concurrency} concurrent runs, simulator limit "
        f"{args.limit}/min, dataset scale {args.scale}\n"
    )
    header = (
        "",
        "busiest 60 s / limit",
        "overall rate / limit",
        "429s",
        "requests",
        "rows",
        "rows/min",
        "wall s",
        "peak RSS/run MB",
        "failed runs",
    )
    rows = [header] + [
        (
            o.name,
            f"{o.busiest_window_ratio:.2f}",
            f"{o.overall_ratio:.2f}",
            str(o.throttled),
            str(o.requests),
            str(o.rows),
            f"{o.rows_per_minute:,.0f}",
            f"{o.seconds:.0f}",
            f"{o.peak_rss_mb:.0f}",
            str(len(o.failed)),
        )
        for o in outcomes
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for index, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for outcome in outcomes:
        for note in outcome.notes + [f"failed: {f}" for f in outcome.failed[:3]]:
            print(f"  {outcome.name}: {note}")
    if load:
        print(
            f"\nLoad path ({load['rows']:,} productions + {load['child_rows']:,} waste rows): parse pages → "
            f"staged Parquet {load['parse_rows_per_s']:,.0f} rows/s; staged Parquet → warehouse + published Parquet "
            f"{load['commit_rows_per_s']:,.0f} rows/s"
        )
        api_rows_per_s = max((o.rows / o.seconds for o in outcomes if o.seconds), default=0)
        slower_stage = min(load["parse_rows_per_s"], load["commit_rows_per_s"])
        if api_rows_per_s:
            print(
                f"The API path landed {api_rows_per_s:,.0f} rows/s; our slower stage handles {slower_stage:,.0f} "
                f"rows/s ({slower_stage / api_rows_per_s:,.0f}x): the vendor's limit is the bottleneck."
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30, help="daily partitions to backfill")
    parser.add_argument("--concurrency", type=int, default=4, help="runs at once (Dagster's run queue)")
    parser.add_argument("--limit", type=int, default=600, help="the simulator's requests/minute (scaled from 120)")
    parser.add_argument("--scale", type=int, default=16, help="dataset size knob (records per day)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--load-rows", type=int, default=500_000, help="rows for the load-path measurement")
    parser.add_argument("--skip-dlt", action="store_true", help="do not run the dlt reference")
    parser.add_argument("--workdir", type=Path, default=None, help="keep outputs here (default: a temp folder)")
    args = parser.parse_args()

    now = datetime.now(UTC).replace(microsecond=0)
    today = now.date()
    days = [today - timedelta(days=n) for n in range(args.days, 0, -1)]  # the live shop only touches today
    with tempfile.TemporaryDirectory(prefix="mfg-bench-") as temporary:
        workdir = args.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        print(f"workdir {workdir}", flush=True)
        outcomes = [run_pipeline(args, days, now, workdir)]
        if not args.skip_dlt:
            sys.path.insert(0, str(BENCHMARKS))
            outcomes.append(run_dlt(args, days, now, workdir))
        load = run_load_path(args, now, workdir) if args.load_rows else None
        print_table(outcomes, load, args)


if __name__ == "__main__":
    main()
