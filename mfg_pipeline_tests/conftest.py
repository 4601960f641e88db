"""Fixtures shared by every test: a private data directory and a fixed clock for the simulators."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

# The simulators' "now" in tests: fixed, so the ground truth does not move with the wall clock.
SIM_NOW = datetime(2026, 11, 12, 14, 30, tzinfo=timezone.utc)


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
