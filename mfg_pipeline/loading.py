"""The load engine: client -> pages -> typed rows -> staged Parquet -> one warehouse commit. No Dagster inside.

Memory stays flat whatever the partition size: pages are parsed and appended to the staged Parquet as they
arrive; only the keys seen so far are kept (to drop a record a shifting list returned twice).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from mfg_pipeline.http.client import Page
from mfg_pipeline.http.errors import SourcePayloadError
from mfg_pipeline.records.schema import FieldError, RowParser, Table
from mfg_pipeline.streams import SourceClient, Stream
from mfg_pipeline.warehouse.store import PARTITION_COLUMN, CommitResult, Stage, TableLoad, Warehouse

ROW_GROUP_ROWS = 50_000


@dataclass(frozen=True)
class PartitionWindow:
    key: date  # the partition's day (in the partition timezone)
    start: datetime  # aware
    end: datetime  # aware, exclusive


@dataclass
class LoadReport:
    source: str
    stream: str
    window: PartitionWindow | None
    source_rows: dict[str, int]  # rows the source returned for the window, per table, after de-duplication
    pages: int
    requests: int
    throttled: int
    retries: int
    token_refreshes: int
    rate_limit_wait_seconds: float
    seconds: float
    commit: CommitResult
    duplicates_dropped: int = 0
    outside_window_dropped: int = 0
    tables: dict[str, Table] = field(default_factory=dict)


ProgressCallback = Callable[[Stream, Page, int], None]  # (stream, page, rows so far)


class _StagedTable:
    """An append-only staged Parquet file for one table."""

    def __init__(self, stage: Stage, table: Table, partitioned: bool):
        extra = [pa.field(PARTITION_COLUMN, pa.date32(), nullable=False)] if partitioned else []
        self.table = table
        self.schema = table.arrow_schema(extra)
        self.path = stage.file_for(table.name)
        self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self.rows = 0

    def append(self, columns: dict[str, list]) -> None:
        batch = pa.RecordBatch.from_pydict(columns, schema=self.schema)
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending, self.schema))
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


def _select(columns: dict[str, list], keep: list[bool]) -> dict[str, list]:
    return {name: [v for v, k in zip(values, keep) if k] for name, values in columns.items()}


def load_stream(client: SourceClient, stream: Stream, warehouse: Warehouse, *, window: PartitionWindow | None = None,
                progress: ProgressCallback | None = None) -> LoadReport:
    """Pull every page of `stream` (for `window` when partitioned) and land it; the warehouse changes only if
    every page was read and parsed."""
    if stream.partitioned != (window is not None):
        raise ValueError(f"{client.system} {stream.name}: a partitioned stream needs a window, and only it")
    started = time.monotonic()
    stats_before = client.stats.as_dict()
    params: dict[str, Any] = dict(stream.params)
    if window is not None:
        params.update(stream.window.params(window.start, window.end))
    parser = RowParser(stream.table, stream.children, stream.naive_timezone or client.naive_timezone)
    stage = warehouse.new_stage(client.system)
    try:
        staged = {t.name: _StagedTable(stage, t, stream.partitioned) for t in stream.tables}
        seen: set[tuple] = set()
        duplicates = outside = 0
        key_columns = stream.table.primary_key
        for page in client.pages(stream, params):
            try:
                parsed = parser.parse(page.records)
            except FieldError as exc:
                raise SourcePayloadError(str(exc), system=client.system, endpoint=stream.endpoint,
                                         page=page.number) from None
            parent = parsed[stream.table.name]
            keys = list(zip(*(parent[c] for c in key_columns)))
            keep = []
            for index, key in enumerate(keys):
                in_window = window is None or window.start <= parent[stream.window.time_column][index] < window.end
                fresh = key not in seen
                outside += not in_window
                duplicates += in_window and not fresh
                keep.append(in_window and fresh)
                if in_window:
                    seen.add(key)
            kept_keys = {k for k, kept in zip(keys, keep) if kept}
            for table_name, columns in parsed.items():
                if table_name == stream.table.name:
                    columns = _select(columns, keep)
                else:
                    child = next(c for c in stream.children if c.table.name == table_name)
                    child_keys = list(zip(*(columns[child_col] for child_col, _ in child.parent_key)))
                    columns = _select(columns, [k in kept_keys for k in child_keys])
                if window is not None:
                    columns[PARTITION_COLUMN] = [window.key] * len(next(iter(columns.values()), []))
                staged[table_name].append(columns)
            if progress:
                progress(stream, page, staged[stream.table.name].rows)
        for table in staged.values():
            table.close()
        parent_load = TableLoad(client.system, stream.table, staged[stream.table.name].path,
                                mode="partition" if window else "snapshot", partition=window.key if window else None)
        loads = [parent_load] + [
            TableLoad(client.system, child.table, staged[child.table.name].path, mode=parent_load.mode,
                      partition=parent_load.partition, parent=parent_load, parent_link=child.parent_key)
            for child in stream.children]
        commit = warehouse.commit(loads, partitioned=stream.partitioned)
    finally:
        stage.discard()
    stats = {k: v - stats_before.get(k, 0) for k, v in client.stats.as_dict().items()}
    return LoadReport(
        source=client.system, stream=stream.name, window=window,
        source_rows={name: t.rows for name, t in staged.items()},
        pages=int(stats["pages"]), requests=int(stats["requests"]), throttled=int(stats["throttled"]),
        retries=int(stats["retries"]), token_refreshes=int(stats["token_refreshes"]),
        rate_limit_wait_seconds=round(stats["rate_limit_wait_seconds"], 3),
        seconds=round(time.monotonic() - started, 3), commit=commit, duplicates_dropped=duplicates,
        outside_window_dropped=outside, tables={t.name: t for t in stream.tables})
