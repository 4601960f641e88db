"""The Dagster code location: every registered source's definitions (its streams and, where it declares one, its
changes feed), the warehouse's daily maintenance, and the resources they share, merged into one `Definitions`."""

from __future__ import annotations

from datetime import date

from dagster import Definitions, in_process_executor

from mfg_pipeline.orchestration.factory import partitioning
from mfg_pipeline.orchestration.maintenance import maintenance_definitions
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.orchestration.source_parts import feed_journals, source_parts
from mfg_pipeline.sources.registry import selected_sources


def build_definitions(reach_back_to: date | None = None) -> Definitions:
    """`reach_back_to`: a day this process loads, which the partitions then include (`factory.partition_start`)."""
    partitions = partitioning(reach_back_to)
    sources = selected_sources()
    parts = [part for source in sources for part in source_parts(source, partitions)]
    parts.append(maintenance_definitions(feed_journals(sources)))
    shared = Definitions(
        resources={"sources": SourcesResource(), "warehouse": WarehouseResource()},
        # One process per run: steps of a run share a process (and its one wait for a busy DuckDB file).
        executor=in_process_executor,
    )
    return Definitions.merge(*parts, shared)


defs = build_definitions()
