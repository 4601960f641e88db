"""Dagster side of a source's changes feed (`engine/feed.py`; Fusion's is the one declared today): a sensor that
journals the feed and asks for an apply run, and the apply run itself. The journal is the truth; this module only
decides when a run applies it. Every name and setting below is the feed's own (`ChangesFeed`): for Fusion the
job is `fusion_ops_apply_changes`, the sensor `fusion_ops_changes_sensor`, the settings `FUSION_OPS_...`.

- Every tick reads the feed into the journal (each page committed to the warehouse before the next feed call).
- While batches are pending and no live apply run is working on them, the tick requests one, whatever happened to
  earlier runs: the run key counts every apply run ever requested for the newest pending batch, so a retried tick
  reuses its key but a run that died never blocks the next.
- A run whose worker died (kill -9, a host restart) stays STARTED in Dagster: the default run launcher cannot
  see it. An apply run holds the feed's worker lock for as long as it lives (a file lock the kernel releases
  when the process dies; with a Postgres catalog an advisory lock the server releases when its connection
  drops), so a tick that finds a STARTED apply run whose lock is free, still STARTED once the lock was seen free
  and silent for WORKER_QUIET_SECONDS, marks it failed and moves on. A run that ends normally frees the lock a
  moment before Dagster records its success, and is never marked failed.
- Coalescing: an apply run lingers, applying batches as the sensor journals them, for
  `<SYSTEM>_APPLY_LINGER_SECONDS` (default 50), and runs start at least `<SYSTEM>_APPLY_MIN_INTERVAL_SECONDS`
  (default 60) apart: at most 60 apply runs an hour under a continuous trickle, while a change still reaches
  the warehouse one sensor interval (30 s) plus a poll (1 s) after it is made. Lingering holds a run process (~200 MB);
  a shorter linger means more runs, a longer one fewer runs and a process held longer.
- Each apply round logs a materialization of every partition it changed and evaluates those tables' checks in
  the same run, so the tables keep evaluated checks while the feed writes to them.
- Plants side by side (`plant_partitions.py`): each plant's company has its own feed, so each plant gets its own
  sensor (`<sensor>_<plant>`), journal, worker lock and apply runs (tagged `mfg/plant`); one plant's apply run
  never holds up another's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from dagster import (
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
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    in_process_executor,
    multi_asset,
    sensor,
)

from mfg_pipeline import config
from mfg_pipeline.declarations import SourceSystem, Stream
from mfg_pipeline.engine.feed import (
    ApplyReport,
    ChangeJournal,
    ChangesFeed,
    Channel,
    FeedClient,
    apply_pending,
    read_feed,
)
from mfg_pipeline.engine.load import snapshot_after, snapshot_before
from mfg_pipeline.http.errors import ConfigurationError
from mfg_pipeline.orchestration.factory import (
    CHECK_DESCRIPTIONS,
    SOURCE_TAG,
    check_evaluation,
    check_result,
    rows_written_check,
    table_metadata,
)
from mfg_pipeline.orchestration.failures import explained_failures
from mfg_pipeline.orchestration.plant_partitions import PLANT_TAG, Partitioning
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.plants import current_plant_name, for_plant
from mfg_pipeline.records.schema import Table
from mfg_pipeline.sources.registry import streams_variable
from mfg_pipeline.warehouse.checks import (
    PRIMARY_KEY_CHECK,
    CheckOutcome,
    combined,
    primary_key_check,
    rows_for_keys_check,
)
from mfg_pipeline.warehouse.locks import Locks
from mfg_pipeline.warehouse.store import Warehouse

THROUGH_TAG = "mfg/changes_through"
REQUESTED_AT_TAG = "mfg/requested_at"  # the start of the tick that requested the run (epoch seconds)
TICK_JITTER_SECONDS = 1.0  # how much earlier than its interval a tick may start
SENSOR_INTERVAL_SECONDS = 30
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]
STARTUP_GRACE_SECONDS = 20  # a STARTED run takes its worker lock within a few seconds of starting
WORKER_QUIET_SECONDS = 10  # a run that freed its worker lock to end writes its last events within this
POLL_SECONDS = 1.0


def change_log_key(feed: ChangesFeed) -> AssetKey:
    return AssetKey([feed.system, feed.change_log.name])


def feed_upstream(feed: ChangesFeed, channels: list[Channel]) -> dict[str, list[AssetKey]]:
    """For the lineage: every listed stream the feed writes into has the change log upstream."""
    return {channel.stream.name: [change_log_key(feed)] for channel in channels if not channel.change_type.feed_only}


def _feed_only(channels: list[Channel]) -> list[tuple[Stream, Table]]:
    """The tables only the changes feed fills (Fusion's stock), for the channels configured."""
    streams = {c.stream.name: c.stream for c in channels if c.change_type.feed_only}
    return [(stream, table) for stream in streams.values() for table in stream.tables]


def build_apply_asset(feed: ChangesFeed, channels: list[Channel], partitioning: Partitioning) -> Any:
    """`<system>/change_log` plus the feed-only tables of the configured channels, materialized together by
    applying the journal (the listed tables it also changes are reported as materializations of theirs)."""
    system, change_log, log_key = feed.system, feed.change_log, change_log_key(feed)
    feed_only = _feed_only(channels)
    specs = [
        AssetSpec(
            log_key,
            group_name=system,
            kinds={"duckdb", "parquet"},
            tags={"source": system},
            description=change_log.description + " Materializing it applies every journaled feed batch, "
            f"in read order, to the {feed.title} tables (upserts and soft deletes); {feed.sensor_name} "
            "requests it.",
            metadata={
                "dagster/table_name": f"{system}.{change_log.name}",
                "primary_key": ", ".join(change_log.primary_key),
                "parquet_path": f"parquet/{system}/{change_log.name}/date=YYYY-MM-DD/ (read day)",
            },
        )
    ]
    specs += [
        AssetSpec(
            AssetKey([system, table.name]),
            group_name=system,
            kinds={"duckdb", "parquet"},
            description=table.description or stream.description,
            skippable=True,
            deps=[log_key] if table is stream.table else [AssetKey([system, stream.table.name])],
            metadata=table_metadata(system, stream, table),
            tags={"source": system},
        )
        for stream, table in feed_only
    ]
    owned = {change_log.name, *(table.name for _, table in feed_only)}
    check_specs = [
        AssetCheckSpec(name, asset=AssetKey([system, table_name]), description=description)
        for table_name in sorted(owned)
        for name, description in CHECK_DESCRIPTIONS.items()
        if table_name != change_log.name or name == PRIMARY_KEY_CHECK
    ]
    tables = {t.name: (c.stream, t) for c in channels for t in c.stream.tables}

    @multi_asset(name=f"{system}_changes", specs=specs, check_specs=check_specs)
    def apply_changes(context, warehouse: WarehouseResource) -> Iterator[Any]:  # context: see factory
        totals = ApplyReport()
        outcomes: dict[Any, list[CheckOutcome]] = {}
        every = partitioning.plants or (current_plant_name(),)
        for plant in partitioning.run_plants(context.run.tags, every=every):  # a run by hand: each plant's
            with for_plant(plant):
                store = warehouse.warehouse()
                journal = feed.journal(store)
                applied = ApplyReport()
                # The worker lock is held until the run's last result is out: a tick that finds it free sees a run
                # that died, or one whose last events are being written (see `_worker_died`).
                with (
                    explained_failures(system, "changes feed"),
                    store.locks.hold(feed.worker_lock(plant), None, feed.apply_job_name),
                ):
                    for report in _apply_rounds(journal, store, context):
                        applied.add(report)
                        for event in _round_events(feed, report, store, tables, owned, partitioning, plant):
                            context.log_event(event)
                    context.log.info(
                        f"applied {applied.batches_applied} batches ({applied.changes} changes, "
                        f"{applied.deletions} deletions){' for plant ' + plant if partitioning.by_plant else ''}"
                    )
                    for spec in check_specs:
                        key = spec.asset_key
                        stream, table = (None, change_log) if key == log_key else tables[key.path[-1]]
                        outcome = _check_outcome(feed, spec.name, store, table, applied, stream)
                        outcomes.setdefault((key, spec.name), []).append(outcome)
                totals.add(applied)
        yield MaterializeResult(
            asset_key=log_key,
            metadata={
                "batches_applied": MetadataValue.int(totals.batches_applied),
                "changes": MetadataValue.int(totals.changes),
                "deletions": MetadataValue.int(totals.deletions),
            },
        )
        for _, table in feed_only:
            yield MaterializeResult(
                asset_key=AssetKey([system, table.name]),
                metadata={"changes_in_run": MetadataValue.int(totals.changes)},
            )
        for (key, _), evaluated in outcomes.items():
            yield check_result(key, combined(evaluated))

    return apply_changes


def _apply_rounds(
    journal: ChangeJournal, warehouse: Warehouse, context: AssetExecutionContext
) -> Iterator[ApplyReport]:
    """Apply what is pending, then keep applying what the sensor journals until the run has lingered long enough
    (it leaves as soon as the linger time is up, pending or not: the next run picks the rest up)."""
    feed = journal.feed
    started, linger = time.monotonic(), feed.linger_seconds()
    naive_timezone = feed.naive_timezone()
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
    feed: ChangesFeed,
    report: ApplyReport,
    warehouse: Warehouse,
    tables: dict[str, tuple[Stream, Table]],
    owned: set[str],
    partitioning: Partitioning,
    plant: str,
) -> Iterator[Any]:
    """Materializations of the listed tables a round changed for the plant (in days from the first partition),
    each followed by its checks' evaluations."""
    first_day = partitioning.first_day
    changed = {
        "applied_from": MetadataValue.text("changes feed"),
        "changes_in_round": MetadataValue.int(report.changes),
        "deletions_in_round": MetadataValue.int(report.deletions),
    }
    for table_name, days in sorted(report.partitions_by_table.items()):
        if table_name in owned or table_name not in tables:
            continue
        stream, table = tables[table_name]
        key = AssetKey([feed.system, table_name])
        for day in sorted(days, key=str):
            if day is not None and date.fromisoformat(day) < first_day:
                continue  # a change to a record older than the first partition: landed, nothing to report
            partition = partitioning.key(plant, day) if day is not None else None
            yield AssetMaterialization(asset_key=key, partition=partition, metadata=changed)
            for name in CHECK_DESCRIPTIONS:
                outcome = _check_outcome(feed, name, warehouse, table, report, stream, day)
                yield check_evaluation(key, outcome, partition=partition)


def _check_outcome(
    feed: ChangesFeed,
    name: str,
    warehouse: Warehouse,
    table: Table,
    report: ApplyReport,
    stream: Stream | None = None,
    day: str | None = None,
) -> CheckOutcome:
    system = feed.system
    partitioned = table is feed.change_log or bool(stream and stream.partitioned)
    loads = [load for load in report.loads if table.name in load.tables]
    if name == PRIMARY_KEY_CHECK:
        before = snapshot_before(loads, table.name)
        return primary_key_check(
            warehouse, system, table, partitioned, date.fromisoformat(day) if day else None, before
        )
    keys = [key for load in loads for key in load.staged_keys]
    after = snapshot_after(loads)
    if stream is None:  # the change log: its rows are keyed by batch and position, not by the changed records
        return rows_for_keys_check(warehouse, system, table, table.primary_key, keys, len(keys), after)
    rows = sum(load.rows_staged.get(table.name, 0) for load in loads)
    return rows_written_check(warehouse, system, stream, table, keys, rows, after)


def apply_job(feed: ChangesFeed) -> Any:
    return define_asset_job(
        feed.apply_job_name,
        tags={SOURCE_TAG: feed.system, "dagster/max_runtime": "900"},
        executor_def=in_process_executor,
        selection=AssetSelection.assets(change_log_key(feed)).required_multi_asset_neighbors(),
        description=f"Apply the journaled {feed.title} changes-feed batches to the warehouse (requested by "
        f"{feed.sensor_name}; lingers {feed.linger_variable} to apply what follows).",
    )


@dataclass(frozen=True)
class TickDecision:
    run: RunRequest | None
    reason: str


def decide(
    context: SensorEvaluationContext, journal: ChangeJournal, now: float | None = None, by_plant: bool = False
) -> TickDecision:
    """Whether this tick requests an apply run for the journal's plant (see the module docstring); `by_plant`:
    plants side by side, each with its own apply runs."""
    feed, plant = journal.feed, journal.pages.plant
    pending = journal.pending_ids()
    if not pending:
        return TickDecision(None, "no pending changes")
    instance, now = context.instance, now if now is not None else time.time()
    live = []
    locks = journal.pages.warehouse.locks
    plant_tags = {PLANT_TAG: plant} if by_plant else {}
    runs = RunsFilter(job_name=feed.apply_job_name, tags=plant_tags)
    for record in instance.get_run_records(
        RunsFilter(job_name=feed.apply_job_name, statuses=IN_PROGRESS, tags=plant_tags)
    ):
        if _worker_died(instance, record, locks, feed.worker_lock(plant), now):
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
    latest = instance.get_run_records(runs, limit=1)
    if latest:
        # Measured between the starts of the ticks that request runs (ticks start SENSOR_INTERVAL_SECONDS apart),
        # less a second for the scheduler's jitter, so every other tick may request one under a steady trickle:
        # never more than one run per minute. (The run's own creation time comes after its tick's feed reads,
        # which would make the second tick after it miss by that much and double the wait.)
        requested = latest[0].dagster_run.tags.get(REQUESTED_AT_TAG)
        since = now - (float(requested) if requested else latest[0].create_timestamp.timestamp())
        if since < feed.min_interval_seconds() - TICK_JITTER_SECONDS:
            return TickDecision(
                None,
                f"coalescing: the last apply run started {since:.0f}s ago "
                f"({feed.min_interval_variable}={feed.min_interval_seconds():.0f})",
            )
    through = pending[-1]
    earlier = instance.get_runs_count(
        RunsFilter(job_name=feed.apply_job_name, tags={**plant_tags, THROUGH_TAG: through})
    )
    run_key = f"{plant}:{through}#{earlier}" if by_plant else f"{through}#{earlier}"
    tags = {**plant_tags, THROUGH_TAG: through, REQUESTED_AT_TAG: f"{now:.3f}"}
    return TickDecision(RunRequest(run_key=run_key, tags=tags), f"{len(pending)} batches pending")


def _worker_died(instance: DagsterInstance, record: Any, locks: Locks, worker_lock: str, now: float) -> bool:
    """A STARTED run whose process is gone. Its worker lock is free then; but a run that ends normally frees it
    too, a moment before Dagster records its success. So the run must still be STARTED after the lock was seen
    free, and have written no event for WORKER_QUIET_SECONDS (a run that is ending writes its last events)."""
    if record.dagster_run.status != DagsterRunStatus.STARTED:
        return False
    started = record.start_time or record.create_timestamp.timestamp()
    if now - started < STARTUP_GRACE_SECONDS or not locks.is_free(worker_lock):
        return False
    run_id = record.dagster_run.run_id
    fresh = instance.get_run_record_by_id(run_id)
    if fresh is None or fresh.dagster_run.status != DagsterRunStatus.STARTED:
        return False  # it ended while we looked
    last = instance.get_records_for_run(run_id, limit=1, ascending=False).records
    last_event_at = last[0].event_log_entry.timestamp if last else started
    return now - last_event_at >= WORKER_QUIET_SECONDS


def build_changes_sensor(feed: ChangesFeed, plant: str | None = None) -> SensorDefinition:
    """The feed's sensor: the deployment's, or (plants side by side) one plant's company's."""
    calls, seconds = feed.calls_per_tick_variable, feed.seconds_per_tick_variable
    of_plant = f" of plant {plant}" if plant else ""

    @sensor(
        name=f"{feed.sensor_name}_{plant}" if plant else feed.sensor_name,
        job_name=feed.apply_job_name,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Reads the {feed.title} changes feed{of_plant} ({feed.channels_variable}) into a durable "
        f"journal and requests an apply run while batches are pending and none is applying. Each tick spends at "
        f"most {calls} calls and {seconds} seconds.",
    )
    def changes_sensor(
        context: SensorEvaluationContext, sources: SourcesResource, warehouse: WarehouseResource
    ) -> RunRequest | SkipReason:
        with for_plant(plant) if plant else contextlib.nullcontext():
            return _tick(context, feed, sources, warehouse.warehouse(), by_plant=plant is not None)

    return changes_sensor


def _tick(
    context: SensorEvaluationContext,
    feed: ChangesFeed,
    sources: SourcesResource,
    warehouse: Warehouse,
    by_plant: bool,
) -> RunRequest | SkipReason:
    tick_started = time.time()
    journal = feed.journal(warehouse)
    max_calls, seconds = feed.tick_budget()
    deadline = time.monotonic() + seconds
    with explained_failures(feed.system, "changes feed"):
        client = sources.client(feed.system, logger=context.log)
        try:
            if not isinstance(client, FeedClient):
                raise TypeError(f"{feed.system}: a source with a changes feed needs a client with read_changes")
            for channel in feed.channels():
                report = read_feed(client, channel, journal, max_calls=max_calls, deadline=deadline)
                max_calls -= report.calls
                if report.records:
                    context.log.info(
                        f"channel {channel.name}: {report.records} changes in {report.calls} calls "
                        f"({report.stopped_because})"
                    )
        finally:
            client.close()
    decision = decide(context, journal, now=tick_started, by_plant=by_plant)
    return decision.run if decision.run is not None else SkipReason(decision.reason)


def changes_feed_definitions(
    source: SourceSystem, feed: ChangesFeed, channels: list[Channel], partitions: Partitioning
) -> Definitions:
    """The feed's apply asset (its change log and the tables only it writes), job and sensor. A configured channel
    must write into a stream the source loads."""
    fed_but_off = sorted({c.stream.name for c in channels if not c.change_type.feed_only} & set(source.switched_off))
    if fed_but_off:
        raise ConfigurationError(
            f"{streams_variable(source)} leaves out {', '.join(fed_but_off)}, which the changes feed writes: leave "
            f"their channels out of {feed.channels_variable} too, or keep the streams"
        )
    return Definitions(
        assets=[build_apply_asset(feed, channels, partitions)],
        jobs=[apply_job(feed)],
        sensors=[build_changes_sensor(feed, plant) for plant in (partitions.plants or (None,))],
    )
