"""The sources the pipeline loads. Adding a vendor: a folder exporting `SOURCE`, and its name in `SOURCE_NAMES`."""

from __future__ import annotations

import importlib

from mfg_pipeline.streams import SourceSystem

SOURCE_NAMES: tuple[str, ...] = ("fusion_ops", "lagerkoll", "fulcrum", "isolocity", "traede")


def source_by_name(name: str) -> SourceSystem:
    """The `SOURCE` exported by `mfg_pipeline.sources.<name>`."""
    try:
        module = importlib.import_module(f"mfg_pipeline.sources.{name}")
    except ModuleNotFoundError:
        raise KeyError(f"unknown source {name!r}; known: {list(SOURCE_NAMES)}") from None
    return module.SOURCE


ALL_SOURCES: tuple[SourceSystem, ...] = tuple(source_by_name(name) for name in SOURCE_NAMES)
