"""Staging: each load's private folder on the machine that runs it, and the append-only Parquet files in it (the
rows of one table, or a set of keys), written as pages arrive so memory stays flat whatever the size of a load.
Extraction failing half-way leaves the warehouse untouched: nothing is read from a stage until its commit."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

ROW_GROUP_ROWS = 50_000
STAGE_OWNER_LOCK = "owner.lock"


class StagedFile:
    """Batches appended to one Parquet file, flushed in row groups of `ROW_GROUP_ROWS`."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.schema = schema
        self._writer = pq.ParquetWriter(path, schema, compression="zstd")
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self.rows = 0

    def append(self, columns: dict[str, list]) -> None:
        batch = pa.RecordBatch.from_pydict(columns, schema=self.schema)
        if not batch.num_rows:
            return
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending, self.schema))
            self._pending, self._pending_rows = [], 0

    def close(self) -> Path:
        self._flush()
        self._writer.close()
        return self.path


def key_schema(table_schema: pa.Schema, key_columns: Sequence[str]) -> pa.Schema:
    return pa.schema([table_schema.field(name) for name in key_columns])


class KeysFile(StagedFile):
    """A set of primary keys (the records a list returned, or those the vendor deleted)."""

    def add(self, keys: Sequence[tuple]) -> None:
        if keys:
            self.append({field.name: [key[i] for key in keys] for i, field in enumerate(self.schema)})


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


class StagingArea:
    """`<data dir>/staging/<source>/<pid>-<uuid>/`: one private folder per load, on the machine that runs it."""

    def __init__(self, root: Path):
        self.root = root

    def new_stage(self, source: str) -> Stage:
        self.remove_orphans(source)
        return Stage(self.root / source / f"{os.getpid()}-{uuid.uuid4().hex}")

    def remove_orphans(self, source: str) -> list[Path]:
        """Remove staging folders whose owning run died (nobody holds their lock); returns what was removed."""
        removed = []
        folder_root = self.root / source
        for folder in folder_root.iterdir() if folder_root.exists() else ():
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
