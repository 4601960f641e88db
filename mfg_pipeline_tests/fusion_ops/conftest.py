"""Fusion Operations fixtures: a simulator on localhost with the pipeline's environment pointing at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from mfg_pipeline.simulators.base import SimulatorServer
from mfg_pipeline.simulators.fusion_ops.app import FusionOpsSimulator
from mfg_pipeline.simulators.fusion_ops.data import FusionDataset
from mfg_pipeline_tests.conftest import SIM_NOW

API_KEY, API_SECRET = "test-key-7f3a9c", "test-secret-51be02"


@pytest.fixture
def fusion_dataset() -> FusionDataset:
    """A fresh shop per test (0.1 s): the live-mode tests change it, and no change may leak into another test."""
    return FusionDataset(seed=42, now=SIM_NOW)


@pytest.fixture
def serve_fusion(
    monkeypatch: pytest.MonkeyPatch, data_dir, fusion_dataset
) -> Iterator[Callable[..., FusionOpsSimulator]]:
    """Start a Fusion simulator (kwargs go to FusionOpsSimulator) and point FUSION_OPS_* at it."""
    servers: list[SimulatorServer] = []

    def serve(client_rate_limit: int = 120, **kwargs) -> FusionOpsSimulator:
        kwargs.setdefault("dataset", fusion_dataset)
        simulator = FusionOpsSimulator(api_key=API_KEY, api_secret=API_SECRET, **kwargs)
        server = SimulatorServer(simulator).start()
        servers.append(server)
        monkeypatch.setenv("FUSION_OPS_BASE_URL", server.url)
        monkeypatch.setenv("FUSION_OPS_API_KEY", API_KEY)
        monkeypatch.setenv("FUSION_OPS_API_SECRET", API_SECRET)
        monkeypatch.setenv("FUSION_OPS_RATE_LIMIT_PER_MINUTE", str(client_rate_limit))
        return simulator

    yield serve
    for server in servers:
        server.stop()


@pytest.fixture
def fusion(serve_fusion) -> FusionOpsSimulator:
    """A Fusion simulator with the documented defaults."""
    return serve_fusion()
