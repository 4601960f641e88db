"""`mfg-pipeline`: run the demo or one job, serve the simulators, start `dagster dev` wired to them, and the
warehouse's upkeep (sql, migrate, maintain, rezone)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import click

from mfg_pipeline import config
from mfg_pipeline.declarations import SourceSystem

DEFAULT_SIM_PORT = 8701
REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_DATA_DIR = "data/dev"  # `dev` keeps its warehouse and Dagster history apart from the demo's


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
    from mfg_pipeline.sources.registry import all_sources

    with DagsterInstance.get() as instance:
        return apply_pool_limits(instance, all_sources(), overwrite=overwrite)


def _selected(names: str) -> list[SourceSystem]:
    from mfg_pipeline.sources.registry import all_sources

    wanted = [n for n in names.split(",") if n]
    sources = [s for s in all_sources() if not wanted or s.name in wanted]
    unknown = set(wanted) - {s.name for s in sources}
    if unknown:
        raise click.BadParameter(
            f"unknown sources {sorted(unknown)}; registered: {[s.name for s in all_sources()]}", param_hint="--sources"
        )
    return sources


def _start_simulators(
    sources: Sequence[SourceSystem], first_port: int, live_interval: float = 0.0, rate_limit: int | None = None
) -> Any:
    """Serve the simulators and point this process's environment at them; with `live_interval`, they keep
    changing (a create, update or delete every that many seconds) so the changes feed and the refresh cycles
    have news. `rate_limit` replaces every vendor's documented limit, in the simulators and the clients' budgets."""
    from mfg_pipeline.simulators.catalog import PLANT_TIMEZONE
    from mfg_pipeline.simulators.serving import start_simulators

    _simulated_plant_only()
    os.environ.setdefault("MFG_PARTITION_TIMEZONE", PLANT_TIMEZONE)  # the simulated plant's days
    limits = {source.name: rate_limit for source in sources} if rate_limit else None
    try:
        running = start_simulators(sources, now=datetime.now(timezone.utc), first_port=first_port, rate_limits=limits)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    os.environ.update(running.env)
    running.start_live(live_interval)
    return running


def _start_plants(sources: Sequence[SourceSystem], count: int) -> list[Any]:
    """Serve `count` simulated plants and load them side by side: the warehouse moves to <data dir>/plants-N/,
    where a plants file naming them is written (their secrets in this process's environment, by reference)."""
    from mfg_pipeline.plants import PLANT_VARIABLE, PLANTS_FILE_VARIABLE
    from mfg_pipeline.simulators.serving import plants_file, start_plants

    _simulated_plant_only()
    for variable in (PLANT_VARIABLE, config.PARTITION_ZONE_VARIABLE):  # each plant's zone decides its days
        os.environ.pop(variable, None)
    data_dir = config.data_dir() / f"plants-{count}"
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["MFG_DATA_DIR"] = str(data_dir)
    plants = start_plants(sources, count, now=datetime.now(timezone.utc))
    text, secrets = plants_file(plants, sources)
    path = data_dir / "plants.yaml"
    path.write_text(text)
    os.environ.update(secrets)
    os.environ[PLANTS_FILE_VARIABLE] = str(path)
    click.echo(f"{count} simulated plants on localhost, listed in {path}:")
    for plant in plants:
        servers = ", ".join(f"{n} {s.url}" for n, s in plant.running.servers.items())
        click.echo(f"  {plant.name} ({plant.timezone}): {servers}")
    return [plant.running for plant in plants]


LIVE_OPTION = click.option(
    "--live-interval",
    default=5.0,
    show_default=True,
    help="Seconds between live changes in the simulators (0: frozen).",
)


def _simulated_plant_only() -> None:
    """The simulators are one plant of their own: a plants file (whose vendors are real) does not apply to them."""
    from mfg_pipeline.plants import PLANTS_FILE_VARIABLE

    if os.environ.pop(PLANTS_FILE_VARIABLE, None):
        click.echo(f"{PLANTS_FILE_VARIABLE} set: ignored here, the simulators are the plant", err=True)


RATE_LIMIT_OPTION = click.option(
    "--simulator-rate-limit",
    "rate_limit",
    type=click.IntRange(min=1),
    default=None,
    help="Requests a minute every simulator allows, and the pipeline's budget for each (default: each vendor's "
    "documented limit; a high value skips the waits of a first load).",
)


@click.group()
def main() -> None:
    """Manufacturing data from five vendor APIs into DuckDB and Parquet, on Dagster."""


@main.command()
@click.option("--days", default=7, show_default=True, help="Daily partitions to load, ending today.")
@click.option("--sources", default="", help="Comma-separated source names (default: all registered).")
@click.option(
    "--against-env",
    is_flag=True,
    help="Use the vendor URLs and credentials in the environment instead of the local simulators.",
)
@click.option(
    "--plants",
    "plant_count",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Simulated plants, each its own company at every vendor, in its own zone (Europe/Berlin, America/Chicago, "
    "Asia/Shanghai, ...) with its own records and overlapping ids. More than one load side by side into "
    "<data dir>/plants-N/, from the plants file written there.",
)
def demo(days: int, sources: str, against_env: bool, plant_count: int) -> None:
    """Start the simulators on localhost and load every source into data/ (DuckLake + Parquet), then build the
    analytics layer."""
    from mfg_pipeline.demo import run_demo
    from mfg_pipeline.plants import PLANTS_FILE_VARIABLE

    selected = _selected(sources)
    if against_env and plant_count > 1:
        raise click.BadParameter(
            f"simulated plants only; with --against-env the plants are those of {PLANTS_FILE_VARIABLE}",
            param_hint="--plants",
        )
    started = time.monotonic()
    running: list[Any] = []
    try:
        if plant_count > 1:
            running = _start_plants(selected, plant_count)
        elif not against_env:
            running = [_start_simulators(selected, first_port=0)]
            click.echo("Simulators on localhost: " + ", ".join(f"{n} {s.url}" for n, s in running[0].servers.items()))
        home = _dagster_home()
        click.echo(f"Data: {config.data_dir()}  (Dagster runs recorded in {home})")
        failures = run_demo(selected, days, echo=click.echo)
        served = [r for group in running for s in group.servers.values() for r in s.app.requests()]
        if running:
            click.echo(
                f"Requests served by the simulators: {len(served)} "
                f"({sum(r.status == 429 for r in served)} answered 429)"
            )
        click.echo(f"Time taken: {time.monotonic() - started:.1f}s")
    finally:
        for group in running:
            group.stop()
    if failures:
        raise click.ClickException(f"{failures} run(s) failed; the first line of each failure is above")


@main.command()
@click.option("--port", default=DEFAULT_SIM_PORT, show_default=True, help="First port; one port per simulator.")
@click.option("--sources", default="", help="Comma-separated sources (default: all registered).")
@LIVE_OPTION
@RATE_LIMIT_OPTION
def simulators(port: int, sources: str, live_interval: float, rate_limit: int | None) -> None:
    """Serve the vendor simulators until Ctrl-C, and print the environment that points at them."""
    running = _start_simulators(_selected(sources), first_port=port, live_interval=live_interval, rate_limit=rate_limit)
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
@click.option(
    "--preload-days",
    default=7,
    show_default=True,
    help="On the first start (nothing loaded yet), load this many days as the demo does before the UI opens, so "
    "it shows data and evaluated checks (0: start empty).",
)
@RATE_LIMIT_OPTION
def dev(
    dagster_args: tuple[str, ...], port: int, live_interval: float, preload_days: int, rate_limit: int | None
) -> None:
    """`dagster dev` with the simulators running, live, and the environment pointing at them.

    Its warehouse and Dagster history live under data/dev/ (MFG_DATA_DIR), apart from the demo's, so the
    simulators' live changes never mix with a demo run. On the first start it loads what the demo loads. Schedules
    and the sensor are on; extra arguments go to `dagster dev`."""
    from mfg_pipeline.warehouse.store import Warehouse

    os.environ["MFG_DATA_DIR"] = str(dev_data_dir())
    sources = _selected("")
    running = _start_simulators(sources, first_port=port, live_interval=live_interval, rate_limit=rate_limit)
    home = _dagster_home()
    click.echo("Simulators: " + ", ".join(f"{n} {s.url}" for n, s in running.servers.items()))
    click.echo(f"Data: {config.data_dir()}  (Dagster home {home})")
    try:
        if preload_days > 0 and Warehouse(config.data_dir()).first_partition_day() is None:
            _preload(sources, preload_days)
        # Run from DAGSTER_HOME: `dagster dev` warns about any dagster.yaml in its working folder that is not the
        # home's, and the repository's copy (the template) is exactly that.
        command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), *dagster_args]
        # `dagster dev` says it is superseded by `dg dev`; both run the same webserver and daemon, and `dg dev`
        # would run from the repository (and warn about its dagster.yaml). Silence only that warning (by its
        # message).
        env = {**os.environ, "PYTHONWARNINGS": "ignore:Function `dev_command` is superseded"}
        raise SystemExit(subprocess.call(command, env=env, cwd=home))
    finally:
        running.stop()


def _preload(sources: Sequence[SourceSystem], days: int) -> None:
    """Load what the demo loads, into dev's warehouse and instance (the UI then shows those runs)."""
    from mfg_pipeline.demo import run_demo

    click.echo(
        f"First start: loading {days} day{'s' * (days != 1)} as the demo does, so the UI opens on data and "
        "evaluated checks (--preload-days 0 skips this; the runs show in the UI)"
    )
    if failed := run_demo(sources, days, echo=click.echo):
        click.echo(f"{failed} preload run(s) failed; the UI shows why", err=True)


@main.command(name="run")
@click.argument("target")
@click.option("--partition", help="A day (YYYY-MM-DD) of the partitioned streams; a source then runs <source>_daily.")
@click.option(
    "--simulators",
    "against",
    flag_value="simulators",
    help="Start the simulators, as the demo does, and load from them into MFG_DATA_DIR (default data/).",
)
@click.option(
    "--dev",
    "against",
    flag_value="dev",
    help="Load into dev's warehouse (data/dev/) from the simulators `mfg-pipeline dev` is serving; the run shows "
    "in its UI.",
)
def run_command(target: str, partition: str | None, against: str | None) -> None:
    """Run one job: TARGET is a job name, a source (`fusion_ops`: its refresh job, or with --partition its daily
    job) or `analytics`. Against the vendors in the environment unless --simulators or --dev; recorded on the
    Dagster instance of the data folder (DAGSTER_HOME, default <MFG_DATA_DIR>/dagster_home)."""
    from mfg_pipeline.demo import DemoRun, run_job
    from mfg_pipeline.simulators.catalog import PLANT_TIMEZONE

    running = None
    if against == "dev":
        _simulated_plant_only()
        os.environ["MFG_DATA_DIR"] = str(dev_data_dir())
        os.environ.setdefault("MFG_PARTITION_TIMEZONE", PLANT_TIMEZONE)
        os.environ.update(_dev_simulator_env())
    elif against == "simulators":
        running = _start_simulators(_selected(""), first_port=0)
    try:
        home = _dagster_home()
        defs, job_name = _job_for(target, partition)
        click.echo(f"Data: {config.data_dir()}  (Dagster runs recorded in {home})")
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:
            succeeded = run_job(defs, instance, DemoRun.of(job_name, partition), click.echo, set())
    finally:
        if running:
            running.stop()
    if not succeeded:
        raise click.ClickException(f"{job_name} failed; the first line of each failure is above")


def _job_for(target: str, partition: str | None) -> tuple[Any, str]:
    """(definitions, job name) for a job name, a source name or `analytics`."""
    from mfg_pipeline.sources.registry import all_sources

    if target == "analytics":
        from mfg_pipeline.analytics.definitions import BUILD_JOB, build_analytics_definitions

        return build_analytics_definitions(), BUILD_JOB
    from mfg_pipeline.definitions import build_definitions

    try:
        day = date.fromisoformat(partition) if partition else None
    except ValueError:
        raise click.BadParameter(f"{partition!r} is not a day (YYYY-MM-DD)", param_hint="--partition") from None
    defs = build_definitions(reach_back_to=day)
    names = {s.name for s in all_sources()}
    job_name = (f"{target}_daily" if partition else f"{target}_refresh") if target in names else target
    jobs = sorted(job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__"))
    if job_name not in jobs:
        raise click.BadParameter(
            f"{target!r} is neither a source ({', '.join(sorted(names))}), `analytics`, nor a job ({', '.join(jobs)})",
            param_hint="TARGET",
        )
    return defs, job_name


def _dev_simulator_env() -> dict[str, str]:
    """The environment `dev` gives its runs: its simulators on ports 8701.., one per source in registry order."""
    from mfg_pipeline.simulators.serving import simulator_of
    from mfg_pipeline.sources.registry import all_sources

    env: dict[str, str] = {}
    for index, source in enumerate(all_sources()):
        url = f"http://127.0.0.1:{DEFAULT_SIM_PORT + index}"
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex(("127.0.0.1", DEFAULT_SIM_PORT + index)) != 0:
                raise click.ClickException(f"nothing serves {source.name} on {url}: start `mfg-pipeline dev` first")
        env.update(simulator_of(source).env(url))
    return env


def dev_data_dir() -> Path:
    """Where `dev` keeps its warehouse and Dagster history: MFG_DATA_DIR if set, else data/dev/."""
    return Path(os.environ.get("MFG_DATA_DIR") or REPO_ROOT / DEV_DATA_DIR).resolve()


@main.command()
@click.option("--overwrite", is_flag=True, help="Reset limits someone changed back to the sources' defaults.")
def pools(overwrite: bool) -> None:
    """Set each vendor's concurrency pool limit on the Dagster instance (DAGSTER_HOME, default
    <MFG_DATA_DIR>/dagster_home); `demo` and `dev` do this for their own instance."""
    if not os.environ.get("DAGSTER_HOME"):
        _dagster_home(apply_pools=False)  # applied just below, with the caller's overwrite
    for pool, limit in _apply_pool_limits(overwrite).items():
        click.echo(f"{pool}: {limit}")


@main.command(name="plants")
def plants_command() -> None:
    """Check the plants file (MFG_PLANTS_FILE) and show its plants: each one's zone and vendor settings, secrets
    only as the variables that hold them (and whether those are set), and which plant this installation loads."""
    from mfg_pipeline.http.errors import ConfigurationError
    from mfg_pipeline.plants import report
    from mfg_pipeline.sources.registry import all_sources

    try:
        lines = report(all_sources())
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    for line in lines:
        click.echo(line)


@main.command(name="sql")
@click.option("-c", "--command", "statements", help="Run these statements (;-separated), print their results, exit.")
def sql_command(statements: str | None) -> None:
    """A read-only SQL session on the warehouse (MFG_DATA_DIR, MFG_WAREHOUSE_*), as MFG_DATA_DIR/attach.sql gives
    any DuckDB client: `SELECT * FROM fusion_ops.productions_current LIMIT 5;`. Without -c, an interactive shell
    (statements end with `;`, `.quit` or Ctrl-D leaves)."""
    from mfg_pipeline.warehouse.access import SqlSession

    try:
        session = SqlSession.open()
    except Exception as exc:  # no lake yet, or a setting that cannot be used: one line, not a trace
        raise click.ClickException(str(exc).splitlines()[0]) from None
    if statements is not None:
        session.run(statements, click.echo)
        return
    session.shell(click.echo)


@main.command()
@click.option("--from", "old_file", type=click.Path(dir_okay=False), help="Default: MFG_DATA_DIR/warehouse.duckdb.")
@click.option(
    "--reader-python",
    type=click.Path(dir_okay=False),
    help="A Python whose duckdb opens the old file (default: this one, else a private venv with DuckDB 2.x).",
)
def migrate(old_file: str | None, reader_python: str | None) -> None:
    """Copy the single-file warehouse (data/warehouse.duckdb) into the lake: every table, its comments, the
    current-state views and the pipeline's state; row counts and key sets are verified equal. The old file is left
    in place."""
    from mfg_pipeline.warehouse.migrate import MigrationError
    from mfg_pipeline.warehouse.migrate import migrate as run_migration
    from mfg_pipeline.warehouse.store import Warehouse

    warehouse = Warehouse(config.data_dir())
    try:
        report = run_migration(warehouse, Path(old_file) if old_file else None, reader_python)
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    for table, rows in report.tables.items():
        click.echo(f"  {table:45} {rows:>8} rows (count and keys equal)")
    click.echo(
        f"Migrated {len(report.tables)} tables, {report.views} views and {report.journal_pages} pending feed pages "
        f"into {warehouse.settings.describe()['catalog']}; the old file is unchanged."
    )


@main.command()
def maintain() -> None:
    """Run the warehouse's upkeep now (what the warehouse_daily_maintenance schedule runs at 03:30)."""
    from mfg_pipeline.warehouse.maintenance import maintain as run_maintenance
    from mfg_pipeline.warehouse.store import Warehouse

    click.echo(f"warehouse maintenance: {run_maintenance(Warehouse(config.data_dir())).summary()}")


@main.command()
def rezone() -> None:
    """Move the warehouse to the partition zone MFG_PARTITION_TIMEZONE now names: every row of the partitioned
    tables to its day in that zone, the days that changed republished, the zone recorded. Until then, loads with
    a zone other than the recorded one refuse to write (they would soft-delete valid rows)."""
    from mfg_pipeline.sources.registry import all_sources
    from mfg_pipeline.warehouse.built_with import ZonedTable
    from mfg_pipeline.warehouse.store import Warehouse

    warehouse = Warehouse(config.data_dir())
    zone = config.zone_name(config.partition_timezone())
    recorded = warehouse.recorded_settings().get(config.PARTITION_ZONE_VARIABLE)
    tables = [
        ZonedTable(
            source.name,
            stream.table,
            stream.window.time_column,
            tuple((c.table, c.parent_key) for c in stream.children),
        )
        for source in all_sources()
        for stream in source.streams
        if stream.window is not None and warehouse.has_table(source.name, stream.table.name)
    ]
    moved = warehouse.rezone(tables, zone)
    for table, rows in moved.items():
        click.echo(f"  {table:45} {rows:>8} rows moved to another day")
    click.echo(f"Partition zone: {recorded or 'never recorded'} -> {zone} ({sum(moved.values())} rows moved).")


if __name__ == "__main__":
    main()
