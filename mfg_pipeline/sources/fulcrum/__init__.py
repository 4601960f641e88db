"""Fulcrum Pro: jobs with their items to make and operations, invoices with line items, sales orders, customers."""

from __future__ import annotations

from mfg_pipeline.declarations import SourceSystem, client_from_env
from mfg_pipeline.sources.fulcrum.client import SYSTEM, make_fulcrum_client
from mfg_pipeline.sources.fulcrum.settings import FulcrumSettings
from mfg_pipeline.sources.fulcrum.streams import STREAMS

make_client = client_from_env(FulcrumSettings.from_env, make_fulcrum_client)

SOURCE = SourceSystem(
    name=SYSTEM,  # the one name: schema, asset keys, checks and the client's errors
    title="Fulcrum Pro",
    description="ERP data from Fulcrum Pro: jobs with their items to make and routing operations, invoices with "
    "line items, sales orders and customers.",
    streams=STREAMS,
    make_client=make_client,
    secret_variables=FulcrumSettings.SECRET_VARIABLES,
    concurrency_limit=2,  # no documented rate limit: keep parallel runs few so the shared budget stays smooth
)
