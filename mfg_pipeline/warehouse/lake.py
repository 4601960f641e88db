"""The warehouse as a DuckLake: a DuckDB session with the lake attached as its default database, and transactions
that survive other writers.

DuckLake keeps table data as Parquet files under the data path and the catalog (tables, snapshots, which files
make up each table) in a database many processes share: readers never block writers, each commit is a snapshot,
and `AT (TIMESTAMP => …)` reads the past. Commits are optimistic. A transaction that loses a race gets `database
is locked` from a SQLite catalog (any commit that landed since it began), or a conflict from DuckLake over Postgres
(when both touched the same table); `write()` runs the whole transaction again, from the start, against the new
state, until the retry budget is spent, then fails naming what it was writing.

One session per process and warehouse (`Lake.of`): loading the extensions costs a few hundred milliseconds, so
every query of a run shares it, each on its own cursor.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from mfg_pipeline.http.errors import ConfigurationError, SecretMasker
from mfg_pipeline.warehouse.extensions import ensure_installed
from mfg_pipeline.warehouse.settings import (
    DATA_PATH_VARIABLE,
    LAKE_ALIAS,
    WarehouseSettingError,
    WarehouseSettings,
)

T = TypeVar("T")
RETRY_VARIABLE = "MFG_WAREHOUSE_COMMIT_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 120.0
# How the catalogs say "another transaction committed first: run yours again".
CONFLICT_MARKERS = ("database is locked", "transaction conflict", "could not serialize", "deadlock detected")
MAX_CACHED_SESSIONS = 4
ATTACH_ATTEMPTS = 8
# The snapshot a statement reads (its transaction's), as a scalar expression of a query.
CURRENT_SNAPSHOT = f"(SELECT id FROM {LAKE_ALIAS}.current_snapshot())"


class CommitConflictError(ConfigurationError):
    """A transaction kept losing to other writers until its retry budget was spent."""

    variable = RETRY_VARIABLE


def is_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.Error) and any(m in str(error).lower() for m in CONFLICT_MARKERS)


def retry_seconds() -> float:
    raw = os.environ.get(RETRY_VARIABLE)
    if not raw:
        return DEFAULT_RETRY_SECONDS
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise WarehouseSettingError(RETRY_VARIABLE, f"must be seconds, got {raw!r}") from None


class Lake:
    """A DuckDB session (in memory) with the warehouse's lake attached as `warehouse`, its default database."""

    _sessions: OrderedDict[WarehouseSettings, Lake] = OrderedDict()
    _sessions_lock = threading.Lock()

    def __init__(self, settings: WarehouseSettings):
        self.settings = settings
        self.masker = SecretMasker()
        self.masker.add(*settings.secrets())
        self._connection = self._open()
        self._readers = threading.local()  # one cursor per thread for plain reads (a new one costs milliseconds)
        self._tables: set[tuple[str, str]] = set()  # tables seen to exist (the pipeline never drops one)

    @classmethod
    def of(cls, settings: WarehouseSettings) -> Lake:
        """This process's session for `settings` (a few are kept; one that drops out closes when unused)."""
        with cls._sessions_lock:
            session = cls._sessions.get(settings)
            if session is None:
                session = cls._sessions[settings] = cls(settings)
                while len(cls._sessions) > MAX_CACHED_SESSIONS:
                    cls._sessions.popitem(last=False)
            cls._sessions.move_to_end(settings)
            return session

    # --- opening -------------------------------------------------------------------------------------------------
    def _open(self) -> duckdb.DuckDBPyConnection:
        settings = self.settings
        if settings.catalog.kind == "sqlite":
            prepare_sqlite_catalog(Path(settings.catalog.target))
        for attempt in range(1, ATTACH_ATTEMPTS + 1):
            connection = duckdb.connect(
                config={
                    "extension_directory": str(settings.extension_dir),
                    "autoinstall_known_extensions": "false",
                }
            )
            try:
                ensure_installed(connection, extensions_for(settings))
            except BaseException:
                connection.close()
                raise
            try:
                for statement in session_statements(settings, read_only=False):
                    connection.execute(statement)
                return connection
            except duckdb.Error as exc:
                connection.close()
                # Two processes attaching a new lake at once both create its catalog tables; the one that
                # loses sees them half made (or the SQLite file locked) and attaches again once they exist.
                if attempt == ATTACH_ATTEMPTS or not _lost_creation_race(exc):
                    raise self._attach_error(exc) from None
                time.sleep(0.2 * attempt * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")

    def _attach_error(self, exc: duckdb.Error) -> Exception:
        text = self.masker.mask(str(exc)).splitlines()[0]
        if "does not match existing data path" in text:
            return WarehouseSettingError(
                DATA_PATH_VARIABLE,
                f"the lake's catalog records another data path than {self.settings.data_path} ({text}); a lake's "
                "files cannot move by changing the setting: set it back, or move the files and the catalog together",
            )
        return WarehouseSettingError(
            "MFG_WAREHOUSE_CATALOG",
            f"cannot attach the warehouse {self.settings.catalog.redacted()} with data path "
            f"{self.settings.data_path}: {text}",
        )

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of this session for one statement or transaction (cursors may be used from any thread),
        with the lake as its default database (a cursor does not inherit its parent's)."""
        cursor = self._connection.cursor()
        cursor.execute(f"USE {LAKE_ALIAS}")
        return cursor

    def close(self) -> None:
        self._connection.close()

    # --- reading and writing ------------------------------------------------------------------------------------
    def reader(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor for plain reads."""
        cursor = getattr(self._readers, "cursor", None)
        if cursor is None:
            cursor = self._readers.cursor = self.cursor()
        return cursor

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """One query in a transaction of its own (it sees the latest committed snapshot)."""
        return self.reader().execute(sql, list(params)).fetchall()

    def write(self, what: str, body: Callable[[duckdb.DuckDBPyConnection], T], budget: float | None = None) -> T:
        """Run `body` in one transaction and commit it; a transaction another writer's commit invalidated is run
        again from the start (with backoff) for up to `budget` seconds (MFG_WAREHOUSE_COMMIT_RETRY_SECONDS)."""
        deadline = time.monotonic() + (retry_seconds() if budget is None else budget)
        attempt = 0
        while True:
            attempt += 1
            with self.cursor() as cursor:
                try:
                    cursor.execute("BEGIN TRANSACTION")
                    result = body(cursor)
                    cursor.execute("COMMIT")
                    return result
                except duckdb.Error as exc:
                    _rollback(cursor)
                    if not is_conflict(exc):
                        raise
                    if time.monotonic() >= deadline:
                        raise CommitConflictError(
                            f"{what}: the commit lost to other writers {attempt} times in "
                            f"{retry_seconds() if budget is None else budget:.0f}s "
                            f"({self.masker.mask(str(exc)).splitlines()[-1]}); raise {RETRY_VARIABLE} if the "
                            "warehouse is this busy"
                        ) from None
                except BaseException:
                    _rollback(cursor)
                    raise
            time.sleep(min(2.0, 0.05 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.0))

    def has_table(self, schema: str, table: str) -> bool:
        if (schema, table) in self._tables:
            return True
        exists = (schema, table) in tables(self.reader(), schema)
        if exists:
            self._tables.add((schema, table))
        return exists

    def tables(self, schema: str | None = None) -> list[tuple[str, str]]:
        """(schema, table) of every table of the lake, or of one schema, in order (views aside)."""
        return tables(self.reader(), schema)

    def snapshot_id(self, cursor: duckdb.DuckDBPyConnection | None = None) -> int:
        """The lake's latest snapshot."""
        sql = f"SELECT {CURRENT_SNAPSHOT}"
        if cursor is not None:
            return int(cursor.execute(sql).fetchone()[0])  # type: ignore[index]
        return int(self.read(sql)[0][0])


def tables(cursor: duckdb.DuckDBPyConnection, schema: str | None = None) -> list[tuple[str, str]]:
    """(schema, table) of every table the lake holds as `cursor` sees it (inside its transaction, if any), or of
    one schema, in order."""
    where, params = ("AND schema_name = ?", [LAKE_ALIAS, schema]) if schema is not None else ("", [LAKE_ALIAS])
    rows = cursor.execute(
        f"SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? {where} ORDER BY ALL", params
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def insert_rows(cursor: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Sequence[Any]]) -> None:
    """Rows into a lake table as one statement, a list parameter per column unnested side by side: `executemany`
    runs one INSERT a row (each costs the lake its own catalog round trips), and a parameter a value costs DuckDB's
    client a conversion each."""
    if not rows:
        return
    columns = [list(column) for column in zip(*rows, strict=True)]
    cursor.execute(f"INSERT INTO {table} SELECT {', '.join(['unnest(?)'] * len(columns))}", columns)


def _lost_creation_race(error: duckdb.Error) -> bool:
    text = str(error).lower()
    return is_conflict(error) or "duplicate key" in text or "already exists" in text


def _rollback(cursor: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already ended the transaction
        cursor.execute("ROLLBACK")


def extensions_for(settings: WarehouseSettings) -> tuple[str, ...]:
    names = ["ducklake", "sqlite" if settings.catalog.kind == "sqlite" else "postgres"]
    if settings.s3 is not None:
        names += ["httpfs", "aws"]
    return tuple(names)


def prepare_sqlite_catalog(path: Path) -> None:
    """A SQLite catalog in WAL mode: readers never block the writer, nor the writer them (a rollback-journal
    file makes a committing writer wait for every open reader and fail with `database is locked`)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def session_statements(settings: WarehouseSettings, *, read_only: bool) -> list[str]:
    """The statements that make a plain DuckDB session the warehouse's: load the extensions, S3 credentials from
    the environment (if the data is in a bucket), attach the lake, make it the default database."""
    statements = [f"LOAD {name}" for name in extensions_for(settings)]
    if settings.s3 is not None:
        s3 = settings.s3
        options = [
            "TYPE s3",
            "PROVIDER credential_chain",
            "CHAIN 'env'",  # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: never written down
            f"REGION {_literal(s3.region)}",
            f"URL_STYLE {_literal(s3.url_style)}",
            f"USE_SSL {str(s3.use_ssl).lower()}",
        ]
        if s3.endpoint:
            options.append(f"ENDPOINT {_literal(s3.endpoint)}")
        statements.append(f"CREATE OR REPLACE SECRET mfg_warehouse_s3 ({', '.join(options)})")
    attach = [f"DATA_PATH {_literal(settings.data_path)}"] if not read_only else ["READ_ONLY"]
    statements.append(
        f"ATTACH IF NOT EXISTS {_literal(settings.catalog.attach_target)} AS {LAKE_ALIAS} ({', '.join(attach)})"
    )
    statements.append(f"USE {LAKE_ALIAS}")
    return statements


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
