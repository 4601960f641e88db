"""A warehouse remembers the zones it was built with: a run with another partition zone (or vendor zone) refuses
to write, naming both zones and the variable, instead of soft-deleting the valid rows of a day it now reads
differently; `mfg-pipeline rezone` moves the warehouse to a new partition zone on purpose, with no row lost."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from click.testing import CliRunner
from dagster import DagsterInstance

from mfg_pipeline.cli import main as cli
from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests import analyst_session
from mfg_pipeline_tests.fusion_ops.test_fusion_end_to_end import expected_productions, landed_productions

DAY = date(2026, 11, 10)
PARTITIONED = ("productions", "production_waste", "downtimes", "downtime_machines", "punch_clocks")


def materialize(day: date):
    return (
        build_definitions()
        .resolve_job_def("fusion_ops_daily")
        .execute_in_process(partition_key=day.isoformat(), instance=DagsterInstance.ephemeral(), raise_on_error=False)
    )


def table_states(warehouse: Warehouse) -> dict[str, list[tuple]]:
    return {
        table: warehouse.query(f"SELECT * EXCLUDE (_loaded_at) FROM fusion_ops.{table} ORDER BY ALL")
        for table in PARTITIONED
    }


def first_failure_line(result) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "the run was expected to fail"
    return failures[0].step_failure_data.error.message.splitlines()[0]


def test_a_run_with_another_partition_zone_refuses_to_write_and_names_both_zones(fusion, data_dir, monkeypatch):
    monkeypatch.setenv("MFG_PARTITION_TIMEZONE", "Europe/Berlin")
    assert materialize(DAY).success
    warehouse = Warehouse(data_dir)
    before = table_states(warehouse)
    # At 23:xx UTC the Berlin day has begun: read in UTC, those productions belong to the day before.
    late = set(expected_productions(fusion, DAY, ZoneInfo("Europe/Berlin"))) - set(
        expected_productions(fusion, DAY, ZoneInfo("UTC"))
    )
    assert late, "the test day must hold productions that UTC places on another day"

    monkeypatch.setenv("MFG_PARTITION_TIMEZONE", "UTC")
    result = materialize(DAY)

    assert not result.success
    line = first_failure_line(result)
    assert "MFG_PARTITION_TIMEZONE is 'UTC'" in line and "built with 'Europe/Berlin'" in line, line
    assert "mfg-pipeline rezone" in line, line
    assert table_states(warehouse) == before  # nothing written, nothing soft-deleted
    assert warehouse.recorded_settings()["MFG_PARTITION_TIMEZONE"] == "Europe/Berlin"


def test_rezone_moves_every_row_to_its_day_in_the_new_zone_and_later_runs_delete_nothing(fusion, data_dir, monkeypatch):
    monkeypatch.setenv("MFG_PARTITION_TIMEZONE", "Europe/Berlin")
    assert materialize(DAY).success
    warehouse = Warehouse(data_dir)
    live_before = warehouse.live_row_count("fusion_ops", "productions")

    monkeypatch.setenv("MFG_PARTITION_TIMEZONE", "UTC")
    analyst = analyst_session.start(
        "hold", warehouse.settings.attach_file, "SELECT count(*) FROM fusion_ops.productions"
    )
    assert analyst.stdout is not None and analyst.stdout.readline().strip() == "open", analyst.stderr
    outcome = CliRunner().invoke(cli, ["rezone"], catch_exceptions=False)  # with an analyst's session open

    assert outcome.exit_code == 0, outcome.output
    _, errors = analyst.communicate("\n", timeout=60)
    assert analyst.returncode == 0, errors[-2000:]
    assert "Europe/Berlin -> UTC" in outcome.output
    utc, berlin = ZoneInfo("UTC"), ZoneInfo("Europe/Berlin")
    loaded = expected_productions(fusion, DAY, berlin)
    placed = dict(warehouse.query("SELECT id, partition_date FROM fusion_ops.productions"))
    assert placed == {i: fusion_start(fusion, i).astimezone(utc).date() for i in loaded}
    children = warehouse.query(
        "SELECT count(*) FROM fusion_ops.production_waste w JOIN fusion_ops.productions p ON w.production_id = p.id "
        "WHERE w.partition_date <> p.partition_date"
    )
    assert children == [(0,)]
    # The published day in the new zone holds exactly its rows; the one that lost rows was rewritten.
    for day in {*placed.values()}:
        published = warehouse.query(
            f"SELECT count(*) FROM read_parquet('{warehouse.published_file('fusion_ops', 'productions', day)}')"
        )
        assert published == [(sum(1 for d in placed.values() if d == day),)]

    assert materialize(DAY).success  # now in UTC: lists the UTC day whole
    assert warehouse.query("SELECT count(*) FROM fusion_ops.productions WHERE deleted_at IS NOT NULL") == [(0,)]
    assert set(landed_productions(warehouse, DAY)) == set(expected_productions(fusion, DAY, utc))
    assert warehouse.live_row_count("fusion_ops", "productions") >= live_before


def test_a_run_with_another_vendor_zone_refuses_to_write(fusion, data_dir, monkeypatch):
    assert materialize(DAY).success
    warehouse = Warehouse(data_dir)
    before = table_states(warehouse)
    gone = next(r for r in fusion.data.productions if r.id in expected_productions(fusion, DAY, ZoneInfo("UTC")))
    fusion.data.productions.remove(gone)  # so the run has something to write (a soft delete)

    monkeypatch.setenv("FUSION_OPS_COMPANY_TIMEZONE", "America/Chicago")
    result = materialize(DAY)

    assert not result.success
    line = first_failure_line(result)
    assert "FUSION_OPS_COMPANY_TIMEZONE is 'America/Chicago'" in line and "built with 'UTC'" in line, line
    assert table_states(warehouse) == before


def fusion_start(fusion, production_id: int):
    return next(r.start for r in fusion.data.productions if r.id == production_id)
