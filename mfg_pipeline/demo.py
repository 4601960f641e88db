"""The demo's runs: each source's days and snapshots through the real jobs, in this process, recorded on the
Dagster instance (so `dagster dev` shows them), with one line per run and one line per distinct failure. An entry
point beside `cli.py`: it alone imports both the sources' definitions and the analytics layer's."""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TextIO

from dagster import AssetCheckSeverity, DagsterInstance, Definitions

from mfg_pipeline import config
from mfg_pipeline.analytics.layout import source_systems
from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.orchestration.cycles import QUIET
from mfg_pipeline.sources.registry import selected
from mfg_pipeline.warehouse.layout import INTERNAL_SCHEMA
from mfg_pipeline.warehouse.store import Warehouse

Echo = Callable[..., Any]
FAILURE_CLASS = "dagster._core.definitions.events.Failure"  # how a step's Failure is named in its error message


def demo_runs(source: SourceSystem, days: int) -> list[tuple[str, str | None]]:
    """(job, partition) pairs: the older days of the partitioned streams, then every stream for today."""
    today = datetime.now(config.partition_timezone()).date()
    runs: list[tuple[str, str | None]] = []
    if any(s.partitioned for s in source.streams):
        runs += [(f"{source.name}_daily", (today - timedelta(days=n)).isoformat()) for n in reversed(range(1, days))]
        runs.append((f"{source.name}_refresh", today.isoformat()))
    else:
        runs.append((f"{source.name}_refresh", None))
    return runs


def run_demo(sources: Sequence[SourceSystem], days: int, echo: Echo) -> int:
    """Run every source's demo runs, then build the analytics layer when every system it reads was loaded;
    returns how many runs failed. Prints the warehouse's tables at the end."""
    defs = build_definitions(reach_back_to=datetime.now(config.partition_timezone()).date() - timedelta(days=days - 1))
    failures = 0
    seen_errors: set[str] = set()
    with DagsterInstance.get() as instance:
        for source in map(selected, sources):
            for job_name, partition in demo_runs(source, days):
                failures += not run_job(defs, instance, job_name, partition, echo, seen_errors)
        loaded, needed = {s.name for s in sources}, source_systems()
        if needed <= loaded:
            from mfg_pipeline.analytics.definitions import BUILD_JOB, build_analytics_definitions

            # dbt's progress lines stay out of the demo's lines (dbt keeps them in dbt_project/logs/dbt.log).
            terminal = _echo_to(sys.stdout, echo)
            with contextlib.redirect_stdout(io.StringIO()):
                built = run_job(build_analytics_definitions(), instance, BUILD_JOB, None, terminal, seen_errors)
            failures += not built
        else:
            echo(f"- analytics layer skipped: it reads {', '.join(sorted(needed - loaded))} too")
    print_tables(echo)
    return failures


def _echo_to(stdout: TextIO, echo: Echo) -> Echo:
    """`echo` whose standard-output lines go to `stdout`, wherever `sys.stdout` is redirected meanwhile."""
    return lambda *args, **kwargs: echo(*args, **kwargs) if kwargs.get("err") else echo(*args, file=stdout, **kwargs)


def run_job(
    defs: Definitions,
    instance: DagsterInstance,
    job_name: str,
    partition: str | None,
    echo: Echo,
    seen_errors: set[str],
) -> bool:
    job = defs.resolve_job_def(job_name)
    echo(f"- {job_name}" + (f" [{partition}]" if partition else "") + " ...", nl=False)
    began = time.monotonic()
    result = job.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False, run_config=QUIET)
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
        if materialization.partition not in (None, partition) or "rows" not in materialization.metadata:
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


def print_tables(echo: Echo) -> None:
    warehouse = Warehouse(config.data_dir())
    rows = [(schema, table) for schema, table in warehouse.lake.tables() if schema != INTERNAL_SCHEMA]
    where = warehouse.settings.describe()
    echo(f"\nWarehouse (DuckLake): catalog {where['catalog']}, data files {where['data_path']}")
    echo(f"  {'table':45} {'rows':>8}")
    for schema, table in rows:
        count = warehouse.query(f'SELECT count(*) FROM "{schema}"."{table}"')[0][0]
        echo(f"  {schema + '.' + table:45} {count:>8}")
    echo(f"Parquet under {warehouse.parquet_path}")
    echo(f"Query it: {warehouse.settings.attach_file} (or .venv/bin/mfg-pipeline sql)")
