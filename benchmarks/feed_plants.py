"""Benchmark: the Fusion changes feeds of N plants on one machine, run by the real Dagster daemon: where one machine
stops keeping up with them.

For each N (default 4, 8, 12 and 16), in a fresh MFG_DATA_DIR and DAGSTER_HOME (the repository's dagster.yaml, so its
run queue of `max_concurrent_runs` slots, `--max-runs` to change it):
1. N simulated plants (`start_plants`, Fusion only: each its own company, zone and seed), listed in a plants file,
   each with a live shop changing a record every `--change-every` seconds.
2. `dagster-daemon run` on the deployment's definitions without their schedules (`feed_definitions.py`): one
   changes-feed sensor per plant ticking every 30 s, each requesting apply runs (lingering 50 s, at least 60 s
   apart: the defaults) that the run queue starts as processes, as in production.
3. Measured over `--minutes` after a warm-up (the first apply run of every plant), then a settle of two sensor
   intervals plus a linger with the shops stopped: per plant, apply runs per hour; each run's wait in the queue
   (created -> started); each change's time to the warehouse (the entity's latest change in the window -> the
   `_loaded_at` of the row that shows it); the machine's CPU busy share (/proc/stat), and the part of it spent by
   the daemon and its code server (where the sensors tick: what stays on the daemon's host when runs move to
   workers on other hosts); the peak RSS of the daemon and all its run processes together.

A machine keeps up with N plants while every change reaches the warehouse (p95 <= 60 s, the feed's target) and no
change is left behind. The hourly and daily cycles are not running here: `plants.py` measures them.

    .venv/bin/python benchmarks/feed_plants.py                       # 4, 8, 12 and 16 plants, 6 minutes each
    .venv/bin/python benchmarks/feed_plants.py --plants 2 --minutes 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil
import yaml

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
sys.path.insert(0, str(REPO))

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter  # noqa: E402
from plants import point_at_plants_file  # noqa: E402
from report import print_markdown_table  # noqa: E402

from mfg_pipeline.orchestration.changes_feed import SENSOR_INTERVAL_SECONDS  # noqa: E402
from mfg_pipeline.orchestration.plant_partitions import PLANT_TAG  # noqa: E402
from mfg_pipeline.simulators.serving import SimulatedPlant, plants_file, start_plants  # noqa: E402
from mfg_pipeline.sources.fusion_ops.changes import FEED  # noqa: E402
from mfg_pipeline.sources.registry import source_by_name  # noqa: E402
from mfg_pipeline.warehouse.store import Warehouse  # noqa: E402
from mfg_pipeline_tests.fusion_ops.live_feed import TABLE_BY_TYPE  # noqa: E402
from mfg_pipeline_tests.servers import interrupt_group  # noqa: E402

LATENCY_TARGET_SECONDS = 60.0
WARM_UP_LIMIT_SECONDS = 300.0
SETTLE_SECONDS = 2 * SENSOR_INTERVAL_SECONDS + 50 + 10  # two ticks, a linger, and the run's end


@dataclass
class Row:
    plants: int
    run_slots: int
    runs_per_plant_hour: list[float] = field(default_factory=list)
    queue_waits: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    left_behind: int = 0
    failed_runs: int = 0
    cpu_busy: float = 0.0
    cpu_sensors: float = 0.0  # the daemon's and the code server's share of the machine: what stays on its host
    peak_rss_mb: float = 0.0
    peak_run_processes: int = 0

    @property
    def keeps_up(self) -> bool:
        return not self.left_behind and bool(self.latencies) and p95(self.latencies) <= LATENCY_TARGET_SECONDS


def p95(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=20, method="inclusive")[-1]
        if len(values) > 1
        else (values[0] if values else 0.0)
    )


def daemon_tree(daemon: psutil.Process) -> list[tuple[psutil.Process, bool]]:
    """The daemon and its descendants, each with whether it is a run worker (the code server spawns those)."""
    tree = []
    for member in [daemon, *daemon.children(recursive=True)]:
        try:
            tree.append((member, "multiprocessing.spawn" in " ".join(member.cmdline())))
        except psutil.Error:
            continue  # ended between the listing and the reading
    return tree


def resident_cpu_seconds(daemon: psutil.Process) -> float:
    """CPU seconds so far of the daemon and its code server (the sensors' ticks run there), not of run workers."""
    total = 0.0
    for member, run_worker in daemon_tree(daemon):
        with contextlib.suppress(psutil.Error):
            if not run_worker:
                times = member.cpu_times()
                total += times.user + times.system  # not children_*: reaped run workers count there
    return total


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def tree_rss(daemon: psutil.Process) -> tuple[float, int]:
    """(RSS of the daemon and all its descendants in MB, how many of them are run workers)."""
    total, runs = 0.0, 0
    for member, run_worker in daemon_tree(daemon):
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
            runs += run_worker
    return total / 2**20, runs


def instance_home(work: Path, max_runs: int | None) -> tuple[Path, int]:
    """A DAGSTER_HOME with the repository's dagster.yaml (its run queue, optionally with `max_runs` slots), and its
    number of run slots."""
    home = work / "dagster_home"
    home.mkdir()
    settings = yaml.safe_load((REPO / "dagster.yaml").read_text())
    if max_runs is not None:
        settings["concurrency"]["runs"]["max_concurrent_runs"] = max_runs
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    return home, settings["concurrency"]["runs"]["max_concurrent_runs"]


def workspace(work: Path) -> Path:
    path = work / "workspace.yaml"
    location = {
        "relative_path": str(BENCHMARKS / "feed_definitions.py"),
        "working_directory": str(REPO),
        "location_name": "mfg_feed",
    }
    path.write_text(yaml.safe_dump({"load_from": [{"python_file": location}]}))
    return path


def point_at(plants: list[SimulatedPlant], work: Path) -> None:
    """This process's environment, which the daemon inherits: the plants file, no single-plant settings."""
    path = point_at_plants_file(work, work / "data")
    text, secrets = plants_file(plants, [source_by_name("fusion_ops")])
    path.write_text(text)
    os.environ.update(secrets)
    os.environ["MFG_PARTITION_START_DATE"] = (datetime.now(timezone.utc) - timedelta(days=3)).date().isoformat()


def apply_runs(instance: DagsterInstance, since: float = 0.0) -> list[Any]:
    records = instance.get_run_records(RunsFilter(job_name=FEED.apply_job_name))
    return [r for r in records if r.create_timestamp.timestamp() >= since]


def latencies(plant: SimulatedPlant, warehouse: Warehouse, start: float, end: float) -> tuple[list[float], int]:
    """Seconds from each entity's latest change in [start, end) to the write of the row showing it; and how many
    such changes never reached the warehouse."""
    app = plant.running.servers["fusion_ops"].app
    latest = {}
    for change in list(app.change_log):
        if change.type in TABLE_BY_TYPE:
            latest[(change.type, change.entity_id)] = change
    wanted = [c for c in latest.values() if start <= c.time < end]
    found: list[float] = []
    missing = 0
    for kind, table in TABLE_BY_TYPE.items():
        changes = [c for c in wanted if c.type == kind]
        if not changes:
            continue
        rows = warehouse.query(
            f"SELECT id, deleted_at IS NOT NULL, epoch(_loaded_at) FROM fusion_ops.{table} "
            "WHERE plant = ? AND list_contains(?, id)",
            [plant.name, [c.entity_id for c in changes]],
        )
        landed = {row[0]: row[1:] for row in rows}
        for change in changes:
            row = landed.get(change.entity_id)
            if row and row[0] == (change.op == "delete") and row[1] >= change.time:
                found.append(row[1] - change.time)
            else:
                missing += 1
    return found, missing


def measure(n: int, minutes: float, change_every: float, max_runs: int | None) -> Row:
    plants = start_plants([source_by_name("fusion_ops")], n, now=datetime.now(timezone.utc), history_days=2)
    with tempfile.TemporaryDirectory(prefix="mfg-feed-plants-", ignore_cleanup_errors=True) as folder:
        work = Path(folder)
        point_at(plants, work)
        home, slots = instance_home(work, max_runs)
        row = Row(n, slots)
        shops = [live for plant in plants for live in plant.running.start_live(change_every)]
        log = (work / "daemon.log").open("w")
        daemon = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(workspace(work))],
            env={**os.environ, "DAGSTER_HOME": str(home)},
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            with DagsterInstance.from_config(str(home)) as instance:
                warmed = time.monotonic() + WARM_UP_LIMIT_SECONDS
                while len({r.dagster_run.tags.get(PLANT_TAG) for r in apply_runs(instance)}) < n:
                    if time.monotonic() > warmed or daemon.poll() is not None:
                        tail = (work / "daemon.log").read_text().splitlines()[-30:]
                        raise SystemExit(
                            f"{n} plants: not every plant had an apply run; the daemon's log ends:\n" + "\n".join(tail)
                        )
                    time.sleep(2)
                process = psutil.Process(daemon.pid)
                start, (busy0, total0), resident0 = time.time(), cpu_times(), resident_cpu_seconds(process)
                print(f"  {n} plants: every feed has applied once; measuring {minutes:g} min", flush=True)
                while time.time() < start + minutes * 60:
                    rss, runs = tree_rss(process)
                    row.peak_rss_mb = max(row.peak_rss_mb, rss)
                    row.peak_run_processes = max(row.peak_run_processes, runs)
                    time.sleep(5)
                end, (busy1, total1) = time.time(), cpu_times()
                row.cpu_busy = (busy1 - busy0) / (total1 - total0)
                machine_seconds = (total1 - total0) / os.sysconf("SC_CLK_TCK")
                row.cpu_sensors = (resident_cpu_seconds(process) - resident0) / machine_seconds
                for shop in shops:
                    shop.stop()
                time.sleep(SETTLE_SECONDS)
                records = [r for r in apply_runs(instance, since=start) if r.create_timestamp.timestamp() < end]
                for plant in plants:
                    mine = [r for r in records if r.dagster_run.tags.get(PLANT_TAG) == plant.name]
                    row.runs_per_plant_hour.append(len(mine) / ((end - start) / 3600))
                row.queue_waits = [(r.start_time or time.time()) - r.create_timestamp.timestamp() for r in records]
                row.failed_runs = sum(r.dagster_run.status == DagsterRunStatus.FAILURE for r in records)
        finally:
            interrupt_group(daemon, timeout=60)
            log.close()
        warehouse = Warehouse(work / "data")
        for plant in plants:
            found, missing = latencies(plant, warehouse, start, end)
            row.latencies += found
            row.left_behind += missing
        for plant in plants:
            plant.running.stop()
        shutil.rmtree(work / "dagster_home", ignore_errors=True)  # its compute logs are many small files
    return row


def print_table(rows: list[Row], change_every: float) -> None:
    print(
        f"\nThe Fusion changes feed of N plants, each shop changing a record every {change_every:g} s, run by "
        f"`dagster-daemon` (apply runs as processes; schedules off)\n"
    )
    header = (
        "plants",
        "run slots",
        "apply runs / plant / hour (min-max)",
        "queue wait p95 (max)",
        "change -> warehouse p95 (max)",
        "changes left behind",
        "failed runs",
        "CPU busy (daemon + code server)",
        "peak RSS, daemon + runs (run processes)",
        "keeps up",
    )
    table = []
    for r in rows:
        cells = (
            str(r.plants),
            str(r.run_slots),
            f"{min(r.runs_per_plant_hour):.0f}-{max(r.runs_per_plant_hour):.0f}",
            f"{p95(r.queue_waits):.0f} s ({max(r.queue_waits, default=0):.0f} s)",
            f"{p95(r.latencies):.0f} s ({max(r.latencies, default=0):.0f} s)",
            str(r.left_behind),
            str(r.failed_runs),
            f"{r.cpu_busy:.0%} ({r.cpu_sensors:.0%})",
            f"{r.peak_rss_mb:.0f} MB ({r.peak_run_processes})",
            "yes" if r.keeps_up else "no",
        )
        table.append(cells)
    print_markdown_table(header, table)
    behind = [r for r in rows if not r.keeps_up]
    if behind:
        first = behind[0]
        print(f"\nOne machine stops keeping up with the feeds at {first.plants} plants ({first.run_slots} run slots).")
    else:
        print(f"\nOne machine kept up with every measured N (largest: {max(r.plants for r in rows)} plants).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plants", type=int, nargs="+", default=[4, 8, 12, 16], help="numbers of plants to measure")
    parser.add_argument("--minutes", type=float, default=6.0, help="minutes measured per N, after the warm-up")
    parser.add_argument("--change-every", type=float, default=2.0, help="seconds between a shop's changes")
    parser.add_argument("--max-runs", type=int, default=None, help="run slots (default: dagster.yaml's)")
    args = parser.parse_args()
    rows = []
    for n in args.plants:
        row = measure(n, args.minutes, args.change_every, args.max_runs)
        print(
            f"  {n} plants: runs/plant/hour {statistics.mean(row.runs_per_plant_hour):.0f}, latency p95 "
            f"{p95(row.latencies):.0f} s, left behind {row.left_behind}, CPU {row.cpu_busy:.0%}",
            flush=True,
        )
        rows.append(row)
    print_table(rows, args.change_every)


if __name__ == "__main__":
    main()
