"""Shared by every test: a private data directory, a fixed clock for the simulators, simulators served with the
environment pointing at them, and both code locations' definitions joined as the UI joins them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.simulators.serving import RunningSimulators, start_simulators

if TYPE_CHECKING:
    from dagster import Definitions

# The simulators' "now" in tests: fixed, so the ground truth does not move with the wall clock.
SIM_NOW = datetime(2026, 11, 12, 14, 30, tzinfo=timezone.utc)
# That history ends weeks before the wall clock, so the first partition is set before it, as a plant that loads
# older history sets it (unset, it follows the warehouse's history: orchestration/test_partition_start.py).
os.environ.setdefault("MFG_PARTITION_START_DATE", "2026-01-01")
LIFTED_RATE_LIMIT = 100_000  # requests per minute: no rate limit in a test's way


def serve_simulators(
    sources: Sequence[SourceSystem], monkeypatch: pytest.MonkeyPatch, history_days: int, now: datetime = SIM_NOW
) -> RunningSimulators:
    """The sources' simulators (seed 42, scale 1) with their rate limits and the pipeline's lifted, and the
    environment pointing at them; the caller stops them."""
    running = start_simulators(
        sources, now=now, rate_limits={s.name: LIFTED_RATE_LIMIT for s in sources}, history_days=history_days
    )
    for name, value in running.env.items():  # the clients' budgets lifted too
        monkeypatch.setenv(name, value)
    return running


def workspace_definitions() -> Definitions:
    """Both code locations in one `Definitions` (the loads, and the analytics layer's assets, checks, job and schedule),
    as the UI's global asset graph joins them."""
    # Imported here: both build definitions on import, and only the tests that ask need them.
    from dagster import Definitions

    from mfg_pipeline.analytics.definitions import build_analytics_definitions
    from mfg_pipeline.definitions import build_definitions

    analytics = build_analytics_definitions()
    return Definitions.merge(
        build_definitions(),
        Definitions(
            assets=analytics.assets,
            asset_checks=analytics.asset_checks,
            jobs=analytics.jobs,
            schedules=analytics.schedules,
            resources={"dbt": analytics.resources["dbt"]},
        ),
    )


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MFG_DATA_DIR for this test only (warehouse, Parquet and the shared rate-limit state)."""
    path = tmp_path / "data"
    monkeypatch.setenv("MFG_DATA_DIR", str(path))
    # Set then removed: monkeypatch then also removes a value something in the test sets (the CLI's demo sets the
    # simulated plant's zone when none is set).
    monkeypatch.setenv("MFG_PARTITION_TIMEZONE", "UTC")
    monkeypatch.delenv("MFG_PARTITION_TIMEZONE")
    monkeypatch.delenv("MFG_RATE_LIMIT_BACKEND", raising=False)
    # An apply run applies what is pending and leaves (the coalescing tests set these to their defaults).
    monkeypatch.setenv("FUSION_OPS_APPLY_LINGER_SECONDS", "0")
    monkeypatch.setenv("FUSION_OPS_APPLY_MIN_INTERVAL_SECONDS", "0")
    return path
