"""The one registry of sources. Adding a vendor: a folder under `mfg_pipeline/sources/` exporting `SOURCE` (and a
simulator under `mfg_pipeline/simulators/` exporting `SIMULATOR`), and its module in `SOURCE_MODULES`: the Dagster
definitions, the demo, `dev`, the pools and the contract tests pick it up from here."""

from __future__ import annotations

import importlib
from dataclasses import replace

from mfg_pipeline.config import env_get
from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.http.errors import ConfigurationError

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


def streams_variable(source: SourceSystem) -> str:
    return f"{source.name.upper()}_STREAMS"


def selected(source: SourceSystem) -> SourceSystem:
    """The source with only the streams its `<NAME>_STREAMS` setting lists (comma-separated; unset or empty: all),
    the way a plant picks the tables it loads. A stream left out has no assets, jobs or schedules, and the
    analytics layer reads it as empty (`switched_off` names it)."""
    variable = streams_variable(source)
    raw = (env_get(variable) or "").strip()
    if not raw:
        return source
    wanted = {name.strip() for name in raw.split(",") if name.strip()}
    names = [stream.name for stream in source.streams]
    unknown = sorted(wanted - set(names))
    if unknown:
        raise ConfigurationError(
            f"{variable} names {unknown}, which {source.title} lacks; its streams: {', '.join(names)}"
        )
    return replace(
        source,
        streams=tuple(stream for stream in source.streams if stream.name in wanted),
        switched_off=tuple(name for name in names if name not in wanted),
    )


def selected_sources() -> tuple[SourceSystem, ...]:
    """Every registered source with the streams its setting selects: what the definitions and the demo run."""
    return tuple(selected(source) for source in all_sources())


def source_by_name(name: str) -> SourceSystem:
    for source in all_sources():
        if source.name == name:
            return source
    raise KeyError(f"unknown source {name!r}; registered: {[s.name for s in all_sources()]}")


ALL_SOURCES: tuple[SourceSystem, ...] = all_sources()
