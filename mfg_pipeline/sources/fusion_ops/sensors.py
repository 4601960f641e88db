"""Dagster side of the changes feed: a sensor that journals the feed and asks for an apply run, and that job.

The sensor's own cursor is only saved after a tick finishes, so it is not where feed pages live: every page is in
the journal before the next feed call (see `changes.py`). Runs are requested with a run key naming the newest
pending batch, so a retried tick never starts a second run for the same batches; a run that failed is retried by a
later tick with a new key, and whatever it had not applied is still pending.
"""

from __future__ import annotations

import time
from datetime import date

from dagster import (AssetKey, AssetMaterialization, AssetSelection, AssetSpec, DagsterRunStatus,
                     DefaultSensorStatus, MaterializeResult, MetadataValue, RunRequest, RunsFilter, SkipReason,
                     define_asset_job, multi_asset, sensor)

from mfg_pipeline import config
from mfg_pipeline.orchestration.resources import SourceApiResource, WarehouseResource
from mfg_pipeline.orchestration.factory import table_metadata
from mfg_pipeline.records.schema import Table
from mfg_pipeline.sources.fusion_ops.changes import (CHANGE_LOG, SYSTEM, Channel, ChangeJournal, apply_pending,
                                                     channels_from_env, read_feed, tick_budget)
from mfg_pipeline.sources.fusion_ops.streams import FEED_ONLY_STREAMS
from mfg_pipeline.streams import Stream

APPLY_JOB_NAME = "fusion_ops_apply_changes"
THROUGH_TAG = "mfg/changes_through"
SENSOR_INTERVAL_SECONDS = 30
CHANGE_LOG_KEY = AssetKey([SYSTEM, CHANGE_LOG.name])


def _feed_only_tables(channels: list[Channel]) -> list[tuple[Stream, Table]]:
    """The tables only the changes feed fills (products, stock), for the channels configured."""
    configured = {channel.stream.name for channel in channels}
    return [(stream, table) for stream in FEED_ONLY_STREAMS if stream.name in configured for table in stream.tables]


def build_apply_asset(channels: list[Channel]):
    """`fusion_ops/change_log` plus the feed-only tables of the configured channels, materialized together by
    applying the journal (the partitioned tables it also changes are reported as materializations of theirs)."""
    feed_only = _feed_only_tables(channels)
    specs = [AssetSpec(CHANGE_LOG_KEY, group_name=SYSTEM, kinds={"duckdb", "parquet"}, tags={"source": SYSTEM},
                       description=CHANGE_LOG.description + " Materializing it applies every journaled feed batch, "
                       "in read order, to the Fusion tables (upserts and soft deletes); fusion_ops_changes_sensor "
                       "requests it.",
                       metadata={"dagster/table_name": f"{SYSTEM}.{CHANGE_LOG.name}",
                                 "primary_key": ", ".join(CHANGE_LOG.primary_key),
                                 "parquet_path": f"parquet/{SYSTEM}/{CHANGE_LOG.name}/date=YYYY-MM-DD/ (read day)"})]
    specs += [AssetSpec(AssetKey([SYSTEM, table.name]), group_name=SYSTEM, kinds={"duckdb", "parquet"},
                        description=table.description or stream.description, skippable=True,
                        metadata=table_metadata(SYSTEM, stream, table), tags={"source": SYSTEM})
              for stream, table in feed_only]
    feed_only_names = {table.name for _, table in feed_only}

    @multi_asset(name="fusion_ops_changes", specs=specs)
    def apply_changes(context, warehouse: WarehouseResource):
        report = apply_pending(ChangeJournal.for_data_dir(warehouse.path()), warehouse.warehouse(),
                               naive_timezone=config.env_timezone("FUSION_OPS_COMPANY_TIMEZONE", "UTC"),
                               partition_timezone=config.partition_timezone())
        context.log.info(f"applied {report.batches_applied} batches ({report.changes} changes, {report.deletions} "
                         f"deletions); {report.batches_skipped} already applied")
        # Tables pulled by the scheduled assets were changed too: say so on their partitions, so the UI shows it.
        first_day = date.fromisoformat(config.partition_start_date())
        changed = {"applied_from": MetadataValue.text("changes feed"),
                   "changes_in_run": MetadataValue.int(report.changes),
                   "deletions_in_run": MetadataValue.int(report.deletions)}
        for table, days in sorted(report.partitions_by_table.items()):
            if table in feed_only_names:
                yield MaterializeResult(asset_key=AssetKey([SYSTEM, table]), metadata=changed)
                continue
            for day in sorted(days, key=str):
                if day is not None and date.fromisoformat(day) < first_day:
                    continue  # a change to a record older than the first partition: landed, nothing to report
                context.log_event(AssetMaterialization(asset_key=AssetKey([SYSTEM, table]), partition=day,
                                                       metadata=changed))
        yield MaterializeResult(asset_key=CHANGE_LOG_KEY, metadata={
            "batches_applied": MetadataValue.int(report.batches_applied),
            "batches_already_applied": MetadataValue.int(report.batches_skipped),
            "changes": MetadataValue.int(report.changes), "deletions": MetadataValue.int(report.deletions)})

    return apply_changes


apply_changes_job = define_asset_job(APPLY_JOB_NAME, tags={"source": SYSTEM},
                                     selection=AssetSelection.assets(CHANGE_LOG_KEY).required_multi_asset_neighbors(),
                                     description="Apply the journaled Fusion Operations changes-feed batches to "
                                                 "the warehouse (requested by fusion_ops_changes_sensor).")


@sensor(name="fusion_ops_changes_sensor", job=apply_changes_job, minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description="Reads the Fusion Operations changes feed (FUSION_OPS_CHANGE_CHANNELS) into a durable journal "
                    "and requests a run that applies it. Each tick spends at most FUSION_OPS_FEED_CALLS_PER_TICK "
                    "calls and FUSION_OPS_FEED_SECONDS_PER_TICK seconds.")
def changes_sensor(context, fusion_ops_api: SourceApiResource, warehouse: WarehouseResource):
    journal = ChangeJournal.for_data_dir(warehouse.path())
    max_calls, seconds = tick_budget()
    deadline = time.monotonic() + seconds
    client = fusion_ops_api.client(logger=context.log)
    try:
        for channel in channels_from_env():
            report = read_feed(client, channel, journal, max_calls=max_calls, deadline=deadline)
            max_calls -= report.calls
            if report.records:
                context.log.info(f"channel {channel.name}: {report.records} changes in {report.calls} calls "
                                 f"({report.stopped_because})")
    finally:
        client.close()
    pending = journal.pending()
    if not pending:
        return SkipReason("no pending changes")
    through = pending[-1].id
    failed = context.instance.get_runs_count(RunsFilter(
        tags={THROUGH_TAG: through}, statuses=[DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]))
    return RunRequest(run_key=f"{through}#{failed}", tags={THROUGH_TAG: through})


def change_definitions() -> dict[str, list]:
    return {"assets": [build_apply_asset(channels_from_env())], "jobs": [apply_changes_job],
            "sensors": [changes_sensor]}
