"""Traede: production orders through the export API (export, land, mark as exported), with their lines."""

from __future__ import annotations

from mfg_pipeline.declarations import SourceSystem, client_from_env
from mfg_pipeline.sources.traede.client import TraedeClient
from mfg_pipeline.sources.traede.settings import TraedeSettings
from mfg_pipeline.sources.traede.shapes import SYSTEM
from mfg_pipeline.sources.traede.streams import STREAMS

make_client = client_from_env(TraedeSettings.from_env, TraedeClient)

SOURCE = SourceSystem(
    name=SYSTEM,  # the one name: schema, asset keys, checks and the client's errors
    title="Traede",
    description="Production orders and their lines from Traede's export API, marked exported once landed.",
    streams=STREAMS,
    make_client=make_client,
    secret_variables=TraedeSettings.SECRET_VARIABLES,
    # One run at a time: two runs exporting to the same system_id would land and mark the same orders twice
    # over (harmless, thanks to the upsert, but wasted requests under an undocumented rate limit).
    concurrency_limit=1,
)
