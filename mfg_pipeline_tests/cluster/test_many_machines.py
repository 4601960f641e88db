"""Many machines: two hosts with separate local data directories (nothing shared on disk) share only a Postgres
server (the lake's catalog, Dagster's storage, the request budgets, the writer locks) and an S3 server (the lake's
data files, the published Parquet). They load two plants (Berlin and Chicago, every vendor, overlapping ids) into
one lake: different sources, plants and days at once, Berlin's Fusion days on both hosts under one company budget,
the changes feed on one host while the other runs dbt, and a third process reading throughout. Every record lands
once under its own plant, each plant's days are its local days, the marts equal the truth per plant, every
company's rate limit holds across both hosts, and no read fails: the one-machine checks of
analytics/test_two_plants_end_to_end.py, held by two hosts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, RunsFilter

from mfg_pipeline.simulators.fusion_ops.live import LiveShop
from mfg_pipeline.simulators.serving import plants_file, start_plants
from mfg_pipeline.sources.registry import all_sources
from mfg_pipeline.warehouse.access import write_attach_file
from mfg_pipeline.warehouse.extensions import ensure_installed
from mfg_pipeline.warehouse.lake import extensions_for
from mfg_pipeline.warehouse.layout import published_glob
from mfg_pipeline.warehouse.settings import WarehouseSettings
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests import analyst_session
from mfg_pipeline_tests.analytics.per_plant import (
    COMPANY_LIMIT,
    LANDED,
    apps_of,
    assert_days_are_local,
    assert_each_company_kept_its_limit,
    assert_landed_once_under_its_plant,
    assert_marts_equal_the_truth,
)
from mfg_pipeline_tests.conftest import SIM_NOW
from mfg_pipeline_tests.contract.kits import KITS, days_back
from mfg_pipeline_tests.servers import Postgres, S3Server, start_postgres, start_s3

pytestmark = pytest.mark.xdist_group("cluster")
REPO = Path(__file__).resolve().parents[2]
# Requests a minute of each plant's Fusion company: Berlin's calls from both hosts (over a hundred) must fit one
# budget, so they wait.
FUSION_LIMIT = 80
FUSION_HISTORY_DAYS, HISTORY_DAYS = 5, 30
HOSTS = ("host_a", "host_b", "reader")
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


def shared_engines(postgres: Postgres, s3: S3Server) -> dict[str, str]:
    """The settings that put a deployment's lake, budgets and Dagster storage on the shared Postgres and S3
    servers."""
    return {
        **s3.environment(),
        "MFG_WAREHOUSE_CATALOG": postgres.create_database("lake"),
        "MFG_WAREHOUSE_DATA_PATH": "s3://mfg/lake/",
        "MFG_PARQUET_PATH": "s3://mfg/published/",
        "MFG_RATE_LIMIT_BACKEND": postgres.create_database("ratelimit"),
        # Dagster's storage speaks psycopg2 (dagster-postgres); SQLAlchemy 2.1 would pick psycopg 3 otherwise.
        "MFG_DAGSTER_POSTGRES_URL": postgres.create_database("dagster").replace(
            "postgresql://", "postgresql+psycopg2://"
        ),
        "MFG_PARTITION_START_DATE": (SIM_NOW.date() - timedelta(days=10)).isoformat(),
    }


def host_environment(root: Path, name: str, shared: dict[str, str], plants: str) -> dict[str, str]:
    """A host's environment: its own data directory, Dagster home and copy of the plants file, and the shared
    settings (each plant's zone decides its days, so no deployment-wide plant or zone)."""
    data = root / name
    home = data / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    (plants_path := data / "plants.yaml").write_text(plants)
    env = {**os.environ, **shared, "MFG_DATA_DIR": str(data), "DAGSTER_HOME": str(home)}
    for variable in ("MFG_PLANT", "MFG_PARTITION_TIMEZONE"):
        env.pop(variable, None)
    return {**env, "MFG_PLANTS_FILE": str(plants_path)}


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


def test_two_hosts_sharing_only_postgres_and_s3_load_two_plants_and_every_record_lands_once_under_its_plant(
    servers, monkeypatch
):
    postgres, s3, root = servers
    sources = all_sources()
    history = {s.name: FUSION_HISTORY_DAYS if s.name == "fusion_ops" else HISTORY_DAYS for s in sources}
    limits = {s.name: COMPANY_LIMIT for s in sources} | {"fusion_ops": FUSION_LIMIT}
    plants = start_plants(sources, 2, now=SIM_NOW, history_days=history, rate_limits=limits)
    berlin = plants[0]
    try:
        text, secrets = plants_file(plants, sources)
        shared = {
            **secrets,
            **shared_engines(postgres, s3),
            "FUSION_OPS_APPLY_LINGER_SECONDS": "0",
            "FUSION_OPS_APPLY_MIN_INTERVAL_SECONDS": "0",
        }
        host_a, host_b, reader_env = (host_environment(root, name, shared, text) for name in HOSTS)
        for key, value in reader_env.items():
            monkeypatch.setenv(key, value)
        days = sorted(days_back(SIM_NOW.date(), 6))
        shop = LiveShop(apps_of(berlin)["fusion_ops"], seed=9)  # changes waiting in the feed before anyone reads it
        for _ in range(30):
            shop.step()

        def cycles(*names: str) -> list[str]:
            return [f"cycle:{name}:daily:{SIM_NOW.isoformat()}" for name in names]

        others = [s.name for s in sources if s.name != "fusion_ops"]
        # Berlin's Fusion days on both hosts at once (one company's budget shared across them), its feed on one;
        # the rest of both plants split between them, so that each host's share takes about as long (Berlin's
        # Fusion cycle on host B waits a minute for its budget while host A loads Chicago's Fusion and Fulcrum).
        a = start(
            host_a,
            "plant:berlin",
            f"daily:fusion_ops:{','.join(d.isoformat() for d in days[:3])}",
            "feed:2",
            *cycles(*others),
            "plant:chicago",
            *cycles("fusion_ops", "fulcrum"),
        )
        b = start(
            host_b,
            "plant:berlin",
            f"daily:fusion_ops:{','.join(d.isoformat() for d in days[3:])}",
            *cycles("fusion_ops"),
            "plant:chicago",
            *cycles(*(name for name in others if name != "fulcrum")),
        )
        finish(a)  # the first rows are in: the analyst starts reading (and keeps at it until the end)
        reader, stop = start_reader(root, reader_env)
        try:
            finish(b)
            a, b = start(host_a, "plant:berlin", "feed:2"), start(host_b, "build")  # the feed on one, dbt on the other
            finish(a)
            finish(b)
        finally:
            stop.touch()
            out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err[-3000:]
        polled = json.loads(out.strip().splitlines()[-1])
        assert polled["errors"] == [] and polled["reads"] > 0, polled

        warehouse = Warehouse(Path(reader_env["MFG_DATA_DIR"]))
        rows = warehouse.query
        for table, key, held in LANDED:
            assert_landed_once_under_its_plant(rows, plants, table, key, held)
        for plant in plants:  # every table of every vendor, as the contract suite compares them
            apps = apps_of(plant)
            for name, kit in KITS.items():
                expected, landed = kit.truth(apps[name], set(days)), kit.landed(warehouse, set(days), plant.name)
                for table in expected:
                    assert landed[table] == expected[table], f"{plant.name}: {name}.{table}"
        assert_days_are_local(rows, plants)
        assert_marts_equal_the_truth(rows, plants)
        assert_each_company_kept_its_limit(plants)
        # More than one minute's budget: the two hosts had to share it (and kept it: above).
        assert len(apps_of(berlin)["fusion_ops"].requests()) > FUSION_LIMIT
        for plant in plants:  # what Power BI reads: each plant's current productions, in the bucket
            current = rows("SELECT count(*) FROM fusion_ops.productions_current WHERE plant = ?", [plant.name])
            assert published_in_the_bucket(warehouse, "fusion_ops", "productions", plant.name) == current[0][0] > 0
        with DagsterInstance.from_config(str(Path(host_a["DAGSTER_HOME"]))) as instance:
            runs = instance.get_runs(RunsFilter())
        # Both hosts' runs in one history: Lagerkoll's loads ran on host A, the analytics build on host B.
        assert {"fusion_ops", "lagerkoll", "analytics"} <= {r.tags.get("mfg/source") for r in runs}
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


def published_in_the_bucket(warehouse: Warehouse, schema: str, table: str, plant: str) -> int:
    """Rows of the plant's published Parquet of a partitioned table (its own folder level in the bucket)."""
    pattern = published_glob(warehouse.parquet_path, schema, table, partitioned=True, plant=plant)
    assert pattern.startswith("s3://")
    return int(warehouse.query("SELECT count(*) FROM read_parquet(?)", [pattern])[0][0])
