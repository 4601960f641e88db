"""Autodesk Fusion Operations (formerly Prodsmart): productions, downtimes, punch clocks, production orders."""

from __future__ import annotations

from pathlib import Path

from mfg_pipeline.http.client import Logger
from mfg_pipeline.sources.fusion_ops.client import FusionOpsClient
from mfg_pipeline.sources.fusion_ops.settings import FusionOpsSettings
from mfg_pipeline.sources.fusion_ops.streams import STREAMS
from mfg_pipeline.streams import SourceSystem


def make_client(data_dir: Path, logger: Logger | None = None) -> FusionOpsClient:
    return FusionOpsClient(FusionOpsSettings.from_env(), data_dir, logger)


def _change_feed_definitions() -> dict[str, list]:
    from mfg_pipeline.sources.fusion_ops.sensors import change_definitions

    return change_definitions()


SOURCE = SourceSystem(
    name="fusion_ops",
    title="Autodesk Fusion Operations",
    description="Shop-floor data from Fusion Operations: productions, downtimes, punch clocks, production orders.",
    streams=STREAMS,
    make_client=make_client,
    concurrency_limit=4,
    extra_definitions=_change_feed_definitions,
)
