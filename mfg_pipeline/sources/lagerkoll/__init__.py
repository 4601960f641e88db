"""Lagerkoll production orders: every order in every state, with its articles, single articles and batches."""

from __future__ import annotations

from pathlib import Path

from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.http.client import Logger
from mfg_pipeline.sources.lagerkoll.client import SYSTEM, LagerkollClient
from mfg_pipeline.sources.lagerkoll.settings import LagerkollSettings
from mfg_pipeline.sources.lagerkoll.streams import STREAMS


def make_client(data_dir: Path, logger: Logger | None = None) -> LagerkollClient:
    return LagerkollClient(LagerkollSettings.from_env(), data_dir, logger)


SOURCE = SourceSystem(
    name=SYSTEM,  # the one name: schema, asset keys, checks and the client's errors
    title="Lagerkoll",
    description="Production orders from Lagerkoll in every state, with their articles, reserved single articles "
    "and batches.",
    streams=STREAMS,
    make_client=make_client,
    concurrency_limit=2,  # one stream, and one order list per run; the 200/minute budget is shared anyway
)
