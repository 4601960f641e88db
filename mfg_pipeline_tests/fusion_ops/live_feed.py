"""The changes feed live, as the daemon runs it: a sensor tick every `tick_seconds`, each requested apply run in a
thread of its own (as the run launcher starts them), a live shop changing records every `change_every` seconds,
and a watcher noting when each change becomes visible in the warehouse. Used by the live feed test (at a
compressed timescale) and by `benchmarks/feed_latency.py` (at the real one)."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dagster import DagsterInstance, RunRequest, RunsFilter, build_sensor_context

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.orchestration.changes_feed import REQUESTED_AT_TAG, build_changes_sensor
from mfg_pipeline.orchestration.cycles import QUIET
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.simulators.fusion_ops.live import LiveShop
from mfg_pipeline.sources.fusion_ops.changes import FEED
from mfg_pipeline.warehouse.store import Warehouse

APPLY_JOB_NAME = FEED.apply_job_name
changes_sensor = build_changes_sensor(FEED)

TABLE_BY_TYPE = {"PRODUCTION": "productions", "DOWN_TIME": "downtimes", "PUNCH_CLOCK": "punch_clocks"}


@dataclass
class LiveFeedOutcome:
    latencies: list[float]  # seconds from each entity's latest change to its being visible
    missing: list[Any]  # latest changes never seen
    run_starts: list[float]  # the requesting ticks' starts, of every apply run
    runs_succeeded: list[bool] = field(default_factory=list)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.latencies, n=20)[-1]

    @property
    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.run_starts, self.run_starts[1:], strict=False)]


def run_live_feed(
    fusion: Any,
    instance: DagsterInstance,
    warehouse: Warehouse,
    *,
    tick_seconds: float,
    shop_seconds: float,
    settle_seconds: float,
    change_every: float = 1.0,
) -> LiveFeedOutcome:
    """The shop changes records for `shop_seconds`, then the feed keeps ticking `settle_seconds` more."""
    resources = {"sources": SourcesResource(), "warehouse": WarehouseResource()}
    apply_job = build_definitions().resolve_job_def(APPLY_JOB_NAME)
    seen: dict[tuple[str, int, str], float] = {}  # (type, id, op) -> when first visible
    runs: list[threading.Thread] = []
    outcome = LiveFeedOutcome([], [], [])

    def tick() -> None:
        request = changes_sensor(build_sensor_context(instance=instance, resources=resources))
        if isinstance(request, RunRequest):
            run = threading.Thread(
                target=lambda: outcome.runs_succeeded.append(
                    apply_job.execute_in_process(instance=instance, tags=request.tags, run_config=QUIET).success
                )
            )
            run.start()
            runs.append(run)

    def look() -> None:
        now = time.time()
        waiting: dict[str, list] = {}
        for change in list(fusion.change_log):
            if change.type in TABLE_BY_TYPE and (change.type, change.entity_id, change.op) not in seen:
                waiting.setdefault(TABLE_BY_TYPE[change.type], []).append(change)
        for table, changes in waiting.items():
            if not warehouse.has_table("fusion_ops", table):
                continue  # nothing applied yet
            rows = warehouse.query(
                f"SELECT id, deleted_at IS NOT NULL, epoch(_loaded_at) FROM fusion_ops.{table} "
                "WHERE list_contains(?, id)",
                [[c.entity_id for c in changes]],
            )
            landed = {row[0]: row[1:] for row in rows}
            for change in changes:
                # Visible: the row was written after the change was made, in the state the change left it.
                row = landed.get(change.entity_id)
                if row and row[0] == (change.op == "delete") and row[1] >= change.time:
                    seen[(change.type, change.entity_id, change.op)] = now

    next_tick = time.monotonic()

    def run_for(seconds: float) -> None:
        nonlocal next_tick
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            if time.monotonic() >= next_tick:
                next_tick += tick_seconds  # ticks start an interval apart, as the daemon's do
                tick()
            if fusion.change_log:
                look()
            time.sleep(max(0.0, min(1.0, next_tick - time.monotonic())))  # ticks on time, as the daemon's

    with LiveShop(fusion, interval_seconds=change_every, seed=5):
        run_for(shop_seconds)
    run_for(settle_seconds)
    for run in runs:
        run.join(timeout=180)
    look()
    records = instance.get_run_records(RunsFilter(job_name=APPLY_JOB_NAME))
    outcome.run_starts = sorted(float(r.dagster_run.tags[REQUESTED_AT_TAG]) for r in records)
    latest_by_entity = {}
    for change in fusion.change_log:  # an entity's latest change is the one that must become visible
        latest_by_entity[(change.type, change.entity_id)] = change
    wanted = [c for c in latest_by_entity.values() if c.type in TABLE_BY_TYPE]
    keys = [(c, (c.type, c.entity_id, c.op)) for c in wanted]
    outcome.latencies = [seen[key] - change.time for change, key in keys if key in seen]
    outcome.missing = [change for change, key in keys if key not in seen]
    return outcome
