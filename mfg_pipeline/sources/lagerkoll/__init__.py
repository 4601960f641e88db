"""Lagerkoll production orders: every order in every state, with its articles, single articles and batches."""

from __future__ import annotations

from mfg_pipeline.declarations import SourceSystem, client_from_env
from mfg_pipeline.sources.lagerkoll.client import SYSTEM, LagerkollClient
from mfg_pipeline.sources.lagerkoll.settings import LagerkollSettings
from mfg_pipeline.sources.lagerkoll.streams import STREAMS

make_client = client_from_env(LagerkollSettings.from_env, LagerkollClient)

SOURCE = SourceSystem(
    name=SYSTEM,  # the one name: schema, asset keys, checks and the client's errors
    title="Lagerkoll",
    description="Production orders from Lagerkoll in every state, with their articles, reserved single articles "
    "and batches.",
    streams=STREAMS,
    make_client=make_client,
    secret_variables=LagerkollSettings.SECRET_VARIABLES,
    concurrency_limit=2,  # one stream, and one order list per run; the 200/minute budget is shared anyway
)
