"""The warehouse: a DuckLake (catalog + Parquet data files) plus the published Parquet, shared by every run, the
changes feed, dbt and the analysts' sessions at once.

How a load lands:
1. A run extracts into its own staging folder (`engine/staging.py`); extraction failing half-way leaves the
   warehouse untouched.
2. `commit()` takes the lock of the table group it writes (a source's schema: two writers of one table must not
   both insert a key neither has seen), then merges every staged table in one DuckLake transaction (`merge.py`):
   all tables of the load, or none. A transaction that loses a race with another writer's commit is run again
   (`lake.py`). Writers of different sources, and dbt, never wait for each other.
3. Then it publishes the Parquet of every partition that changed since the table's last publish (`publish.py`),
   so a run killed between its commit and its exports is caught up by the next commit.
Readers (analysts, BI, the asset checks) take no lock at all: each query reads the snapshot committed when it
started.

A `Warehouse` works for one plant (`plants.py`): what it reads (stored keys, state, published files) and writes is
that plant's rows; the plant in force where it is used (`plants.for_plant`) unless one is given.

This module is the one door other modules use; the layout's SQL stays in this package.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from mfg_pipeline.engine.staging import Stage, StagingArea
from mfg_pipeline.plants import current_plant_name
from mfg_pipeline.records.schema import Table
from mfg_pipeline.warehouse import access
from mfg_pipeline.warehouse.built_with import ZonedTable, built_with_for, recorded_settings, rezone_tables
from mfg_pipeline.warehouse.ddl import ensure_table, shape_of, shapes_for
from mfg_pipeline.warehouse.lake import CURRENT_SNAPSHOT, Lake
from mfg_pipeline.warehouse.lake import tables as tables_in_transaction
from mfg_pipeline.warehouse.layout import (
    DELETED_AT_COLUMN,
    FINGERPRINT_COLUMN,
    INTERNAL_SCHEMA,
    PARTITION_COLUMN,
    PLANT_COLUMN,
    keys_relation,
    published_glob,
    published_path,
    qualified,
    quote,
)
from mfg_pipeline.warehouse.locks import DEFAULT_LOCK_TIMEOUT, LOCK_TIMEOUT_VARIABLE, Locks
from mfg_pipeline.warehouse.merge import SUBSET, TABLE_NOT_YET, Merged, Scope, TableLoad, merge
from mfg_pipeline.warehouse.plant_upgrade import upgrade_to_plants
from mfg_pipeline.warehouse.publish import (
    ParquetStore,
    PublishedTable,
    publish_unpublished,
    record_unpublished,
)
from mfg_pipeline.warehouse.settings import LAKE_ALIAS, WarehouseSettingError, WarehouseSettings
from mfg_pipeline.warehouse.state import StreamState

__all__ = ["SUBSET", "CommitResult", "Scope", "Stage", "TableLoad", "Warehouse"]


@dataclass(frozen=True)
class CommitResult:
    published: dict[str, list[str]]  # table -> Parquet files written
    seconds: float
    changed_rows: dict[str, int] = field(default_factory=dict)  # table -> rows upserted or soft-deleted
    touched: dict[str, set[date | None]] = field(default_factory=dict)  # table -> partitions republished
    # table -> rows of the listed scope the listing lacked but kept live (written after it began: `merge.py`)
    kept_newer: dict[str, int] = field(default_factory=dict)
    # table -> the lake snapshot the merge started from (TABLE_NOT_YET: the table did not exist in it); the checks
    # read where the load's keys were before it (`checks.primary_key_check`)
    snapshot_before: dict[str, int] = field(default_factory=dict)
    # A lake snapshot showing the committed tables as this commit left them (read before its locks were released):
    # the checks count the run's rows there, not after a later writer's commit (`checks.row_count_check`)
    snapshot_after: int | None = None


def lock_timeout() -> float:
    raw = os.environ.get(LOCK_TIMEOUT_VARIABLE)
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise WarehouseSettingError(LOCK_TIMEOUT_VARIABLE, f"must be seconds, got {raw!r}") from None


class Warehouse:
    def __init__(self, data_dir: Path | str, settings: WarehouseSettings | None = None, plant: str | None = None):
        self.settings = settings or WarehouseSettings.from_env(data_dir)
        self.data_dir = self.settings.data_dir
        self.staging = StagingArea(self.data_dir / "staging")
        self.locks = Locks(self.settings)
        self.parquet = ParquetStore(self.settings.s3)
        self._plant = plant
        self._lake: Lake | None = None

    @property
    def plant(self) -> str:
        """The plant whose rows this warehouse reads and writes."""
        return self._plant or current_plant_name()

    @property
    def lake(self) -> Lake:
        """The session (opened on first use, then shared by this process); the first one writes attach.sql, and
        gives a lake from before plants its plant column."""
        if self._lake is None:
            lake = Lake.of(self.settings)
            upgrade_to_plants(lake, self.settings, lambda: self.plant, self.writer, self._publish)
            access.write_attach_file(self.settings)
            self._lake = lake
        return self._lake

    @property
    def parquet_path(self) -> str:
        return self.settings.parquet_path

    # --- reading -------------------------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.lake.read(sql, params)

    def has_table(self, schema: str, table: str) -> bool:
        return self.lake.has_table(schema, table)

    def listing_snapshot(self, schema: str, table: str) -> int:
        """The lake's latest snapshot, to take before a pass lists a scope whole (`Scope.listed_after`), or
        TABLE_NOT_YET if the table does not exist in it."""
        if self.has_table(schema, table):  # the pipeline never drops a table: it is in every later snapshot
            return self.lake.snapshot_id()
        with self.lake.cursor() as cursor:
            cursor.execute("BEGIN TRANSACTION")
            try:
                return self._snapshot_holding(cursor, [(schema, table)])[schema, table]
            finally:
                cursor.execute("ROLLBACK")

    def _snapshot_holding(
        self, cursor: duckdb.DuckDBPyConnection, tables: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """Inside a transaction: (schema, table) -> the transaction's snapshot if it holds that table, else
        TABLE_NOT_YET (the snapshot and the tables read together)."""
        snapshot, held = self.lake.snapshot_id(cursor), set(tables_in_transaction(cursor))
        return {table: snapshot if table in held else TABLE_NOT_YET for table in tables}

    def first_partition_day(self) -> date | None:
        """The earliest day any loaded table has held rows for: the lowest `PARTITION_COLUMN` value in the lake's
        table statistics (the DuckLake spec's catalog tables; one catalog query, no data file read, inlined rows
        included). None before anything partitioned is loaded."""
        metadata = f"__ducklake_metadata_{LAKE_ALIAS}"
        (first,) = self.query(
            f"SELECT min(TRY_CAST(s.min_value AS DATE)) FROM {metadata}.ducklake_table_column_stats s "
            f"JOIN {metadata}.ducklake_column c ON c.table_id = s.table_id AND c.column_id = s.column_id "
            f"JOIN {metadata}.ducklake_table t ON t.table_id = s.table_id "
            f"JOIN {metadata}.ducklake_schema n ON n.schema_id = t.schema_id "
            "WHERE c.end_snapshot IS NULL AND t.end_snapshot IS NULL AND n.end_snapshot IS NULL "
            "AND c.column_name = ? AND n.schema_name <> ?",
            [PARTITION_COLUMN, INTERNAL_SCHEMA],
        )[0]
        return first

    def live_row_count(self, schema: str, table: str, partition: date | None = None) -> int:
        """The plant's rows not soft-deleted, in one partition or in the whole table."""
        return self.live_rows_and_snapshot(schema, table, partition)[0]

    def live_rows_and_snapshot(self, schema: str, table: str, partition: date | None = None) -> tuple[int, int]:
        """The plant's rows not soft-deleted (in one partition or the whole table), and the lake snapshot they were
        counted at (one statement: one transaction)."""
        where, params = self._scope(partition)
        rows, snapshot = self.query(
            f"SELECT count(*), {CURRENT_SNAPSHOT} FROM {qualified(schema, table)} "
            f"WHERE {DELETED_AT_COLUMN} IS NULL{where}",
            params,
        )[0]
        return int(rows), int(snapshot)

    def _scope(self, partition: date | None = None) -> tuple[str, list[Any]]:
        """` AND …` and its parameters: the plant's rows (of one partition)."""
        if partition is None:
            return f" AND {PLANT_COLUMN} = ?", [self.plant]
        return f" AND {PLANT_COLUMN} = ? AND {PARTITION_COLUMN} = ?", [self.plant, partition]

    def live_fingerprints(self, schema: str, table: Table, keys: Sequence[tuple]) -> dict[tuple, str | None]:
        """key -> fingerprint of the live (not deleted) rows among `keys`."""
        if not keys:
            return {}
        key_columns = list(table.primary_key)
        wanted, params = keys_relation(key_columns, keys)
        using = ", ".join(quote(c) for c in key_columns)
        selected = ", ".join(f"t.{quote(c)}" for c in key_columns)
        rows = self.query(
            f"SELECT {selected}, t.{FINGERPRINT_COLUMN} FROM {qualified(schema, table.name)} t "
            f"JOIN {wanted} USING ({using}) WHERE t.{DELETED_AT_COLUMN} IS NULL AND t.{PLANT_COLUMN} = ?",
            [*params, self.plant],
        )
        return {tuple(row[:-1]): row[-1] for row in rows}

    def live_fingerprints_in(self, schema: str, table: Table, partition: date | None) -> dict[tuple, str | None]:
        """key -> fingerprint of every live row of one partition (None: of the whole table)."""
        key_columns = ", ".join(quote(c) for c in table.primary_key)
        where, params = self._scope(partition)
        rows = self.query(
            f"SELECT {key_columns}, {FINGERPRINT_COLUMN} FROM {qualified(schema, table.name)} "
            f"WHERE {DELETED_AT_COLUMN} IS NULL{where}",
            params,
        )
        return {tuple(row[:-1]): row[-1] for row in rows}

    def live_rows_where(
        self, schema: str, table: Table, column: str, values: Sequence[Any], columns: Sequence[str]
    ) -> list[dict[str, Any]]:
        """`columns` of the live rows whose `column` is one of `values` (e.g. the records stored as open)."""
        selected = ", ".join(quote(c) for c in columns)
        rows = self.query(
            f"SELECT {selected} FROM {qualified(schema, table.name)} "
            f"WHERE {DELETED_AT_COLUMN} IS NULL AND list_contains(?, {quote(column)}) AND {PLANT_COLUMN} = ?",
            [list(values), self.plant],
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    # --- per-stream state ----------------------------------------------------------------------------------------
    def stream_state(self, schema: str, stream: str, name: str) -> datetime | None:
        return StreamState(self.lake, self.plant).get(schema, stream, name)

    def set_stream_state(self, schema: str, stream: str, name: str, at: datetime) -> None:
        StreamState(self.lake, self.plant).set(schema, stream, name, at)

    # --- staging -------------------------------------------------------------------------------------------------
    def new_stage(self, source: str) -> Stage:
        return self.staging.new_stage(source)

    def remove_orphan_stages(self, source: str) -> list[Path]:
        return self.staging.remove_orphans(source)

    # --- published Parquet ---------------------------------------------------------------------------------------
    def published_file(self, schema: str, table: str, partition: date | None) -> str:
        """The plant's published file of a table (or of one day of it)."""
        return published_path(self.parquet_path, schema, table, self.plant, partition)

    def published_glob(self, schema: str, table: str, partitioned: bool) -> str:
        """The plant's published files of a table."""
        return published_glob(self.parquet_path, schema, table, partitioned, self.plant)

    def is_published(self, path_or_glob: str) -> bool:
        """Whether a published file (or any file of a glob) exists, locally or in the bucket."""
        return self.parquet.exists(path_or_glob)

    def parquet_dir(self, schema: str, table: str) -> Path:
        """The plant's published folder of a table, when MFG_PARQUET_PATH is a local folder."""
        return Path(self.parquet_path) / schema / table / f"{PLANT_COLUMN}={self.plant}"

    def parquet_file(self, schema: str, table: str, partition: date | None) -> Path:
        """A published file, when MFG_PARQUET_PATH is a local folder."""
        return Path(self.published_file(schema, table, partition))

    # --- writing -------------------------------------------------------------------------------------------------
    @contextmanager
    def writer(self, group: str, what: str) -> Iterator[None]:
        """The lock of one table group (a source's schema, or the analytics layer) for the block."""
        with self.locks.hold(f"writer-{group}", lock_timeout(), what):
            yield

    def commit(self, loads: Sequence[TableLoad]) -> CommitResult:
        """Merge every load in one transaction, then republish the Parquet of every partition that changed."""
        started = time.monotonic()
        names = ", ".join(f"{load.schema}.{load.table.name}" for load in loads)
        groups = sorted({load.schema for load in loads})
        with contextlib.ExitStack() as locks:
            for group in groups:  # sorted, so two writers of several groups never deadlock
                locks.enter_context(self.writer(group, f"committing {names}"))

            shapes = shapes_for(self.settings)
            ensured = [shape_of(load) for load in loads]
            settings_in_force = dict(pair for load in loads for pair in load.built_with)
            built_with = built_with_for(self.settings)
            verified: list[tuple[str, str, str]] = []
            plant = self.plant

            before: dict[str, int] = {}

            def merge_all(cursor: duckdb.DuckDBPyConnection) -> dict[str, Merged]:
                verified[:] = built_with.check(cursor, plant, settings_in_force)  # before anything is written
                held = self._snapshot_holding(cursor, [(load.schema, load.table.name) for load in loads])
                before.clear()
                before.update({table: snapshot for (_, table), snapshot in held.items()})
                deleted_parents: dict[str, str] = {}  # parent table -> temp table of keys soft-deleted now
                merges: dict[str, Merged] = {}
                for load, shape in zip(loads, ensured, strict=True):
                    if not shapes.ensured(shape):
                        ensure_table(cursor, load)
                    merged = merges[load.table.name] = merge(cursor, load, plant, deleted_parents)
                    owed = set(merged.partitions) | self._unpublished_scope(load)
                    record_unpublished(cursor, published_table(load), plant, owed)
                return merges

            merges = self.lake.write(f"committing {names}", merge_all)
            shapes.remember(ensured)
            built_with.remember(verified)
            after = self.lake.snapshot_id()  # the groups' tables change only under these locks: as merged
            touched: dict[str, set[date | None]] = {}
            published: dict[str, list[str]] = {}
            for group in groups:
                for table, days in self._publish(group, after).items():
                    touched[table] = days
                    published[table] = [self.published_file(group, table, d) for d in sorted_days(days)]
        changed = {table: merged.changed for table, merged in merges.items()}
        kept = {table: merged.kept_newer for table, merged in merges.items() if merged.kept_newer}
        return CommitResult(published, time.monotonic() - started, changed, touched, kept, dict(before), after)

    def _publish(self, group: str, snapshot: int | None = None) -> dict[str, set[date | None]]:
        """Publish what a table group owes (the caller holds its lock; `snapshot`: one showing its tables as they
        are, if known)."""
        return publish_unpublished(self.lake, self.parquet, self.parquet_path, group, snapshot)

    def rezone(self, tables: Sequence[ZonedTable], zone: str) -> dict[str, int]:
        """Move every row of the plant's partitioned tables to its day in `zone` and record it as the plant's
        partition zone (one transaction), then publish the days that changed; returns qualified table -> rows
        moved."""
        groups = sorted({table.schema for table in tables})
        plant = self.plant
        with contextlib.ExitStack() as locks:
            for group in groups:
                locks.enter_context(self.writer(group, f"moving the partitions to {zone}"))
            moved = self.lake.write(
                f"moving plant {plant}'s partitions to {zone}", lambda c: rezone_tables(c, tables, plant, zone)
            )
            built_with_for(self.settings).forget()
            for group in groups:
                self._publish(group)
        return moved

    def recorded_settings(self) -> dict[str, str]:
        """The settings the plant's rows were built with (variable -> value)."""
        with self.lake.cursor() as cursor:
            return recorded_settings(cursor, self.plant)

    def _unpublished_scope(self, load: TableLoad) -> set[date | None]:
        """The load's own file (an unpartitioned table's, or the day a pass listed whole) when it was never
        published: an empty first load still publishes its (empty) file."""
        scope = load.parent.scope if load.parent is not None and not load.scope.lists_whole else load.scope
        if load.partitioned and scope.partition is None:
            return set()
        partition = scope.partition if load.partitioned else None
        return set() if self.is_published(self.published_file(load.schema, load.table.name, partition)) else {partition}


def published_table(load: TableLoad) -> PublishedTable:
    return PublishedTable(load.schema, load.table.name, load.partitioned, load.table.primary_key)


def sorted_days(days: set[date | None]) -> list[date | None]:
    return sorted(days, key=lambda day: day or date.min)
