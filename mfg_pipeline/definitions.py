"""The Dagster code location: every registered source's definitions (built from its declarations), the Fusion
changes feed, the warehouse's daily maintenance, and the resources they share, merged into one `Definitions`."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetKey, Definitions, in_process_executor

from mfg_pipeline.http.errors import ConfigurationError
from mfg_pipeline.orchestration.changes_feed import changes_feed_definitions, feed_upstream
from mfg_pipeline.orchestration.factory import daily_partitions, source_definitions
from mfg_pipeline.orchestration.maintenance import maintenance_definitions
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.sources.fusion_ops.changes import SYSTEM as FEED_SOURCE
from mfg_pipeline.sources.fusion_ops.changes import ChangeJournal, channels_from_env
from mfg_pipeline.sources.registry import selected_sources, streams_variable


def build_definitions() -> Definitions:
    partitions = daily_partitions()
    sources = selected_sources()
    channels = channels_from_env()
    upstream: dict[str, Sequence[AssetKey]] = dict(feed_upstream(channels))
    for source in sources:
        if source.name == FEED_SOURCE and (fed_but_off := sorted(set(upstream) & set(source.switched_off))):
            raise ConfigurationError(
                f"{streams_variable(source)} leaves out {', '.join(fed_but_off)}, which the changes feed writes: leave "
                "their channels out of FUSION_OPS_CHANGE_CHANNELS too, or keep the streams"
            )
    parts = [source_definitions(s, partitions, upstream if s.name == FEED_SOURCE else None) for s in sources]
    journals = []
    if any(s.name == FEED_SOURCE for s in sources):
        parts.append(changes_feed_definitions())
        journals.append(lambda warehouse: ChangeJournal.for_warehouse(warehouse).pages)
    parts.append(maintenance_definitions(journals))
    shared = Definitions(
        resources={"sources": SourcesResource(), "warehouse": WarehouseResource()},
        # One process per run: steps of a run share a process (and its one wait for a busy DuckDB file).
        executor=in_process_executor,
    )
    return Definitions.merge(*parts, shared)


defs = build_definitions()
