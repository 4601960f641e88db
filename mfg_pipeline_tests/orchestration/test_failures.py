"""Failures say what is wrong and what to change, fast: a base URL that reaches nothing fails within 30 s naming
the host and the variable; an HTML answer is named as such, with its URL and the variable; a missing credential is
one line first (a Dagster Failure with metadata, and one line in the demo's output); a setting that holds an
unusable value is a configuration failure by its type, naming the variable."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from dagster import DagsterInstance

from mfg_pipeline import config
from mfg_pipeline.cli import main
from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.engine.refresh import open_values
from mfg_pipeline.http.errors import ConfigurationError
from mfg_pipeline.http.ratelimit import shared_limiter
from mfg_pipeline.orchestration.failures import failure_for
from mfg_pipeline.simulators.base import Fault, SimulatorServer
from mfg_pipeline.sources.fusion_ops.changes import FEED
from mfg_pipeline.sources.lagerkoll.streams import PRODUCTION_ORDERS as LAGERKOLL_ORDERS
from mfg_pipeline.sources.registry import source_by_name
from mfg_pipeline.sources.traede.settings import env_filter_groups
from mfg_pipeline_tests.conftest import SIM_NOW, serve_simulators


def serve(name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, SimulatorServer]:
    server = serve_simulators([source_by_name(name)], monkeypatch, 7).servers[name]
    return server.app, server


def step_failures(job_name: str, partition: str | None = None) -> list[Any]:
    result = (
        build_definitions()
        .resolve_job_def(job_name)
        .execute_in_process(instance=DagsterInstance.ephemeral(), partition_key=partition, raise_on_error=False)
    )
    return [e for e in result.all_events if e.is_step_failure]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_base_url_that_refuses_connections_fails_the_whole_run_within_30_seconds_naming_host_and_variable(
    data_dir, monkeypatch
):
    """Every step of the run needs the host; they share one wait (15 s), not one each."""
    app, server = serve("fusion_ops", monkeypatch)
    server.stop()
    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("FUSION_OPS_BASE_URL", url)
    started = time.monotonic()
    failures = step_failures("fusion_ops_refresh", SIM_NOW.date().isoformat())
    elapsed = time.monotonic() - started
    assert len(failures) == len(source_by_name("fusion_ops").streams) > 2
    assert elapsed < 30, f"took {elapsed:.0f}s"
    for failure in failures:
        error = failure.step_failure_data.error
        assert error.cls_name == "Failure"
        assert url in error.message and "connection refused" in error.message and "FUSION_OPS_BASE_URL" in error.message
    print(f"\nconnection refused: {len(failures)} steps failed after {elapsed:.1f}s in all")


def test_an_html_answer_is_named_with_its_url_and_the_variable_to_check(data_dir, monkeypatch):
    app, server = serve("fusion_ops", monkeypatch)
    try:
        app.inject_fault(
            Fault(
                "/api/v1/authorization",
                status=200,
                body="<!doctype html><html>Sign in</html>",
                content_type="text/html; charset=utf-8",
                times=100,
            )
        )
        failures = step_failures("fusion_ops_refresh", SIM_NOW.date().isoformat())
    finally:
        server.stop()
    messages = {e.step_failure_data.error.message for e in failures}
    assert messages
    for message in messages:
        assert "not JSON" in message and "text/html" in message
        assert f"{server.url}/api/v1/authorization" in message and "check FUSION_OPS_BASE_URL" in message
        assert "no 'token' string" not in message


def test_a_missing_credential_is_a_one_line_failure_with_metadata_and_one_line_in_the_demo(data_dir, monkeypatch):
    app, server = serve("fulcrum", monkeypatch)
    monkeypatch.delenv("FULCRUM_API_TOKEN")
    try:
        failures = step_failures("fulcrum_refresh", SIM_NOW.date().isoformat())
        assert failures and all(e.step_failure_data.error.cls_name == "Failure" for e in failures)
        first = failures[0]
        assert first.step_failure_data.error.message.splitlines()[0].endswith(
            "Environment variable FULCRUM_API_TOKEN is not set: it must hold the Fulcrum Pro API token (a JWT made "
            "in the Fulcrum UI)."
        )
        metadata = first.step_failure_data.user_failure_data.metadata
        assert metadata["check_variable"].value == "FULCRUM_API_TOKEN"
        assert metadata["kind"].value == "configuration"
        monkeypatch.setenv("DAGSTER_HOME", str(data_dir / "dagster_home"))
        result = CliRunner().invoke(main, ["demo", "--against-env", "--sources", "fulcrum", "--days", "1"])
    finally:
        server.stop()
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if "FULCRUM_API_TOKEN" in line]
    assert len(errors) == 1, result.output  # four streams, one cause: said once
    assert "Traceback" not in result.output and "Stack Trace" not in result.output
    print(f"\nmissing credential: {len(result.output.splitlines())} lines of demo output")


BAD_SETTINGS = [
    ("FUSION_OPS_CHANGE_CHANNELS", "production=NOT_A_TYPE", lambda: FEED.channels()),
    ("MFG_CHILD_SWEEP_EVERY_DAYS", "weekly", lambda: config.child_sweep_every_days()),
    ("MFG_PARTITION_TIMEZONE", "Mars/Olympus", lambda: config.partition_timezone()),
    ("LAGERKOLL_OPEN_STATES", "new,developing", lambda: open_values(LAGERKOLL_ORDERS.open_records)),
    ("TRAEDE_EXPORT_FILTER_GROUPS", "[{}]", lambda: env_filter_groups("TRAEDE_EXPORT_FILTER_GROUPS")),
    ("MFG_RATE_LIMIT_BACKEND", "mysql://somewhere", lambda: shared_limiter("bad_backend", 60, Path("."))),
]


@pytest.mark.parametrize(("variable", "value", "read"), BAD_SETTINGS, ids=[v for v, _, _ in BAD_SETTINGS])
def test_a_setting_that_cannot_be_used_is_a_named_configuration_failure_by_its_type(variable, value, read, monkeypatch):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        read()
    assert raised.value.variable == variable and variable in str(raised.value)
    failure = failure_for(raised.value, "fusion_ops")
    assert failure is not None and failure.metadata["kind"].value == "configuration"
    assert failure.metadata["check_variable"].value == variable and not failure.allow_retries
