"""Running a source's refresh cycle in this process, as the daemon would: evaluate the cycle's schedule at a given
time and execute every run it requests; and a job backfill, run by run. Used by the demo, the contract tests and
the refresh-cost benchmark."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from dagster import DagsterInstance, Definitions, ExecuteInProcessResult
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill  # the record the UI creates
from dagster._core.utils import make_new_backfill_id

from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.orchestration.factory import BACKFILL_ID_TAG, cycle_run_requests, table_key
from mfg_pipeline.orchestration.plant_partitions import Partitioning
from mfg_pipeline.plants import for_plant

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}  # failures are reported by the caller


def execute_cycle(
    defs: Definitions,
    instance: DagsterInstance,
    source: SourceSystem,
    cycle: str,
    now: datetime,
    run_config: Any = None,
    extra_tags: dict[str, str] | None = None,
    plant: str | None = None,
) -> list[ExecuteInProcessResult]:
    """Every run the `<source>_<cycle>_refresh` schedule (of `plant`, with plants side by side) requests at `now`,
    executed in order (with `extra_tags`, e.g. a forced child sweep)."""
    job = defs.resolve_job_def(f"{source.name}_refresh")
    partitioned = [table_key(source, t) for s in source.streams if s.partitioned for t in s.tables]
    results = []
    # The job's own partitions: the days its runs accept (the schedule's requests are built from the same).
    with for_plant(plant) if plant else contextlib.nullcontext():
        requests = list(cycle_run_requests(source, Partitioning.of(job.partitions_def), cycle, now, partitioned, plant))
    for request in requests:
        results.append(
            job.execute_in_process(
                instance=instance,
                partition_key=request.partition_key,
                asset_selection=request.asset_selection,
                tags={**request.tags, **(extra_tags or {})},
                raise_on_error=False,
                run_config=run_config or QUIET,
            )
        )
    return results


def execute_backfill(
    defs: Definitions,
    instance: DagsterInstance,
    job_name: str,
    partitions: list[str],
    at: datetime,
    tags: dict[str, str] | None = None,
) -> list[ExecuteInProcessResult]:
    """A job backfill over `partitions` as Dagster's backfill daemon runs one: recorded on the instance, then
    one run per partition carrying the backfill's tag (here in order, in this process; `tags` are added)."""
    backfill_id = make_new_backfill_id()
    instance.add_backfill(
        PartitionBackfill(
            backfill_id=backfill_id,
            status=BulkActionStatus.REQUESTED,
            from_failure=False,
            tags={},
            backfill_timestamp=at.timestamp(),
            partition_names=partitions,
        )
    )
    job = defs.resolve_job_def(job_name)
    return [
        job.execute_in_process(
            instance=instance,
            partition_key=partition,
            tags={BACKFILL_ID_TAG: backfill_id, **(tags or {})},
            raise_on_error=False,
            run_config=QUIET,
        )
        for partition in partitions
    ]


def failures_of(results: list[ExecuteInProcessResult]) -> list[str]:
    """The error message of every failed step."""
    return [
        event.step_failure_data.error.message
        for result in results
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error
    ]
