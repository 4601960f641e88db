"""The warehouse's daily upkeep as a Dagster job (`warehouse/maintenance.py` does the work): merged files, expired
snapshots, removed files and pruned feed journals, each figure on the run's output in the UI."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dagster import (
    DefaultScheduleStatus,
    Definitions,
    MetadataValue,
    Nothing,
    Out,
    Output,
    ScheduleDefinition,
    job,
    op,
)

from mfg_pipeline import config
from mfg_pipeline.orchestration.factory import CYCLE_TAG, SOURCE_TAG
from mfg_pipeline.orchestration.failures import explained_failures
from mfg_pipeline.orchestration.resources import WarehouseResource
from mfg_pipeline.plants import for_plant, plant_names
from mfg_pipeline.warehouse.journal import FeedJournal
from mfg_pipeline.warehouse.maintenance import RETENTION_VARIABLE, maintain, retention_days
from mfg_pipeline.warehouse.store import Warehouse

MAINTENANCE_JOB = "warehouse_maintenance"
MAINTENANCE_CRON = "30 3 * * *"  # after the daily refresh (02:45), before the working day
WAREHOUSE = "warehouse"
JournalFactory = Callable[[Warehouse], FeedJournal]


def maintenance_definitions(journals: Sequence[JournalFactory] = ()) -> Definitions:
    """The job and its daily schedule; `journals` are the feed journals to prune (each source with a feed)."""

    @op(
        name="maintain_warehouse",
        out=Out(Nothing),
        tags={SOURCE_TAG: WAREHOUSE},
        description="Merge small files, rewrite files full of deleted rows, expire snapshots older than "
        f"{RETENTION_VARIABLE} days, remove files no snapshot needs, prune applied feed journal pages.",
    )
    def maintain_warehouse(context, warehouse: WarehouseResource) -> Any:  # context: see factory
        store = warehouse.warehouse()
        with explained_failures(WAREHOUSE, "maintenance"):
            report = maintain(store)
            pruned = 0
            for plant in plant_names():  # each plant's company has its own feed journal
                with for_plant(plant):
                    pruned += sum(make(store).prune() for make in journals)
        context.log.info(f"warehouse maintenance: {report.summary()}; {pruned} applied feed pages pruned")
        yield Output(
            None,
            metadata={
                "data_files_before": MetadataValue.int(report.data_files_before),
                "data_files_after": MetadataValue.int(report.data_files_after),
                "snapshots_before": MetadataValue.int(report.snapshots_before),
                "snapshots_after": MetadataValue.int(report.snapshots_after),
                "files_removed": MetadataValue.int(report.files_removed),
                "feed_pages_pruned": MetadataValue.int(pruned),
                "time_travel_days": MetadataValue.int(retention_days()),
                "table_groups": MetadataValue.text(", ".join(report.groups)),
                "duration_seconds": MetadataValue.float(report.seconds),
            },
        )

    @job(
        name=MAINTENANCE_JOB,
        tags={SOURCE_TAG: WAREHOUSE, CYCLE_TAG: "maintenance"},
        description="The warehouse's daily upkeep (see README, 'Upkeep').",
    )
    def maintenance_job() -> None:
        maintain_warehouse()

    schedule = ScheduleDefinition(
        name="warehouse_daily_maintenance",
        job=maintenance_job,
        cron_schedule=MAINTENANCE_CRON,
        execution_timezone=config.partition_timezone().key,
        default_status=DefaultScheduleStatus.RUNNING,
        description="Every day at 03:30: merge the day's small files, expire old snapshots, remove unused files.",
    )
    return Definitions(jobs=[maintenance_job], schedules=[schedule])
