"""Dagster side of the changes feed: a sensor that journals the feed and asks for an apply run, and that job.

The sensor's own cursor is only saved after a tick finishes, so it is not where feed pages live: every page is in
the journal before the next feed call (see `changes.py`). Runs are requested with a run key naming the newest
pending batch, so a retried tick never starts a second run for the same batches; a run that failed is retried by a
later tick with a new key, and whatever it had not applied is still pending.
"""

from __future__ import annotations

import time
from datetime import date

from dagster import (AssetKey, AssetMaterialization, DagsterRunStatus, DefaultSensorStatus, MaterializeResult,
                     MetadataValue, RunRequest, RunsFilter, SkipReason, asset, define_asset_job, sensor)

from mfg_pipeline import config
from mfg_pipeline.orchestration.resources import SourceApiResource, WarehouseResource
from mfg_pipeline.sources.fusion_ops.changes import (CHANGE_LOG, SYSTEM, ChangeJournal, apply_pending,
                                                     channels_from_env, read_feed, tick_budget)

APPLY_JOB_NAME = "fusion_ops_apply_changes"
THROUGH_TAG = "mfg/changes_through"
SENSOR_INTERVAL_SECONDS = 30


@asset(key=AssetKey([SYSTEM, CHANGE_LOG.name]), group_name=SYSTEM, kinds={"duckdb", "parquet"},
       description=CHANGE_LOG.description + " Materializing it applies every journaled feed batch, in read order, "
                   "to the Fusion tables (upserts and soft deletes); fusion_ops_changes_sensor requests it.",
       metadata={"dagster/table_name": f"{SYSTEM}.{CHANGE_LOG.name}",
                 "primary_key": ", ".join(CHANGE_LOG.primary_key)},
       tags={"source": SYSTEM})
def change_log(context, warehouse: WarehouseResource) -> MaterializeResult:
    report = apply_pending(ChangeJournal.for_data_dir(warehouse.path()), warehouse.warehouse(),
                           naive_timezone=config.env_timezone("FUSION_OPS_COMPANY_TIMEZONE", "UTC"),
                           partition_timezone=config.partition_timezone())
    context.log.info(f"applied {report.batches_applied} batches ({report.changes} changes, {report.deletions} "
                     f"deletions); {report.batches_skipped} already applied")
    # The tables the changes landed in were changed too: say so on their partitions, so the UI shows it.
    first_day = date.fromisoformat(config.partition_start_date())
    for table, days in sorted(report.partitions_by_table.items()):
        for day in sorted(days, key=str):
            if day is not None and date.fromisoformat(day) < first_day:
                continue  # a change to a record older than the first partition: landed, nothing to report
            context.log_event(AssetMaterialization(
                asset_key=AssetKey([SYSTEM, table]), partition=day,
                metadata={"applied_from": MetadataValue.text("changes feed"),
                          "changes_in_run": MetadataValue.int(report.changes),
                          "deletions_in_run": MetadataValue.int(report.deletions)}))
    return MaterializeResult(metadata={"batches_applied": MetadataValue.int(report.batches_applied),
                                       "batches_already_applied": MetadataValue.int(report.batches_skipped),
                                       "changes": MetadataValue.int(report.changes),
                                       "deletions": MetadataValue.int(report.deletions)})


apply_changes_job = define_asset_job(APPLY_JOB_NAME, selection=[change_log], tags={"source": SYSTEM},
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
    return {"assets": [change_log], "jobs": [apply_changes_job], "sensors": [changes_sensor]}
