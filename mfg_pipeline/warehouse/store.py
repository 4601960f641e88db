"""The warehouse: one DuckDB file plus published Parquet, written by one writer at a time.

How a load lands (and why concurrent runs cannot trip DuckDB's single-writer lock):
1. A run extracts into its own staging folder (`data/staging/<source>/<pid>-<uuid>/`), Parquet files nobody else
   reads, owned through a lock file the run holds; a folder whose owner died is removed by the next run.
   Extraction failing half-way leaves the warehouse untouched.
2. `commit()` takes a cross-process file lock (`warehouse.duckdb.lock`), so exactly one of our processes opens
   DuckDB for writing at a time; the others wait their turn instead of failing. Inside it, one DuckDB
   transaction merges every staged table: rows the source sent are upserted by key, rows of the scope the source
   listed whole (a partition, or the whole table) that it no longer lists are soft-deleted (`deleted_at`), and a
   child table's rows are replaced for the parents that were staged. All tables of the load, or none.
3. The same transaction records which published files it made stale (`main._mfg_pending_exports`). After the
   commit every one is exported from DuckDB to its Parquet file through a temporary file and an atomic rename,
   then crossed off; a run killed in between leaves them listed, and the next commit exports them first. So
   readers see an old file or a new one, never a half-written one, and Parquet catches up with DuckDB.
Readers inside the pipeline (asset checks) take the same lock. Analysts should keep DuckDB sessions short or read
the Parquet: a DuckDB file held open elsewhere makes a run wait at most MFG_WAREHOUSE_BUSY_TIMEOUT seconds in all
(one wait per run), then fail naming the process that holds it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from mfg_pipeline.http.errors import ConfigurationError
from mfg_pipeline.records.schema import Table

PARTITION_COLUMN = "partition_date"
LOADED_AT_COLUMN = "_loaded_at"
DELETED_AT_COLUMN = "deleted_at"
FINGERPRINT_COLUMN = "_fingerprint"
CURRENT_VIEW_SUFFIX = "_current"
PARQUET_FILE = "data.parquet"
PENDING_EXPORTS = "main._mfg_pending_exports"
VIEW_DEFINITIONS = "main._mfg_view_definitions"
STREAM_STATE = "main._mfg_stream_state"
STAGE_OWNER_LOCK = "owner.lock"
DEFAULT_BUSY_TIMEOUT = 60.0
EXPORT_BATCH_ROWS = 65_536  # rows per batch written to Parquet (bounds an export's memory)

# Comments on the columns every table gets (the declared columns carry their own).
PIPELINE_COLUMN_COMMENTS = {
    PARTITION_COLUMN: "Day partition the row belongs to (a day in MFG_PARTITION_TIMEZONE), from the stream's time "
    "column.",
    DELETED_AT_COLUMN: "When the pipeline saw the vendor delete the record (UTC): the changes feed said so, or a "
    "full list no longer held it. NULL for live rows; <table>_current hides the others.",
    LOADED_AT_COLUMN: "When this version of the row was written to the warehouse (UTC).",
    FINGERPRINT_COLUMN: "Hash of the record as the vendor sent it; a load rewrites the row (and refetches its "
    "child lists) only when it changes. NULL when the changes feed wrote the row.",
}

_ARROW_TO_DUCKDB = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


class WarehouseBusyError(ConfigurationError):
    """DuckDB stayed locked by another program for longer than this run may wait."""

    variable = "MFG_WAREHOUSE_BUSY_TIMEOUT"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def busy_timeout_from_env() -> float:
    raw = os.environ.get("MFG_WAREHOUSE_BUSY_TIMEOUT")
    if not raw:
        return DEFAULT_BUSY_TIMEOUT
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ValueError(f"Environment variable MFG_WAREHOUSE_BUSY_TIMEOUT must be seconds, got {raw!r}") from None


class BusyBudget:
    """How long one run may still wait, in all, for a DuckDB file another program holds. Shared by every step
    of the run, so a run with three steps waits once, not three times."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.remaining = seconds

    def spend(self, seconds: float) -> None:
        self.remaining = max(0.0, self.remaining - seconds)


@dataclass(frozen=True)
class Scope:
    """The part of a table a load saw whole: one partition (`partition`), or every row (None)."""

    partition: date | None = None


@dataclass(frozen=True)
class TableLoad:
    """One staged table to merge.

    - `staged_file`: rows to upsert by key (replacing any version, in any partition or state).
    - `scope` (a parent table): rows of that scope whose key is neither in `seen_file` (default: the staged
      keys) nor staged are soft-deleted, with their child rows.
    - `deleted_file` (a parent table): keys the vendor says are gone: soft-deleted, with their child rows.
    - `parent` (a child table): the staged rows replace the child rows of every staged parent.
    """

    schema: str
    table: Table
    staged_file: Path
    partitioned: bool = False
    scope: Scope | None = None
    seen_file: Path | None = None
    deleted_file: Path | None = None
    parent: TableLoad | None = None
    parent_link: tuple[tuple[str, str], ...] = ()  # (child column, parent column)
    deleted_flag: str | None = None  # parent: a vendor column marking deleted records (hidden like soft deletes)
    # Columns a staged NULL does not overwrite: the records come in a shape that lacks them (a changes feed).
    kept_columns: tuple[str, ...] = ()

    @property
    def qualified(self) -> str:
        return f"{quote(self.schema)}.{quote(self.table.name)}"


class Stage:
    """A run's private staging folder, owned through a lock file for as long as the stage lives."""

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, Path] = {}
        # Locked before it is visible under its name, so a cleanup never sees it unowned: the lock is taken in
        # a hidden folder that is then renamed into place (the lock stays with the file).
        hidden = path.with_name(f".{path.name}")
        hidden.mkdir(parents=True)
        self._owner = FileLock(str(hidden / STAGE_OWNER_LOCK))
        self._owner.acquire()
        os.replace(hidden, path)

    def file_for(self, name: str) -> Path:
        return self.files.setdefault(name, self.path / f"{name}.parquet")

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self._owner.release()


@dataclass(frozen=True)
class CommitResult:
    published: dict[str, list[Path]]  # table -> Parquet files written
    seconds: float
    changed_rows: dict[str, int] = field(default_factory=dict)  # table -> rows upserted or soft-deleted


class WriterSlot:
    """Held by `Warehouse.writer_slot()`: connections that do not take the (already held) writer lock again."""

    def __init__(self, warehouse: Warehouse):
        self.warehouse = warehouse

    @property
    def duckdb_path(self) -> Path:
        return self.warehouse.duckdb_path

    def connect(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self.warehouse._connection(read_only=False)


class Warehouse:
    def __init__(
        self,
        data_dir: Path | str,
        lock_timeout: float = 900.0,
        busy_timeout: float | None = None,
        busy_budget: BusyBudget | None = None,
    ):
        self.data_dir = Path(data_dir)
        self.duckdb_path = self.data_dir / "warehouse.duckdb"
        self.parquet_root = self.data_dir / "parquet"
        self.staging_root = self.data_dir / "staging"
        self.lock_timeout = lock_timeout
        self.busy_budget = busy_budget or BusyBudget(
            busy_timeout if busy_timeout is not None else busy_timeout_from_env()
        )

    # --- locking and connections -------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.duckdb_path) + ".lock", timeout=self.lock_timeout):
            yield

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, under the writer lock. Waits (within the run's budget) while another program holds the
        DuckDB file."""
        with self.locked(), self._connection(read_only) as connection:
            yield connection

    @contextmanager
    def _connection(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection; the caller holds the writer lock."""
        if read_only and not self.duckdb_path.exists():
            connection = duckdb.connect(":memory:")
        else:
            connection = self._open(read_only)
        try:
            yield connection
        finally:
            connection.close()

    @contextmanager
    def writer_slot(self) -> Iterator[WriterSlot]:
        """The writer's turn for another program (dbt): the writer lock held for the whole block, the DuckDB file
        seen free at its start (waiting within the run's budget, like a load). Inside, `slot.connect()` gives this
        process a connection once that program has closed the file."""
        with self.locked():
            with self._connection(read_only=False):
                pass
            yield WriterSlot(self)

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        started, delay = time.monotonic(), 0.1
        budget = self.busy_budget
        try:
            while True:
                try:
                    return duckdb.connect(str(self.duckdb_path), read_only=read_only)
                except duckdb.IOException as exc:
                    if "lock" not in str(exc).lower():
                        raise
                    if time.monotonic() - started >= budget.remaining:
                        raise self._busy(exc) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
        finally:
            budget.spend(time.monotonic() - started)

    def _busy(self, exc: Exception) -> WarehouseBusyError:
        holder = _LOCK_HOLDER.search(str(exc))
        who = f"{holder.group(1)} (PID {holder.group(2)})" if holder else "another program"
        return WarehouseBusyError(
            f"{self.duckdb_path} is held open by {who}, e.g. an analyst's DuckDB session: close it or open it "
            f"read-only (the published Parquet needs no lock). This run waited "
            f"{self.busy_budget.seconds:.0f}s in all (MFG_WAREHOUSE_BUSY_TIMEOUT)."
        )

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self.connect(read_only=True) as connection:
            return connection.execute(sql, list(params)).fetchall()

    def query_with(self, sql: str, params: Sequence = (), **relations: pa.Table) -> list[tuple]:
        """`query`, with Arrow tables registered under the given names (e.g. a page's keys to join on)."""
        with self.connect(read_only=True) as connection:
            for name, relation in relations.items():
                connection.register(name, relation)
            return connection.execute(sql, list(params)).fetchall()

    def has_table(self, schema: str, table: str) -> bool:
        if not self.duckdb_path.exists():
            return False
        return bool(
            self.query(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [schema, table],
            )[0][0]
        )

    # --- reads the load engine needs ---------------------------------------------------------------------
    def live_fingerprints(self, schema: str, table: Table, keys: Sequence[tuple]) -> dict[tuple, str | None]:
        """key -> fingerprint of the live (not deleted) rows among `keys`."""
        if not keys:
            return {}
        key_columns = list(table.primary_key)
        relation = pa.Table.from_pylist([dict(zip(key_columns, key, strict=True)) for key in keys])
        using = ", ".join(quote(c) for c in key_columns)
        selected = ", ".join(f"t.{quote(c)}" for c in key_columns)
        rows = self.query_with(
            f"SELECT {selected}, t.{FINGERPRINT_COLUMN} FROM {quote(schema)}.{quote(table.name)} t "
            f"JOIN wanted USING ({using}) WHERE t.{DELETED_AT_COLUMN} IS NULL",
            wanted=relation,
        )
        return {tuple(row[:-1]): row[-1] for row in rows}

    def live_rows_where(
        self, schema: str, table: Table, column: str, values: Sequence[Any], columns: Sequence[str]
    ) -> list[dict[str, Any]]:
        """`columns` of the live rows whose `column` is one of `values` (e.g. the records stored as open)."""
        selected = ", ".join(quote(c) for c in columns)
        rows = self.query(
            f"SELECT {selected} FROM {quote(schema)}.{quote(table.name)} "
            f"WHERE {DELETED_AT_COLUMN} IS NULL AND list_contains(?, {quote(column)})",
            [list(values)],
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    # --- per-stream state (e.g. when a modified-since pass last started) --------------------------------------
    def stream_state(self, schema: str, stream: str) -> datetime | None:
        if not self.has_table("main", "_mfg_stream_state"):
            return None
        rows = self.query(
            f"SELECT passed_at FROM {STREAM_STATE} WHERE schema_name = ? AND stream = ?", [schema, stream]
        )
        return rows[0][0] if rows else None

    def set_stream_state(self, schema: str, stream: str, passed_at: datetime) -> None:
        with self.connect() as connection:
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {STREAM_STATE} "
                "(schema_name VARCHAR, stream VARCHAR, passed_at TIMESTAMPTZ)"
            )
            connection.execute(f"DELETE FROM {STREAM_STATE} WHERE schema_name = ? AND stream = ?", [schema, stream])
            connection.execute(f"INSERT INTO {STREAM_STATE} VALUES (?, ?, ?)", [schema, stream, passed_at])

    # --- staging -----------------------------------------------------------------------------------------
    def new_stage(self, source: str) -> Stage:
        self.remove_orphan_stages(source)
        return Stage(self.staging_root / source / f"{os.getpid()}-{uuid.uuid4().hex}")

    def remove_orphan_stages(self, source: str) -> list[Path]:
        """Remove staging folders whose owning run died (nobody holds their lock); returns what was removed."""
        removed = []
        root = self.staging_root / source
        for folder in root.iterdir() if root.exists() else ():
            if not folder.is_dir() or (folder.name.startswith(".") and time.time() - folder.stat().st_mtime < 3600):
                continue  # a stage being created (a hidden one left by a crash is removed after an hour)
            owner = FileLock(str(folder / STAGE_OWNER_LOCK), timeout=0)
            try:
                owner.acquire()
            except Timeout:
                continue  # a live run owns it
            try:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
            finally:
                owner.release()
        return removed

    # --- publishing layout -------------------------------------------------------------------------------
    def parquet_dir(self, schema: str, table: str) -> Path:
        return self.parquet_root / schema / table

    def parquet_file(self, schema: str, table: str, partition: date | None) -> Path:
        base = self.parquet_dir(schema, table)
        return (base / f"date={partition.isoformat()}" / PARQUET_FILE) if partition else base / PARQUET_FILE

    # --- the merge ---------------------------------------------------------------------------------------
    def commit(self, loads: Sequence[TableLoad]) -> CommitResult:
        """Merge every load in one transaction, then re-export the Parquet of every partition it touched."""
        started = time.monotonic()
        with self.connect() as connection:
            self._export_pending(connection)  # left by a run killed between its commit and its exports
            connection.execute("BEGIN TRANSACTION")
            try:
                connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {PENDING_EXPORTS} "
                    "(schema_name VARCHAR, table_name VARCHAR, partition_date DATE)"
                )
                deleted_parents: dict[str, str] = {}  # parent table -> temp table of keys soft-deleted now
                changed: dict[str, int] = {}
                for load in loads:
                    self._ensure_table(connection, load)
                    changed[load.table.name] = self._merge(connection, load, deleted_parents)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            published = self._export_pending(connection)
        return CommitResult(published, time.monotonic() - started, changed)

    def _ensure_table(self, connection: duckdb.DuckDBPyConnection, load: TableLoad) -> None:
        arrow_schema = pq.read_schema(load.staged_file)
        pipeline = {DELETED_AT_COLUMN, FINGERPRINT_COLUMN}
        columns = [(f.name, _ARROW_TO_DUCKDB[f.type]) for f in arrow_schema if f.name not in pipeline]
        if FINGERPRINT_COLUMN in arrow_schema.names:
            columns.append((FINGERPRINT_COLUMN, "VARCHAR"))
        columns += [(DELETED_AT_COLUMN, "TIMESTAMPTZ"), (LOADED_AT_COLUMN, "TIMESTAMPTZ")]
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(load.schema)}")
        key = ", ".join(quote(c) for c in load.table.primary_key)
        column_sql = ", ".join(f"{quote(n)} {t}" for n, t in columns)
        connection.execute(f"CREATE TABLE IF NOT EXISTS {load.qualified} ({column_sql}, PRIMARY KEY ({key}))")
        existing = {
            r[0]: r[1]
            for r in connection.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
                [load.schema, load.table.name],
            ).fetchall()
        }
        for name, duck_type in columns:
            if name not in existing:  # a column added to the declaration since the table was created
                connection.execute(f"ALTER TABLE {load.qualified} ADD COLUMN {quote(name)} {duck_type}")
        self._ensure_current_view(connection, load)
        self._comment(connection, load, existing)

    def _ensure_current_view(self, connection: duckdb.DuckDBPyConnection, load: TableLoad) -> None:
        """What analysts query by default: the current state, soft-deleted and vendor-deleted rows hidden.
        Replaced only when its definition changes (replacing a view drops its comments)."""
        view_name = load.table.name + CURRENT_VIEW_SUFFIX
        sql = f"SELECT {self._published_columns(connection, load)} FROM {load.qualified} t WHERE {self._live(load)}"
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {VIEW_DEFINITIONS} (schema_name VARCHAR, view_name VARCHAR, sql VARCHAR)"
        )
        recorded = connection.execute(
            f"SELECT v.sql FROM {VIEW_DEFINITIONS} v JOIN duckdb_views() d USING (schema_name, view_name) "
            "WHERE schema_name = ? AND view_name = ?",
            [load.schema, view_name],
        ).fetchall()
        if recorded and recorded[0][0] == sql:
            return
        connection.execute(f"CREATE OR REPLACE VIEW {quote(load.schema)}.{quote(view_name)} AS {sql}")
        connection.execute(
            f"DELETE FROM {VIEW_DEFINITIONS} WHERE schema_name = ? AND view_name = ?", [load.schema, view_name]
        )
        connection.execute(f"INSERT INTO {VIEW_DEFINITIONS} VALUES (?, ?, ?)", [load.schema, view_name, sql])

    @staticmethod
    def _published_columns(connection: duckdb.DuckDBPyConnection, load: TableLoad) -> str:
        hidden = {DELETED_AT_COLUMN, FINGERPRINT_COLUMN}
        names = [
            r[0]
            for r in connection.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                "ORDER BY column_index",
                [load.schema, load.table.name],
            ).fetchall()
            if r[0] not in hidden
        ]
        return ", ".join(f"t.{quote(n)}" for n in names)

    @staticmethod
    def _live(load: TableLoad) -> str:
        """The condition on alias `t` for a row analysts should see."""
        condition = f"t.{DELETED_AT_COLUMN} IS NULL"
        if load.deleted_flag:
            condition += f" AND t.{quote(load.deleted_flag)} IS NOT TRUE"
        parent = load.parent
        if parent is not None and parent.deleted_flag:
            link = " AND ".join(f"p.{quote(p)} = t.{quote(c)}" for c, p in load.parent_link)
            condition += (
                f" AND NOT EXISTS (SELECT 1 FROM {parent.qualified} p WHERE {link} "
                f"AND p.{quote(parent.deleted_flag)} IS TRUE)"
            )
        return condition

    def _comment(self, connection: duckdb.DuckDBPyConnection, load: TableLoad, existing: Mapping[str, Any]) -> None:
        """COMMENT ON the table, its current view and every column, from the declaration (only what differs)."""
        table = load.table
        comments = {c.name: c.description or f"From the vendor field `{c.source_label}`." for c in table.columns}
        comments.update(PIPELINE_COLUMN_COMMENTS)
        view_name = table.name + CURRENT_VIEW_SUFFIX
        view_columns = dict(
            connection.execute(
                "SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
                [load.schema, view_name],
            ).fetchall()
        )
        described = [
            ("TABLE", load.qualified, table.description, self._object_comment(connection, load.schema, table.name)),
            (
                "VIEW",
                f"{quote(load.schema)}.{quote(view_name)}",
                f"{table.description} Current state: rows deleted at the vendor are left out.",
                self._object_comment(connection, load.schema, view_name),
            ),
        ]
        for kind, target, text, current in described:
            if text and text != current:
                connection.execute(f"COMMENT ON {kind} {target} IS {_literal(text)}")
        for relation, columns in ((table.name, existing), (view_name, view_columns)):
            for name, current in columns.items():
                wanted = comments.get(name)
                if wanted and wanted != current:
                    target = f"{quote(load.schema)}.{quote(relation)}.{quote(name)}"
                    connection.execute(f"COMMENT ON COLUMN {target} IS {_literal(wanted)}")

    @staticmethod
    def _object_comment(connection: duckdb.DuckDBPyConnection, schema: str, name: str) -> str | None:
        row = connection.execute(
            "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
            "UNION ALL SELECT comment FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
            [schema, name, schema, name],
        ).fetchall()
        return row[0][0] if row else None

    def _merge(self, connection: duckdb.DuckDBPyConnection, load: TableLoad, deleted_parents: dict[str, str]) -> int:
        """Apply `load`; returns how many rows it upserted or soft-deleted, and records the partitions (None: the
        unpartitioned file) whose published Parquet is now stale."""
        staged = f"read_parquet('{_path_literal(load.staged_file)}')"
        key_match = " AND ".join(f"t.{quote(c)} = s.{quote(c)}" for c in load.table.primary_key)
        changed = 0
        if load.parent is None:
            gone = self._soft_delete_parents(connection, load, staged)
            if gone:
                deleted_parents[load.table.name] = gone
                changed += connection.execute(f"SELECT count(*) FROM {gone}").fetchone()[0]  # type: ignore[index]
        else:
            changed += self._cascade_deletions(connection, load, deleted_parents.get(load.parent.table.name))
            parent_staged = f"read_parquet('{_path_literal(load.parent.staged_file)}')"
            link = " AND ".join(f"t.{quote(c)} = s.{quote(p)}" for c, p in load.parent_link)
            self._stale(connection, load, f"SELECT t.* FROM {load.qualified} t, {parent_staged} s WHERE {link}")
            connection.execute(f"DELETE FROM {load.qualified} t USING {parent_staged} s WHERE {link}")
        # Rows that moved here from another partition: that partition changes too.
        self._stale(connection, load, f"SELECT t.* FROM {load.qualified} t, {staged} s WHERE {key_match}")
        self._stale(connection, load, f"SELECT * FROM {staged}")
        rows = staged
        if load.kept_columns:
            rows = self._with_kept_values(connection, load, staged, key_match)
        connection.execute(f"DELETE FROM {load.qualified} t USING {staged} s WHERE {key_match}")
        inserted = connection.execute(
            f"INSERT INTO {load.qualified} BY NAME SELECT *, now() AS {LOADED_AT_COLUMN} FROM {rows}"
        ).fetchone()
        changed += int(inserted[0]) if inserted else 0
        if not self._published_exists(load):
            self._stale_scope(connection, load)  # an empty first load still publishes its (empty) file
        return changed

    def _with_kept_values(
        self, connection: duckdb.DuckDBPyConnection, load: TableLoad, staged: str, key_match: str
    ) -> str:
        """A temp table of the staged rows in which each of `load.kept_columns` that is NULL holds the stored
        row's value (taken before the stored rows are replaced)."""
        kept = f"_kept_{uuid.uuid4().hex[:12]}"
        replaced = ", ".join(f"coalesce(s.{quote(c)}, t.{quote(c)}) AS {quote(c)}" for c in load.kept_columns)
        connection.execute(
            f"CREATE TEMP TABLE {kept} AS SELECT s.* REPLACE ({replaced}) FROM {staged} s "
            f"LEFT JOIN {load.qualified} t ON {key_match}"
        )
        return kept

    def _soft_delete_parents(self, connection: duckdb.DuckDBPyConnection, load: TableLoad, staged: str) -> str | None:
        """Soft-delete the scope's rows the source no longer lists, and the keys it says are gone; returns a temp
        table of the keys deleted now (for the child tables), or None when there were none."""
        keys = ", ".join(quote(c) for c in load.table.primary_key)
        candidates = []
        if load.scope is not None:
            seen = f"read_parquet('{_path_literal(load.seen_file or load.staged_file)}')"
            in_scope = f"{DELETED_AT_COLUMN} IS NULL"
            if load.scope.partition is not None:
                in_scope += f" AND {PARTITION_COLUMN} = DATE '{load.scope.partition.isoformat()}'"
            candidates.append(
                f"SELECT {keys} FROM {load.qualified} WHERE {in_scope} "
                f"EXCEPT SELECT {keys} FROM {seen} EXCEPT SELECT {keys} FROM {staged}"
            )
        if load.deleted_file is not None:
            candidates.append(f"SELECT {keys} FROM read_parquet('{_path_literal(load.deleted_file)}')")
        if not candidates:
            return None
        gone = f"_gone_{uuid.uuid4().hex[:12]}"
        connection.execute(f"CREATE TEMP TABLE {gone} AS {' UNION '.join(candidates)}")
        match = " AND ".join(f"t.{quote(c)} = g.{quote(c)}" for c in load.table.primary_key)
        self._stale(connection, load, f"SELECT t.* FROM {load.qualified} t, {gone} g WHERE {match}")
        connection.execute(
            f"UPDATE {load.qualified} t SET {DELETED_AT_COLUMN} = now() FROM {gone} g "
            f"WHERE {match} AND t.{DELETED_AT_COLUMN} IS NULL"
        )
        return gone

    def _cascade_deletions(self, connection: duckdb.DuckDBPyConnection, load: TableLoad, gone: str | None) -> int:
        if gone is None:
            return 0
        link = " AND ".join(f"t.{quote(c)} = g.{quote(p)}" for c, p in load.parent_link)
        self._stale(connection, load, f"SELECT t.* FROM {load.qualified} t, {gone} g WHERE {link}")
        result = connection.execute(
            f"UPDATE {load.qualified} t SET {DELETED_AT_COLUMN} = now() FROM {gone} g "
            f"WHERE {link} AND t.{DELETED_AT_COLUMN} IS NULL"
        ).fetchone()
        return int(result[0]) if result else 0

    def _stale(self, connection: duckdb.DuckDBPyConnection, load: TableLoad, rows_sql: str) -> None:
        """Record the published files holding any of `rows_sql`'s rows as stale."""
        partition = PARTITION_COLUMN if load.partitioned else "NULL::DATE"
        connection.execute(
            f"INSERT INTO {PENDING_EXPORTS} SELECT DISTINCT ?, ?, {partition} FROM ({rows_sql})",
            [load.schema, load.table.name],
        )

    def _stale_scope(self, connection: duckdb.DuckDBPyConnection, load: TableLoad) -> None:
        connection.execute(
            f"INSERT INTO {PENDING_EXPORTS} VALUES (?, ?, ?)", [load.schema, load.table.name, _scope_partition(load)]
        )

    def _published_exists(self, load: TableLoad) -> bool:
        scope = load.scope or (load.parent.scope if load.parent is not None else None)
        if load.partitioned and (scope is None or scope.partition is None):
            return True  # nothing specific to publish for a load not scoped to one partition
        return self.parquet_file(load.schema, load.table.name, _scope_partition(load)).exists()

    def _export_pending(self, connection: duckdb.DuckDBPyConnection) -> dict[str, list[Path]]:
        """Export every stale published file, then cross it off."""
        exists = connection.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = '_mfg_pending_exports'"
        ).fetchone()
        if not exists or not exists[0]:
            return {}
        pending = connection.execute(
            f"SELECT DISTINCT schema_name, table_name, partition_date FROM {PENDING_EXPORTS} ORDER BY ALL"
        ).fetchall()
        published: dict[str, list[Path]] = {}
        for schema, table, partition in pending:
            published.setdefault(table, []).append(self._export(connection, schema, table, partition))
        connection.execute(f"DELETE FROM {PENDING_EXPORTS}")
        return published

    def _export(self, connection: duckdb.DuckDBPyConnection, schema: str, table: str, partition: date | None) -> Path:
        """Publish the current state of one partition, or of a whole unpartitioned table: its `_current` view."""
        target = self.parquet_file(schema, table, partition)
        view = f"{quote(schema)}.{quote(table + CURRENT_VIEW_SUFFIX)}"
        key = connection.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() WHERE schema_name = ? AND table_name = ? "
            "AND constraint_type = 'PRIMARY KEY'",
            [schema, table],
        ).fetchone()
        order = ", ".join(quote(c) for c in key[0]) if key else "ALL"
        where, params = (f"WHERE {PARTITION_COLUMN} = ?", [partition]) if partition is not None else ("", [])
        write_parquet(connection, f"SELECT * FROM {view} {where} ORDER BY {order}", params, target)
        return target


def write_parquet(connection: duckdb.DuckDBPyConnection, query: str, params: Sequence[Any], target: Path) -> None:
    """The query's rows as one Parquet file, through a temporary file and an atomic rename, in batches. Every
    column is written nullable: DuckDB's own COPY marks a column required in a file where it happens to hold no
    NULL, so the files of one table would disagree and a folder read would fail."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    # A cursor of its own: the connection may hold an unfinished result, and the export reads committed data.
    with connection.cursor() as cursor:
        reader = cursor.sql(query, params=list(params)).to_arrow_reader(EXPORT_BATCH_ROWS)
        schema = pa.schema([f.with_nullable(True) for f in reader.schema])
        try:
            with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
                for batch in reader:
                    writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)


def _scope_partition(load: TableLoad) -> date | None:
    scope = load.scope or (load.parent.scope if load.parent is not None else None)
    return scope.partition if scope is not None and load.partitioned else None


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _path_literal(path: Path) -> str:
    return str(path).replace("'", "''")
