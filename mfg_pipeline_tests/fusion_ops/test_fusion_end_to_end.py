"""Fusion Operations end to end through Dagster: three days land exactly the simulator's records, once each, in
DuckDB and Parquet (whatever the server's boundary semantics and the partition timezone); re-running a day changes
nothing; a day's key check reads the published files the run can have touched, not every day's; two partitions
materialized by parallel processes both land."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.sources.fusion_ops.streams import PRODUCTION_ORDERS
from mfg_pipeline.warehouse.checks import PRIMARY_KEY_CHECK
from mfg_pipeline.warehouse.store import Warehouse

DAYS = [date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 11)]


def seconds_of(duration: str) -> int:
    hours, minutes, seconds = map(int, re.fullmatch(r"(\d+)H(\d+)m(\d+)s", duration).groups())
    return hours * 3600 + minutes * 60 + seconds


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return datetime.combine(day, time(0), tzinfo=tz), datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


def expected_productions(simulator, day: date, tz: ZoneInfo) -> dict[int, tuple]:
    start, end = day_bounds(day, tz)
    return {
        r.id: (
            r.start,
            r.end,
            float(r.body["quantity"]),
            r.body["worker"]["number"],
            r.body["operation"]["product"],
            r.body["lot-number"],
            seconds_of(r.body["work-time"]),
            r.body["production-order"]["id"],
            len(r.body["produced-waste"]),
            float(sum(w["quantity"] for w in r.body["produced-waste"])),
        )
        for r in simulator.data.productions
        if start <= r.start < end
    }


def expected_ids(records, day: date, tz: ZoneInfo) -> set[int]:
    start, end = day_bounds(day, tz)
    return {r.id for r in records if start <= r.start < end}


def landed_productions(warehouse: Warehouse, day: date) -> dict[int, tuple]:
    rows = warehouse.query(
        """
        SELECT p.id, p.start_time, p.end_time, p.quantity, p.worker_number, p.product_code, p.lot_number,
               p.work_time_seconds, p.production_order_id, count(w.position), coalesce(sum(w.quantity), 0)
        FROM fusion_ops.productions p LEFT JOIN fusion_ops.production_waste w ON w.production_id = p.id
        WHERE p.partition_date = ? GROUP BY ALL""",
        [day],
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def run_partition(defs, instance, day: date) -> dict[str, int | None]:
    """Run one day; returns table -> published files its key check read (None: every file, as before a table's
    first run)."""
    result = defs.resolve_job_def("fusion_ops_daily").execute_in_process(
        partition_key=day.isoformat(), instance=instance, raise_on_error=False
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 10 and all(c.passed for c in checks), [c.description for c in checks if not c.passed]
    key_checks = [c for c in checks if c.check_name == PRIMARY_KEY_CHECK]
    checked = {c.asset_key.path[-1]: c.metadata.get("parquet_files_checked") for c in key_checks}
    return {table: count.value if count is not None else None for table, count in checked.items()}


@pytest.mark.parametrize("boundary, partition_tz", [("exclusive", "UTC"), ("inclusive", "Europe/Berlin")])
def test_three_days_land_exactly_the_simulators_records_once_and_a_rerun_changes_nothing(
    serve_fusion, data_dir, monkeypatch, boundary, partition_tz
):
    monkeypatch.setenv("MFG_PARTITION_TIMEZONE", partition_tz)
    tz = ZoneInfo(partition_tz)
    fusion = serve_fusion(boundary=boundary)
    defs, instance = build_definitions(), DagsterInstance.ephemeral()
    files_checked = [run_partition(defs, instance, day) for day in DAYS]
    # Once the tables exist, a day's key check reads the day's published file (and those of the days its keys came
    # from), not every day's file.
    for checked in files_checked[1:]:
        assert all(count is not None and count >= 1 for count in checked.values()), checked

    warehouse = Warehouse(data_dir)
    data = fusion.data
    for day in DAYS:
        expected = expected_productions(fusion, day, tz)
        assert expected, "the simulator must have productions on every test day"
        assert landed_productions(warehouse, day) == expected
        for table, records in (("downtimes", data.downtimes), ("punch_clocks", data.punchclocks)):
            landed = [
                r[0] for r in warehouse.query(f"SELECT id FROM fusion_ops.{table} WHERE partition_date = ?", [day])
            ]
            assert sorted(landed) == sorted(expected_ids(records, day, tz))
        parquet_ids = pq.read_table(warehouse.parquet_file("fusion_ops", "productions", day)).column("id").to_pylist()
        assert sorted(parquet_ids) == sorted(expected)
    # The records exactly on a midnight are in the test days, each once.
    boundary_ids = {
        r.id
        for r in data.productions
        if r.start.astimezone(tz).time() == time(0) and r.start.astimezone(tz).date() in DAYS
    }
    assert boundary_ids and boundary_ids <= set().union(*(landed_productions(warehouse, d) for d in DAYS))

    before = {
        table: warehouse.query(f"SELECT * EXCLUDE (_loaded_at) FROM fusion_ops.{table} ORDER BY ALL")
        for table in ("productions", "production_waste", "downtimes", "downtime_machines", "punch_clocks")
    }
    rerun = run_partition(defs, instance, DAYS[1])
    assert rerun and set(rerun.values()) == {1}, rerun  # it changed nothing: only the day's own file
    for table, rows in before.items():
        assert warehouse.query(f"SELECT * EXCLUDE (_loaded_at) FROM fusion_ops.{table} ORDER BY ALL") == rows, table
    all_parquet = pq.read_table(warehouse.parquet_dir("fusion_ops", "productions")).column("id").to_pylist()
    assert len(all_parquet) == len(set(all_parquet)) == sum(len(expected_productions(fusion, d, tz)) for d in DAYS)


def test_production_orders_snapshot_lands_every_order_with_its_products(fusion, data_dir):
    defs = build_definitions()
    result = defs.resolve_job_def("fusion_ops_refresh").execute_in_process(
        instance=DagsterInstance.ephemeral(),
        asset_selection=[AssetKey(["fusion_ops", t.name]) for t in PRODUCTION_ORDERS.tables],
    )
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    warehouse = Warehouse(data_dir)
    orders = {r.id: r.body for r in fusion.data.production_orders}
    landed = dict(warehouse.query("SELECT id, running_status FROM fusion_ops.production_orders"))
    assert landed == {i: body["running-status"] for i, body in orders.items()}
    products = warehouse.query(
        "SELECT production_order_id, product_code, quantity_ordered "
        "FROM fusion_ops.production_order_products ORDER BY ALL"
    )
    assert products == sorted(
        (i, p["product"], float(p["quantity-ordered"])) for i, body in orders.items() for p in body["products"]
    )
    workers = warehouse.query("SELECT count(*) FROM fusion_ops.production_order_workers")[0][0]
    assert workers == sum(len(body["workers-assigned"]) for body in orders.values())


def test_two_partitions_materialized_by_parallel_processes_both_land(fusion, data_dir):
    command = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "mfg_pipeline.definitions",
        "--select",
        'key:"fusion_ops/*"',
        "--partition",
    ]
    processes = [
        subprocess.Popen(
            command + [day.isoformat()],
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in DAYS[:2]
    ]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    warehouse = Warehouse(data_dir)
    utc = ZoneInfo("UTC")
    for day in DAYS[:2]:
        assert set(landed_productions(warehouse, day)) == set(expected_productions(fusion, day, utc))
    orders = warehouse.query("SELECT count(*) FROM fusion_ops.production_orders")[0][0]
    assert orders == len(fusion.data.production_orders)
