"""The one registry of sources. Adding a vendor: a folder under `mfg_pipeline/sources/` exporting `SOURCE` (and a
simulator under `mfg_pipeline/simulators/` exporting `SIMULATOR`), and its module in `SOURCE_MODULES`: the Dagster
definitions, the demo, `dev`, the pools and the contract tests pick it up from here."""

from __future__ import annotations

import importlib

from mfg_pipeline.declarations import SourceSystem

SOURCE_MODULES: tuple[str, ...] = (
    "mfg_pipeline.sources.fusion_ops",
    "mfg_pipeline.sources.lagerkoll",
    "mfg_pipeline.sources.fulcrum",
    "mfg_pipeline.sources.isolocity",
    "mfg_pipeline.sources.traede",
)


def all_sources() -> tuple[SourceSystem, ...]:
    """Every registered source, in registry order (read at each call, so a test can register a toy source)."""
    return tuple(_load(module) for module in SOURCE_MODULES)


def _load(module_name: str) -> SourceSystem:
    module = importlib.import_module(module_name)
    source = getattr(module, "SOURCE", None)
    if not isinstance(source, SourceSystem):
        raise TypeError(f"{module_name} must export SOURCE, a SourceSystem (see README, 'Adding a source')")
    return source


def source_by_name(name: str) -> SourceSystem:
    for source in all_sources():
        if source.name == name:
            return source
    raise KeyError(f"unknown source {name!r}; registered: {[s.name for s in all_sources()]}")


ALL_SOURCES: tuple[SourceSystem, ...] = all_sources()
