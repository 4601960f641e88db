"""Where the dbt project lives and which loaded systems it reads, without importing dbt (the demo and the load
code location use this)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parent / "dbt_project"
# dbt's project structure: one folder per source under models/staging, each with its `_<source>__sources.yml`
# (the source's tables) and `_<source>__models.yml` (its staging models' docs and tests).
STAGING_DIR = PROJECT_DIR / "models" / "staging"
SOURCES_FILES = "*/_*__sources.yml"


def sources_files() -> list[Path]:
    """Every staging folder's `_<source>__sources.yml`."""
    return sorted(STAGING_DIR.glob(SOURCES_FILES))


def source_systems() -> frozenset[str]:
    """The loaded systems (DuckDB schemas) the models read: the dbt sources' names."""
    return frozenset(
        source["name"] for path in sources_files() for source in yaml.safe_load(path.read_text())["sources"]
    )


def switched_off_tables() -> dict[str, dict[str, str]]:
    """ "<source>.<table>" -> {column: DuckDB type} of every loaded table whose stream the plant switched off
    (`<SOURCE>_STREAMS`): the dbt var `switched_off`, which the `loaded()` macro reads as an empty relation."""
    from mfg_pipeline.records.schema import Table
    from mfg_pipeline.sources.registry import selected_sources, source_by_name
    from mfg_pipeline.warehouse.ddl import ARROW_TO_DUCKDB
    from mfg_pipeline.warehouse.layout import DELETED_AT_COLUMN, LOADED_AT_COLUMN, PARTITION_COLUMN, PLANT_COLUMN

    def columns(table: Table, partitioned: bool) -> dict[str, str]:
        declared = {PLANT_COLUMN: "VARCHAR"}
        declared.update({field.name: ARROW_TO_DUCKDB[field.type] for field in table.arrow_schema()})
        pipeline = {DELETED_AT_COLUMN: "TIMESTAMPTZ", LOADED_AT_COLUMN: "TIMESTAMPTZ"}
        return {**declared, **({PARTITION_COLUMN: "DATE"} if partitioned else {}), **pipeline}

    off: dict[str, dict[str, str]] = {}
    for source in selected_sources():
        declared = source_by_name(source.name)
        for stream in (declared.stream(name) for name in source.switched_off):
            for table in stream.tables:
                off[f"{source.name}.{table.name}"] = columns(table, stream.partitioned)
    return off


def plant_zones() -> dict[str, str]:
    """Plant -> time zone, for the dbt var `plants`, when a plants file describes them (without one, the models
    read the one plant's name and zone from MFG_PLANT and MFG_PARTITION_TIMEZONE themselves)."""
    from mfg_pipeline import config
    from mfg_pipeline.plants import for_plant, plant_names, plants

    if not plants():
        return {}
    zones = {}
    for name in plant_names():
        with for_plant(name):
            zones[name] = config.partition_timezone().key
    return zones


def dbt_vars() -> list[str]:
    """The `--vars` every dbt invocation passes: the streams switched off and the plants' zones (none while every
    stream is loaded and the environment describes the one plant)."""
    values: dict[str, object] = {}
    if off := switched_off_tables():
        values["switched_off"] = off
    if zones := plant_zones():
        values["plants"] = zones
    return ["--vars", json.dumps(values, sort_keys=True)] if values else []
