"""The Dagster definitions as a data engineer meets them: lineage from parent to child tables and from the changes
feed to the tables it writes; one table selected alone materializes its stream; the definitions (assets, checks,
jobs, schedules, sensors, pools) of both code locations match the checked-in snapshot, so a change to the graph is
a visible diff; the schedules' runs carry tags to find them by; `dg check defs` loads the loads' location and
`dagster definitions validate` the whole workspace; `mfg-pipeline dev` starts with no warning and keeps its data
apart from the demo's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from mfg_pipeline.cli import DEV_DATA_DIR, REPO_ROOT, dev_data_dir
from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.engine.refresh import DAILY, HOURLY
from mfg_pipeline.http.errors import ConfigurationError
from mfg_pipeline.orchestration.factory import (
    ANCHOR_TAG,
    CYCLE_TAG,
    SOURCE_TAG,
    SWEEP_TAG,
    cycle_run_requests,
    partitioning,
    table_key,
)
from mfg_pipeline.orchestration.pools import pool_name
from mfg_pipeline.sources.registry import all_sources, source_by_name
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests.conftest import LIFTED_RATE_LIMIT, serve_simulators, workspace_definitions
from mfg_pipeline_tests.servers import free_port, interrupt_group

SNAPSHOT = Path(__file__).with_name("definitions.snapshot.txt")


def render_definitions() -> str:
    """Every asset with its upstream and checks, every job, schedule (with cron), sensor and pool, one per line."""
    defs = workspace_definitions()
    graph = defs.resolve_asset_graph()
    lines = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        parents = ", ".join(sorted(p.to_user_string() for p in node.parent_keys)) or "-"
        checks = ", ".join(sorted(c.name for c in node.check_keys)) or "-"
        partitioned = " [daily]" if node.partitions_def is not None else ""
        lines.append(f"asset {key.to_user_string()}{partitioned} <- {parents} | checks: {checks}")
    lines += sorted(f"job {job.name}" for job in defs.jobs)  # type: ignore[union-attr]
    lines += sorted(f"schedule {s.name} {s.cron_schedule}" for s in defs.schedules)  # type: ignore[union-attr]
    lines += sorted(f"sensor {s.name}" for s in defs.sensors)  # type: ignore[union-attr]
    lines += sorted(f"pool {pool_name(s.name)} {s.concurrency_limit}" for s in all_sources())
    return "\n".join(lines) + "\n"


def test_the_definitions_match_the_snapshot():
    """To accept a deliberate change: UPDATE_DEFINITIONS_SNAPSHOT=1 pytest -k snapshot, and commit the diff."""
    rendered = render_definitions()
    if os.environ.get("UPDATE_DEFINITIONS_SNAPSHOT"):
        SNAPSHOT.write_text(rendered)
    assert rendered == SNAPSHOT.read_text()


def test_child_tables_show_their_parent_and_the_changes_feed_the_tables_it_writes():
    graph = build_definitions().resolve_asset_graph()
    for source in all_sources():
        for stream in source.streams:
            for child in stream.children:
                assert table_key(source, stream.table) in graph.get(table_key(source, child.table)).parent_keys
    change_log = AssetKey(["fusion_ops", "change_log"])
    for table in ("productions", "downtimes", "punch_clocks"):
        assert change_log in graph.get(AssetKey(["fusion_ops", table])).parent_keys


def test_the_cycles_runs_carry_tags_to_find_them_and_say_which_run_anchors_the_cycle():
    source = source_by_name("fulcrum")
    partitioned = [table_key(source, t) for s in source.streams if s.partitioned for t in s.tables]
    now = datetime(2026, 11, 12, 10, 15, tzinfo=timezone.utc)
    hourly = list(cycle_run_requests(source, partitioning(), HOURLY, now, partitioned))
    assert [r.partition_key for r in hourly] == ["2026-11-12", "2026-11-11", "2026-11-10"]
    assert all(r.tags[CYCLE_TAG] == HOURLY and r.tags[SOURCE_TAG] == "fulcrum" for r in hourly)
    assert [r.tags.get(ANCHOR_TAG) for r in hourly] == ["true", None, None]
    assert hourly[0].asset_selection is None and hourly[1].asset_selection == partitioned
    daily = list(cycle_run_requests(source, partitioning(), DAILY, now, partitioned))
    # The child sweep's cadence is state in the warehouse, not a tag: only a forced sweep carries one.
    assert len(daily) == 8 and all(SWEEP_TAG not in r.tags for r in daily)


def test_one_table_selected_alone_materializes_its_stream_and_records_the_other_table(fusion, data_dir, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    command = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "mfg_pipeline.definitions",
        "--select",
        "fusion_ops/downtimes",
        "--partition",
        "2026-11-10",
    ]
    done = subprocess.run(
        command, env={**os.environ, "DAGSTER_HOME": str(home)}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    warehouse = Warehouse(data_dir)
    assert warehouse.query("SELECT count(*) FROM fusion_ops.downtimes")[0][0] > 0
    assert warehouse.query("SELECT count(*) FROM fusion_ops.downtime_machines")[0][0] > 0
    with DagsterInstance.from_config(str(home)) as instance:
        for table in ("downtimes", "downtime_machines"):
            assert instance.get_latest_materialization_event(AssetKey(["fusion_ops", table])) is not None, table


def test_dg_check_defs_loads_the_definitions(data_dir):
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dg")), "check", "defs"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_the_workspace_loads_both_code_locations():
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "mfg_pipeline" in output and "mfg_analytics" in output


def test_dev_keeps_its_data_apart_from_the_demos(monkeypatch):
    monkeypatch.delenv("MFG_DATA_DIR", raising=False)
    assert dev_data_dir() == (REPO_ROOT / DEV_DATA_DIR).resolve() != (REPO_ROOT / "data").resolve()
    monkeypatch.setenv("MFG_DATA_DIR", "/somewhere/else")
    assert dev_data_dir() == Path("/somewhere/else")


def test_dev_loads_what_the_demo_loads_on_its_first_start_then_serves_the_webserver_without_a_warning(
    data_dir, tmp_path
):
    executable = Path(sys.executable).with_name("mfg-pipeline")
    webserver_port = str(free_port())
    process = subprocess.Popen(
        # The simulators' documented limits lifted: Lagerkoll's 200 a minute would hold the preload a minute.
        [str(executable), "dev", "--port", "0", "--live-interval", "0", "--preload-days", "2"]
        + ["--simulator-rate-limit", str(LIFTED_RATE_LIMIT), "-p", webserver_port],
        env={**os.environ, "MFG_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    try:
        deadline = time.monotonic() + 300  # the preload, then the webserver
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Serving dagster-webserver" in line:
                break
    finally:
        interrupt_group(process)
    text = "".join(output)
    assert "Serving dagster-webserver" in text, text[-3000:]
    for noise in ("will not be used", "Warning", "superseded", "Invalid -W", "FAILED"):
        assert noise not in text, f"{noise!r} in:\n{text}"
    assert "First start: loading 2 days as the demo does" in text
    # The demo's lines: one per run, every source's then the analytics build with all its checks passed (dbt's own
    # progress lines stay in its log), and the marts listed with the raw tables at the end.
    runs = [line for line in output if line.startswith("- ")]
    assert "- fusion_ops_refresh [" in text and [line.split(" ")[1] for line in runs][-1] == "analytics_build", text
    assert re.fullmatch(r"- analytics_build \.\.\. \d+ assets; checks (\d+)/\1 passed; [\d.]+s\n", runs[-1]), runs[-1]
    assert "Running with dbt" not in text and "START sql" not in text
    assert re.search(r"^  marts\.mart_oee_daily +[1-9]\d*$", text, re.MULTILINE), text
    assert (data_dir / "dagster_home" / "dagster.yaml").exists()
    instance_runs = DagsterInstance.from_config(str(data_dir / "dagster_home")).get_runs_count()
    assert instance_runs >= 6  # the preload's runs are on dev's instance: the UI shows them


@pytest.fixture
def fusion(monkeypatch, data_dir):
    running = serve_simulators([source_by_name("fusion_ops")], monkeypatch, 7)
    yield running.servers["fusion_ops"].app
    running.stop()


def test_a_stream_switched_off_has_no_assets_and_its_sources_jobs_say_so(monkeypatch):
    monkeypatch.setenv("FULCRUM_STREAMS", "jobs, invoices,sales_orders,customers")
    defs = build_definitions()
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert "fulcrum/items" not in keys and {"fulcrum/jobs", "fulcrum/invoices", "fulcrum/customers"} <= keys
    refresh = defs.resolve_job_def("fulcrum_refresh")
    assert "Not loaded: items (switched off by FULCRUM_STREAMS" in (refresh.description or "")
    selected = {key.to_user_string() for key in refresh.asset_layer.selected_asset_keys}
    assert "fulcrum/items" not in selected and "fulcrum/jobs" in selected


def test_a_stream_setting_naming_an_unknown_stream_fails_naming_the_variable_and_the_streams(monkeypatch):
    monkeypatch.setenv("FULCRUM_STREAMS", "jobs,itemz")
    with pytest.raises(ConfigurationError, match=r"^FULCRUM_STREAMS names \['itemz'\], which Fulcrum Pro lacks; its "):
        build_definitions()


def test_switching_off_a_stream_the_changes_feed_writes_fails_naming_both_settings(monkeypatch):
    names = [stream.name for stream in source_by_name("fusion_ops").streams if stream.name != "productions"]
    monkeypatch.setenv("FUSION_OPS_STREAMS", ",".join(names))
    with pytest.raises(
        ConfigurationError, match="FUSION_OPS_STREAMS leaves out productions.*FUSION_OPS_CHANGE_CHANNELS"
    ):
        build_definitions()
