"""ISOlocity (quality management): non-conformance reports, corrective action reports and parts."""

from __future__ import annotations

from mfg_pipeline.declarations import SourceSystem, client_from_env
from mfg_pipeline.sources.isolocity.client import IsolocityClient
from mfg_pipeline.sources.isolocity.settings import IsolocitySettings
from mfg_pipeline.sources.isolocity.shapes import SYSTEM
from mfg_pipeline.sources.isolocity.streams import STREAMS

make_client = client_from_env(IsolocitySettings.from_env, IsolocityClient)

SOURCE = SourceSystem(
    name=SYSTEM,  # the one name: schema, asset keys, checks and the client's errors
    title="ISOlocity",
    description="Quality data from ISOlocity: NCRs of every source and status, CARs, and the parts NCRs refer to.",
    streams=STREAMS,
    make_client=make_client,
    secret_variables=IsolocitySettings.SECRET_VARIABLES,
    # Three small snapshot streams share one per-organization budget: more parallel runs would only queue on it.
    concurrency_limit=2,
)
