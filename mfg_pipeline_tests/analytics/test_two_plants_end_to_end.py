"""Two plants side by side, end to end: a group's Berlin and Chicago plants, each its own company at all five
vendors (its own seed and records, overlapping ids), listed in a plants file; each plant's daily cycle under a
rate limit per company, then one analytics build. Every record lands once under its own plant, each
plant's days are its own local days, each company's budget holds on its own, and the marts equal a Python
recomputation per plant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.engine.refresh import DAILY
from mfg_pipeline.orchestration.cycles import QUIET, execute_cycle, failures_of
from mfg_pipeline.simulators.base import busiest_window
from mfg_pipeline.simulators.serving import SimulatedPlant, plants_file, start_plants
from mfg_pipeline.sources.registry import all_sources
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests.analytics import truth
from mfg_pipeline_tests.analytics.conftest import FUSION_HISTORY_DAYS, HISTORY_DAYS
from mfg_pipeline_tests.conftest import SIM_NOW

pytestmark = pytest.mark.xdist_group("two_plants")

COMPANY_LIMIT = 1200  # requests a minute per company at each vendor


@dataclass
class Group:
    plants: list[SimulatedPlant]
    warehouse: Warehouse
    data_dir: Path

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        return self.warehouse.query(sql, params or [])

    def apps(self, plant: SimulatedPlant) -> dict[str, Any]:
        return {name: server.app for name, server in plant.running.servers.items()}


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    data_dir = tmp_path_factory.mktemp("group") / "data"
    sources = all_sources()
    history = {s.name: FUSION_HISTORY_DAYS if s.name == "fusion_ops" else HISTORY_DAYS for s in sources}
    # Ten times Fusion's documented 120 a minute, for every vendor: a budget that binds each company's client
    # (its own bucket) while the daily cycles stay short.
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


# (table, its key column, the ids the simulator holds) for one record type of every vendor
LANDED: list[tuple[str, str, Callable[[dict[str, Any]], set]]] = [
    ("fusion_ops.productions", "id", lambda apps: {r.id for r in truth.live(apps["fusion_ops"].data.productions)}),
    ("fulcrum.jobs", "id", lambda apps: {job.id for job in apps["fulcrum"].data.jobs}),
    ("lagerkoll.production_orders", "order_id", lambda apps: {o["orderId"] for o in apps["lagerkoll"].data.orders}),
    ("isolocity.ncrs", "id", lambda apps: {ncr["id"] for ncr in apps["isolocity"].data.ncrs}),
    (
        "traede.production_orders",
        "id",
        lambda apps: {o.id for o in apps["traede"].data.orders if o.status in truth.TRAEDE_EXPORTED},
    ),
]


@pytest.mark.parametrize("table, key, held", LANDED, ids=[t for t, _, _ in LANDED])
def test_every_record_lands_once_under_its_own_plant_though_the_companies_ids_overlap(group, table, key, held):
    landed = {}
    for plant in group.plants:
        sql = f"SELECT {key}, count(*) FROM {table}_current WHERE plant = ? GROUP BY ALL"
        counts = dict(group.rows(sql, [plant.name]))
        assert set(counts.values()) == {1}, f"{table}: a record landed twice for {plant.name}"
        landed[plant.name] = set(counts)
        assert landed[plant.name] == held(group.apps(plant)), (table, plant.name)
    berlin, chicago = landed.values()
    assert berlin & chicago, f"{table}: the two companies' ids should overlap"


def test_each_plants_days_are_its_own_local_days_and_dim_plant_lists_both_zones(group):
    for plant in group.plants:
        wrong, moved = group.rows(
            "SELECT count(*) FILTER (WHERE partition_date <> CAST(timezone(?, start_time) AS DATE)), "
            "count(*) FILTER (WHERE partition_date <> CAST(timezone('UTC', start_time) AS DATE)) "
            "FROM fusion_ops.productions WHERE plant = ?",
            [plant.timezone, plant.name],
        )[0]
        assert wrong == 0, plant.name
        assert moved > 0, f"{plant.name}: some production's local day should differ from its UTC day"
    assert group.rows("SELECT plant, timezone FROM marts.dim_plant ORDER BY ALL") == sorted(
        (p.name, p.timezone) for p in group.plants
    )


def test_each_companys_budget_holds_on_its_own(group):
    for plant in group.plants:
        for name, server in plant.running.servers.items():
            requests, limit = server.app.requests(), server.app.limit.limit
            assert requests and busiest_window([r.time for r in requests], 60.0) <= limit, (plant.name, name)
            assert not [r for r in requests if r.status == 429], (plant.name, name)
    for source in all_sources():  # one shared budget per plant's company, not one per vendor
        buckets = list((group.data_dir / "ratelimit").glob(f"{source.name}_*.sqlite"))
        assert len(buckets) == len(group.plants), source.name


def assert_close(landed: dict, expected: dict) -> None:
    """The same keys, and each key's figures equal within float rounding."""
    assert set(landed) == set(expected)
    for key, figures in landed.items():
        assert figures == pytest.approx(expected[key]), key


def test_the_marts_equal_a_python_recomputation_per_plant(group):
    for plant in group.plants:
        apps, where = group.apps(plant), [plant.name]
        with truth.plant_zone(plant.timezone):
            fusion = apps["fusion_ops"]
            scrap = group.rows(
                "SELECT product_code, production_date, good_quantity, waste_quantity FROM marts.mart_scrap_daily "
                "WHERE plant = ?",
                where,
            )
            assert {(p, d): (g, w) for p, d, g, w in scrap} == truth.good_and_waste_by_product_day(fusion)
            downtime = group.rows(
                "SELECT machine_code, downtime_date, sum(duration_minutes) FROM marts.fct_downtime WHERE plant = ? "
                "GROUP BY ALL",
                where,
            )
            assert_close({(m, d): v for m, d, v in downtime}, truth.downtime_minutes_by_machine_day(fusion))
            labor = group.rows(
                "SELECT worker_number, shift_date, hours_worked FROM marts.mart_labor_daily WHERE plant = ?", where
            )
            assert_close({(w, d): h for w, d, h in labor}, truth.hours_by_worker_day(fusion))
            oee = group.rows(
                "SELECT machine_code, shift_date, planned_seconds, downtime_seconds, availability "
                "FROM marts.mart_oee_daily WHERE plant = ?",
                where,
            )
            expected_oee = truth.oee_by_machine_day(fusion)
            assert_close(
                {(m, d): (p, dt, a) for m, d, p, dt, a in oee},
                {k: (v.planned, v.downtime, v.availability) for k, v in expected_oee.items()},
            )
            revenue = group.rows(
                "SELECT customer_id, month_start, currency_code, invoices, net_revenue, gross_revenue "
                "FROM marts.mart_revenue_monthly WHERE plant = ?",
                where,
            )
            assert {(c, m, cur): (n, net, gross) for c, m, cur, n, net, gross in revenue} == (
                truth.revenue_by_customer_month(apps["fulcrum"])
            )
            board = group.rows(
                "SELECT order_key, state, quantity_ordered, quantity_done FROM marts.mart_order_board WHERE plant = ?",
                where,
            )
            assert {key: (state, ordered, done) for key, state, ordered, done in board} == truth.order_board(apps)
            weeks = group.rows(
                "SELECT week_start, good_quantity, waste_quantity, ncrs, downtime_hours FROM marts.mart_plant_weekly "
                "WHERE plant = ?",
                where,
            )
            expected_weeks = truth.plant_weeks(apps)
            assert_close(
                {w: (g, s, n, h) for w, g, s, n, h in weeks},
                {w: (v.good, v.waste, v.ncrs, v.downtime_hours) for w, v in expected_weeks.items()},
            )
