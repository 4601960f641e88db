"""Benchmark: plants side by side in one deployment, at N simulated plants: what one hourly cycle of every plant
costs each plant's company, and whether one machine keeps up.

For each N (default 1, 4 and 16), in a fresh MFG_DATA_DIR:
1. N simulated plants are served on localhost (`start_plants`: berlin, chicago, shanghai, ..., each its own company
   at every vendor of `--sources`, default all five, with its own seed and zone, so their record ids overlap). A
   plants file lists them (`plants_file`: secrets as `${<PLANT>_...}` references); `MFG_PLANT`, the partition zone
   and every vendor variable are unset, so the definitions hold plant x date partitions and one schedule per plant.
2. The starting state, not measured: each plant's daily cycle, with every company's limit lifted (simulator and
   plants file alike) so it takes minutes, not hours. Then every limit goes back to the vendor's documented one
   (Fusion 120/minute, ...), in the simulators and the plants file, and the benchmark waits until a minute has
   passed since the last request, so each company's window starts empty, as it would an hour later.
3. Measured: each plant's hourly cycle (what its `<source>_<plant>_hourly_refresh` schedules request, executed
   in-process by `execute_cycle`, source after source), the plants run concurrently by a process pool (`--pool`,
   default 2: the machine's cores), one fresh process per plant cycle, as Dagster's run launcher gives a run its own
   process; the companies' budgets are enforced only by the pipeline's shared limiter (a SQLite bucket per company
   under MFG_DATA_DIR).

Reported per N, from each simulator's own request log: requests per hourly cycle per plant (all its vendors); the
busiest 60-second window of any company's requests (429s included) over that vendor's documented limit (must be
<= 1.00) for the hourly cycle; 429s; the wall time of the whole hourly cycle (all plants; a worker process's start
and imports count in it, except the first `--pool` workers', which the pool starts during the wait); the runs the
hourly cycles of all plants execute (runs per hour); the peak RSS (VmHWM, `procstat.py`) of the process that ran
one plant's hourly cycle, its runs in-process: an upper bound for one run's peak. Not measured: the changes feed's
apply runs (up to one a minute per Fusion company; `dev_session.py` measures them for one plant).

    .venv/bin/python benchmarks/plants.py                  # 1, 4 and 16 plants, every source
    .venv/bin/python benchmarks/plants.py --plants 1 2 --pool 1 --sources fusion_ops
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
from report import print_markdown_table

from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.engine.refresh import DAILY, HOURLY
from mfg_pipeline.orchestration.cycles import execute_cycle, failures_of
from mfg_pipeline.simulators.base import LoggedRequest, SimulatorApp, busiest_window
from mfg_pipeline.simulators.serving import SimulatedPlant, plants_file, start_plants
from mfg_pipeline.sources.registry import all_sources, source_by_name

NOW = datetime(2026, 11, 12, 14, 30, tzinfo=timezone.utc)
LIFTED = 100_000  # requests a minute for the starting state, which is not measured
HISTORY_DAYS = {"fusion_ops": 5}  # the others: 30 days; each plant's daily cycle reloads all of it
START_DAYS_BEFORE_NOW = 10
HOUR = 3600.0

# One plant's cycle, as a worker process returns it: (plant, runs, failures, seconds in execute_cycle, peak RSS MB)
Cycle = tuple[str, int, list[str], float, float]


@dataclass
class Row:
    plants: int
    runs: int = 0
    requests: list[int] = field(default_factory=list)
    busiest_hourly: float = 0.0
    throttled: int = 0
    wall: float = 0.0
    cycle_seconds: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0


def plant_cycle(plant: str, source_names: tuple[str, ...], cycle: str, at: datetime) -> Cycle:
    """One plant's `cycle` of every source at `at`, run in this (fresh) worker process as its schedules would
    request it."""
    defs = build_definitions()
    started = time.monotonic()
    results = []
    with DagsterInstance.ephemeral() as instance:
        for name in source_names:
            results += execute_cycle(defs, instance, source_by_name(name), cycle, at, plant=plant)
    seconds = time.monotonic() - started
    failed = failures_of(results) or [f"run {r.run_id} failed" for r in results if not r.success]
    return plant, len(results), failed, seconds, peak_rss_mb()


def run_all(
    pool: ProcessPoolExecutor, plants: list[SimulatedPlant], sources: tuple[str, ...], cycle: str, at: datetime
):
    names = [plant.name for plant in plants]
    cycles = list(pool.map(plant_cycle, names, repeat(sources), repeat(cycle), repeat(at)))
    for plant, _, failed, _, _ in cycles:
        if failed:
            raise SystemExit(f"{plant} {cycle} cycle failed: {failed[:2]}")
    return cycles


def point_at_plants_file(work: Path, data_dir: Path) -> Path:
    """This process's environment (which its workers inherit) as a plants-side-by-side deployment's: the data in
    `data_dir`, the plants file `<work>/plants.yaml` (returned; the caller writes it), and none of the single-plant
    settings (`MFG_PLANT`, the partition zone, any vendor variable) or a shared rate-limit backend."""
    prefixes = tuple(f"{source.name.upper()}_" for source in all_sources())
    for variable in [v for v in os.environ if v.startswith(prefixes)]:
        del os.environ[variable]
    for variable in ("MFG_PLANT", "MFG_PARTITION_TIMEZONE", "MFG_RATE_LIMIT_BACKEND", "DAGSTER_HOME"):
        os.environ.pop(variable, None)
    path = work / "plants.yaml"
    os.environ.update({"MFG_DATA_DIR": str(data_dir), "MFG_PLANTS_FILE": str(path)})
    return path


def set_limits(plants: list[SimulatedPlant], limits: dict[str, int], sources: list[SourceSystem], path: Path) -> None:
    """Every company's limit at each vendor: in its simulator, and (through the plants file) in its client."""
    for plant in plants:
        for system, server in plant.running.servers.items():
            server.app.limit.limit = plant.running.rate_limits[system] = limits[system]
    text, secrets = plants_file(plants, sources)
    path.write_text(text)
    os.environ.update(secrets)


def logged(plant: SimulatedPlant) -> list[tuple[SimulatorApp, list[LoggedRequest]]]:
    """(app, its logged requests) of the plant's company at every vendor."""
    return [(server.app, server.app.requests()) for server in plant.running.servers.values()]


def measure(n: int, pool_size: int, sources: list[SourceSystem]) -> Row:
    row = Row(n)
    history = {s.name: HISTORY_DAYS.get(s.name, 30) for s in sources}
    plants = start_plants(sources, n, now=NOW, history_days=history)
    documented = {name: server.app.limit.limit for name, server in plants[0].running.servers.items()}
    names = tuple(s.name for s in sources)
    with tempfile.TemporaryDirectory(prefix="mfg-plants-", ignore_cleanup_errors=True) as work:
        path = point_at_plants_file(Path(work), Path(work))
        # The simulated history ends at NOW, before the wall clock: the partitions reach back to a few days before it.
        os.environ["MFG_PARTITION_START_DATE"] = (NOW - timedelta(days=START_DAYS_BEFORE_NOW)).date().isoformat()
        set_limits(plants, dict.fromkeys(documented, LIFTED), sources, path)
        # Spawned (not forked: this process serves the simulators from threads); one process per plant cycle.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(pool_size, mp_context=context, max_tasks_per_child=1) as pool:
            run_all(pool, plants, names, DAILY, NOW)
            set_limits(plants, documented, sources, path)
            last = max((r.time for p in plants for _, requests in logged(p) for r in requests), default=0.0)
            time.sleep(max(0.0, last + 61.0 - time.time()))
            for plant in plants:
                for app, _ in logged(plant):
                    app.clear_log()
            started = time.monotonic()
            cycles = run_all(pool, plants, names, HOURLY, NOW + timedelta(hours=1))
            row.wall = time.monotonic() - started
    logs = [logged(plant) for plant in plants]
    for plant in plants:
        plant.running.stop()
    row.runs = sum(c[1] for c in cycles)
    row.cycle_seconds = [c[3] for c in cycles]
    row.peak_rss_mb = max(c[4] for c in cycles)
    companies = [company for plant in logs for company in plant]
    row.requests = [sum(len(requests) for _, requests in plant) for plant in logs]
    row.throttled = sum(r.status == 429 for _, requests in companies for r in requests)
    row.busiest_hourly = max(busiest_window([r.time for r in log], 60.0) / app.limit.limit for app, log in companies)
    return row


def print_table(rows: list[Row], pool_size: int, sources: tuple[str, ...]) -> None:
    print(
        f"\nOne hourly cycle of every plant ({', '.join(sources)}; {pool_size} plant cycles at once, each in its "
        "own process; each vendor's documented limit per company)\n"
    )
    header = (
        "plants",
        "runs per hour",
        "requests per plant per hourly cycle (min-max)",
        "busiest 60 s of a company / its limit",
        "429s",
        "hourly cycle wall time",
        "one plant's cycle (mean, in-process)",
        "peak RSS of a plant-cycle process (max)",
    )
    table = []
    for r in rows:
        cells = (
            str(r.plants),
            str(r.runs),
            f"{min(r.requests)}-{max(r.requests)}",
            f"{r.busiest_hourly:.2f}",
            str(r.throttled),
            f"{r.wall:.1f} s",
            f"{statistics.mean(r.cycle_seconds):.1f} s",
            f"{r.peak_rss_mb:.0f} MB",
        )
        table.append(cells)
    print_markdown_table(header, table)
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
    parser.add_argument("--sources", default="", help="comma-separated sources (default: all registered)")
    args = parser.parse_args()
    sources = [source_by_name(name) for name in args.sources.split(",")] if args.sources else list(all_sources())
    rows = []
    for n in args.plants:
        started = time.monotonic()
        row = measure(n, args.pool, sources)
        print(
            f"  {n} plants: {row.runs} runs, requests {row.requests}, busiest {row.busiest_hourly:.2f}, "
            f"hourly {row.wall:.1f} s ({time.monotonic() - started:.0f} s in all)",
            flush=True,
        )
        rows.append(row)
    print_table(rows, args.pool, tuple(s.name for s in sources))


if __name__ == "__main__":
    main()
