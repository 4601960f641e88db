"""The warehouse as a live system: analysts open sessions whenever they like and no read fails, while loads of two
sources and the Fusion changes feed commit at the same time from separate processes, each record landing once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.engine.refresh import DAILY
from mfg_pipeline.orchestration.cycles import execute_cycle
from mfg_pipeline.simulators.fusion_ops.live import LiveShop
from mfg_pipeline.sources.registry import source_by_name
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests import analyst_session
from mfg_pipeline_tests.conftest import SIM_NOW, serve_simulators
from mfg_pipeline_tests.contract.kits import KITS, days_back

REPO = Path(__file__).resolve().parents[2]
COUNT_PRODUCTIONS = "SELECT count(*) FROM fusion_ops.productions_current"
WORKER = """
import sys
from datetime import datetime
from dagster import DagsterInstance
from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.orchestration.cycles import execute_cycle, failures_of
from mfg_pipeline.sources.registry import source_by_name
results = execute_cycle(build_definitions(), DagsterInstance.ephemeral(), source_by_name(sys.argv[1]), sys.argv[2],
                        datetime.fromisoformat(sys.argv[3]))
failures = failures_of(results)
sys.exit("\\n".join(failures) if failures else 0)
"""
FEED_WORKER = """
import time
from datetime import timezone
from mfg_pipeline import config
from mfg_pipeline.sources.fusion_ops import make_client
from mfg_pipeline.engine.feed import apply_pending, read_feed
from mfg_pipeline.sources.fusion_ops.changes import FEED
from mfg_pipeline.warehouse.store import Warehouse
warehouse = Warehouse(config.data_dir())
journal = FEED.journal(warehouse)
client = make_client(config.data_dir())
for _ in range(3):  # three ticks and their applies, while the loads commit
    for channel in FEED.channels():
        read_feed(client, channel, journal, max_calls=100, deadline=time.monotonic() + 60)
    apply_pending(journal, warehouse, naive_timezone=timezone.utc, partition_timezone=timezone.utc)
"""


def start(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=REPO, env=os.environ.copy(), stderr=subprocess.PIPE, text=True
    )


def analyst(mode: str, warehouse: Warehouse, *args: str) -> subprocess.Popen:
    return analyst_session.start(mode, warehouse.settings.attach_file, *args)


def finish(process: subprocess.Popen, timeout: float = 300) -> None:
    _, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]


@pytest.fixture
def plant(monkeypatch, data_dir):
    running = serve_simulators([source_by_name(n) for n in ("fusion_ops", "lagerkoll", "fulcrum")], monkeypatch, 7)
    yield {name: server.app for name, server in running.servers.items()}
    running.stop()


def test_sessions_opened_every_quarter_second_while_two_days_load_see_no_error(plant, data_dir, tmp_path):
    defs, instance = build_definitions(), DagsterInstance.ephemeral()
    job = defs.resolve_job_def("fusion_ops_daily")
    assert job.execute_in_process(instance=instance, partition_key="2026-11-09").success
    warehouse = Warehouse(data_dir)
    stop = tmp_path / "stop"
    reader = analyst("poll", warehouse, COUNT_PRODUCTIONS, str(stop), "0.25")
    try:
        for day in ("2026-11-10", "2026-11-11"):
            assert job.execute_in_process(instance=instance, partition_key=day).success
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err[-3000:]
    polled = json.loads(out.strip().splitlines()[-1])
    assert polled["errors"] == [] and polled["reads"] >= 5, polled


def test_two_sources_and_the_feed_commit_at_once_and_every_record_lands_once(plant, data_dir):
    # The Fusion days the feed's changes fall in are loaded first; then its changes are made.
    defs, instance = build_definitions(), DagsterInstance.ephemeral()
    assert all(r.success for r in execute_cycle(defs, instance, source_by_name("fusion_ops"), DAILY, SIM_NOW))
    shop = LiveShop(plant["fusion_ops"], seed=5)
    for _ in range(40):
        shop.step()
    warehouse = Warehouse(data_dir)
    workers = [start(WORKER, name, DAILY, SIM_NOW.isoformat()) for name in ("lagerkoll", "fulcrum")]
    workers.append(start(FEED_WORKER))
    for worker in workers:
        finish(worker)
    days = days_back(SIM_NOW.date(), 7)
    # Fusion's productions come from its daily cycle and the feed; its orders the feed does not carry.
    for name, tables in (("lagerkoll", None), ("fulcrum", None), ("fusion_ops", ("productions",))):
        kit = KITS[name]
        truth, landed = kit.truth(plant[name], days), kit.landed(warehouse, days)
        for table in tables or truth:
            assert landed[table] == truth[table], f"{name}.{table}"
    logged = warehouse.query("SELECT batch_id, position, count(*) FROM fusion_ops.change_log GROUP BY ALL")
    assert logged and all(count == 1 for *_, count in logged)  # every journaled change applied once
    duplicates = warehouse.query(
        "SELECT count(*) FROM (SELECT id FROM fusion_ops.productions GROUP BY id HAVING count(*) > 1)"
    )
    assert duplicates == [(0,)]


def test_a_commit_that_keeps_losing_races_fails_naming_the_table_and_the_setting(data_dir, monkeypatch):
    """A SQLite catalog answers `database is locked` to a transaction another commit overtook: it is retried, and
    once the retry budget is spent the error names what was being written and the setting to raise."""
    from mfg_pipeline.warehouse.lake import CommitConflictError

    warehouse = Warehouse(data_dir)
    warehouse.lake.write("creating main.race", lambda cursor: cursor.execute("CREATE TABLE main.race (n INTEGER)"))
    attempts = []

    def overtaken(cursor):
        attempts.append(1)
        cursor.execute("SELECT count(*) FROM main.race").fetchall()  # the transaction reads a snapshot
        subprocess.run(  # another process commits meanwhile
            [sys.executable, "-c", OTHER_COMMIT, str(data_dir)], cwd=REPO, env=os.environ.copy(), check=True
        )
        cursor.execute("INSERT INTO main.race VALUES (1)")

    # Longer than one overtaking commit (a Python process: seconds on a busy machine), so it is retried at least once.
    monkeypatch.setenv("MFG_WAREHOUSE_COMMIT_RETRY_SECONDS", "10")
    started = time.monotonic()
    with pytest.raises(CommitConflictError, match=r"writing main\.race.*MFG_WAREHOUSE_COMMIT_RETRY_SECONDS"):
        warehouse.lake.write("writing main.race", overtaken)
    assert len(attempts) >= 2 and time.monotonic() - started < 60


OTHER_COMMIT = """
import sys
from mfg_pipeline.warehouse.store import Warehouse
lake = Warehouse(sys.argv[1]).lake
lake.write("another writer", lambda cursor: cursor.execute("CREATE OR REPLACE TABLE main.other AS SELECT 1"))
"""
