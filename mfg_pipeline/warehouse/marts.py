"""Publishing the analytics layer's tables as Parquet for Power BI and other readers (no dbt, no Dagster here).

Layout: `<parquet root>/<schema>/<table>/data.parquet`, or for a table partitioned by a DATE column
`<parquet root>/<schema>/<table>/<column>=YYYY-MM-DD/data.parquet`, the column kept inside every file too (a
folder read with `hive_partitioning=true` gives it back as a DATE). Every column is nullable in every file, so a
folder reads as one schema.

Cost follows change: each partition's fingerprint (row count, sum of row hashes and the table's column types) is
recorded in `main._mfg_published_marts`; a rebuild rewrites only the partitions whose fingerprint moved and
removes those that no longer exist. Each file is written to a temporary name and renamed, so a reader sees the
old file or the new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from mfg_pipeline.warehouse.lake import insert_rows
from mfg_pipeline.warehouse.layout import INTERNAL_SCHEMA, PARQUET_FILE, quote
from mfg_pipeline.warehouse.publish import ParquetStore
from mfg_pipeline.warehouse.settings import LAKE_ALIAS

PUBLISHED = f"{INTERNAL_SCHEMA}._mfg_published_marts"


@dataclass(frozen=True)
class MartTable:
    schema: str
    name: str
    partition_by: str | None = None  # a DATE column: one folder per value

    @property
    def qualified(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"


@dataclass
class PublishReport:
    folder: str
    partitions: int = 0  # partitions the table has now
    written: list[str] = field(default_factory=list)  # files rewritten by this run
    removed: list[str] = field(default_factory=list)  # partitions that no longer exist


def publish(
    connection: duckdb.DuckDBPyConnection, store: ParquetStore, parquet_path: str, table: MartTable
) -> PublishReport:
    """Bring one table's Parquet in line with the warehouse, rewriting only what changed. The caller holds the
    analytics layer's writer lock and commits `connection`'s transaction."""
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {PUBLISHED} (schema_name VARCHAR, table_name VARCHAR, partition_value DATE, "
        "fingerprint VARCHAR)"
    )
    folder = f"{parquet_path}{table.schema}/{table.name}/"
    report = PublishReport(folder)
    current = _fingerprints(connection, table)
    recorded = dict(
        connection.execute(
            f"SELECT partition_value, fingerprint FROM {PUBLISHED} WHERE schema_name = ? AND table_name = ?",
            [table.schema, table.name],
        ).fetchall()
    )
    report.partitions = len(current)
    for partition, fingerprint in current.items():
        target = _file(folder, table, partition)
        if recorded.get(partition) != fingerprint or not store.exists(target):
            _export(connection, store, table, partition, target)
            report.written.append(target)
    for partition in set(recorded) - set(current):
        gone = _file(folder, table, partition).rsplit("/", 1)[0] if table.partition_by else _file(folder, table, None)
        store.remove(gone)
        report.removed.append(gone)
    connection.execute(f"DELETE FROM {PUBLISHED} WHERE schema_name = ? AND table_name = ?", [table.schema, table.name])
    insert_rows(
        connection,
        PUBLISHED,
        [[table.schema, table.name, partition, fingerprint] for partition, fingerprint in current.items()],
    )
    return report


def _fingerprints(connection: duckdb.DuckDBPyConnection, table: MartTable) -> dict[date | None, str]:
    types = connection.execute(
        "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY column_index) FROM duckdb_columns() "
        "WHERE database_name = ? AND schema_name = ? AND table_name = ?",
        [LAKE_ALIAS, table.schema, table.name],
    ).fetchone()
    signature = types[0] if types else ""
    partition = f"t.{quote(table.partition_by)}" if table.partition_by else "NULL::DATE"
    rows = connection.execute(
        f"SELECT {partition} AS partition_value, count(*), sum(hash(t)) FROM {table.qualified} t GROUP BY ALL"
    ).fetchall()
    if not rows and table.partition_by is None:
        rows = [(None, 0, 0)]  # an empty unpartitioned table is still published (an empty file with its schema)
    return {value: f"{count}:{total}:{signature}" for value, count, total in rows}


def _file(folder: str, table: MartTable, partition: date | None) -> str:
    if table.partition_by is None:
        return folder + PARQUET_FILE
    value = "__HIVE_DEFAULT_PARTITION__" if partition is None else partition.isoformat()
    return f"{folder}{table.partition_by}={value}/{PARQUET_FILE}"


def _export(
    connection: duckdb.DuckDBPyConnection, store: ParquetStore, table: MartTable, partition: date | None, target: str
) -> None:
    params: list[object] = []
    if table.partition_by is None:
        where = ""
    elif partition is None:
        where = f"WHERE {quote(table.partition_by)} IS NULL"
    else:
        where, params = f"WHERE {quote(table.partition_by)} = ?", [partition]
    store.write(connection, f"SELECT * FROM {table.qualified} {where} ORDER BY ALL", params, target)
