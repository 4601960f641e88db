"""One host of the many-machines test: a process tree with its own MFG_DATA_DIR and DAGSTER_HOME (the instance in
Postgres), running Dagster jobs as that host's run workers would:

    python -m mfg_pipeline_tests.cluster.worker TASK [TASK ...]
      plant:<name>                        the tasks after it are that plant's (a plants file names it)
      daily:<source>:<day>[,<day>...]    the source's partitioned job, one run per (the plant's) day
      cycle:<source>:<cycle>:<iso now>    every run of the source's hourly or daily schedule at that time
      feed:<ticks>                        changes-feed sensor ticks (the plant's), each followed by its apply run
      build                               the analytics layer (dbt build, marts' Parquet)
Exits non-zero with the failures' first lines.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime

from dagster import DagsterInstance, build_sensor_context

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.orchestration.changes_feed import build_changes_sensor
from mfg_pipeline.orchestration.cycles import QUIET, execute_cycle
from mfg_pipeline.orchestration.plant_partitions import Partitioning
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.sources.fusion_ops.changes import FEED
from mfg_pipeline.sources.registry import source_by_name

APPLY_JOB_NAME = FEED.apply_job_name


def failures_with_causes(results: list) -> list[str]:
    """Each failed step's error and the cause under it (a step's own error is only a wrapper)."""
    out = []
    for result in results:
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
                error, lines = event.step_failure_data.error, []
                while error is not None:
                    lines.append(error.message.strip())
                    error = error.cause
                out.append(" <- ".join(lines))
    return out


def run(task: str, instance: DagsterInstance, plant: str | None) -> list[str]:
    kind, _, rest = task.partition(":")
    defs = build_definitions()
    if kind == "daily":
        source, days = rest.split(":")
        job = defs.resolve_job_def(f"{source}_daily")
        partitioning = Partitioning.of(job.partitions_def)
        assert partitioning is not None and partitioning.by_plant == (plant is not None), (source, plant)
        results = [
            job.execute_in_process(
                instance=instance,
                partition_key=partitioning.key(plant, day) if plant else day,
                raise_on_error=False,
                run_config=QUIET,
            )
            for day in days.split(",")
        ]
        return failures_with_causes(results)
    if kind == "cycle":
        source, cycle, now = rest.split(":", 2)
        results = execute_cycle(defs, instance, source_by_name(source), cycle, datetime.fromisoformat(now), plant=plant)
        if not results:  # e.g. its days outside the partitions: a cycle that loads nothing must not pass
            return [f"the {cycle} cycle requested no run"]
        return failures_with_causes(results)
    if kind == "feed":
        failures, changes_sensor = [], build_changes_sensor(FEED, plant)
        for _ in range(int(rest)):
            context = build_sensor_context(
                instance=instance, resources={"sources": SourcesResource(), "warehouse": WarehouseResource()}
            )
            request = changes_sensor(context)
            if hasattr(request, "tags"):  # a RunRequest: apply what the tick journaled
                result = defs.resolve_job_def(APPLY_JOB_NAME).execute_in_process(
                    instance=instance, tags=request.tags, raise_on_error=False, run_config=QUIET
                )
                failures += failures_with_causes([result])
            time.sleep(1)
        return failures
    if kind == "build":
        from mfg_pipeline.analytics.definitions import BUILD_JOB, build_analytics_definitions

        job = build_analytics_definitions().resolve_job_def(BUILD_JOB)
        return failures_with_causes([job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)])
    raise SystemExit(f"unknown task {task!r}")


def main(tasks: list[str]) -> None:
    failures, plant = [], None
    with DagsterInstance.get() as instance:
        for task in tasks:
            if task.startswith("plant:"):
                plant = task.removeprefix("plant:")
                continue
            started = time.monotonic()
            failures += [f"{task}: {failure}" for failure in run(task, instance, plant)]
            print(f"{task}: {time.monotonic() - started:.1f}s", flush=True)
    if failures:
        raise SystemExit("\n".join(failures))


if __name__ == "__main__":
    main(sys.argv[1:])
