"""`mfg-pipeline`: run the demo, serve the simulators, or start `dagster dev` wired to them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click

from mfg_pipeline import config

DEFAULT_SIM_PORT = 8701
REPO_ROOT = Path(__file__).resolve().parent.parent


def _dagster_home(apply_pools: bool = True) -> Path:
    """DAGSTER_HOME, or `<data dir>/dagster_home`, so runs from the demo show up in `dagster dev` later."""
    home = Path(os.environ.get("DAGSTER_HOME") or config.data_dir() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    packaged = REPO_ROOT / "dagster.yaml"
    if packaged.exists() and not (home / "dagster.yaml").exists():
        shutil.copy(packaged, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    if apply_pools:
        _apply_pool_limits(overwrite=False)
    return home


def _apply_pool_limits(overwrite: bool) -> dict[str, int]:
    from dagster import DagsterInstance

    from mfg_pipeline.orchestration.pools import apply_pool_limits
    from mfg_pipeline.sources.registry import ALL_SOURCES

    with DagsterInstance.get() as instance:
        return apply_pool_limits(instance, ALL_SOURCES, overwrite=overwrite)


def _start_simulators(systems: list[str], first_port: int, rate_limits: dict[str, int] | None = None,
                      live_interval: float = 0.0):
    """Serve the simulators and point this process's environment at them; with `live_interval`, the Fusion shop
    keeps changing (a create, update or delete every that many seconds) so the changes feed has news."""
    from mfg_pipeline.simulators.fusion_ops.live import LiveShop
    from mfg_pipeline.simulators.registry import start_simulators

    running = start_simulators(systems, now=datetime.now(timezone.utc), first_port=first_port,
                               rate_limits=rate_limits)
    os.environ.update(running.env)
    if live_interval > 0 and "fusion_ops" in running.servers:
        LiveShop(running.servers["fusion_ops"].app, interval_seconds=live_interval).start()  # daemon thread
    return running


LIVE_OPTION = click.option("--live-interval", default=5.0, show_default=True,
                           help="Seconds between live changes in the Fusion simulator (0: a frozen shop).")


@click.group()
def main() -> None:
    """Manufacturing data from five vendor APIs into DuckDB and Parquet, on Dagster."""


@main.command()
@click.option("--days", default=3, show_default=True, help="Daily partitions to load, ending today.")
@click.option("--sources", default="", help="Comma-separated source names (default: all).")
@click.option("--against-env", is_flag=True,
              help="Use the vendor URLs and credentials in the environment instead of the local simulators.")
def demo(days: int, sources: str, against_env: bool) -> None:
    """Start the simulators on localhost and load every source into data/ (DuckDB + Parquet)."""
    from dagster import DagsterInstance

    from mfg_pipeline.definitions import build_definitions
    from mfg_pipeline.sources.registry import ALL_SOURCES

    selected = [s for s in ALL_SOURCES if not sources or s.name in sources.split(",")]
    started = time.monotonic()
    running = None if against_env else _start_simulators([s.name for s in selected], first_port=0)
    if running:
        click.echo("Simulators on localhost: " + ", ".join(f"{n} {s.url}" for n, s in running.servers.items()))
    home = _dagster_home()
    defs = build_definitions()
    instance = DagsterInstance.get()
    click.echo(f"Data: {config.data_dir()}  (Dagster runs recorded in {home})")
    today = datetime.now(config.partition_timezone()).date()
    partitions = [(today - timedelta(days=n)).isoformat() for n in reversed(range(days))]
    failures = 0
    try:
        for source in selected:
            jobs = [(f"{source.name}_snapshot", None)] if any(not s.partitioned for s in source.streams) else []
            if any(s.partitioned for s in source.streams):
                jobs += [(f"{source.name}_daily", key) for key in partitions]
            for job_name, partition in jobs:
                failures += not _run_job(defs, instance, job_name, partition)
        _print_summary(running, started)
    finally:
        if running:
            running.stop()
    if failures:
        raise click.ClickException(f"{failures} run(s) failed; see the errors above")


def _run_job(defs, instance, job_name: str, partition: str | None) -> bool:
    job = defs.resolve_job_def(job_name)
    label = f"{job_name}" + (f" [{partition}]" if partition else "")
    click.echo(f"- {label} ...", nl=False)
    began = time.monotonic()
    result = job.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False,
                                    run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
    seconds = time.monotonic() - began
    if not result.success:
        click.echo(f" FAILED after {seconds:.1f}s")
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
                click.echo(f"    {event.step_key}: {event.step_failure_data.error.message.strip()}", err=True)
        return False
    parts, requests_made, throttled = [], 0, 0
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        metadata = materialization.metadata
        parts.append(f"{materialization.asset_key.path[-1]} {metadata['rows'].value}")
        requests_made = max(requests_made, metadata["requests"].value)
        throttled = max(throttled, metadata["http_429_received"].value)
    checks = result.get_asset_check_evaluations()
    failed_checks = [c.check_name for c in checks if not c.passed]
    click.echo(f" {', '.join(parts)} rows; checks {len(checks) - len(failed_checks)}/{len(checks)} passed; "
               f"{seconds:.1f}s")
    if failed_checks:
        click.echo(f"    failed checks: {', '.join(failed_checks)}", err=True)
    return not failed_checks


def _print_summary(running, started: float) -> None:
    from mfg_pipeline.warehouse.store import Warehouse

    warehouse = Warehouse(config.data_dir())
    rows = warehouse.query("SELECT schema_name, table_name, estimated_size FROM duckdb_tables() "
                           "ORDER BY schema_name, table_name")
    click.echo(f"\n{warehouse.duckdb_path}")
    click.echo(f"  {'table':45} {'rows':>8}")
    for schema, table, _ in rows:
        count = warehouse.query(f'SELECT count(*) FROM "{schema}"."{table}"')[0][0]
        click.echo(f"  {schema + '.' + table:45} {count:>8}")
    click.echo(f"Parquet under {warehouse.parquet_root}")
    if running:
        served = [r for s in running.servers.values() for r in s.app.requests()]
        click.echo(f"Requests served by the simulators: {len(served)} "
                   f"({sum(r.status == 429 for r in served)} answered 429)")
    click.echo(f"Time taken: {time.monotonic() - started:.1f}s")


@main.command()
@click.option("--port", default=DEFAULT_SIM_PORT, show_default=True, help="First port; one port per simulator.")
@click.option("--sources", default="", help="Comma-separated systems (default: all five).")
@LIVE_OPTION
def simulators(port: int, sources: str, live_interval: float) -> None:
    """Serve the five vendor simulators until Ctrl-C, and print the environment that points at them."""
    from mfg_pipeline.simulators.registry import SIMULATORS

    systems = [s for s in SIMULATORS if not sources or s in sources.split(",")]
    running = _start_simulators(systems, first_port=port, live_interval=live_interval)
    for name, value in running.env.items():
        click.echo(f"export {name}={value}")
    click.echo("# serving; Ctrl-C to stop", err=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dagster_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--port", default=DEFAULT_SIM_PORT, show_default=True, help="First simulator port.")
@LIVE_OPTION
def dev(dagster_args: tuple[str, ...], port: int, live_interval: float) -> None:
    """`dagster dev` with the simulators running and the environment pointing at them.

    Schedules and sensors are started too (see the README); extra arguments go to `dagster dev`."""
    from mfg_pipeline.simulators.registry import SIMULATORS

    running = _start_simulators(list(SIMULATORS), first_port=port, live_interval=live_interval)
    _dagster_home()
    click.echo("Simulators: " + ", ".join(f"{n} {s.url}" for n, s in running.servers.items()))
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), *dagster_args]
    try:
        raise SystemExit(subprocess.call(command, env=os.environ.copy()))
    finally:
        running.stop()


@main.command()
@click.option("--overwrite", is_flag=True, help="Reset limits someone changed back to the sources' defaults.")
def pools(overwrite: bool) -> None:
    """Set each vendor's concurrency pool limit on the Dagster instance (DAGSTER_HOME, default
    <MFG_DATA_DIR>/dagster_home); `demo` and `dev` do this for their own instance."""
    if not os.environ.get("DAGSTER_HOME"):
        _dagster_home(apply_pools=False)  # applied just below, with the caller's overwrite
    for pool, limit in _apply_pool_limits(overwrite).items():
        click.echo(f"{pool}: {limit}")


if __name__ == "__main__":
    main()
