"""Append-only staged Parquet files: the rows of one table, or a set of keys, written as pages arrive so memory
stays flat whatever the size of a load."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 50_000


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
