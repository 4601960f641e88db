"""Builds Dagster definitions from source declarations: per stream one multi-asset (the stream's table and its
child tables, which land together), asset checks on every table, per source a daily partitioned job, a snapshot
job and their schedules. Nothing here is vendor-specific.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Iterator

from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, AssetSelection, AssetSpec,
                     DailyPartitionsDefinition, DefaultScheduleStatus, FreshnessPolicy, MaterializeResult, MetadataValue,
                     RunRequest, ScheduleDefinition, ScheduleEvaluationContext, TableColumn, TableSchema,
                     define_asset_job, multi_asset, schedule)

from mfg_pipeline import config
from mfg_pipeline.loading import LoadReport, PartitionWindow, load_stream
from mfg_pipeline.orchestration.pools import pool_name
from mfg_pipeline.orchestration.resources import SourceApiResource, WarehouseResource, api_resource_key
from mfg_pipeline.records.schema import Table
from mfg_pipeline.streams import SourceSystem, Stream
from mfg_pipeline.warehouse.checks import CheckOutcome, primary_key_check, row_count_check

PROGRESS_EVERY_PAGES = 10
CHECK_NAMES = ("primary_key_unique_not_null", "row_count_matches_source")


def daily_partitions() -> DailyPartitionsDefinition:
    # end_offset=1: today's partition exists, so the schedule can keep the current day fresh.
    return DailyPartitionsDefinition(start_date=config.partition_start_date(),
                                     timezone=config.partition_timezone().key, end_offset=1)


def table_key(source: SourceSystem, table: Table) -> AssetKey:
    return AssetKey([source.name, table.name])


def _column_schema(table: Table) -> TableSchema:
    return TableSchema(columns=[
        TableColumn(c.name, c.type.duckdb, description=c.description or (f"from `{c.source_label}`"),
                    constraints=None) for c in table.columns])


def table_metadata(source_name: str, stream: Stream, table: Table) -> dict:
    """What the UI shows of a table asset: column schema, DuckDB name, key, endpoint, Parquet folder."""
    return {
        "dagster/column_schema": _column_schema(table),
        "dagster/table_name": f"{source_name}.{table.name}",
        "primary_key": ", ".join(table.primary_key),
        "source_endpoint": stream.endpoint,
        "parquet_path": f"parquet/{source_name}/{table.name}/" + ("date=YYYY-MM-DD/" if stream.partitioned else ""),
    }


def stream_assets(source: SourceSystem, stream: Stream, partitions: DailyPartitionsDefinition):
    resource_key = api_resource_key(source.name)
    # Schedules refresh every asset hourly: warn after two missed runs, fail after five.
    freshness = FreshnessPolicy.time_window(fail_window=timedelta(hours=6), warn_window=timedelta(hours=3))
    specs = [AssetSpec(table_key(source, table), description=table.description or stream.description,
                       group_name=source.name, kinds={"duckdb", "parquet"}, freshness_policy=freshness,
                       metadata=table_metadata(source.name, stream, table),
                       tags={"source": source.name, "stream": stream.name})
             for table in stream.tables]
    check_specs = [AssetCheckSpec(name, asset=table_key(source, table),
                                  description={"primary_key_unique_not_null": "Primary key unique and not null in "
                                               "DuckDB and in the published Parquet.",
                                               "row_count_matches_source": "Rows in DuckDB and Parquet equal the "
                                               "records the source returned for this window."}[name])
                   for table in stream.tables for name in CHECK_NAMES]

    @multi_asset(name=f"{source.name}__{stream.name}", specs=specs, check_specs=check_specs,
                 partitions_def=partitions if stream.partitioned else None, pool=pool_name(source.name),
                 required_resource_keys={resource_key, "warehouse"}, description=stream.description,
                 op_tags={"source": source.name})
    def _materialize(context) -> Iterator:  # AssetExecutionContext (a string hint breaks Dagster)
        api: SourceApiResource = getattr(context.resources, resource_key)
        warehouse = context.resources.warehouse.warehouse()
        window = None
        if stream.partitioned:
            time_window = context.partition_time_window
            window = PartitionWindow(date.fromisoformat(context.partition_key), time_window.start, time_window.end)

        pages_read = 0

        def progress(stream_: Stream, page, rows: int) -> None:
            nonlocal pages_read  # counted here: page labels are numbers, offsets or ids depending on the paginator
            pages_read += 1
            if pages_read % PROGRESS_EVERY_PAGES == 0:
                context.log.info(f"{source.name} {stream_.name}: {pages_read} pages (last: {page.number}), "
                                 f"{rows} rows so far")

        client = api.client(logger=context.log)
        try:
            report = (stream.loader or load_stream)(client, stream, warehouse, window=window, progress=progress)
        finally:
            client.close()
        context.log.info(f"{source.name} {stream.name}: {report.source_rows} in {report.pages} pages, "
                         f"{report.requests} requests, {report.throttled} x 429, {report.seconds:.1f}s")
        for table in stream.tables:
            yield MaterializeResult(asset_key=table_key(source, table), metadata=_run_metadata(report, table))
        for table in stream.tables:
            partition = window.key if window else None
            outcomes = [primary_key_check(warehouse, source.name, table, stream.partitioned, partition),
                        row_count_check(warehouse, source.name, table, partition, report.source_rows[table.name],
                                        loaded_since=report.started_at if report.mode == "upsert" else None)]
            for outcome in outcomes:
                yield _check_result(source, table, outcome)

    return _materialize


def _run_metadata(report: LoadReport, table: Table) -> dict:
    metadata = {
        "dagster/row_count": MetadataValue.int(report.source_rows[table.name]),
        "rows": MetadataValue.int(report.source_rows[table.name]),
        "pages": MetadataValue.int(report.pages),
        "requests": MetadataValue.int(report.requests),
        "http_429_received": MetadataValue.int(report.throttled),
        "retries": MetadataValue.int(report.retries),
        "token_refreshes": MetadataValue.int(report.token_refreshes),
        "rate_limit_wait_seconds": MetadataValue.float(report.rate_limit_wait_seconds),
        "duplicates_dropped": MetadataValue.int(report.duplicates_dropped),
        "outside_window_dropped": MetadataValue.int(report.outside_window_dropped),
        "duration_seconds": MetadataValue.float(report.seconds),
        "commit_seconds": MetadataValue.float(report.commit_seconds),
        "load_mode": MetadataValue.text(report.mode),
        "published_parquet": MetadataValue.text(", ".join(str(p) for p in report.published.get(table.name, []))),
    }
    if report.window is not None:
        metadata["window_start"] = MetadataValue.text(report.window.start.isoformat())
        metadata["window_end"] = MetadataValue.text(report.window.end.isoformat())
    return metadata


def _check_result(source: SourceSystem, table: Table, outcome: CheckOutcome) -> AssetCheckResult:
    return AssetCheckResult(asset_key=table_key(source, table), check_name=outcome.name, passed=outcome.passed,
                            severity=AssetCheckSeverity.ERROR, description=outcome.description,
                            metadata=outcome.metadata)


def source_definitions(source: SourceSystem, partitions: DailyPartitionsDefinition) -> dict[str, list]:
    """Assets, jobs and schedules of one source."""
    assets = [stream_assets(source, stream, partitions) for stream in source.streams]
    partitioned_keys = [table_key(source, t) for s in source.streams if s.partitioned for t in s.tables]
    snapshot_keys = [table_key(source, t) for s in source.streams if not s.partitioned for t in s.tables]
    jobs, schedules = [], []
    if partitioned_keys:
        daily_job = define_asset_job(f"{source.name}_daily", selection=AssetSelection.assets(*partitioned_keys),
                                     description=f"{source.title}: the daily-partitioned streams for one day.")
        jobs.append(daily_job)
        schedules.append(_recent_partitions_schedule(source, daily_job, partitions))
    if snapshot_keys:
        snapshot_job = define_asset_job(f"{source.name}_snapshot", selection=AssetSelection.assets(*snapshot_keys),
                                        description=f"{source.title}: the unpartitioned streams, pulled whole.")
        jobs.append(snapshot_job)
        schedules.append(ScheduleDefinition(name=f"{source.name}_snapshot_schedule", job=snapshot_job,
                                            cron_schedule="30 * * * *",
                                            default_status=DefaultScheduleStatus.RUNNING,
                                            execution_timezone=partitions.timezone,
                                            description=f"Refresh {source.title}'s unpartitioned streams hourly."))
    return {"assets": assets, "jobs": jobs, "schedules": schedules}


def _recent_partitions_schedule(source: SourceSystem, job, partitions: DailyPartitionsDefinition):
    @schedule(name=f"{source.name}_daily_schedule", job=job, cron_schedule="15 * * * *",
              default_status=DefaultScheduleStatus.RUNNING,
              execution_timezone=partitions.timezone,
              description=f"Every hour: today's {source.title} partition and the last MFG_SCHEDULE_LOOKBACK_DAYS "
                          "days (default 2), to catch late edits.")
    def _recent(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
        lookback = config.env_int("MFG_SCHEDULE_LOOKBACK_DAYS", 2, minimum=0)
        now = context.scheduled_execution_time
        existing = set(partitions.get_partition_keys(current_time=now))
        today = now.astimezone(config.partition_timezone()).date()
        for days_back in range(lookback + 1):
            key = (today - timedelta(days=days_back)).isoformat()
            if key in existing:
                yield RunRequest(run_key=f"{key}@{now.isoformat()}", partition_key=key)

    return _recent
