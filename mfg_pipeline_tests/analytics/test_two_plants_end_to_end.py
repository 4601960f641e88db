"""Two plants side by side, end to end: a group's Berlin and Chicago plants, each its own company at all five
vendors (its own seed and records, overlapping ids), listed in a plants file; each plant's daily cycle under a
rate limit per company, then one analytics build. Every record lands once under its own plant, each
plant's days are its own local days, each company's budget holds on its own, and the marts equal a Python
recomputation per plant."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.engine.refresh import DAILY
from mfg_pipeline.orchestration.cycles import QUIET, execute_cycle, failures_of
from mfg_pipeline.simulators.serving import SimulatedPlant, plants_file, start_plants
from mfg_pipeline.sources.registry import all_sources
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests.analytics.conftest import FUSION_HISTORY_DAYS, HISTORY_DAYS
from mfg_pipeline_tests.analytics.per_plant import (
    COMPANY_LIMIT,
    LANDED,
    assert_days_are_local,
    assert_each_company_kept_its_limit,
    assert_landed_once_under_its_plant,
    assert_marts_equal_the_truth,
)
from mfg_pipeline_tests.conftest import SIM_NOW

pytestmark = pytest.mark.xdist_group("two_plants")


@dataclass
class Group:
    plants: list[SimulatedPlant]
    warehouse: Warehouse
    data_dir: Path

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        return self.warehouse.query(sql, params or [])


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    data_dir = tmp_path_factory.mktemp("group") / "data"
    sources = all_sources()
    history = {s.name: FUSION_HISTORY_DAYS if s.name == "fusion_ops" else HISTORY_DAYS for s in sources}
    limits = {s.name: COMPANY_LIMIT for s in sources}
    plants = start_plants(sources, 2, now=SIM_NOW, history_days=history, rate_limits=limits)
    try:
        with pytest.MonkeyPatch.context() as env:
            for variable in ("MFG_PLANT", "MFG_PARTITION_TIMEZONE", "MFG_RATE_LIMIT_BACKEND"):
                env.delenv(variable, raising=False)
            env.setenv("MFG_DATA_DIR", str(data_dir))
            env.setenv("FUSION_OPS_APPLY_LINGER_SECONDS", "0")
            text, secrets = plants_file(plants, sources)
            for name, value in secrets.items():
                env.setenv(name, value)
            (path := data_dir.parent / "plants.yaml").write_text(text)
            env.setenv("MFG_PLANTS_FILE", str(path))
            instance, defs = DagsterInstance.ephemeral(), build_definitions()
            for plant in plants:
                for source in sources:
                    results = execute_cycle(defs, instance, source, DAILY, SIM_NOW, plant=plant.name)
                    assert results and not failures_of(results), (plant.name, source.name, failures_of(results))
            from mfg_pipeline.analytics.definitions import build_analytics_definitions

            build = build_analytics_definitions().resolve_job_def("analytics_build")
            built = build.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET)
            assert built.success, failures_of([built])
            yield Group(plants, Warehouse(data_dir), data_dir)
    finally:
        for plant in plants:
            plant.running.stop()


@pytest.mark.parametrize("table, key, held", LANDED, ids=[t for t, _, _ in LANDED])
def test_every_record_lands_once_under_its_own_plant_though_the_companies_ids_overlap(group, table, key, held):
    assert_landed_once_under_its_plant(group.rows, group.plants, table, key, held)


def test_each_plants_days_are_its_own_local_days_and_dim_plant_lists_both_zones(group):
    assert_days_are_local(group.rows, group.plants)


def test_each_companys_budget_holds_on_its_own(group):
    assert_each_company_kept_its_limit(group.plants)
    for source in all_sources():  # one shared budget per plant's company, not one per vendor
        buckets = list((group.data_dir / "ratelimit").glob(f"{source.name}_*.sqlite"))
        assert len(buckets) == len(group.plants), source.name


def test_the_marts_equal_a_python_recomputation_per_plant(group):
    assert_marts_equal_the_truth(group.rows, group.plants)
