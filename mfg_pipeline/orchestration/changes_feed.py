"""Dagster side of the Fusion changes feed: a sensor that journals the feed and asks for an apply run, and the
apply run itself. The journal (`sources/fusion_ops/changes.py`) is the truth; this module only decides when a run
applies it.

- Every tick reads the feed into the journal (each page committed to the warehouse before the next feed call).
- While batches are pending and no live apply run is working on them, the tick requests one, whatever happened to
  earlier runs: the run key counts every apply run ever requested for the newest pending batch, so a retried tick
  reuses its key but a run that died never blocks the next.
- A run whose worker died (kill -9, a host restart) stays STARTED in Dagster: the default run launcher cannot
  see it. An apply run holds the warehouse's worker lock for as long as it lives (a file lock the kernel releases
  when the process dies; with a Postgres catalog an advisory lock the server releases when its connection
  drops), so a tick that finds a STARTED apply run whose lock is free, still STARTED once the lock was seen free
  and silent for WORKER_QUIET_SECONDS, marks it failed and moves on. A run that ends normally frees the lock a
  moment before Dagster records its success, and is never marked failed.
- Coalescing: an apply run lingers, applying batches as the sensor journals them, for
  FUSION_OPS_APPLY_LINGER_SECONDS (default 50), and runs start at least FUSION_OPS_APPLY_MIN_INTERVAL_SECONDS
  (default 60) apart: at most 60 apply runs an hour under a continuous trickle, while a change still reaches
  the warehouse one sensor interval (30 s) plus a poll (1 s) after it is made. Lingering holds a run process (~200 MB);
  a shorter linger means more runs, a longer one fewer runs and a process held longer.
- Each apply round logs a materialization of every partition it changed and evaluates those tables' checks in
  the same run, so the tables keep evaluated checks while the feed writes to them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    AssetSpec,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    Definitions,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    in_process_executor,
    multi_asset,
    sensor,
)

from mfg_pipeline import config
from mfg_pipeline.declarations import Stream
from mfg_pipeline.orchestration.factory import (
    CHECK_DESCRIPTIONS,
    SOURCE_TAG,
    check_result,
    rows_written_check,
    table_metadata,
)
from mfg_pipeline.orchestration.failures import explained_failures
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.records.schema import Table
from mfg_pipeline.sources.fusion_ops.changes import (
    CHANGE_LOG,
    SYSTEM,
    ApplyReport,
    ChangeJournal,
    Channel,
    apply_pending,
    channels_from_env,
    read_feed,
    tick_budget,
)
from mfg_pipeline.sources.fusion_ops.settings import COMPANY_TIMEZONE_VARIABLE
from mfg_pipeline.warehouse.checks import PRIMARY_KEY_CHECK, primary_key_check, rows_for_keys_check
from mfg_pipeline.warehouse.locks import Locks
from mfg_pipeline.warehouse.store import Warehouse

APPLY_JOB_NAME = "fusion_ops_apply_changes"
THROUGH_TAG = "mfg/changes_through"
REQUESTED_AT_TAG = "mfg/requested_at"  # the start of the tick that requested the run (epoch seconds)
TICK_JITTER_SECONDS = 1.0  # how much earlier than its interval a tick may start
SENSOR_INTERVAL_SECONDS = 30
CHANGE_LOG_KEY = AssetKey([SYSTEM, CHANGE_LOG.name])
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]
STARTUP_GRACE_SECONDS = 20  # a STARTED run takes its worker lock within a few seconds of starting
WORKER_QUIET_SECONDS = 10  # a run that freed its worker lock to end writes its last events within this
POLL_SECONDS = 1.0


def linger_seconds() -> float:
    return float(config.env_int("FUSION_OPS_APPLY_LINGER_SECONDS", 50, minimum=0))


def min_interval_seconds() -> float:
    return float(config.env_int("FUSION_OPS_APPLY_MIN_INTERVAL_SECONDS", 60, minimum=0))


WORKER_LOCK = f"worker-{APPLY_JOB_NAME}"  # held by a live apply run's process (or host, with a Postgres catalog)


def feed_tables(channels: list[Channel]) -> dict[str, list[Table]]:
    """Stream name -> tables the configured channels write."""
    return {channel.stream.name: list(channel.stream.tables) for channel in channels}


def feed_upstream(channels: list[Channel]) -> dict[str, list[AssetKey]]:
    """For the lineage: every listed stream the feed writes into has `change_log` upstream."""
    return {name: [CHANGE_LOG_KEY] for name in feed_tables(channels)}


def _feed_only(channels: list[Channel]) -> list[tuple[Stream, Table]]:
    """The tables only the changes feed fills (stock), for the channels configured."""
    streams = {c.stream.name: c.stream for c in channels if c.change_type.feed_only}
    return [(stream, table) for stream in streams.values() for table in stream.tables]


def build_apply_asset(channels: list[Channel]) -> Any:
    """`fusion_ops/change_log` plus the feed-only tables of the configured channels, materialized together by
    applying the journal (the listed tables it also changes are reported as materializations of theirs)."""
    feed_only = _feed_only(channels)
    specs = [
        AssetSpec(
            CHANGE_LOG_KEY,
            group_name=SYSTEM,
            kinds={"duckdb", "parquet"},
            tags={"source": SYSTEM},
            description=CHANGE_LOG.description + " Materializing it applies every journaled feed batch, "
            "in read order, to the Fusion tables (upserts and soft deletes); fusion_ops_changes_sensor "
            "requests it.",
            metadata={
                "dagster/table_name": f"{SYSTEM}.{CHANGE_LOG.name}",
                "primary_key": ", ".join(CHANGE_LOG.primary_key),
                "parquet_path": f"parquet/{SYSTEM}/{CHANGE_LOG.name}/date=YYYY-MM-DD/ (read day)",
            },
        )
    ]
    specs += [
        AssetSpec(
            AssetKey([SYSTEM, table.name]),
            group_name=SYSTEM,
            kinds={"duckdb", "parquet"},
            description=table.description or stream.description,
            skippable=True,
            deps=[CHANGE_LOG_KEY] if table is stream.table else [AssetKey([SYSTEM, stream.table.name])],
            metadata=table_metadata(SYSTEM, stream, table),
            tags={"source": SYSTEM},
        )
        for stream, table in feed_only
    ]
    owned = {CHANGE_LOG.name, *(table.name for _, table in feed_only)}
    check_specs = [
        AssetCheckSpec(name, asset=AssetKey([SYSTEM, table_name]), description=description)
        for table_name in sorted(owned)
        for name, description in CHECK_DESCRIPTIONS.items()
        if table_name != CHANGE_LOG.name or name == PRIMARY_KEY_CHECK
    ]
    tables = {t.name: (c.stream, t) for c in channels for t in c.stream.tables}

    @multi_asset(name="fusion_ops_changes", specs=specs, check_specs=check_specs)
    def apply_changes(context, warehouse: WarehouseResource) -> Iterator[Any]:  # context: see factory
        store = warehouse.warehouse()
        journal = ChangeJournal.for_warehouse(store)
        totals = ApplyReport()
        # The worker lock is held until the run's last result is out: a tick that finds it free sees a run that
        # died, or one whose last events are being written (see `_worker_died`).
        with explained_failures(SYSTEM, "changes feed"), store.locks.hold(WORKER_LOCK, None, APPLY_JOB_NAME):
            for report in _apply_rounds(journal, store, context):
                totals.add(report)
                for event in _round_events(report, store, tables, owned):
                    context.log_event(event)
            context.log.info(
                f"applied {totals.batches_applied} batches ({totals.changes} changes, {totals.deletions} deletions)"
            )
            yield MaterializeResult(
                asset_key=CHANGE_LOG_KEY,
                metadata={
                    "batches_applied": MetadataValue.int(totals.batches_applied),
                    "changes": MetadataValue.int(totals.changes),
                    "deletions": MetadataValue.int(totals.deletions),
                },
            )
            for _, table in feed_only:
                yield MaterializeResult(
                    asset_key=AssetKey([SYSTEM, table.name]),
                    metadata={"changes_in_run": MetadataValue.int(totals.changes)},
                )
            for spec in check_specs:
                key = spec.asset_key
                stream, table = (None, CHANGE_LOG) if key == CHANGE_LOG_KEY else tables[key.path[-1]]
                yield check_result(key, _check_outcome(spec.name, store, table, totals, stream))

    return apply_changes


def _apply_rounds(
    journal: ChangeJournal, warehouse: Warehouse, context: AssetExecutionContext
) -> Iterator[ApplyReport]:
    """Apply what is pending, then keep applying what the sensor journals until the run has lingered long enough
    (it leaves as soon as the linger time is up, pending or not: the next run picks the rest up)."""
    started, linger = time.monotonic(), linger_seconds()
    naive_timezone = config.env_timezone(COMPANY_TIMEZONE_VARIABLE, "UTC")
    while True:
        report = apply_pending(
            journal, warehouse, naive_timezone=naive_timezone, partition_timezone=config.partition_timezone()
        )
        if report.batches_applied:
            context.log.info(f"applied {report.batches_applied} batches ({report.changes} changes)")
            yield report
        if time.monotonic() - started >= linger:
            return
        while not journal.pending_ids() and time.monotonic() - started < linger:
            time.sleep(POLL_SECONDS)


def _round_events(
    report: ApplyReport, warehouse: Warehouse, tables: dict[str, tuple[Stream, Table]], owned: set[str]
) -> Iterator[Any]:
    """Materializations of the listed tables a round changed, each followed by its checks' evaluations."""
    first_day = date.fromisoformat(config.partition_start_date())
    changed = {
        "applied_from": MetadataValue.text("changes feed"),
        "changes_in_round": MetadataValue.int(report.changes),
        "deletions_in_round": MetadataValue.int(report.deletions),
    }
    for table_name, days in sorted(report.partitions_by_table.items()):
        if table_name in owned or table_name not in tables:
            continue
        stream, table = tables[table_name]
        key = AssetKey([SYSTEM, table_name])
        for day in sorted(days, key=str):
            if day is not None and date.fromisoformat(day) < first_day:
                continue  # a change to a record older than the first partition: landed, nothing to report
            yield AssetMaterialization(asset_key=key, partition=day, metadata=changed)
            for name in CHECK_DESCRIPTIONS:
                outcome = _check_outcome(name, warehouse, table, report, stream, day)
                yield _evaluation(key, outcome, partition=day)


def _check_outcome(
    name: str,
    warehouse: Warehouse,
    table: Table,
    report: ApplyReport,
    stream: Stream | None = None,
    day: str | None = None,
) -> Any:
    partitioned = table is CHANGE_LOG or bool(stream and stream.partitioned)
    if name == PRIMARY_KEY_CHECK:
        return primary_key_check(warehouse, SYSTEM, table, partitioned, date.fromisoformat(day) if day else None)
    loads = [load for load in report.loads if table.name in load.tables]
    keys = [key for load in loads for key in load.staged_keys]
    if stream is None:  # the change log: its rows are keyed by batch and position, not by the changed records
        return rows_for_keys_check(warehouse, SYSTEM, table, table.primary_key, keys, len(keys))
    return rows_written_check(
        warehouse, SYSTEM, stream, table, keys, sum(load.rows_staged.get(table.name, 0) for load in loads)
    )


def _evaluation(key: AssetKey, outcome: Any, partition: str | None) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(
        asset_key=key,
        check_name=outcome.name,
        passed=outcome.passed,
        metadata=outcome.metadata,
        description=outcome.description,
        partition=partition,
    )


def apply_job() -> Any:
    return define_asset_job(
        APPLY_JOB_NAME,
        tags={SOURCE_TAG: SYSTEM, "dagster/max_runtime": "900"},
        executor_def=in_process_executor,
        selection=AssetSelection.assets(CHANGE_LOG_KEY).required_multi_asset_neighbors(),
        description="Apply the journaled Fusion Operations changes-feed batches to the warehouse (requested by "
        "fusion_ops_changes_sensor; lingers FUSION_OPS_APPLY_LINGER_SECONDS to apply what follows).",
    )


@dataclass(frozen=True)
class TickDecision:
    run: RunRequest | None
    reason: str


def decide(context: SensorEvaluationContext, journal: ChangeJournal, now: float | None = None) -> TickDecision:
    """Whether this tick requests an apply run (see the module docstring)."""
    pending = journal.pending_ids()
    if not pending:
        return TickDecision(None, "no pending changes")
    instance, now = context.instance, now if now is not None else time.time()
    live = []
    locks = journal.pages.warehouse.locks
    for record in instance.get_run_records(RunsFilter(job_name=APPLY_JOB_NAME, statuses=IN_PROGRESS)):
        if _worker_died(instance, record, locks, now):
            instance.report_run_failed(
                record.dagster_run,
                message="the apply run's worker died (its worker lock "
                "is free): marked failed; the next run applies what it left pending",
            )
            continue
        live.append(record)
    if live:
        return TickDecision(
            None,
            f"apply run {live[0].dagster_run.run_id[:8]} is applying; it picks the {len(pending)} pending batches up",
        )
    latest = instance.get_run_records(RunsFilter(job_name=APPLY_JOB_NAME), limit=1)
    if latest:
        # Measured between the starts of the ticks that request runs (ticks start SENSOR_INTERVAL_SECONDS apart),
        # less a second for the scheduler's jitter, so every other tick may request one under a steady trickle:
        # never more than one run per minute. (The run's own creation time comes after its tick's feed reads,
        # which would make the second tick after it miss by that much and double the wait.)
        requested = latest[0].dagster_run.tags.get(REQUESTED_AT_TAG)
        since = now - (float(requested) if requested else latest[0].create_timestamp.timestamp())
        if since < min_interval_seconds() - TICK_JITTER_SECONDS:
            return TickDecision(
                None,
                f"coalescing: the last apply run started {since:.0f}s ago "
                f"(FUSION_OPS_APPLY_MIN_INTERVAL_SECONDS={min_interval_seconds():.0f})",
            )
    through = pending[-1]
    earlier = instance.get_runs_count(RunsFilter(job_name=APPLY_JOB_NAME, tags={THROUGH_TAG: through}))
    return TickDecision(
        RunRequest(run_key=f"{through}#{earlier}", tags={THROUGH_TAG: through, REQUESTED_AT_TAG: f"{now:.3f}"}),
        f"{len(pending)} batches pending",
    )


def _worker_died(instance: DagsterInstance, record: Any, locks: Locks, now: float) -> bool:
    """A STARTED run whose process is gone. Its worker lock is free then; but a run that ends normally frees it
    too, a moment before Dagster records its success. So the run must still be STARTED after the lock was seen
    free, and have written no event for WORKER_QUIET_SECONDS (a run that is ending writes its last events)."""
    if record.dagster_run.status != DagsterRunStatus.STARTED:
        return False
    started = record.start_time or record.create_timestamp.timestamp()
    if now - started < STARTUP_GRACE_SECONDS or not locks.is_free(WORKER_LOCK):
        return False
    run_id = record.dagster_run.run_id
    fresh = instance.get_run_record_by_id(run_id)
    if fresh is None or fresh.dagster_run.status != DagsterRunStatus.STARTED:
        return False  # it ended while we looked
    last = instance.get_records_for_run(run_id, limit=1, ascending=False).records
    last_event_at = last[0].event_log_entry.timestamp if last else started
    return now - last_event_at >= WORKER_QUIET_SECONDS


@sensor(
    name="fusion_ops_changes_sensor",
    job_name=APPLY_JOB_NAME,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Reads the Fusion Operations changes feed (FUSION_OPS_CHANGE_CHANNELS) into a durable journal "
    "and requests an apply run while batches are pending and none is applying. Each tick spends at "
    "most FUSION_OPS_FEED_CALLS_PER_TICK calls and FUSION_OPS_FEED_SECONDS_PER_TICK seconds.",
)
def changes_sensor(
    context: SensorEvaluationContext, sources: SourcesResource, warehouse: WarehouseResource
) -> RunRequest | SkipReason:
    tick_started = time.time()
    store = warehouse.warehouse()
    journal = ChangeJournal.for_warehouse(store)
    max_calls, seconds = tick_budget()
    deadline = time.monotonic() + seconds
    with explained_failures(SYSTEM, "changes feed"):
        client = sources.client(SYSTEM, logger=context.log)
        try:
            for channel in channels_from_env():
                report = read_feed(client, channel, journal, max_calls=max_calls, deadline=deadline)
                max_calls -= report.calls
                if report.records:
                    context.log.info(
                        f"channel {channel.name}: {report.records} changes in {report.calls} calls "
                        f"({report.stopped_because})"
                    )
        finally:
            client.close()
    decision = decide(context, journal, now=tick_started)
    return decision.run if decision.run is not None else SkipReason(decision.reason)


def changes_feed_definitions() -> Definitions:
    channels = channels_from_env()
    return Definitions(assets=[build_apply_asset(channels)], jobs=[apply_job()], sensors=[changes_sensor])
