"""What plants side by side must hold, checked against the simulated plants' own records, for any warehouse that
loaded them (one machine's, or a lake that several hosts wrote): every record once under its own plant, each
plant's days its own local days, and the marts equal the Python recomputation per plant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from mfg_pipeline.simulators.base import busiest_window
from mfg_pipeline.simulators.serving import SimulatedPlant
from mfg_pipeline_tests.analytics import truth

Rows = Callable[[str, list], list[tuple]]  # a query and its parameters -> the rows

# Ten times Fusion's documented 120 a minute, for every vendor: a budget that binds each company's client (its own
# bucket) while the daily cycles stay short.
COMPANY_LIMIT = 1200

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


def apps_of(plant: SimulatedPlant) -> dict[str, Any]:
    """The plant's simulator apps by source name (each app's `data` is that company's ground truth)."""
    return {name: server.app for name, server in plant.running.servers.items()}


def assert_landed_once_under_its_plant(
    rows: Rows, plants: Sequence[SimulatedPlant], table: str, key: str, held
) -> None:
    """Each plant holds exactly its company's ids of `table`, once each, and the companies' ids overlap."""
    landed = []
    for plant in plants:
        counts = dict(rows(f"SELECT {key}, count(*) FROM {table}_current WHERE plant = ? GROUP BY ALL", [plant.name]))
        assert set(counts.values()) == {1}, f"{table}: a record landed twice for {plant.name}"
        expected = held(apps_of(plant))
        missing, extra = sorted(expected - set(counts)), sorted(set(counts) - expected)
        assert not missing and not extra, f"{table}, {plant.name}: missing {missing[:20]}, extra {extra[:20]}"
        landed.append(set(counts))
    assert set.intersection(*landed), f"{table}: the companies' ids should overlap"


def assert_each_company_kept_its_limit(plants: Sequence[SimulatedPlant]) -> None:
    """Every company at every vendor was asked something, never more than its limit in any 60 s, and never got a
    429: each plant's budget held on its own."""
    for plant in plants:
        for name, server in plant.running.servers.items():
            requests, limit = server.app.requests(), server.app.limit.limit
            assert requests and busiest_window([r.time for r in requests], 60.0) <= limit, (plant.name, name)
            assert not [r for r in requests if r.status == 429], (plant.name, name)


def assert_days_are_local(rows: Rows, plants: Sequence[SimulatedPlant]) -> None:
    """Each plant's productions sit in the partition of their plant-local day, which is not always the UTC day."""
    for plant in plants:
        wrong, moved = rows(
            "SELECT count(*) FILTER (WHERE partition_date <> CAST(timezone(?, start_time) AS DATE)), "
            "count(*) FILTER (WHERE partition_date <> CAST(timezone('UTC', start_time) AS DATE)) "
            "FROM fusion_ops.productions WHERE plant = ?",
            [plant.timezone, plant.name],
        )[0]
        assert wrong == 0, plant.name
        assert moved > 0, f"{plant.name}: some production's local day should differ from its UTC day"
    assert rows("SELECT plant, timezone FROM marts.dim_plant ORDER BY ALL", []) == sorted(
        (p.name, p.timezone) for p in plants
    )


def assert_close(landed: dict, expected: dict) -> None:
    """The same keys, and each key's figures equal within float rounding."""
    assert set(landed) == set(expected)
    for key, figures in landed.items():
        assert figures == pytest.approx(expected[key]), key


def assert_marts_equal_the_truth(rows: Rows, plants: Sequence[SimulatedPlant]) -> None:
    """Every mart's rows of each plant equal the recomputation from that plant's simulators, in its own zone."""
    for plant in plants:
        apps, where = apps_of(plant), [plant.name]
        with truth.plant_zone(plant.timezone):
            fusion = apps["fusion_ops"]
            scrap = rows(
                "SELECT product_code, production_date, good_quantity, waste_quantity FROM marts.mart_scrap_daily "
                "WHERE plant = ?",
                where,
            )
            assert {(p, d): (g, w) for p, d, g, w in scrap} == truth.good_and_waste_by_product_day(fusion)
            downtime = rows(
                "SELECT machine_code, downtime_date, sum(duration_minutes) FROM marts.fct_downtime WHERE plant = ? "
                "GROUP BY ALL",
                where,
            )
            assert_close({(m, d): v for m, d, v in downtime}, truth.downtime_minutes_by_machine_day(fusion))
            labor = rows(
                "SELECT worker_number, shift_date, hours_worked FROM marts.mart_labor_daily WHERE plant = ?", where
            )
            assert_close({(w, d): h for w, d, h in labor}, truth.hours_by_worker_day(fusion))
            oee = rows(
                "SELECT machine_code, shift_date, planned_seconds, downtime_seconds, availability "
                "FROM marts.mart_oee_daily WHERE plant = ?",
                where,
            )
            assert_close(
                {(m, d): (p, dt, a) for m, d, p, dt, a in oee},
                {k: (v.planned, v.downtime, v.availability) for k, v in truth.oee_by_machine_day(fusion).items()},
            )
            revenue = rows(
                "SELECT customer_id, month_start, currency_code, invoices, net_revenue, gross_revenue "
                "FROM marts.mart_revenue_monthly WHERE plant = ?",
                where,
            )
            assert {(c, m, cur): (n, net, gross) for c, m, cur, n, net, gross in revenue} == (
                truth.revenue_by_customer_month(apps["fulcrum"])
            )
            board = rows(
                "SELECT order_key, state, quantity_ordered, quantity_done FROM marts.mart_order_board WHERE plant = ?",
                where,
            )
            assert {key: (state, ordered, done) for key, state, ordered, done in board} == truth.order_board(apps)
            weeks = rows(
                "SELECT week_start, good_quantity, waste_quantity, ncrs, downtime_hours FROM marts.mart_plant_weekly "
                "WHERE plant = ?",
                where,
            )
            assert_close(
                {w: (g, s, n, h) for w, g, s, n, h in weeks},
                {w: (v.good, v.waste, v.ncrs, v.downtime_hours) for w, v in truth.plant_weeks(apps).items()},
            )
