"""A lake written before rows carried their plant gets `PLANT_COLUMN`, once, when a process first opens it.

Its loaded tables and the bookkeeping kept per plant (stream state, recorded settings, the feed's journal, the
partitions owed a published file) gain the column with the opening run's plant as its default: DuckLake reads the
default for every row written before, so no data file is rewritten. The loaded tables' published files then move
under the `plant=` folder level (`publish.py` removes the old ones as it writes the new).

The rows belong to the plant of the first run after the upgrade: an installation of one plant (`default`, or
`MFG_PLANT`) keeps its rows as that plant's.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import date

import duckdb

from mfg_pipeline.warehouse.lake import Lake
from mfg_pipeline.warehouse.layout import (
    BUILT_WITH,
    FEED_JOURNAL,
    INTERNAL_SCHEMA,
    LOADED_AT_COLUMN,
    PARTITION_COLUMN,
    PLANT_COLUMN,
    STREAM_STATE,
    UNPUBLISHED_PREFIX,
    literal,
    qualified,
    quote,
)
from mfg_pipeline.warehouse.publish import PublishedTable, record_unpublished
from mfg_pipeline.warehouse.settings import LAKE_ALIAS, WarehouseSettings

PER_PLANT_BOOKKEEPING = tuple(name.split(".")[1] for name in (STREAM_STATE, BUILT_WITH, FEED_JOURNAL))

_upgraded: set[WarehouseSettings] = set()
_upgraded_lock = threading.Lock()


def tables_without_plant(cursor: duckdb.DuckDBPyConnection) -> list[tuple[str, str, bool]]:
    """(schema, table, is a loaded table) of the tables that should carry `PLANT_COLUMN` and do not: the loaded
    tables (they have `LOADED_AT_COLUMN`; dbt's models do not) and the per-plant bookkeeping."""
    rows = cursor.execute(
        "SELECT schema_name, table_name, bool_or(column_name = ?) FROM duckdb_columns() WHERE database_name = ? "
        "GROUP BY ALL HAVING NOT bool_or(column_name = ?) AND (bool_or(column_name = ?) OR (schema_name = ? AND "
        "(list_contains(?, table_name) OR starts_with(table_name, ?)))) ORDER BY ALL",
        [
            LOADED_AT_COLUMN,
            LAKE_ALIAS,
            PLANT_COLUMN,
            LOADED_AT_COLUMN,
            INTERNAL_SCHEMA,
            list(PER_PLANT_BOOKKEEPING),
            UNPUBLISHED_PREFIX,
        ],
    ).fetchall()
    views = {
        (schema, name)
        for schema, name in cursor.execute(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ?", [LAKE_ALIAS]
        ).fetchall()
    }
    return [(schema, name, loaded) for schema, name, loaded in rows if (schema, name) not in views]


def upgrade_to_plants(
    lake: Lake,
    settings: WarehouseSettings,
    plant_of_rows: Callable[[], str],
    writer: Callable[[str, str], AbstractContextManager[None]],
    publish: Callable[[str], object],
) -> None:
    """Give the lake's tables their plant column (once per process and lake; a lake that has it costs one catalog
    query). `plant_of_rows()` names the plant the stored rows become; `writer(group, what)` is a table group's lock;
    `publish(group)` publishes what it owes."""
    with _upgraded_lock:
        if settings in _upgraded:
            return
    with lake.cursor() as cursor:
        lacking = tables_without_plant(cursor)
    if lacking:
        plant = plant_of_rows()
        groups = sorted({schema for schema, _, loaded in lacking if loaded})
        with _locks(writer, groups, f"giving the tables their {PLANT_COLUMN} column"):
            lake.write(f"giving the tables their {PLANT_COLUMN} column ({plant})", lambda c: _add_column(c, plant))
            for group in groups:
                publish(group)
    with _upgraded_lock:
        _upgraded.add(settings)


@contextlib.contextmanager
def _locks(writer: Callable[[str, str], AbstractContextManager[None]], groups: list[str], what: str) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for group in groups:  # sorted, as every writer of several groups takes them
            stack.enter_context(writer(group, what))
        yield


def _add_column(cursor: duckdb.DuckDBPyConnection, plant: str) -> None:
    """In one transaction (run again whole if another writer commits first): the column on every table still
    lacking it, and each loaded table's rows owed a file under the plant's folder level."""
    for schema, name, loaded in tables_without_plant(cursor):
        table = qualified(schema, name)
        cursor.execute(f"ALTER TABLE {table} ADD COLUMN {PLANT_COLUMN} VARCHAR DEFAULT {literal(plant)}")
        if not loaded:
            continue
        columns = {row[0] for row in cursor.execute(f"DESCRIBE {table}").fetchall()}
        partitioned = PARTITION_COLUMN in columns
        days: set[date | None] = (
            {row[0] for row in cursor.execute(f"SELECT DISTINCT {quote(PARTITION_COLUMN)} FROM {table}").fetchall()}
            if partitioned
            else {None}
        )
        record_unpublished(cursor, PublishedTable(schema, name, partitioned, ()), plant, days)
