"""The sources the pipeline loads. Adding a vendor: a folder exporting `SOURCE`, and one line here."""

from __future__ import annotations

from mfg_pipeline.sources.fusion_ops import SOURCE as FUSION_OPS
from mfg_pipeline.streams import SourceSystem

ALL_SOURCES: tuple[SourceSystem, ...] = (FUSION_OPS,)


def source_by_name(name: str) -> SourceSystem:
    for source in ALL_SOURCES:
        if source.name == name:
            return source
    raise KeyError(f"unknown source {name!r}; known: {[s.name for s in ALL_SOURCES]}")
