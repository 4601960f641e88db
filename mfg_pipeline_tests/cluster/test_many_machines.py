"""Many machines: two hosts with separate local data directories (nothing shared on disk) share only a Postgres
server (the lake's catalog, Dagster's storage, the request budget, the writer locks) and an S3 server (the lake's
data files, the published Parquet). They load different sources and days at once, one runs the changes feed while
the other runs dbt, and a third process reads throughout: every record lands once, the marts equal the truth,
the shared rate limit holds across both, and no read fails. Then plants: two hosts load a plant each (every
vendor) into one lake, and each plant's records, local days, budgets and marts hold as on one machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, RunsFilter

from mfg_pipeline.simulators.base import busiest_window
from mfg_pipeline.simulators.catalog import PLANT_TIMEZONE
from mfg_pipeline.simulators.fusion_ops.live import LiveShop
from mfg_pipeline.simulators.serving import plants_file, start_plants, start_simulators
from mfg_pipeline.sources.registry import all_sources
from mfg_pipeline.warehouse.access import write_attach_file
from mfg_pipeline.warehouse.extensions import ensure_installed
from mfg_pipeline.warehouse.lake import extensions_for
from mfg_pipeline.warehouse.settings import WarehouseSettings
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests import analyst_session
from mfg_pipeline_tests.analytics import truth
from mfg_pipeline_tests.analytics.per_plant import (
    COMPANY_LIMIT,
    LANDED,
    assert_days_are_local,
    assert_each_company_kept_its_limit,
    assert_landed_once_under_its_plant,
    assert_marts_equal_the_truth,
)
from mfg_pipeline_tests.conftest import LIFTED_RATE_LIMIT, SIM_NOW
from mfg_pipeline_tests.contract.kits import KITS, days_back
from mfg_pipeline_tests.servers import Postgres, S3Server, start_postgres, start_s3

pytestmark = pytest.mark.xdist_group("cluster")
REPO = Path(__file__).resolve().parents[2]
FUSION_LIMIT = 80  # requests a minute: both hosts' Fusion calls (114) must fit one budget, so they wait
FUSION_HISTORY_DAYS, HISTORY_DAYS = 5, 30
COUNT = "SELECT count(*) FROM fusion_ops.productions_current"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    postgres = start_postgres(root / "postgres")
    try:
        s3 = start_s3(root / "s3", buckets=("mfg",))
    except BaseException:
        postgres.stop()
        raise
    try:
        yield postgres, s3, root
    finally:
        s3.stop()
        postgres.stop()


def shared_engines(postgres: Postgres, s3: S3Server, prefix: str) -> dict[str, str]:
    """The settings that put a deployment's lake, budgets and Dagster storage on the shared Postgres and S3
    servers (databases and bucket folders named with `prefix`, so each test has its own)."""
    return {
        **s3.environment(),
        "MFG_WAREHOUSE_CATALOG": postgres.create_database(f"{prefix}lake"),
        "MFG_WAREHOUSE_DATA_PATH": f"s3://mfg/{prefix}lake/",
        "MFG_PARQUET_PATH": f"s3://mfg/{prefix}published/",
        "MFG_RATE_LIMIT_BACKEND": postgres.create_database(f"{prefix}ratelimit"),
        # Dagster's storage speaks psycopg2 (dagster-postgres); SQLAlchemy 2.1 would pick psycopg 3 otherwise.
        "MFG_DAGSTER_POSTGRES_URL": postgres.create_database(f"{prefix}dagster").replace(
            "postgresql://", "postgresql+psycopg2://"
        ),
        "MFG_PARTITION_START_DATE": (SIM_NOW.date() - timedelta(days=10)).isoformat(),
    }


def host_environment(root: Path, name: str, shared: dict[str, str]) -> dict[str, str]:
    data = root / name
    home = data / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    return {**os.environ, **shared, "MFG_DATA_DIR": str(data), "DAGSTER_HOME": str(home)}


def start(env: dict[str, str], *tasks: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mfg_pipeline_tests.cluster.worker", *tasks],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> None:
    stdout, stderr = process.communicate(timeout=900)
    print(stdout)  # each task's time
    assert process.returncode == 0, stderr[-4000:]


def test_two_hosts_sharing_only_postgres_and_s3_land_everything_once(servers, monkeypatch):
    postgres, s3, root = servers
    sources = all_sources()
    fusion = [s for s in sources if s.name == "fusion_ops"]
    others = [s for s in sources if s.name != "fusion_ops"]
    limits = {s.name: LIFTED_RATE_LIMIT for s in others} | {"fusion_ops": FUSION_LIMIT}
    groups = [
        start_simulators(fusion, now=SIM_NOW, rate_limits=limits, history_days=FUSION_HISTORY_DAYS),
        start_simulators(others, now=SIM_NOW, rate_limits=limits, history_days=HISTORY_DAYS),
    ]
    try:
        apps = {name: server.app for running in groups for name, server in running.servers.items()}
        shared = {
            **{k: v for running in groups for k, v in running.env.items()},  # with the clients' budgets
            **shared_engines(postgres, s3, ""),
            "MFG_PARTITION_TIMEZONE": PLANT_TIMEZONE,
            "FUSION_OPS_APPLY_LINGER_SECONDS": "0",
            "FUSION_OPS_APPLY_MIN_INTERVAL_SECONDS": "0",
        }
        host_a, host_b = host_environment(root, "host_a", shared), host_environment(root, "host_b", shared)
        reader_env = host_environment(root, "reader", shared)
        for key, value in reader_env.items():
            monkeypatch.setenv(key, value)
        days = sorted(days_back(SIM_NOW.date(), 6))
        shop = LiveShop(apps["fusion_ops"], seed=9)  # changes waiting in the feed before anyone reads it
        for _ in range(30):
            shop.step()

        now = SIM_NOW.isoformat()
        a = start(host_a, f"daily:fusion_ops:{','.join(d.isoformat() for d in days[:3])}", "feed:2")
        b = start(
            host_b,
            f"daily:fusion_ops:{','.join(d.isoformat() for d in days[3:])}",
            f"cycle:fusion_ops:daily:{now}",
            *(f"cycle:{s.name}:daily:{now}" for s in others),
        )
        finish(b)  # the first rows are in: the analyst starts reading (and keeps at it until the end)
        reader, stop = start_reader(root, reader_env)
        try:
            finish(a)
            a, b = start(host_a, "feed:2"), start(host_b, "build")  # the feed on one host, dbt on the other
            finish(a)
            finish(b)
        finally:
            stop.touch()
            out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err[-3000:]
        polled = json.loads(out.strip().splitlines()[-1])
        assert polled["errors"] == [] and polled["reads"] > 0, polled

        warehouse = Warehouse(root / "reader")
        assert_every_record_landed_once(warehouse, apps, set(days))
        assert_marts_of_the_one_plant_equal_the_truth(warehouse, apps)
        served = apps["fusion_ops"].requests()
        assert not [r for r in served if r.status == 429]
        assert busiest_window([r.time for r in served], 60.0) <= FUSION_LIMIT
        assert len(served) > FUSION_LIMIT  # more than one minute's budget: the hosts had to share it
        assert published_in_the_bucket(warehouse, "fusion_ops", "productions") > 0
        with DagsterInstance.from_config(str(Path(host_a["DAGSTER_HOME"]))) as instance:
            tagged = {r.tags.get("mfg/source") for r in instance.get_runs(RunsFilter())}
        assert {"fusion_ops", "lagerkoll", "analytics"} <= tagged  # both hosts' runs in one history
    finally:
        for running in groups:
            running.stop()


def test_two_hosts_load_a_plant_each_into_one_lake_and_each_plants_records_days_budgets_and_marts_hold(
    servers, monkeypatch
):
    postgres, s3, root = servers
    sources = all_sources()
    history = {s.name: FUSION_HISTORY_DAYS if s.name == "fusion_ops" else HISTORY_DAYS for s in sources}
    limits = {s.name: COMPANY_LIMIT for s in sources}
    plants = start_plants(sources, 2, now=SIM_NOW, history_days=history, rate_limits=limits)
    try:
        text, secrets = plants_file(plants, sources)
        shared = {
            **secrets,
            **shared_engines(postgres, s3, "plants_"),
        }
        hosts = {}
        for name in ("plants_host_a", "plants_host_b", "plants_reader"):
            env = host_environment(root, name, shared)
            for variable in ("MFG_PLANT", "MFG_PARTITION_TIMEZONE"):
                env.pop(variable, None)  # each plant's zone decides its days
            (path := Path(env["MFG_DATA_DIR"]) / "plants.yaml").write_text(text)  # each host its own copy
            hosts[name] = {**env, "MFG_PLANTS_FILE": str(path)}
        now = SIM_NOW.isoformat()
        workers = [
            start(hosts[host], f"plant:{plant.name}", *(f"cycle:{s.name}:daily:{now}" for s in sources))
            for host, plant in zip(("plants_host_a", "plants_host_b"), plants, strict=True)
        ]
        for worker in workers:
            finish(worker)
        finish(start(hosts["plants_host_b"], "build"))

        for key, value in hosts["plants_reader"].items():
            monkeypatch.setenv(key, value)
        warehouse = Warehouse(root / "plants_reader")
        rows = warehouse.query
        for table, key, held in LANDED:
            assert_landed_once_under_its_plant(rows, plants, table, key, held)
        assert_days_are_local(rows, plants)
        assert_marts_equal_the_truth(rows, plants)
        assert_each_company_kept_its_limit(plants)
    finally:
        for plant in plants:
            plant.running.stop()


def start_reader(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    settings = WarehouseSettings.from_env(root / "reader")
    with duckdb.connect(config={"extension_directory": str(settings.extension_dir)}) as connection:
        ensure_installed(connection, extensions_for(settings))  # attach.sql only loads
    attach = write_attach_file(settings)
    stop = root / "reader" / "stop"
    # A new session a second: each one loads the extensions and attaches the lake (a few hundred ms of CPU); the
    # quarter-second case is core/test_concurrent_access.py's.
    return analyst_session.start("poll", attach, COUNT, str(stop), "1", env=env), stop


def assert_every_record_landed_once(warehouse: Warehouse, apps: dict, days: set[date]) -> None:
    for name, kit in KITS.items():
        expected, landed = kit.truth(apps[name], days), kit.landed(warehouse, days)
        for table in expected:
            assert landed[table] == expected[table], f"{name}.{table}"
    for schema, table, key in (("fusion_ops", "productions", "id"), ("lagerkoll", "production_orders", "order_id")):
        duplicated = warehouse.query(
            f"SELECT count(*) FROM (SELECT {key} FROM {schema}.{table} GROUP BY {key} HAVING count(*) > 1)"
        )
        assert duplicated == [(0,)], f"{schema}.{table}"


def assert_marts_of_the_one_plant_equal_the_truth(warehouse: Warehouse, apps: dict) -> None:
    fusion = apps["fusion_ops"]
    downtime = {
        (m, d): minutes
        for m, d, minutes in warehouse.query(
            "SELECT machine_code, downtime_date, sum(duration_minutes) FROM marts.fct_downtime GROUP BY ALL"
        )
    }
    assert downtime == pytest.approx(truth.downtime_minutes_by_machine_day(fusion))
    scrap = warehouse.query(
        "SELECT product_code, production_date, good_quantity, waste_quantity FROM marts.mart_scrap_daily"
    )
    assert {(p, d): (g, w) for p, d, g, w in scrap} == truth.good_and_waste_by_product_day(fusion)
    board = warehouse.query("SELECT order_key, state, quantity_ordered, quantity_done FROM marts.mart_order_board")
    assert {key: (state, ordered, done) for key, state, ordered, done in board} == truth.order_board(apps)


def published_in_the_bucket(warehouse: Warehouse, schema: str, table: str) -> int:
    pattern = warehouse.published_glob(schema, table, partitioned=True)
    assert pattern.startswith("s3://")
    return int(warehouse.query("SELECT count(*) FROM read_parquet(?)", [pattern])[0][0])
