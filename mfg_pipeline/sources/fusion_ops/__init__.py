"""Autodesk Fusion Operations (formerly Prodsmart): productions, downtimes, punch clocks, production orders,
products, and the changes feed that keeps them fresh within a minute (`changes.py`)."""

from __future__ import annotations

from mfg_pipeline.declarations import SourceSystem, client_from_env
from mfg_pipeline.sources.fusion_ops.changes import FEED
from mfg_pipeline.sources.fusion_ops.client import SYSTEM, FusionOpsClient
from mfg_pipeline.sources.fusion_ops.settings import FusionOpsSettings
from mfg_pipeline.sources.fusion_ops.streams import STREAMS

make_client = client_from_env(FusionOpsSettings.from_env, FusionOpsClient)

SOURCE = SourceSystem(
    name=SYSTEM,  # the one name: schema, asset keys, checks and the client's errors
    title="Autodesk Fusion Operations",
    description="Shop-floor data from Fusion Operations: productions, downtimes, punch clocks, production orders "
    "and products.",
    streams=STREAMS,
    make_client=make_client,
    secret_variables=FusionOpsSettings.SECRET_VARIABLES,
    concurrency_limit=4,
    changes_feed=FEED,
)
