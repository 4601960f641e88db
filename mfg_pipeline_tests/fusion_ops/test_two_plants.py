"""Two plants side by side in one deployment and one warehouse: Fusion companies in Europe/Berlin and
America/Chicago whose record ids overlap. The partitioned tables are one asset each with plant x day partitions,
each plant has its own schedules (on its clock) and feed sensor, and each plant's day lands exactly the records
its own company holds for its own local day, under its own plant, in the lake and in its Parquet folder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, MultiPartitionKey, MultiPartitionsDefinition

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.engine.refresh import HOURLY
from mfg_pipeline.orchestration.cycles import execute_cycle, failures_of
from mfg_pipeline.simulators.base import SimulatorServer
from mfg_pipeline.simulators.fusion_ops.app import FusionOpsSimulator
from mfg_pipeline.simulators.fusion_ops.data import FusionDataset
from mfg_pipeline.sources.registry import source_by_name
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests.conftest import SIM_NOW
from mfg_pipeline_tests.fusion_ops.conftest import API_KEY, API_SECRET
from mfg_pipeline_tests.fusion_ops.test_fusion_end_to_end import expected_productions

DAY = date(2026, 11, 10)
PLANTS = {"berlin": ("Europe/Berlin", 42), "chicago": ("America/Chicago", 7)}


@pytest.fixture
def two_companies(data_dir, tmp_path, monkeypatch) -> Iterator[dict[str, FusionOpsSimulator]]:
    """A Fusion simulator per plant, and a plants file naming both (secrets by variable); no FUSION_OPS_* set."""
    servers, simulators, entries = [], {}, []
    for plant, (zone, seed) in PLANTS.items():
        dataset = FusionDataset(seed=seed, now=SIM_NOW, company_timezone=zone)
        simulator = FusionOpsSimulator(dataset, api_key=API_KEY, api_secret=API_SECRET, rate_limit_per_minute=6000)
        servers.append(SimulatorServer(simulator).start())
        simulators[plant] = simulator
        monkeypatch.setenv(f"{plant.upper()}_FUSION_KEY", API_KEY)
        monkeypatch.setenv(f"{plant.upper()}_FUSION_SECRET", API_SECRET)
        entries.append(
            f"  - name: {plant}\n"
            f"    timezone: {zone}\n"
            "    sources:\n"
            "      fusion_ops:\n"
            f"        FUSION_OPS_BASE_URL: {servers[-1].url}\n"
            f"        FUSION_OPS_API_KEY: ${{{plant.upper()}_FUSION_KEY}}\n"
            f"        FUSION_OPS_API_SECRET: ${{{plant.upper()}_FUSION_SECRET}}\n"
            f"        FUSION_OPS_COMPANY_TIMEZONE: {zone}\n"
            "        FUSION_OPS_RATE_LIMIT_PER_MINUTE: 6000\n"
        )
    for variable in ("FUSION_OPS_BASE_URL", "FUSION_OPS_API_KEY", "FUSION_OPS_API_SECRET", "MFG_PLANT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("MFG_PARTITION_TIMEZONE", raising=False)
    plants_file = tmp_path / "plants.yaml"
    plants_file.write_text("plants:\n" + "".join(entries))
    monkeypatch.setenv("MFG_PLANTS_FILE", str(plants_file))
    yield simulators
    for server in servers:
        server.stop()


def productions_of(warehouse: Warehouse, plant: str, day: date) -> dict[int, tuple]:
    rows = warehouse.query(
        """
        SELECT p.id, p.start_time, p.end_time, p.quantity, p.worker_number, p.product_code, p.lot_number,
               p.work_time_seconds, p.production_order_id, count(w.position), coalesce(sum(w.quantity), 0)
        FROM fusion_ops.productions p
        LEFT JOIN fusion_ops.production_waste w ON w.plant = p.plant AND w.production_id = p.id
        WHERE p.plant = ? AND p.partition_date = ? AND p.deleted_at IS NULL GROUP BY ALL""",
        [plant, day],
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def test_each_plant_lands_its_own_companys_local_day_under_its_plant(two_companies, data_dir):
    defs = build_definitions()
    job = defs.resolve_job_def("fusion_ops_daily")
    assert isinstance(job.partitions_def, MultiPartitionsDefinition)
    schedules = {s.name: s.execution_timezone for s in defs.schedules or ()}
    assert schedules["fusion_ops_berlin_hourly_refresh"] == "Europe/Berlin"
    assert schedules["fusion_ops_chicago_hourly_refresh"] == "America/Chicago"
    sensors = {s.name for s in defs.sensors or ()}
    assert {"fusion_ops_changes_sensor_berlin", "fusion_ops_changes_sensor_chicago"} <= sensors
    instance = DagsterInstance.ephemeral()
    for plant in PLANTS:
        result = job.execute_in_process(
            partition_key=MultiPartitionKey({"plant": plant, "date": DAY.isoformat()}),
            instance=instance,
            raise_on_error=False,
        )
        assert result.success, failures_of([result])
        checks = result.get_asset_check_evaluations()
        assert checks and all(check.passed for check in checks), [c.description for c in checks]

    warehouse = Warehouse(data_dir)
    expected = {
        plant: expected_productions(two_companies[plant], DAY, ZoneInfo(zone)) for plant, (zone, _) in PLANTS.items()
    }
    assert set(expected["berlin"]) & set(expected["chicago"]), "the two companies' ids should overlap"
    for plant in PLANTS:
        assert expected[plant] and productions_of(warehouse, plant, DAY) == expected[plant]
        published = pq.read_table(Warehouse(data_dir, plant=plant).parquet_file("fusion_ops", "productions", DAY))
        assert sorted(published.column("id").to_pylist()) == sorted(expected[plant])
        assert set(published.column("plant").to_pylist()) == {plant}


def test_each_plants_hourly_cycle_loads_its_snapshots_and_recent_days_for_that_plant_only(two_companies, data_dir):
    defs, instance = build_definitions(), DagsterInstance.ephemeral()
    source = source_by_name("fusion_ops")
    results = execute_cycle(defs, instance, source, HOURLY, SIM_NOW, plant="berlin")
    assert results and not failures_of(results)
    warehouse = Warehouse(data_dir)
    plants_loaded = warehouse.query("SELECT DISTINCT plant FROM fusion_ops.products ORDER BY ALL")
    assert plants_loaded == [("berlin",)]
    assert {run.dagster_run.tags.get("dagster/partition/plant") for run in results} <= {"berlin", None}
    results = execute_cycle(defs, instance, source, HOURLY, SIM_NOW, plant="chicago")
    assert results and not failures_of(results)
    counts = dict(warehouse.query("SELECT plant, count(*) FROM fusion_ops.products_current GROUP BY ALL"))
    expected = {plant: len(simulator.data.products) for plant, simulator in two_companies.items()}
    assert counts == expected
