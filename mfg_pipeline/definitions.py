"""The Dagster code location: every source in `mfg_pipeline.sources.registry`, built by the factory."""

from __future__ import annotations

from dagster import Definitions

from mfg_pipeline.orchestration.factory import daily_partitions, source_definitions
from mfg_pipeline.orchestration.resources import SourceApiResource, WarehouseResource, api_resource_key
from mfg_pipeline.sources.registry import ALL_SOURCES


def build_definitions() -> Definitions:
    partitions = daily_partitions()
    collected: dict[str, list] = {"assets": [], "jobs": [], "schedules": [], "sensors": []}
    resources: dict = {"warehouse": WarehouseResource()}
    for source in ALL_SOURCES:
        parts = [source_definitions(source, partitions)]
        if source.extra_definitions:
            parts.append(source.extra_definitions())
        for part in parts:
            for kind, items in part.items():
                collected[kind] += items
        resources[api_resource_key(source.name)] = SourceApiResource(source=source.name)
    return Definitions(**collected, resources=resources)


defs = build_definitions()
