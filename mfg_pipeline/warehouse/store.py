"""The warehouse: one DuckDB file plus published Parquet, written by one writer at a time.

How a load lands (and why concurrent runs cannot trip DuckDB's single-writer lock):
1. A run extracts into its own staging folder (`data/staging/<source>/<uuid>/`), Parquet files nobody else reads.
   Extraction failing half-way leaves the warehouse untouched.
2. `commit()` takes a cross-process file lock (`warehouse.duckdb.lock`), so exactly one of our processes opens
   DuckDB for writing at a time; the others wait their turn instead of failing. Inside it, one DuckDB
   transaction replaces the partition (or snapshot) from the staged files: all tables of the load or none.
3. Still under the lock, every partition the transaction touched is exported from DuckDB to its published
   Parquet file via a temporary file and an atomic rename, so readers see the old file or the new one, never a
   half-written one, and Parquet always equals DuckDB.
Readers inside the pipeline (asset checks) take the same lock. Analysts should query with short sessions or
read the Parquet; a DuckDB file held open elsewhere makes the writer retry, then fail with a clear message.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Iterator, Sequence

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock

from mfg_pipeline.records.schema import Table

PARTITION_COLUMN = "partition_date"
LOADED_AT_COLUMN = "_loaded_at"
DELETED_AT_COLUMN = "deleted_at"
CURRENT_VIEW_SUFFIX = "_current"
PARQUET_FILE = "data.parquet"

_ARROW_TO_DUCKDB = {
    pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE", pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


class WarehouseBusyError(RuntimeError):
    """DuckDB stayed locked by another program for longer than we wait."""


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableLoad:
    """One staged table to merge.

    mode "partition": replace the rows of `partition` (and any staged key found elsewhere: records that moved);
    mode "snapshot": replace the whole table;
    mode "upsert": replace the staged keys only.
    A child table (`parent`) also drops every row of the staged parents, so children a parent lost disappear.
    """

    schema: str
    table: Table
    staged_file: Path
    mode: str
    partition: date | None = None
    parent: "TableLoad | None" = None
    parent_link: tuple[tuple[str, str], ...] = ()  # (child column, parent column)
    partitioned: bool | None = None  # has a partition_date column (None: as `commit(partitioned=...)` says)

    @property
    def qualified(self) -> str:
        return f"{quote(self.schema)}.{quote(self.table.name)}"


@dataclass
class Stage:
    """A run's private staging folder."""

    path: Path
    files: dict[str, Path] = field(default_factory=dict)

    def file_for(self, table_name: str) -> Path:
        return self.files.setdefault(table_name, self.path / f"{table_name}.parquet")

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@dataclass(frozen=True)
class CommitResult:
    rows_by_table: dict[str, int]
    published: dict[str, list[Path]]
    seconds: float


class Warehouse:
    def __init__(self, data_dir: Path | str, lock_timeout: float = 900.0, busy_timeout: float = 60.0):
        self.data_dir = Path(data_dir)
        self.duckdb_path = self.data_dir / "warehouse.duckdb"
        self.parquet_root = self.data_dir / "parquet"
        self.staging_root = self.data_dir / "staging"
        self.lock_timeout = lock_timeout
        self.busy_timeout = busy_timeout

    # --- locking and connections -------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.duckdb_path) + ".lock", timeout=self.lock_timeout):
            yield

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, under the writer lock. Retries while another program holds the DuckDB file."""
        with self.locked():
            if read_only and not self.duckdb_path.exists():
                connection = duckdb.connect(":memory:")
            else:
                connection = self._open(read_only)
            try:
                yield connection
            finally:
                connection.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.busy_timeout
        delay = 0.1
        while True:
            try:
                return duckdb.connect(str(self.duckdb_path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise WarehouseBusyError(
                        f"{self.duckdb_path} is locked by another program (an open DuckDB session?); "
                        f"waited {self.busy_timeout:.0f}s: {exc}") from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self.connect(read_only=True) as connection:
            return connection.execute(sql, list(params)).fetchall()

    # --- staging -----------------------------------------------------------------------------------------
    def new_stage(self, source: str) -> Stage:
        path = self.staging_root / source / uuid.uuid4().hex
        path.mkdir(parents=True)
        return Stage(path)

    # --- publishing layout -------------------------------------------------------------------------------
    def parquet_dir(self, schema: str, table: str) -> Path:
        return self.parquet_root / schema / table

    def parquet_file(self, schema: str, table: str, partition: date | None) -> Path:
        base = self.parquet_dir(schema, table)
        return (base / f"date={partition.isoformat()}" / PARQUET_FILE) if partition else base / PARQUET_FILE

    # --- the merge ---------------------------------------------------------------------------------------
    def commit(self, loads: Sequence[TableLoad], partitioned: bool | None = None) -> CommitResult:
        """Merge every load in one transaction, then re-export the Parquet of every partition it touched."""
        started = time.monotonic()
        loads = [load if load.partitioned is not None else replace(load, partitioned=bool(partitioned))
                 for load in loads]
        with self.connect() as connection:
            touched: dict[TableLoad, set[date | None]] = {}
            connection.execute("BEGIN TRANSACTION")
            try:
                for load in loads:
                    self._ensure_table(connection, load)
                    touched[load] = self._merge(connection, load)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            rows = {load.table.name: connection.execute(
                "SELECT count(*) FROM read_parquet(?)", [str(load.staged_file)]).fetchone()[0] for load in loads}
            published = {load.table.name: [self._export(connection, load, partition)
                                            for partition in sorted(partitions, key=lambda p: (p is None, p))]
                         for load, partitions in touched.items()}
        return CommitResult(rows, published, time.monotonic() - started)

    def _ensure_table(self, connection: duckdb.DuckDBPyConnection, load: TableLoad) -> None:
        arrow_schema = pq.read_schema(load.staged_file)
        columns = [(f.name, _ARROW_TO_DUCKDB[f.type]) for f in arrow_schema if f.name != DELETED_AT_COLUMN]
        columns += [(DELETED_AT_COLUMN, "TIMESTAMPTZ"), (LOADED_AT_COLUMN, "TIMESTAMPTZ")]
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(load.schema)}")
        key = ", ".join(quote(c) for c in load.table.primary_key)
        column_sql = ", ".join(f"{quote(n)} {t}" for n, t in columns)
        connection.execute(f"CREATE TABLE IF NOT EXISTS {load.qualified} ({column_sql}, PRIMARY KEY ({key}))")
        existing = {r[0] for r in connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [load.schema, load.table.name]).fetchall()}
        for name, duck_type in columns:
            if name not in existing:  # a column added to the declaration since the table was created
                connection.execute(f"ALTER TABLE {load.qualified} ADD COLUMN {quote(name)} {duck_type}")
        # What analysts query by default: the current state, soft-deleted rows hidden.
        connection.execute(f"CREATE OR REPLACE VIEW {quote(load.schema)}.{quote(load.table.name + CURRENT_VIEW_SUFFIX)}"
                           f" AS SELECT * EXCLUDE ({DELETED_AT_COLUMN}) FROM {load.qualified} "
                           f"WHERE {DELETED_AT_COLUMN} IS NULL")

    def _merge(self, connection: duckdb.DuckDBPyConnection, load: TableLoad) -> set:
        """Replace what `load` covers; returns the partitions whose rows changed (None: the unpartitioned file).
        Reloads keep soft-deleted rows (a deletion the changes feed reported stays visible as such); an upsert
        replaces the staged keys whatever their state."""
        partitioned = load.partitioned
        staged = str(load.staged_file)
        key_match = " AND ".join(f"t.{quote(c)} = s.{quote(c)}" for c in load.table.primary_key)
        if not partitioned:
            touched: set[date | None] = {None}
        else:
            touched = {r[0] for r in connection.execute(
                f"SELECT DISTINCT {PARTITION_COLUMN} FROM read_parquet(?)", [staged]).fetchall()}
            if load.mode == "partition":
                touched.add(load.partition)
        scopes = []  # (USING source, match condition) pairs of rows to drop before the insert
        if load.mode == "snapshot":
            connection.execute(f"DELETE FROM {load.qualified} WHERE {DELETED_AT_COLUMN} IS NULL")
        elif load.mode == "partition":
            connection.execute(f"DELETE FROM {load.qualified} WHERE {PARTITION_COLUMN} = ? "
                               f"AND {DELETED_AT_COLUMN} IS NULL", [load.partition])
        if load.parent is not None:
            parent_match = " AND ".join(f"t.{quote(c)} = s.{quote(p)}" for c, p in load.parent_link)
            scopes.append((load.parent.staged_file, parent_match))
        scopes.append((load.staged_file, key_match))
        for source_file, condition in scopes:
            if partitioned:  # rows that moved here from another partition: that partition changes too
                touched.update(r[0] for r in connection.execute(
                    f"SELECT DISTINCT t.{PARTITION_COLUMN} FROM {load.qualified} t, read_parquet(?) s "
                    f"WHERE {condition}", [str(source_file)]).fetchall())
            connection.execute(f"DELETE FROM {load.qualified} t USING read_parquet(?) s WHERE {condition}",
                               [str(source_file)])
        connection.execute(f"INSERT INTO {load.qualified} BY NAME "
                           f"SELECT *, now() AS {LOADED_AT_COLUMN} FROM read_parquet(?)", [staged])
        return touched

    def _export(self, connection: duckdb.DuckDBPyConnection, load: TableLoad, partition: date | None) -> Path:
        """Publish the current state (soft-deleted rows left out) of one partition, or of the whole table."""
        target = self.parquet_file(load.schema, load.table.name, partition)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        where = f"WHERE {DELETED_AT_COLUMN} IS NULL" + (f" AND {PARTITION_COLUMN} = ?" if load.partitioned else "")
        order = ", ".join(quote(c) for c in load.table.primary_key)
        params = [partition] if load.partitioned else []
        destination = str(temporary).replace("'", "''")
        connection.execute(f"COPY (SELECT * EXCLUDE ({DELETED_AT_COLUMN}) FROM {load.qualified} {where} "
                           f"ORDER BY {order}) TO '{destination}' "
                           f"(FORMAT parquet, COMPRESSION zstd)", params)
        os.replace(temporary, target)
        return target
