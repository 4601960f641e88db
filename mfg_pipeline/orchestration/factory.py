"""Builds Dagster definitions from source declarations: per stream one multi-asset (the stream's table and its
child tables, which land together), asset checks on every table, and per source a partitioned job for backfills,
a refresh job and the hourly and daily schedules that keep it fresh. Nothing here is vendor-specific.

Selecting one table of a stream (`--select fusion_ops/downtimes`) runs its whole stream: the tables of one
stream come from the same pages and land in one transaction, so the stream's other tables are recorded as
materialized too (their checks run when selected).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    AssetSpec,
    DailyPartitionsDefinition,
    DefaultScheduleStatus,
    Definitions,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleEvaluationContext,
    TableColumn,
    TableSchema,
    define_asset_job,
    in_process_executor,
    multi_asset,
    schedule,
)

from mfg_pipeline import config
from mfg_pipeline.declarations import SourceSystem, Stream
from mfg_pipeline.engine.load import LoadReport, PassKind, snapshot_before
from mfg_pipeline.engine.refresh import DAILY, HOURLY, RefreshPlan, plan_for, refresh_stream
from mfg_pipeline.http.pagination import Page
from mfg_pipeline.orchestration.failures import explained_failures
from mfg_pipeline.orchestration.plant_partitions import PLANT_TAG, Partitioning, latest_zone, window
from mfg_pipeline.orchestration.pools import pool_name
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.plants import current_plant_name, for_plant, plants_side_by_side
from mfg_pipeline.records.schema import Table
from mfg_pipeline.sources.registry import streams_variable
from mfg_pipeline.warehouse.checks import (
    PRIMARY_KEY_CHECK,
    ROW_COUNT_CHECK,
    CheckOutcome,
    combined,
    primary_key_check,
    row_count_check,
    rows_for_keys_check,
)
from mfg_pipeline.warehouse.store import Warehouse

PROGRESS_EVERY_PAGES = 10
CHECK_DESCRIPTIONS = {
    PRIMARY_KEY_CHECK: "Primary key unique and not null in DuckDB and in the published Parquet.",
    ROW_COUNT_CHECK: "DuckDB and Parquet hold exactly what the source returned: the records listed "
    "for a day or a whole list, and the rows written for new or changed records.",
}
# Run tags the schedules set; a run without them (a backfill, a manual materialization) loads its partition, or
# a snapshot's whole list.
CYCLE_TAG = "mfg/cycle"  # hourly or daily
ANCHOR_TAG = "mfg/cycle_anchor"  # "true" on the run of a cycle that also makes a partitioned stream's cross-day passes
SWEEP_TAG = "mfg/child_sweep"  # "all": fetch every record's child lists, changed or not, whatever the cadence
SOURCE_TAG = "mfg/source"
CYCLE_TIME_TAG = "mfg/cycle_time"  # when the cycle's schedule fired (ISO): the day its child sweep counts as
# Dagster's own tags on a backfill's runs (not exported by name from the public API).
BACKFILL_ID_TAG, PARTITION_NAME_TAG = "dagster/backfill", "dagster/partition"


def partition_start(reach_back_to: date | None = None) -> date:
    """The first daily partition: MFG_PARTITION_START_DATE when set; else the history the warehouse holds, i.e.
    the earliest day loaded or backfilled, or, earlier still, the first day the cycles load (today less the larger
    of MFG_DAILY_LOOKBACK_DAYS and MFG_SCHEDULE_LOOKBACK_DAYS), or `reach_back_to`, a day this process is about to
    load (the demo's first, `mfg-pipeline run --partition`; later processes find it in the warehouse). So the UI
    shows no partitions nobody loaded; to backfill older days, set the variable (they then stay in the history).
    A record a full or open pass lands on an old day counts as loaded history too."""
    explicit = config.partition_start_setting()
    if explicit is not None:
        return explicit
    lookback = max(config.lookback_days("daily"), config.lookback_days("hourly"))
    cycles_first = datetime.now(config.partition_timezone()).date() - timedelta(days=lookback)
    try:
        loaded = Warehouse(config.data_dir()).first_partition_day()
    except (duckdb.Error, OSError, RuntimeError) as exc:  # the definitions load even while the catalog is down
        logging.getLogger(__name__).warning(
            f"partitions start at {cycles_first} (the cycles' first day): the warehouse's history could not be "
            f"read ({type(exc).__name__}); set {config.PARTITION_START_VARIABLE} to fix the start"
        )
        loaded = None
    return min(day for day in (loaded, cycles_first, reach_back_to) if day is not None)


def daily_partitions(reach_back_to: date | None = None) -> DailyPartitionsDefinition:
    # end_offset=1: today's partition exists, so the schedule can keep the current day fresh.
    return DailyPartitionsDefinition(
        start_date=partition_start(reach_back_to).isoformat(), timezone=config.partition_timezone().key, end_offset=1
    )


def partitioning(reach_back_to: date | None = None) -> Partitioning:
    """The deployment's partitions: by day in the plant's zone; for plants side by side, by plant x day, the days
    reaching back to the earliest plant's first and forward to the easternmost plant's today."""
    side_by_side = plants_side_by_side()
    if not side_by_side:
        return Partitioning(daily_partitions(reach_back_to))
    starts = []
    for plant in side_by_side:
        with for_plant(plant.name):
            starts.append(partition_start(reach_back_to))
    zone = latest_zone({plant.name: plant.timezone for plant in side_by_side})
    daily = DailyPartitionsDefinition(start_date=min(starts).isoformat(), timezone=zone, end_offset=1)
    return Partitioning(daily, tuple(plant.name for plant in side_by_side))


def table_key(source: SourceSystem, table: Table) -> AssetKey:
    return AssetKey([source.name, table.name])


def _column_schema(table: Table) -> TableSchema:
    return TableSchema(
        columns=[
            TableColumn(c.name, c.type.duckdb, description=c.description or f"from `{c.source_label}`")
            for c in table.columns
        ]
    )


def table_metadata(source_name: str, stream: Stream, table: Table) -> dict[str, Any]:
    """What the UI shows of a table asset: column schema, DuckDB name, key, endpoint, Parquet folder."""
    return {
        "dagster/column_schema": _column_schema(table),
        "dagster/table_name": f"{source_name}.{table.name}",
        "primary_key": ", ".join(table.primary_key),
        "source_endpoint": stream.endpoint,
        "parquet_path": f"parquet/{source_name}/{table.name}/plant=<plant>/"
        + ("date=YYYY-MM-DD/" if stream.partitioned else ""),
    }


@dataclass(frozen=True)
class StreamAssets:
    """How a stream appears in Dagster: its table keys, and what feeds its parent table besides its own list."""

    source: SourceSystem
    stream: Stream
    partitioning: Partitioning
    upstream: tuple[AssetKey, ...] = ()  # e.g. the changes feed's change_log, which writes into the table

    def key(self, table: Table) -> AssetKey:
        return table_key(self.source, table)

    def of_plant(self, plant: str) -> str:
        """` (plant x)` in a run's log lines, when plants load side by side."""
        return f" (plant {plant})" if self.partitioning.by_plant else ""

    def specs(self) -> list[AssetSpec]:
        source, stream = self.source, self.stream
        # Schedules refresh every asset hourly: warn after two missed runs, fail after five.
        freshness = FreshnessPolicy.time_window(fail_window=timedelta(hours=6), warn_window=timedelta(hours=3))
        parent = self.key(stream.table)
        return [
            AssetSpec(
                self.key(table),
                description=table.description or stream.description,
                group_name=source.name,
                kinds={"duckdb", "parquet"},
                freshness_policy=freshness,
                metadata=table_metadata(source.name, stream, table),
                tags={"source": source.name, "stream": stream.name},
                deps=list(self.upstream) if table is stream.table else [parent],
                skippable=True,
            )
            for table in stream.tables
        ]

    def check_specs(self) -> list[AssetCheckSpec]:
        return [
            AssetCheckSpec(name, asset=self.key(table), description=description)
            for table in self.stream.tables
            for name, description in CHECK_DESCRIPTIONS.items()
        ]


def stream_assets(
    source: SourceSystem, stream: Stream, partitions: Partitioning, upstream: Sequence[AssetKey] = ()
) -> Any:
    described = StreamAssets(source, stream, partitions, tuple(upstream))

    @multi_asset(
        name=f"{source.name}__{stream.name}",
        specs=described.specs(),
        check_specs=described.check_specs(),
        partitions_def=partitions.definition if stream.partitioned else None,
        pool=pool_name(source.name),
        description=stream.description,
        op_tags={"source": source.name},
        can_subset=True,
    )
    def _materialize(context, sources: SourcesResource, warehouse: WarehouseResource) -> Iterator[Any]:
        # `context` unannotated: Dagster checks the annotation at definition time and cannot read the string
        # annotations this module's `from __future__ import annotations` makes.
        loaded_by = backfill_run_for_snapshot(context, stream, partitions)
        if loaded_by is not None:
            context.log.info(
                f"{source.name} {stream.name}: not partitioned, so this backfill loads it once, in its run for "
                f"{loaded_by}; nothing to do in this partition's run"
            )
            return
        landed = []
        for plant in partitions.run_plants(context.run.tags, every=partitions.plants or (current_plant_name(),)):
            with for_plant(plant):
                landed.append(_run_stream(context, described, sources, warehouse.warehouse(), plant))
        yield from _events(context, described, landed)

    return _materialize


def backfill_run_for_snapshot(context: AssetExecutionContext, stream: Stream, partitioning: Partitioning) -> str | None:
    """In a job backfill (one run per partition), the partition whose run loads an unpartitioned stream, when it
    is not this run's: the backfill's latest (of the run's plant). Without this, each of N runs would list and
    sweep the whole stream. (An asset backfill runs an unpartitioned asset once by itself; a schedule's runs carry
    their cycle.)"""
    tags = context.run.tags
    if stream.partitioned or CYCLE_TAG in tags or BACKFILL_ID_TAG not in tags:
        return None
    backfill = context.instance.get_backfill(tags[BACKFILL_ID_TAG])
    partitions = backfill.partition_names if backfill is not None else None
    if not partitions or PARTITION_NAME_TAG not in tags:
        return None
    plant = partitioning.split(tags[PARTITION_NAME_TAG])[0]
    loading = max(key for key in partitions if partitioning.split(key)[0] == plant)
    return None if tags[PARTITION_NAME_TAG] == loading else loading


def _plan(context: AssetExecutionContext, stream: Stream, partitioning: Partitioning) -> RefreshPlan:
    tags = context.run.tags
    day = None
    if stream.partitioned:
        day = window(date.fromisoformat(partitioning.split(context.partition_key)[1]))
    return plan_for(
        stream,
        tags.get(CYCLE_TAG),
        window=day,
        anchor=tags.get(ANCHOR_TAG) == "true",
        sweep_all=tags.get(SWEEP_TAG) in ("all", "true"),
        sweep_every_days=config.child_sweep_every_days(),
        cycle_time=datetime.fromisoformat(tags[CYCLE_TIME_TAG]) if CYCLE_TIME_TAG in tags else None,
        partition_timezone=config.partition_timezone(),
    )


@dataclass(frozen=True)
class Landed:
    """What a run loaded for one plant, and that plant's checks of it (evaluated while its scope was in force)."""

    plant: str
    plan: RefreshPlan
    reports: list[LoadReport]
    outcomes: dict[tuple[AssetKey, str], CheckOutcome]


def _run_stream(
    context: AssetExecutionContext,
    described: StreamAssets,
    sources: SourcesResource,
    warehouse: Warehouse,
    plant: str,
) -> Landed:
    """Load the stream for one plant (inside its `for_plant`) and evaluate its selected checks."""
    source, stream = described.source, described.stream
    plan = _plan(context, stream, described.partitioning)
    pages_read = 0

    def progress(stream_: Stream, page: Page, rows: int) -> None:
        nonlocal pages_read  # counted here: page labels are numbers, offsets or ids depending on the paginator
        pages_read += 1
        if pages_read % PROGRESS_EVERY_PAGES == 0:
            context.log.info(
                f"{source.name} {stream_.name}: {pages_read} pages (last: {page.number}), {rows} records so far"
            )

    with explained_failures(source.name, stream.name):
        client = sources.client(source.name, logger=context.log)
        try:
            reports = (stream.loader or refresh_stream)(client, stream, warehouse, plan, progress, context.log)
        finally:
            client.close()
    for report in reports:
        context.log.info(
            f"{source.name} {stream.name} {report.kind} pass{described.of_plant(plant)}: {report.records_seen} "
            f"records listed, {len(report.staged_keys)} new or changed, {len(report.deleted_keys)} gone; "
            f"{report.pages} pages, {report.requests} requests, {report.throttled} x 429, {report.seconds:.1f}s"
        )
    partition = plan.window.key if plan.window is not None else None
    return Landed(plant, plan, reports, dict(_checks(context, described, reports, warehouse, partition)))


def _events(context: AssetExecutionContext, described: StreamAssets, landed: Sequence[Landed]) -> Iterator[Any]:
    """One materialization per table for the run (whatever number of plants it loaded), the other days its
    passes republished, and each selected check's outcome over the run's plants."""
    stream, selected = described.stream, context.selected_asset_keys
    reports = [report for run in landed for report in run.reports]
    run_partition = context.partition_key if stream.partitioned else None
    for table in stream.tables:
        key = described.key(table)
        metadata = _run_metadata(reports, table, landed[0].plan)
        if described.partitioning.by_plant:
            metadata["plants"] = MetadataValue.text(", ".join(run.plant for run in landed))
        if key in selected:
            yield MaterializeResult(asset_key=key, metadata=metadata)
        else:  # written with the stream all the same: say so, without claiming its checks
            context.log_event(AssetMaterialization(asset_key=key, partition=run_partition, metadata=metadata))
        for run in landed:
            for day in _other_partitions(run, table, described):
                written_by = f"{', '.join(map(str, run.plan.passes))} pass of run {context.run.run_id}"
                context.log_event(
                    AssetMaterialization(
                        asset_key=key, partition=day, metadata={"written_by": MetadataValue.text(written_by)}
                    )
                )
    for key, name in dict.fromkeys(check for run in landed for check in run.outcomes):
        yield check_result(key, combined([run.outcomes[(key, name)] for run in landed]))


def _other_partitions(run: Landed, table: Table, described: StreamAssets) -> list[str]:
    """Partitions of the plant whose days a cross-day pass (open, full) republished, other than the run's own,
    that exist."""
    if not described.stream.partitioned:
        return []
    own = run.plan.window.key if run.plan.window is not None else None
    days = {day for report in run.reports for day in report.touched_partitions.get(table.name, set())}
    first = described.partitioning.first_day
    return [
        described.partitioning.key(run.plant, d.isoformat())
        for d in sorted(d for d in days if d is not None and d >= first and d != own)
    ]


def _checks(
    context: AssetExecutionContext,
    described: StreamAssets,
    reports: list[LoadReport],
    warehouse: Warehouse,
    partition: date | None,
) -> Iterator[tuple[tuple[AssetKey, str], CheckOutcome]]:
    source, stream = described.source, described.stream
    selected = context.selected_asset_check_keys
    for table in stream.tables:
        key = described.key(table)
        if any(c.asset_key == key and c.name == PRIMARY_KEY_CHECK for c in selected):
            before = snapshot_before(reports, table.name)
            outcome = primary_key_check(warehouse, source.name, table, stream.partitioned, partition, before)
            yield (key, PRIMARY_KEY_CHECK), outcome
        if any(c.asset_key == key and c.name == ROW_COUNT_CHECK for c in selected):
            yield (key, ROW_COUNT_CHECK), combined(list(_count_checks(warehouse, source.name, stream, table, reports)))


def _count_checks(
    warehouse: Warehouse, schema: str, stream: Stream, table: Table, reports: Sequence[LoadReport]
) -> Iterator[CheckOutcome]:
    """Per pass: what the pass saw whole is what DuckDB and Parquet hold live; what it wrote is in DuckDB."""
    is_parent = table is stream.table
    for report in reports:
        if is_parent and report.scope.lists_whole:
            yield row_count_check(
                warehouse,
                schema,
                table,
                report.scope.partition,
                report.records_seen,
                partitioned=stream.partitioned,
                deleted_flag=stream.deleted_flag,
                kept_newer=report.rows_kept_newer.get(table.name, 0),
                snapshot=report.snapshot_after,
            )
        yield rows_written_check(
            warehouse,
            schema,
            stream,
            table,
            report.staged_keys,
            report.rows_staged.get(table.name, 0),
            report.snapshot_after,
        )


def rows_written_check(
    warehouse: Warehouse,
    schema: str,
    stream: Stream,
    table: Table,
    keys: Sequence[tuple],
    child_rows: int,
    snapshot: int | None = None,
) -> CheckOutcome:
    """The rows a load wrote are in the table (at `snapshot`, as the load left it): a parent row for each of
    `keys`, or (a child table) `child_rows` rows under those parents."""
    if table is stream.table:
        return rows_for_keys_check(warehouse, schema, table, table.primary_key, keys, len(keys), snapshot)
    link = next(c.parent_key for c in stream.children if c.table is table)
    return rows_for_keys_check(warehouse, schema, table, [child for child, _ in link], keys, child_rows, snapshot)


def _run_metadata(reports: Sequence[LoadReport], table: Table, plan: RefreshPlan) -> dict[str, Any]:
    total = {
        name: sum(getattr(r, name) for r in reports)
        for name in (
            "pages",
            "requests",
            "throttled",
            "retries",
            "token_refreshes",
            "duplicates_dropped",
            "outside_window_dropped",
        )
    }
    written = sum(r.rows_staged.get(table.name, 0) for r in reports)
    listed = sum(r.source_rows.get(table.name, 0) for r in reports)
    metadata: dict[str, Any] = {
        "dagster/row_count": MetadataValue.int(listed),
        "rows": MetadataValue.int(listed),
        "rows_written": MetadataValue.int(written),
        "records_gone": MetadataValue.int(sum(len(r.deleted_keys) for r in reports)),
        "passes": MetadataValue.text(", ".join(str(r.kind) for r in reports) or "none"),
        "pages": MetadataValue.int(total["pages"]),
        "requests": MetadataValue.int(total["requests"]),
        "http_429_received": MetadataValue.int(total["throttled"]),
        "retries": MetadataValue.int(total["retries"]),
        "token_refreshes": MetadataValue.int(total["token_refreshes"]),
        "rate_limit_wait_seconds": MetadataValue.float(round(sum(r.rate_limit_wait_seconds for r in reports), 3) + 0.0),
        "duplicates_dropped": MetadataValue.int(total["duplicates_dropped"]),
        "outside_window_dropped": MetadataValue.int(total["outside_window_dropped"]),
        "duration_seconds": MetadataValue.float(round(sum(r.seconds for r in reports), 3) + 0.0),
        "commit_seconds": MetadataValue.float(round(sum(r.commit_seconds for r in reports), 3) + 0.0),
        "child_sweep": MetadataValue.text(
            ", ".join(r.child_sweep for r in reports if r.child_sweep != "none") or "none"
        ),
    }
    if plan.window is not None:
        metadata["window_start"] = MetadataValue.text(plan.window.start.isoformat())
        metadata["window_end"] = MetadataValue.text(plan.window.end.isoformat())
    return metadata


def _check_fields(key: AssetKey, outcome: CheckOutcome) -> dict[str, Any]:
    return {
        "asset_key": key,
        "check_name": outcome.name,
        "passed": outcome.passed,
        "severity": AssetCheckSeverity.ERROR,
        "description": outcome.description,
        "metadata": outcome.metadata,
    }


def check_result(key: AssetKey, outcome: CheckOutcome) -> AssetCheckResult:
    """A check's outcome as the result an asset yields."""
    return AssetCheckResult(**_check_fields(key, outcome))


def check_evaluation(key: AssetKey, outcome: CheckOutcome, partition: str | None) -> AssetCheckEvaluation:
    """A check's outcome as an event logged mid-run, for one partition (the changes feed's apply rounds)."""
    return AssetCheckEvaluation(**_check_fields(key, outcome), partition=partition)


# --- jobs and schedules -------------------------------------------------------------------------------------------
def switched_off_note(source: SourceSystem) -> str:
    """The sentence the UI shows for streams a plant left out (on the source's jobs)."""
    if not source.switched_off:
        return ""
    return (
        f" Not loaded: {', '.join(source.switched_off)} (switched off by {streams_variable(source)}; the "
        "analytics layer reads them as empty)."
    )


def source_definitions(
    source: SourceSystem,
    partitions: Partitioning,
    upstream: Mapping[str, Sequence[AssetKey]] | None = None,
) -> Definitions:
    """Assets, jobs and schedules of one source (with plants side by side, each plant's hourly and daily
    schedules, on its own clock). `upstream`: stream name -> assets that also write its table."""
    assets = [
        stream_assets(source, stream, partitions, (upstream or {}).get(stream.name, ())) for stream in source.streams
    ]
    all_keys = [table_key(source, t) for s in source.streams for t in s.tables]
    partitioned_keys = [table_key(source, t) for s in source.streams if s.partitioned for t in s.tables]
    refresh_job = define_asset_job(
        f"{source.name}_refresh",
        selection=AssetSelection.assets(*all_keys),
        executor_def=in_process_executor,
        tags={SOURCE_TAG: source.name},
        description=f"{source.title}: every stream, as the hourly and daily schedules run it (tag {CYCLE_TAG})."
        + switched_off_note(source),
    )
    jobs = [refresh_job]
    if partitioned_keys:
        jobs.append(
            define_asset_job(
                f"{source.name}_daily",
                selection=AssetSelection.assets(*partitioned_keys),
                executor_def=in_process_executor,
                tags={SOURCE_TAG: source.name},
                description=f"{source.title}: the daily-partitioned streams for one day"
                + (" of one plant" if partitions.by_plant else "")
                + " (backfills run it).",
            )
        )
    schedules = [
        cycle_schedule(source, refresh_job, partitions, cycle, partitioned_keys, plant)
        for plant in (partitions.plants or (None,))
        for cycle in (HOURLY, DAILY)
    ]
    return Definitions(assets=assets, jobs=jobs, schedules=schedules)


CYCLE_CRONS = {HOURLY: "15 * * * *", DAILY: "45 2 * * *"}


def cycle_schedule(
    source: SourceSystem,
    job: Any,
    partitions: Partitioning,
    cycle: str,
    partitioned_keys: Sequence[AssetKey],
    plant: str | None = None,
) -> Any:
    """A cycle's schedule: the deployment's, or (plants side by side) one plant's, on that plant's clock."""
    with for_plant(plant) if plant else contextlib.nullcontext():
        zone = config.partition_timezone().key

    @schedule(
        name=f"{source.name}_{plant}_{cycle}_refresh" if plant else f"{source.name}_{cycle}_refresh",
        job=job,
        cron_schedule=CYCLE_CRONS[cycle],
        default_status=DefaultScheduleStatus.RUNNING,
        execution_timezone=zone,
        description=cycle_description(source, cycle) + (f" Plant {plant}, on its clock ({zone})." if plant else ""),
        tags={PLANT_TAG: plant} if plant else None,
    )
    def _cycle(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        with for_plant(plant) if plant else contextlib.nullcontext():
            yield from cycle_run_requests(
                source, partitions, cycle, context.scheduled_execution_time, partitioned_keys, plant
            )

    return _cycle


def cycle_run_requests(
    source: SourceSystem,
    partitions: Partitioning | None,
    cycle: str,
    now: datetime,
    partitioned_keys: Sequence[AssetKey],
    plant: str | None = None,
) -> Iterator[RunRequest]:
    """The runs of one cycle (of one plant, with plants side by side; call it inside that plant's `for_plant`):
    every stream for today (the anchor run), plus the recent days of the partitioned streams
    (MFG_SCHEDULE_LOOKBACK_DAYS hourly, MFG_DAILY_LOOKBACK_DAYS daily) that `partitions` (the refresh job's; None
    for a source with no partitioned stream) holds."""
    today = now.astimezone(config.partition_timezone()).date()
    stamp = now.isoformat()
    tags = {CYCLE_TAG: cycle, SOURCE_TAG: source.name, CYCLE_TIME_TAG: stamp, **({PLANT_TAG: plant} if plant else {})}
    anchor = {**tags, ANCHOR_TAG: "true"}
    run_key = f"{plant}-{cycle}" if plant else cycle
    if not partitioned_keys:
        yield RunRequest(run_key=f"{run_key}@{stamp}", tags=anchor)
        return
    assert partitions is not None, f"{source.name}: a source with partitioned streams has a partitioned job"
    existing = partitions.days(now)
    lookback = config.lookback_days(cycle)
    for days_back in range(lookback + 1):
        day = (today - timedelta(days=days_back)).isoformat()
        if day not in existing:
            continue
        key = partitions.key(plant, day) if plant else day
        if days_back == 0:
            yield RunRequest(run_key=f"{run_key}@{stamp}", partition_key=key, tags=anchor)
        else:
            yield RunRequest(
                run_key=f"{run_key}-{day}@{stamp}",
                partition_key=key,
                asset_selection=list(partitioned_keys),
                tags=tags,
            )


def cycle_description(source: SourceSystem, cycle: str) -> str:
    """What the cycle keeps fresh, from the declarations (shown on the schedule in the UI)."""
    lines = []
    for stream in source.streams:
        if stream.loader is not None:
            lines.append(f"{stream.name}: its own flow (every cycle)")
            continue
        plan = plan_for(stream, cycle, anchor=True)
        passes = [(PassKind.WINDOW if stream.partitioned else None), *plan.passes]
        what = {
            PassKind.WINDOW: "recent days",
            PassKind.OPEN: "open records and those that closed",
            PassKind.MODIFIED: "records modified since the last pass",
            PassKind.FULL: "the whole list",
        }
        described = ", ".join(what[p] for p in passes if p) or "nothing"
        if plan.sweep_children:
            described += " (child lists: the open records', and a 1/MFG_CHILD_SWEEP_EVERY_DAYS slice of the rest)"
        lines.append(f"{stream.name}: {described}")
    when = "Every hour at :15" if cycle == HOURLY else "Every day at 02:45"
    return f"{when}, {source.title}: " + "; ".join(lines) + "."
