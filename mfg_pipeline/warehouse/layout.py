"""The warehouse's layout, named once: the pipeline's own columns, the current-state views, the internal tables and
the published Parquet paths. Every other module reads these names from here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

PARTITION_COLUMN = "partition_date"
PLANT_COLUMN = "plant"  # every row's plant, part of every key (`plants.py`): vendor ids are unique per company only
LOADED_AT_COLUMN = "_loaded_at"
DELETED_AT_COLUMN = "deleted_at"
FINGERPRINT_COLUMN = "_fingerprint"
CURRENT_VIEW_SUFFIX = "_current"
PARQUET_FILE = "data.parquet"
INTERNAL_SCHEMA = "main"  # the pipeline's bookkeeping tables, prefixed `_mfg_`
STREAM_STATE = f"{INTERNAL_SCHEMA}._mfg_stream_state"
VIEW_DEFINITIONS = f"{INTERNAL_SCHEMA}._mfg_view_definitions"
FEED_JOURNAL = f"{INTERNAL_SCHEMA}._mfg_feed_journal"
BUILT_WITH = f"{INTERNAL_SCHEMA}._mfg_built_with"
UNPUBLISHED_PREFIX = "_mfg_unpublished_"  # + a table group (schema): the partitions it owes a published file

# Comments on the columns every table gets (the declared columns carry their own).
PIPELINE_COLUMN_COMMENTS = {
    PLANT_COLUMN: "The plant whose company at the vendor holds the record (MFG_PLANTS_FILE; `default` for an "
    "installation of one plant). Part of the key: two plants' records may share an id.",
    PARTITION_COLUMN: "Day partition the row belongs to (a day in MFG_PARTITION_TIMEZONE), from the stream's time "
    "column.",
    DELETED_AT_COLUMN: "When the pipeline saw the vendor delete the record (UTC): the changes feed said so, or a "
    "full list no longer held it. NULL for live rows; <table>_current hides the others.",
    LOADED_AT_COLUMN: "When this version of the row was written to the warehouse (UTC).",
    FINGERPRINT_COLUMN: "Hash of the record as the vendor sent it; a load rewrites the row (and refetches its "
    "child lists) only when it changes. NULL when the changes feed wrote the row.",
}


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def qualified(schema: str, name: str) -> str:
    return f"{quote(schema)}.{quote(name)}"


def at_snapshot(schema: str, name: str, snapshot: int | None) -> str:
    """A lake table as it was at `snapshot` (None: as it is now)."""
    return qualified(schema, name) if snapshot is None else f"{qualified(schema, name)} AT (VERSION => {int(snapshot)})"


def published_path(parquet_path: str, schema: str, table: str, plant: str, partition: date | None) -> str:
    """The published current-state file of one plant's rows of a table (unpartitioned), or of one day of them."""
    base = f"{parquet_path}{schema}/{table}/{PLANT_COLUMN}={plant}/"
    return f"{base}date={partition.isoformat()}/{PARQUET_FILE}" if partition else base + PARQUET_FILE


def published_glob(parquet_path: str, schema: str, table: str, partitioned: bool, plant: str = "*") -> str:
    """The published files of a table: one plant's, or (`*`) every plant's."""
    base = f"{parquet_path}{schema}/{table}/{PLANT_COLUMN}={plant}/"
    return base + (f"*/{PARQUET_FILE}" if partitioned else PARQUET_FILE)


def legacy_published(parquet_path: str, schema: str, table: str) -> list[str]:
    """Where a table's files were published before plants had a folder level (removed when it is republished)."""
    base = f"{parquet_path}{schema}/{table}/"
    return [base + PARQUET_FILE, base + "date=*"]


def keys_relation(key_columns: Sequence[str], keys: Sequence[tuple]) -> tuple[str, list[list[Any]]]:
    """A relation of `keys` (one column each of `key_columns`) for a query to join on, and its parameters: one
    list per column, unnested side by side. Not an Arrow table registered with DuckDB: scanning one makes DuckDB
    import pyarrow.dataset and its engines (with pyarrow.compute, 15 MB more in every run)."""
    if any(len(key) != len(key_columns) for key in keys):
        raise ValueError(f"keys of {len(key_columns)} columns ({', '.join(key_columns)}) expected")
    columns = ", ".join(f"unnest(?) AS {quote(name)}" for name in key_columns)
    return f"(SELECT {columns})", [list(values) for values in zip(*keys, strict=True)]
