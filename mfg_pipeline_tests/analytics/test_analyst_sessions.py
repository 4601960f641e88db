"""An analyst's session held open (a plain DuckDB client on attach.sql, inside one transaction) does not stop a
load, a changes-feed apply or a dbt build: all three land, and the analyst's transaction keeps reading the snapshot
it began with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from dagster import AssetKey

from mfg_pipeline.engine.feed import apply_pending, read_feed
from mfg_pipeline.engine.refresh import HOURLY
from mfg_pipeline.orchestration.cycles import QUIET, execute_cycle, failures_of
from mfg_pipeline.simulators.catalog import PLANT_TIMEZONE
from mfg_pipeline.sources.fusion_ops import make_client
from mfg_pipeline.sources.fusion_ops.changes import FEED
from mfg_pipeline.sources.registry import source_by_name
from mfg_pipeline_tests import analyst_session, readme
from mfg_pipeline_tests.conftest import SIM_NOW

pytestmark = pytest.mark.xdist_group("analytics_plant")
REPO = Path(__file__).resolve().parents[2]
ANSWER = (
    "SELECT (SELECT count(*) FROM fusion_ops.productions_current), (SELECT max(_loaded_at) FROM "
    "fusion_ops.productions), (SELECT count(*) FROM marts.fct_production)"
)


def test_an_open_analyst_session_does_not_stop_a_load_a_feed_apply_or_a_dbt_build(plant):
    analyst = analyst_session.start("hold", plant.warehouse.settings.attach_file, ANSWER)
    assert analyst.stdout is not None and analyst.stdout.readline().strip() == "open", analyst.stderr
    fusion = plant.apps["fusion_ops"]
    started = time.monotonic()
    # A load: a production made today lands with the hourly cycle.
    fusion.create_production(quantity=3, start=SIM_NOW - timedelta(hours=2), end=SIM_NOW - timedelta(hours=1))
    results = execute_cycle(plant.defs, plant.instance, source_by_name("fusion_ops"), HOURLY, SIM_NOW)
    assert all(r.success for r in results), failures_of(results)
    # A feed apply: a change read from the feed and applied.
    production = next(p for p in reversed(fusion.data.productions) if not p.deleted)
    fusion.update_production(production.id, quantity=float(production.body["quantity"]) + 1)
    journal = FEED.journal(plant.warehouse)
    client = make_client(plant.data_dir)
    for channel in FEED.channels():
        read_feed(client, channel, journal, max_calls=50, deadline=time.monotonic() + 60)
    report = apply_pending(
        journal, plant.warehouse, naive_timezone=timezone.utc, partition_timezone=ZoneInfo(PLANT_TIMEZONE)
    )
    assert report.changes >= 1
    # A dbt build.
    build = plant.rebuild()
    assert build.success, failures_of([build])
    elapsed = time.monotonic() - started

    out, err = analyst.communicate("\n", timeout=120)
    assert analyst.returncode == 0, err[-3000:]
    before, still, after = json.loads(out.strip().splitlines()[-1])["answers"]
    assert still == before  # one transaction, one snapshot, however much was committed meanwhile
    (count_before, loaded_before, built_before), (count_after, loaded_after, built_after) = before[0], after[0]
    assert count_after == count_before + 1 and loaded_after > loaded_before and built_after == built_before + 1
    assert elapsed < 120


def test_the_readmes_analyst_blocks_run_as_written_and_time_travel_reads_the_board_before_a_rebuild(plant):
    (python_block,) = {block for block in readme.blocks("python") if "attach.sql" in block}
    env = {**os.environ, "MFG_DATA_DIR": str(plant.data_dir)}
    shown = subprocess.run(
        [sys.executable, "-c", python_block], cwd=plant.data_dir.parent, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "machine_code" in shown.stdout and "order_key" in shown.stdout

    (sql_block,) = readme.blocks("sql")
    travel, snapshots = [s.split("--")[0].strip() for s in sql_block.strip().splitlines()]
    session = duckdb.connect()
    session.execute((plant.data_dir / "attach.sql").read_text())
    assert session.sql(snapshots).fetchall()
    # "Yesterday at 09:00" as written needs a day-old warehouse; this plant is minutes old, so the moment is a
    # second before a rebuild that replaces the board's table (dbt's table materialization).
    board = "SELECT state, count(*) FROM marts.mart_order_board GROUP BY 1 ORDER BY 1"
    before = session.sql(board).fetchall()
    moment = session.sql("SELECT now()").fetchone()[0]
    time.sleep(1.0)
    rebuilt = plant.analytics_defs.resolve_job_def("analytics_build").execute_in_process(
        instance=plant.instance, asset_selection=[AssetKey(["marts", "mart_order_board"])], run_config=QUIET
    )
    assert rebuilt.success
    written = "current_date - 1 + TIME '09:00'"
    assert written in travel
    replaced = session.sql(
        "SELECT count(*) FROM ducklake_snapshots('warehouse') WHERE snapshot_time > ?", params=[moment]
    ).fetchone()[0]
    assert replaced > 0  # the board was written again after the moment
    past = session.sql(travel.replace(written, f"TIMESTAMPTZ '{moment.isoformat()}'")).fetchall()
    assert sorted(past) == before
