"""Benchmark: plants side by side in one deployment, at N simulated plants: what one hourly cycle of every plant
costs each plant's company, and whether one machine keeps up.

For each N (default 1, 4 and 16), in a fresh MFG_DATA_DIR:
1. N Fusion Operations companies are served on localhost (Fusion only: all five sources at 16 plants would take
   too long on 2 cores), each its own seed and company zone (Europe/Berlin, America/Chicago, Asia/Shanghai, ...), so
   their record ids overlap, each with the vendor's documented limit, 120 requests/minute, kept on the simulator
   and in the plant's `FUSION_OPS_RATE_LIMIT_PER_MINUTE`. A plants file lists them (secrets as `${PLANTn_...}`
   references); `MFG_PLANT` and every `FUSION_OPS_*` variable are unset, so the definitions hold plant x date
   partitions and one schedule per plant.
2. The starting state: each plant's daily cycle (not measured). Then the benchmark waits until a minute has passed
   since the last request, so each company's window starts empty, as it would an hour later.
3. Measured: each plant's hourly cycle (what its `fusion_ops_<plant>_hourly_refresh` schedule requests, executed
   in-process by `execute_cycle`), the plants run concurrently by a process pool (`--pool`, default 2: the
   machine's cores), one fresh process per plant cycle, as Dagster's run launcher gives a run its own process;
   the companies' budgets are enforced only by the pipeline's shared limiter (a SQLite bucket per company under
   MFG_DATA_DIR).

Reported per N, from each simulator's own request log: requests per hourly cycle per plant; the busiest 60-second
window of any company's requests (429s included) over its 120/minute limit (must be <= 1.00), for the hourly cycle
and for the starting load; 429s; the wall time of the whole hourly cycle (all plants; a worker process's start and
imports count in it, except the first `--pool` workers', which the pool starts during the wait); the runs the
hourly cycles of all plants execute (runs per hour); the peak RSS (VmHWM, `procstat.py`) of the process that ran
one plant's hourly cycle, its runs in-process: an upper bound for one run's peak.

    .venv/bin/python benchmarks/plants.py                  # 1, 4 and 16 plants
    .venv/bin/python benchmarks/plants.py --plants 1 2 --pool 1
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import repeat
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))
sys.path.insert(0, str(BENCHMARKS))

from dagster import DagsterInstance
from procstat import peak_rss_mb

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.engine.refresh import DAILY, HOURLY
from mfg_pipeline.orchestration.cycles import execute_cycle, failures_of
from mfg_pipeline.simulators.base import SimulatorServer, busiest_window
from mfg_pipeline.simulators.fusion_ops.app import FusionOpsSimulator
from mfg_pipeline.simulators.fusion_ops.data import FusionDataset
from mfg_pipeline.sources.registry import source_by_name

NOW = datetime(2026, 11, 12, 14, 30, tzinfo=timezone.utc)
LIMIT = 120  # Fusion Operations' documented requests per minute per company
ZONES = ("Europe/Berlin", "America/Chicago", "Asia/Shanghai", "America/Sao_Paulo", "Asia/Kolkata", "Europe/London")
START_DAYS_BEFORE_NOW = 4
HOUR = 3600.0

# One plant's cycle, as a worker process returns it: (plant, runs, failures, seconds in execute_cycle, peak RSS MB)
Cycle = tuple[str, int, list[str], float, float]


@dataclass
class Row:
    plants: int
    runs: int = 0
    requests: list[int] = field(default_factory=list)
    busiest_hourly: float = 0.0
    busiest_start: float = 0.0
    throttled: int = 0
    wall: float = 0.0
    cycle_seconds: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0


def plant_cycle(plant: str, cycle: str, at: datetime) -> Cycle:
    """One plant's `cycle` at `at`, run in this (fresh) worker process as its schedule would request it."""
    defs = build_definitions()
    started = time.monotonic()
    with DagsterInstance.ephemeral() as instance:
        results = execute_cycle(defs, instance, source_by_name("fusion_ops"), cycle, at, plant=plant)
    seconds = time.monotonic() - started
    failed = failures_of(results) or [f"run {r.run_id} failed" for r in results if not r.success]
    return plant, len(results), failed, seconds, peak_rss_mb()


def plants_file(work: Path, servers: list[SimulatorServer]) -> Path:
    """A plants file naming every simulated company; its secrets in PLANTn_* variables, set here."""
    entries = []
    for index, server in enumerate(servers, start=1):
        zone = ZONES[(index - 1) % len(ZONES)]
        os.environ[f"PLANT{index}_FUSION_KEY"] = f"bench-key-{index}"
        os.environ[f"PLANT{index}_FUSION_SECRET"] = f"bench-secret-{index}"
        entries.append(
            f"  - name: plant{index:02d}\n"
            f"    timezone: {zone}\n"
            "    sources:\n"
            "      fusion_ops:\n"
            f"        FUSION_OPS_BASE_URL: {server.url}\n"
            f"        FUSION_OPS_API_KEY: ${{PLANT{index}_FUSION_KEY}}\n"
            f"        FUSION_OPS_API_SECRET: ${{PLANT{index}_FUSION_SECRET}}\n"
            f"        FUSION_OPS_COMPANY_TIMEZONE: {zone}\n"
            f"        FUSION_OPS_RATE_LIMIT_PER_MINUTE: {LIMIT}\n"
        )
    path = work / "plants.yaml"
    path.write_text("plants:\n" + "".join(entries))
    return path


def run_all(pool: ProcessPoolExecutor, names: list[str], cycle: str, at: datetime) -> list[Cycle]:
    cycles = list(pool.map(plant_cycle, names, repeat(cycle), repeat(at)))
    for plant, _, failed, _, _ in cycles:
        if failed:
            raise SystemExit(f"{plant} {cycle} cycle failed: {failed[:2]}")
    return cycles


def busiest(simulators: list[FusionOpsSimulator]) -> float:
    """The busiest 60 s of any one company's logged requests over its limit."""
    return max(busiest_window([r.time for r in s.requests()], 60.0) for s in simulators) / LIMIT


def measure(n: int, pool_size: int) -> Row:
    row = Row(n)
    simulators = [
        FusionOpsSimulator(
            FusionDataset(seed=42 + 7 * index, now=NOW, company_timezone=ZONES[index % len(ZONES)]),
            api_key=f"bench-key-{index + 1}",
            api_secret=f"bench-secret-{index + 1}",
            company=f"company{index + 1}",
            rate_limit_per_minute=LIMIT,
        )
        for index in range(n)
    ]
    servers = [SimulatorServer(simulator).start() for simulator in simulators]
    names = [f"plant{index:02d}" for index in range(1, n + 1)]
    with tempfile.TemporaryDirectory(prefix="mfg-plants-", ignore_cleanup_errors=True) as work:
        for variable in [v for v in os.environ if v.startswith("FUSION_OPS_")]:
            del os.environ[variable]
        for variable in ("MFG_PLANT", "MFG_PARTITION_TIMEZONE", "MFG_RATE_LIMIT_BACKEND"):
            os.environ.pop(variable, None)
        os.environ["MFG_DATA_DIR"] = work
        os.environ["MFG_PLANTS_FILE"] = str(plants_file(Path(work), servers))
        # The simulated history ends at NOW, before the wall clock: the partitions reach back to a few days before it.
        os.environ["MFG_PARTITION_START_DATE"] = (NOW - timedelta(days=START_DAYS_BEFORE_NOW)).date().isoformat()
        # Spawned (not forked: this process serves the simulators from threads); one process per plant cycle.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(pool_size, mp_context=context, max_tasks_per_child=1) as pool:
            run_all(pool, names, DAILY, NOW)
            row.busiest_start = busiest(simulators)
            last = max((r.time for s in simulators for r in s.requests()), default=0.0)
            time.sleep(max(0.0, last + 61.0 - time.time()))
            for simulator in simulators:
                simulator.clear_log()
            started = time.monotonic()
            cycles = run_all(pool, names, HOURLY, NOW + timedelta(hours=1))
            row.wall = time.monotonic() - started
    for server in servers:
        server.stop()
    row.runs = sum(c[1] for c in cycles)
    row.cycle_seconds = [c[3] for c in cycles]
    row.peak_rss_mb = max(c[4] for c in cycles)
    row.requests = [len(s.requests()) for s in simulators]
    row.throttled = sum(r.status == 429 for s in simulators for r in s.requests())
    row.busiest_hourly = busiest(simulators)
    return row


def print_table(rows: list[Row], pool_size: int) -> None:
    print(
        f"\nOne hourly cycle of every plant (Fusion Operations only; {pool_size} plant cycles at once, each in its "
        f"own process; limit {LIMIT} requests/minute per company)\n"
    )
    header = (
        "plants",
        "runs per hour",
        "requests per plant per hourly cycle (min-max)",
        "busiest 60 s / limit: hourly (starting load)",
        "429s",
        "hourly cycle wall time",
        "one plant's cycle (mean, in-process)",
        "peak RSS of a plant-cycle process (max)",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        cells = (
            str(r.plants),
            str(r.runs),
            f"{min(r.requests)}-{max(r.requests)}",
            f"{r.busiest_hourly:.2f} ({r.busiest_start:.2f})",
            str(r.throttled),
            f"{r.wall:.1f} s",
            f"{statistics.mean(r.cycle_seconds):.1f} s",
            f"{r.peak_rss_mb:.0f} MB",
        )
        print("| " + " | ".join(cells) + " |")
    behind = [r for r in rows if r.wall > HOUR]
    if behind:
        first = behind[0]
        print(f"\nOne machine stops keeping up at {first.plants} plants: the hourly cycle took {first.wall:.0f} s.")
        return
    largest = max(rows, key=lambda r: r.plants)
    per_plant = largest.wall / largest.plants
    print(
        f"\nOne machine kept up at every measured N (largest: {largest.plants} plants, hourly cycle "
        f"{largest.wall:.0f} s of {HOUR:.0f} s). Extrapolated linearly from it ({per_plant:.1f} s per plant), the "
        f"hourly cycle would exceed an hour at about {HOUR / per_plant:.0f} plants."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plants", type=int, nargs="+", default=[1, 4, 16], help="numbers of plants to measure")
    parser.add_argument("--pool", type=int, default=2, help="plant cycles at once (processes)")
    args = parser.parse_args()
    rows = []
    for n in args.plants:
        started = time.monotonic()
        row = measure(n, args.pool)
        print(
            f"  {n} plants: {row.runs} runs, requests {row.requests}, busiest {row.busiest_hourly:.2f} "
            f"(start {row.busiest_start:.2f}), hourly {row.wall:.1f} s ({time.monotonic() - started:.0f} s in all)",
            flush=True,
        )
        rows.append(row)
    print_table(rows, args.pool)


if __name__ == "__main__":
    main()
