"""The demo's runs: each source's days and snapshots through the real jobs, in this process, recorded on the
Dagster instance (so `dagster dev` shows them), with one line per run and one line per distinct failure. An entry
point beside `cli.py`: it alone imports both the sources' definitions and the analytics layer's."""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TextIO

from dagster import AssetCheckSeverity, DagsterInstance, Definitions

from mfg_pipeline import config
from mfg_pipeline.analytics.layout import source_systems
from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.orchestration.cycles import QUIET
from mfg_pipeline.orchestration.plant_partitions import PLANT_TAG, Partitioning
from mfg_pipeline.plants import for_plant, plants_side_by_side
from mfg_pipeline.sources.registry import selected
from mfg_pipeline.warehouse.layout import INTERNAL_SCHEMA
from mfg_pipeline.warehouse.store import Warehouse

Echo = Callable[..., Any]
FAILURE_CLASS = "dagster._core.definitions.events.Failure"  # how a step's Failure is named in its error message


@dataclass(frozen=True)
class DemoRun:
    job: str
    partition: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    label: str = ""  # what the run's line names besides the job: its day, and its plant among several

    @classmethod
    def of(cls, job: str, partition: str | None) -> DemoRun:
        return cls(job, partition, label=partition or "")


def demo_runs(source: SourceSystem, days: int, partitioning: Partitioning | None, plant: str | None) -> list[DemoRun]:
    """The older days of the partitioned streams, then every stream for today; with plants side by side (`plant`
    set), those of `plant`, on its own calendar (called inside `for_plant`)."""
    today = datetime.now(config.partition_timezone()).date()
    tags = {PLANT_TAG: plant} if plant else {}
    prefix = f"{plant} " if plant else ""
    if partitioning is None:
        return [DemoRun(f"{source.name}_refresh", None, tags, plant or "")]
    runs = []
    for day in [today - timedelta(days=n) for n in reversed(range(days))]:
        job = f"{source.name}_refresh" if day == today else f"{source.name}_daily"
        key = partitioning.key(plant, day.isoformat()) if plant else day.isoformat()
        runs.append(DemoRun(job, key, {}, prefix + day.isoformat()))
    return runs


def run_demo(sources: Sequence[SourceSystem], days: int, echo: Echo) -> int:
    """Run every source's demo runs (for each plant, when several load side by side), then build the analytics
    layer when every system it reads was loaded; returns how many runs failed. Prints the warehouse's tables at
    the end."""
    side_by_side = tuple(plant.name for plant in plants_side_by_side())
    earliest = min(_today(plant) for plant in side_by_side or (None,))
    defs = build_definitions(reach_back_to=earliest - timedelta(days=days - 1))
    failures = 0
    seen_errors: set[str] = set()
    with DagsterInstance.get() as instance:
        for plant in side_by_side or (None,):
            with for_plant(plant) if plant else contextlib.nullcontext():
                for source in map(selected, sources):
                    partitioning = Partitioning.of(defs.resolve_job_def(f"{source.name}_refresh").partitions_def)
                    for run in demo_runs(source, days, partitioning, plant):
                        failures += not run_job(defs, instance, run, echo, seen_errors)
        loaded, needed = {s.name for s in sources}, source_systems()
        if needed <= loaded:
            from mfg_pipeline.analytics.definitions import BUILD_JOB, build_analytics_definitions

            # dbt's progress lines stay out of the demo's lines (dbt keeps them in dbt_project/logs/dbt.log).
            terminal = _echo_to(sys.stdout, echo)
            with contextlib.redirect_stdout(io.StringIO()):
                built = run_job(build_analytics_definitions(), instance, DemoRun(BUILD_JOB), terminal, seen_errors)
            failures += not built
        else:
            echo(f"- analytics layer skipped: it reads {', '.join(sorted(needed - loaded))} too")
    print_tables(echo, side_by_side)
    return failures


def _today(plant: str | None) -> date:
    """Today in `plant`'s zone (None: the partition zone of the environment)."""
    with for_plant(plant) if plant else contextlib.nullcontext():
        return datetime.now(config.partition_timezone()).date()


def _echo_to(stdout: TextIO, echo: Echo) -> Echo:
    """`echo` whose standard-output lines go to `stdout`, wherever `sys.stdout` is redirected meanwhile."""
    return lambda *args, **kwargs: echo(*args, **kwargs) if kwargs.get("err") else echo(*args, file=stdout, **kwargs)


def run_job(defs: Definitions, instance: DagsterInstance, run: DemoRun, echo: Echo, seen_errors: set[str]) -> bool:
    """Execute one run and print its line (and the first line of each new failure)."""
    job = defs.resolve_job_def(run.job)
    echo(f"- {run.job}" + (f" [{run.label}]" if run.label else "") + " ...", nl=False)
    began = time.monotonic()
    result = job.execute_in_process(
        instance=instance,
        partition_key=run.partition,
        tags=dict(run.tags),
        raise_on_error=False,
        run_config=QUIET,
    )
    seconds = time.monotonic() - began
    if not result.success:
        echo(f" FAILED after {seconds:.1f}s")
        for event in result.all_events:
            error = event.step_failure_data.error if event.is_step_failure and event.step_failure_data else None
            if error is None:
                continue
            first_line = error.message.strip().splitlines()[0].removeprefix(f"{FAILURE_CLASS}: ")
            if first_line not in seen_errors:  # a cause shared by every step of a source is said once
                seen_errors.add(first_line)
                echo(f"    {event.step_key}: {first_line}", err=True)
        return False
    rows = []
    materialized = result.get_asset_materialization_events()
    for event in materialized:
        materialization = event.materialization
        if materialization.partition not in (None, run.partition) or "rows" not in materialization.metadata:
            continue
        rows.append(f"{materialization.asset_key.path[-1]} {materialization.metadata['rows'].value}")
    checks = result.get_asset_check_evaluations()
    failed = [c.check_name for c in checks if not c.passed and c.severity == AssetCheckSeverity.ERROR]
    warned = [c.check_name for c in checks if not c.passed and c.severity != AssetCheckSeverity.ERROR]
    written = f"{', '.join(rows)} rows" if rows else f"{len(materialized)} assets"
    echo(f" {written}; checks {len(checks) - len(failed) - len(warned)}/{len(checks)} passed; {seconds:.1f}s")
    if failed:
        echo(f"    failed checks: {', '.join(failed)}", err=True)
    if warned:
        echo(f"    checks with warnings: {', '.join(warned)}", err=True)
    return not failed


def print_tables(echo: Echo, plants: Sequence[str] = ()) -> None:
    """Every table's rows (with plants side by side, each plant's beside the total)."""
    warehouse = Warehouse(config.data_dir())
    rows = [(schema, table) for schema, table in warehouse.lake.tables() if schema != INTERNAL_SCHEMA]
    where = warehouse.settings.describe()
    echo(f"\nWarehouse (DuckLake): catalog {where['catalog']}, data files {where['data_path']}")
    echo(f"  {'table':45} {'rows':>8}" + ("  " + "  ".join(f"{p:>10}" for p in plants) if plants else ""))
    for schema, table in rows:
        count = warehouse.query(f'SELECT count(*) FROM "{schema}"."{table}"')[0][0]
        line = f"  {schema + '.' + table:45} {count:>8}"
        if plants:
            per_plant = dict(warehouse.query(f'SELECT plant, count(*) FROM "{schema}"."{table}" GROUP BY ALL'))
            line += "  " + "  ".join(f"{per_plant.get(p, 0):>10}" for p in plants)
        echo(line)
    echo(f"Parquet under {warehouse.parquet_path}")
    echo(f"Query it: {warehouse.settings.attach_file} (or .venv/bin/mfg-pipeline sql)")
