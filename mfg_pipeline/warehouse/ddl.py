"""A table's shape in the lake, from its declaration: the table (columns added as the declaration grows), its
`_current` view, and the comments analysts read (`duckdb_tables()`, `duckdb_columns()`). Run inside the load's
transaction, and only what differs is changed: in DuckLake a changed table conflicts with every concurrent insert
into it, and a replaced view loses its comment."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from mfg_pipeline.warehouse.layout import (
    CURRENT_VIEW_SUFFIX,
    DELETED_AT_COLUMN,
    FINGERPRINT_COLUMN,
    LOADED_AT_COLUMN,
    PARTITION_COLUMN,
    PIPELINE_COLUMN_COMMENTS,
    PLANT_COLUMN,
    VIEW_DEFINITIONS,
    literal,
    qualified,
    quote,
)
from mfg_pipeline.warehouse.merge import TableLoad
from mfg_pipeline.warehouse.settings import LAKE_ALIAS, WarehouseSettings

ARROW_TO_DUCKDB = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


class Shapes:
    """The table shapes this process has ensured in one lake, so a commit re-checks a table's columns, view and
    comments only when its declaration changed (each check is several catalog reads). The pipeline never drops a
    column or a comment, so a shape once in the lake stays there."""

    def __init__(self) -> None:
        self._ensured: set[tuple] = set()
        self._lock = threading.Lock()

    def ensured(self, shape: tuple) -> bool:
        with self._lock:
            return shape in self._ensured

    def remember(self, shapes: Iterable[tuple]) -> None:
        """Call once the transaction that ensured them has committed."""
        with self._lock:
            self._ensured.update(shapes)


_shapes: dict[WarehouseSettings, Shapes] = {}
_shapes_lock = threading.Lock()


def shapes_for(settings: WarehouseSettings) -> Shapes:
    """This process's record of the shapes it ensured in one lake."""
    with _shapes_lock:
        return _shapes.setdefault(settings, Shapes())


def shape_of(load: TableLoad) -> tuple:
    """What `ensure_table` makes of a load: its table, columns, view and comments, as one hashable value."""
    return (
        load.schema,
        load.table.signature,
        load.table.description,
        tuple(sorted(pq.read_schema(load.staged_file).names)),
        load.partitioned,
        load.deleted_flag,
        load.parent.table.name if load.parent is not None else None,
        load.parent.deleted_flag if load.parent is not None else None,
    )


def ensure_table(cursor: duckdb.DuckDBPyConnection, load: TableLoad) -> None:
    """Create the table, add declared columns it lacks, keep its current view and comments as declared."""
    arrow_schema = pq.read_schema(load.staged_file)
    pipeline = {DELETED_AT_COLUMN, FINGERPRINT_COLUMN}
    columns = [(PLANT_COLUMN, "VARCHAR")]
    columns += [(f.name, ARROW_TO_DUCKDB[f.type]) for f in arrow_schema if f.name not in pipeline]
    if FINGERPRINT_COLUMN in arrow_schema.names:
        columns.append((FINGERPRINT_COLUMN, "VARCHAR"))
    columns += [(DELETED_AT_COLUMN, "TIMESTAMPTZ"), (LOADED_AT_COLUMN, "TIMESTAMPTZ")]
    existing = column_comments(cursor, load.schema, load.table.name)
    if not existing:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(load.schema)}")
        column_sql = ", ".join(f"{quote(n)} {t}" for n, t in columns)
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {load.qualified} ({column_sql})")
        # Data files per plant (and day): a plant's (day's) reload, export or check reads its own files only.
        by = (PLANT_COLUMN, PARTITION_COLUMN) if load.partitioned else (PLANT_COLUMN,)
        cursor.execute(f"ALTER TABLE {load.qualified} SET PARTITIONED BY ({', '.join(map(quote, by))})")
        existing = column_comments(cursor, load.schema, load.table.name)
    for name, duck_type in columns:
        if name not in existing:  # a column added to the declaration since the table was created
            cursor.execute(f"ALTER TABLE {load.qualified} ADD COLUMN {quote(name)} {duck_type}")
            existing[name] = None
    _ensure_current_view(cursor, load)
    _comment(cursor, load, existing)


def column_comments(cursor: duckdb.DuckDBPyConnection, schema: str, relation: str) -> dict[str, Any]:
    """Column name -> comment of a table or view in the lake (empty when it does not exist)."""
    return dict(
        cursor.execute(
            "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? "
            "AND table_name = ? ORDER BY column_index",
            [LAKE_ALIAS, schema, relation],
        ).fetchall()
    )


def current_view_sql(cursor: duckdb.DuckDBPyConnection, load: TableLoad) -> str:
    hidden = {DELETED_AT_COLUMN, FINGERPRINT_COLUMN}
    names = [n for n in column_comments(cursor, load.schema, load.table.name) if n not in hidden]
    selected = ", ".join(f"t.{quote(n)}" for n in names)
    return f"SELECT {selected} FROM {load.qualified} t WHERE {live_condition(load)}"


def live_condition(load: TableLoad) -> str:
    """The condition on alias `t` for a row analysts should see."""
    condition = f"t.{DELETED_AT_COLUMN} IS NULL"
    if load.deleted_flag:
        condition += f" AND t.{quote(load.deleted_flag)} IS NOT TRUE"
    parent = load.parent
    if parent is not None and parent.deleted_flag:
        link = " AND ".join(f"p.{quote(p)} = t.{quote(c)}" for c, p in load.link)
        condition += (
            f" AND NOT EXISTS (SELECT 1 FROM {parent.qualified} p WHERE {link} "
            f"AND p.{quote(parent.deleted_flag)} IS TRUE)"
        )
    return condition


def _ensure_current_view(cursor: duckdb.DuckDBPyConnection, load: TableLoad) -> None:
    """What analysts query by default: the current state, soft-deleted and vendor-deleted rows hidden.
    Replaced only when its definition changes (replacing a view drops its comment)."""
    view_name = load.table.name + CURRENT_VIEW_SUFFIX
    sql = current_view_sql(cursor, load)
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {VIEW_DEFINITIONS} (schema_name VARCHAR, view_name VARCHAR, sql VARCHAR)"
    )
    recorded = cursor.execute(
        f"SELECT v.sql FROM {VIEW_DEFINITIONS} v JOIN duckdb_views() d ON d.database_name = ? "
        "AND d.schema_name = v.schema_name AND d.view_name = v.view_name WHERE v.schema_name = ? AND v.view_name = ?",
        [LAKE_ALIAS, load.schema, view_name],
    ).fetchall()
    if recorded and recorded[0][0] == sql:
        return
    cursor.execute(f"CREATE OR REPLACE VIEW {qualified(load.schema, view_name)} AS {sql}")
    cursor.execute(f"DELETE FROM {VIEW_DEFINITIONS} WHERE schema_name = ? AND view_name = ?", [load.schema, view_name])
    cursor.execute(f"INSERT INTO {VIEW_DEFINITIONS} VALUES (?, ?, ?)", [load.schema, view_name, sql])


def _comment(cursor: duckdb.DuckDBPyConnection, load: TableLoad, existing: Mapping[str, Any]) -> None:
    """COMMENT ON the table, its current view and every column of the table, from the declaration (only what
    differs). DuckLake keeps no comments on a view's columns: the view's comment points at the table's."""
    table = load.table
    comments = {c.name: c.description or f"From the vendor field `{c.source_label}`." for c in table.columns}
    comments.update(PIPELINE_COLUMN_COMMENTS)
    view_name = table.name + CURRENT_VIEW_SUFFIX
    described = [
        ("TABLE", load.qualified, table.description, object_comment(cursor, load.schema, table.name)),
        (
            "VIEW",
            qualified(load.schema, view_name),
            f"{table.description} Current state: rows deleted at the vendor are left out. Columns as in "
            f"{load.schema}.{table.name} (see its column comments).",
            object_comment(cursor, load.schema, view_name),
        ),
    ]
    for kind, target, text, current in described:
        if text and text != current:
            cursor.execute(f"COMMENT ON {kind} {target} IS {literal(text)}")
    for name, current in existing.items():
        wanted = comments.get(name)
        if wanted and wanted != current:
            cursor.execute(f"COMMENT ON COLUMN {load.qualified}.{quote(name)} IS {literal(wanted)}")


def object_comment(cursor: duckdb.DuckDBPyConnection, schema: str, name: str) -> str | None:
    row = cursor.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? AND table_name = ? "
        "UNION ALL SELECT comment FROM duckdb_views() WHERE database_name = ? AND schema_name = ? AND view_name = ?",
        [LAKE_ALIAS, schema, name, LAKE_ALIAS, schema, name],
    ).fetchall()
    return row[0][0] if row else None
