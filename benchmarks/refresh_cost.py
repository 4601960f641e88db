"""Benchmark: what one hourly and one daily refresh cycle cost each source, and what they leave stale, as history
grows.

For each source and history (42, 365, 730 days at scale 1; Lagerkoll and Fulcrum also at scale 5), against its
simulator (rate limits lifted, so only requests are measured, not waits):
1. a daily cycle loads the starting state (not measured);
2. an hourly cycle with nothing changed, and the next day's daily cycle (its child sweep: the open records and one
   slice of the rest, `MFG_CHILD_SWEEP_EVERY_DAYS`);
3. N changes through the simulator's own mutation methods (20 old-record edits, often a status change; 5 child
   changes; 5 new records; 1 deletion);
4. an hourly cycle, then the next day's daily cycle; after each, the records still stale against the simulator's
   current state: parent records among the open ones and among all, and child rows;
5. the same daily cycle with a forced full child sweep (`mfg/child_sweep=all`: every record's child lists, what
   every daily cycle cost before the rotating sweep);
6. a backfill of `<source>_refresh` over the last 60 partitions (sources with daily partitions), one run per
   partition as Dagster's backfill daemon launches them.
Each cycle is what its schedule requests at that time, executed in this process as the daemon would run it
(`execute_cycle`). Requests are counted from the simulator's own log and shown as a share of the vendor's budget
for the period (the pipeline's configured per-minute limit x 60 or x 1440).

    .venv/bin/python benchmarks/refresh_cost.py                     # every source, the histories above
    .venv/bin/python benchmarks/refresh_cost.py --sources lagerkoll --histories 730
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dagster import DagsterInstance  # noqa: E402
from report import print_markdown_table  # noqa: E402

from mfg_pipeline.definitions import build_definitions  # noqa: E402
from mfg_pipeline.engine.refresh import DAILY, HOURLY  # noqa: E402
from mfg_pipeline.orchestration.cycles import execute_backfill, execute_cycle, failures_of  # noqa: E402
from mfg_pipeline.orchestration.factory import CYCLE_TIME_TAG, SWEEP_TAG  # noqa: E402
from mfg_pipeline.simulators.base import SimulatorServer  # noqa: E402
from mfg_pipeline.simulators.serving import simulator_of  # noqa: E402
from mfg_pipeline.sources.registry import source_by_name  # noqa: E402
from mfg_pipeline.warehouse.store import Warehouse  # noqa: E402
from mfg_pipeline_tests.contract.kits import KITS, Kit, days_back  # noqa: E402

NOW = datetime(2026, 11, 12, 14, 30, tzinfo=timezone.utc)
BACKFILL_PARTITIONS = 60
BUDGET_PER_MINUTE = {"fusion_ops": 120, "lagerkoll": 200, "fulcrum": 120, "isolocity": 60, "traede": 60}
CHANGES = {"edit_old": 20, "change_child": 5, "create": 5, "delete": 1}
MUTATIONS = {
    "fusion_ops": "mfg_pipeline.simulators.fusion_ops.live:FusionMutations",
    "lagerkoll": "mfg_pipeline.simulators.lagerkoll.live:LagerkollMutations",
    "fulcrum": "mfg_pipeline.simulators.fulcrum.live:FulcrumMutations",
    "isolocity": "mfg_pipeline.simulators.isolocity.live:IsolocityMutations",
    "traede": "mfg_pipeline.simulators.traede.live:TraedeMutations",
}


@dataclass
class Stale:
    open_records: int = 0
    records: int = 0
    child_rows: int = 0

    def __str__(self) -> str:
        return f"{self.open_records}/{self.records}/{self.child_rows}"


@dataclass
class Row:
    source: str
    history: int
    scale: int
    requests: dict[str, int] = field(default_factory=dict)
    stale: dict[str, Stale] = field(default_factory=dict)
    changes: int = 0
    seconds: float = 0.0


def mutations_for(source: str, app: Any) -> Any:
    module, name = MUTATIONS[source].split(":")
    return getattr(__import__(module, fromlist=[name]), name)(app, seed=7)


def stale_after(kit: Kit, app: Any, warehouse: Warehouse, cycle: str, hours: int, open_keys: set[tuple]) -> Stale:
    """Records still stale among the days the cycle at NOW + `hours` reloads (its lookback)."""
    days = days_back((NOW + timedelta(hours=hours)).date(), 7 if cycle == DAILY else 2)
    truth, landed = kit.truth(app, days), kit.landed(warehouse, days)
    stale = Stale()
    parent_truth, parent_landed = truth[kit.parent], landed[kit.parent]
    differing = {k for k in parent_truth.keys() | parent_landed.keys() if parent_truth.get(k) != parent_landed.get(k)}
    stale.records = len(differing)
    stale.open_records = len(differing & open_keys)
    for table in truth:
        if table != kit.parent:
            rows_t, rows_l = truth[table], landed[table]
            stale.child_rows += sum(1 for k in rows_t.keys() | rows_l.keys() if rows_t.get(k) != rows_l.get(k))
    return stale


def measure(source_name: str, history: int, scale: int) -> Row:
    started = time.monotonic()
    kit, source = KITS[source_name], source_by_name(source_name)
    entry = simulator_of(source)
    app = entry.build(NOW, 42, scale, 1_000_000, history)
    server = SimulatorServer(app).start()
    row = Row(source_name, history, scale)
    # The instance closed in this thread: left to the garbage collector, its SQLite connections complain.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as work, DagsterInstance.ephemeral() as instance:
        env = {
            **entry.env(server.url),
            "MFG_DATA_DIR": work,
            # The simulated history ends at NOW, before the wall clock: the partitions reach back to its start.
            "MFG_PARTITION_START_DATE": (NOW - timedelta(days=history)).date().isoformat(),
            f"{source_name.upper()}_RATE_LIMIT_PER_MINUTE": "1000000",
            "FUSION_OPS_APPLY_LINGER_SECONDS": "0",
            "FUSION_OPS_APPLY_MIN_INTERVAL_SECONDS": "0",
        }
        os.environ.update(env)
        defs = build_definitions()
        warehouse = Warehouse(work)

        def cycle(name: str, label: str, hours: int, tags: dict[str, str] | None = None) -> None:
            app.clear_log()
            results = execute_cycle(defs, instance, source, name, NOW + timedelta(hours=hours), extra_tags=tags)
            if not all(r.success for r in results):
                raise SystemExit(f"{source_name} {label}: {failures_of(results)[:1]}")
            row.requests[label] = len(app.requests())

        cycle(DAILY, "initial", 0)
        cycle(HOURLY, "hourly, nothing changed", 1)
        cycle(DAILY, "daily, nothing changed", 24)
        open_before = kit.open_keys(app)
        mutations = mutations_for(source_name, app)
        for kind, count in CHANGES.items():
            row.changes += sum(getattr(mutations, kind)() is not None for _ in range(count))
        open_keys = open_before | kit.open_keys(app)
        cycle(HOURLY, "hourly, after changes", 25)
        row.stale["hourly"] = stale_after(kit, app, warehouse, HOURLY, 25, open_keys)
        cycle(DAILY, "daily, after changes", 48)
        row.stale["daily"] = stale_after(kit, app, warehouse, DAILY, 48, open_keys)
        cycle(DAILY, "daily, full sweep", 49, {SWEEP_TAG: "all"})
        if any(stream.partitioned for stream in source.streams):
            row.requests["backfill"] = backfill(defs, instance, source_name, app, NOW + timedelta(hours=50))
    server.stop()
    row.seconds = time.monotonic() - started
    return row


def backfill(defs: Any, instance: DagsterInstance, source_name: str, app: Any, at: datetime) -> int:
    """Requests of a backfill of `<source>_refresh` over the last BACKFILL_PARTITIONS days, launched at `at`."""
    days = [(at.date() - timedelta(days=n)).isoformat() for n in range(BACKFILL_PARTITIONS)][::-1]
    app.clear_log()
    runs = execute_backfill(defs, instance, f"{source_name}_refresh", days, at, {CYCLE_TIME_TAG: at.isoformat()})
    if not all(r.success for r in runs):
        raise SystemExit(f"{source_name} backfill: {failures_of(runs)[:1]}")
    return len(app.requests())


def share(requests: int, source: str, minutes: int) -> str:
    return f"{requests:,} ({100 * requests / (BUDGET_PER_MINUTE[source] * minutes):.2f} %)"


def backfill_cell(row: Row) -> str:
    if "backfill" not in row.requests:
        return "no partitions"
    return f"{row.requests['backfill']:,} ({row.requests['backfill'] / row.requests['daily, full sweep']:.2f})"


def print_table(rows: list[Row]) -> None:
    print(
        "\nRequests per cycle (share of the vendor's budget for that period); stale after a cycle as "
        "open records / all records / child rows\n"
    )
    header = (
        "source",
        "history",
        "scale",
        "hourly, no change",
        "daily, no change",
        "changes",
        "hourly, after",
        "stale after hourly",
        "daily, after",
        "stale after daily",
        "daily, full sweep",
        f"{BACKFILL_PARTITIONS}-partition backfill (x full sweep)",
    )
    table = []
    for r in rows:
        cells = (
            r.source,
            f"{r.history} d",
            str(r.scale),
            share(r.requests["hourly, nothing changed"], r.source, 60),
            share(r.requests["daily, nothing changed"], r.source, 1440),
            str(r.changes),
            share(r.requests["hourly, after changes"], r.source, 60),
            str(r.stale["hourly"]),
            share(r.requests["daily, after changes"], r.source, 1440),
            str(r.stale["daily"]),
            share(r.requests["daily, full sweep"], r.source, 1440),
            backfill_cell(r),
        )
        table.append(cells)
    print_markdown_table(header, table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", default=",".join(KITS), help="comma-separated sources")
    parser.add_argument("--histories", default="42,365,730", help="days of history, comma-separated")
    parser.add_argument("--scale5", default="lagerkoll,fulcrum", help="sources also measured at scale 5")
    args = parser.parse_args()
    rows = []
    for source in args.sources.split(","):
        for history in (int(h) for h in args.histories.split(",")):
            for scale in (1, 5) if source in args.scale5.split(",") else (1,):
                row = measure(source, history, scale)
                print(
                    f"  {source} {history} d x{scale}: {row.requests} stale {row.stale} ({row.seconds:.0f}s)",
                    flush=True,
                )
                rows.append(row)
    print_table(rows)


if __name__ == "__main__":
    main()
