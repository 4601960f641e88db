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

import pytest

from mfg_pipeline.engine.refresh import HOURLY
from mfg_pipeline.orchestration.cycles import execute_cycle, failures_of
from mfg_pipeline.sources.fusion_ops import make_client
from mfg_pipeline.sources.fusion_ops.changes import ChangeJournal, apply_pending, channels_from_env, read_feed
from mfg_pipeline.sources.registry import source_by_name
from mfg_pipeline_tests.conftest import SIM_NOW

pytestmark = pytest.mark.xdist_group("analytics_plant")
REPO = Path(__file__).resolve().parents[2]
ANSWER = (
    "SELECT (SELECT count(*) FROM fusion_ops.productions_current), (SELECT max(_loaded_at) FROM "
    "fusion_ops.productions), (SELECT count(*) FROM marts.fct_production)"
)


def test_an_open_analyst_session_does_not_stop_a_load_a_feed_apply_or_a_dbt_build(plant):
    analyst = subprocess.Popen(
        [sys.executable, "-m", "mfg_pipeline_tests.analyst_session", "hold", str(plant.warehouse.settings.attach_file)]
        + [ANSWER],
        cwd=REPO,
        env=os.environ.copy(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
    journal = ChangeJournal.for_warehouse(plant.warehouse)
    client = make_client(plant.data_dir)
    for channel in channels_from_env():
        read_feed(client, channel, journal, max_calls=50, deadline=time.monotonic() + 60)
    report = apply_pending(journal, plant.warehouse, naive_timezone=timezone.utc, partition_timezone=timezone.utc)
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
