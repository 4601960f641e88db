"""Autodesk Fusion Operations (formerly Prodsmart): productions, downtimes, punch clocks, production orders,
products, and the changes feed that keeps them fresh within a minute (`changes.py`)."""

from __future__ import annotations

from pathlib import Path

from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.http.client import Logger
from mfg_pipeline.sources.fusion_ops.client import SYSTEM, FusionOpsClient
from mfg_pipeline.sources.fusion_ops.settings import FusionOpsSettings
from mfg_pipeline.sources.fusion_ops.streams import STREAMS


def make_client(data_dir: Path, logger: Logger | None = None) -> FusionOpsClient:
    return FusionOpsClient(FusionOpsSettings.from_env(), data_dir, logger)


SOURCE = SourceSystem(
    name=SYSTEM,  # the one name: schema, asset keys, checks and the client's errors
    title="Autodesk Fusion Operations",
    description="Shop-floor data from Fusion Operations: productions, downtimes, punch clocks, production orders "
    "and products.",
    streams=STREAMS,
    make_client=make_client,
    concurrency_limit=4,
)
