"""The demo as a newcomer meets it: a demo of some sources says why it skips the analytics layer; with several
simulated plants, a plants file naming them and each plant's runs and rows. The demo of every source (one line per
run, dbt's own progress lines in its log, the marts listed at the end) is what `mfg-pipeline dev` runs on its first
start: orchestration/test_definitions.py checks its output there, so the suite builds it once."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from typing import Any
from unittest import mock

import click
import pytest
from click.testing import CliRunner

from mfg_pipeline import config
from mfg_pipeline.cli import main
from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.demo import run_demo
from mfg_pipeline.simulators.catalog import PLANT_TIMEZONE
from mfg_pipeline.sources.registry import all_sources
from mfg_pipeline_tests.conftest import serve_simulators

NOW = datetime.now(timezone.utc)  # the demo loads the days ending today


def demo_output(sources: list[SourceSystem], days: int, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    """The demo's output over `sources`' simulators (rate limits lifted, three days of history); asserts no run
    failed."""
    monkeypatch.setenv("DAGSTER_HOME", str(config.data_dir() / "dagster_home"))
    (config.data_dir() / "dagster_home").mkdir(parents=True)
    monkeypatch.setenv("MFG_PARTITION_TIMEZONE", PLANT_TIMEZONE)
    running = serve_simulators(sources, monkeypatch, 3, now=NOW)
    try:
        failures = run_demo(sources, days=days, echo=click.echo)
    finally:
        running.stop()
    out: str = capsys.readouterr().out
    assert failures == 0, out
    return out


def test_the_demo_of_some_sources_says_why_it_skips_the_analytics_layer(data_dir, monkeypatch, capsys):
    out = demo_output([s for s in all_sources() if s.name == "isolocity"], 1, monkeypatch, capsys)
    assert "- analytics layer skipped: it reads fulcrum, fusion_ops, lagerkoll, traede too" in out


def test_the_demo_of_several_plants_writes_their_plants_file_and_loads_each_plant_side_by_side(data_dir):
    with mock.patch.dict(os.environ):  # the demo points its own process at the plants it serves
        result = CliRunner().invoke(main, ["demo", "--plants", "2", "--days", "1", "--sources", "isolocity"])
    assert result.exit_code == 0, result.output
    out = result.output
    group = data_dir / "plants-2"
    assert re.search(r"^  berlin \(Europe/Berlin\): isolocity http://127\.0\.0\.1:\d+$", out, re.MULTILINE), out
    assert re.search(r"^  chicago \(America/Chicago\): isolocity http://127\.0\.0\.1:\d+$", out, re.MULTILINE), out
    assert [line.split(" ")[1:3] for line in out.splitlines() if line.startswith("- isolocity")] == [
        ["isolocity_refresh", "[berlin]"],
        ["isolocity_refresh", "[chicago]"],
    ]
    written = (group / "plants.yaml").read_text()
    assert "${BERLIN_ISOLOCITY_API_TOKEN}" in written and "demo-isolocity-token" not in written
    ncrs = re.search(r"^  isolocity\.ncrs +(\d+) +(\d+) +(\d+)$", out, re.MULTILINE)
    assert ncrs and int(ncrs[1]) == int(ncrs[2]) + int(ncrs[3]) and int(ncrs[2]) > 0 and int(ncrs[3]) > 0, out
    assert (group / "lake").is_dir() and not (data_dir / "lake").exists()
