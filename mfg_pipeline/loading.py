"""The load engine: client -> pages -> typed rows -> staged Parquet -> one warehouse commit. No Dagster inside.

Memory stays flat whatever the partition size: pages are parsed and appended to the staged Parquet as they
arrive; only the keys seen so far are kept (to drop a record a shifting list returned twice).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from typing import Any, Callable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from mfg_pipeline.http.client import Page, RequestStats
from mfg_pipeline.http.errors import SourcePayloadError
from mfg_pipeline.records.schema import FieldError, RowParser, Table
from mfg_pipeline.streams import SourceClient, Stream
from mfg_pipeline.warehouse.store import (DELETED_AT_COLUMN, PARTITION_COLUMN, CommitResult, Stage, TableLoad,
                                          Warehouse)

ROW_GROUP_ROWS = 50_000


@dataclass(frozen=True)
class PagesInHand:
    """Stands in for a client when the pages were read earlier (a journal) or made in memory (a benchmark):
    what `StreamLoad` needs of a client, with no HTTP behind it."""

    system: str
    naive_timezone: tzinfo
    stats: RequestStats = field(default_factory=RequestStats)


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
    mode: str  # partition, snapshot or upsert
    started_at: datetime  # UTC wall clock
    source_rows: dict[str, int]  # rows the source returned for the window, per table, after de-duplication
    pages: int
    requests: int
    throttled: int
    retries: int
    token_refreshes: int
    rate_limit_wait_seconds: float
    seconds: float
    commit_seconds: float
    published: dict[str, list]  # table -> Parquet files written
    duplicates_dropped: int = 0
    outside_window_dropped: int = 0
    tables: dict[str, Table] = field(default_factory=dict)


ProgressCallback = Callable[[Stream, Page, int], None]  # (stream, page, rows so far)


class _StagedTable:
    """An append-only staged Parquet file for one table."""

    def __init__(self, stage: Stage, table: Table, partitioned: bool):
        extra = [pa.field(DELETED_AT_COLUMN, pa.timestamp("us", tz="UTC"))]
        if partitioned:
            extra.append(pa.field(PARTITION_COLUMN, pa.date32(), nullable=False))
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


class StreamLoad:
    """One load of one stream: parse pages into staged Parquet, then commit them to the warehouse.

    `load_stream` uses it for the common case (all pages, one commit); a source with its own flow (Traede's
    export -> land -> mark) drives it page by page, committing in "upsert" mode after each batch.
    """

    def __init__(self, client: SourceClient, stream: Stream, warehouse: Warehouse,
                 window: PartitionWindow | None = None, partition_timezone: tzinfo | None = None):
        """`window`: load one partition. `partition_timezone` (partitioned stream, no window): records from
        anywhere in time, each placed in the day of its own time column (changes-feed batches)."""
        if window is not None and not stream.partitioned:
            raise ValueError(f"{client.system} {stream.name}: only a partitioned stream takes a window")
        if stream.partitioned and window is None and partition_timezone is None:
            raise ValueError(f"{client.system} {stream.name}: a partitioned stream needs a window or a timezone")
        self.client, self.stream, self.warehouse, self.window = client, stream, warehouse, window
        self.partition_timezone = partition_timezone
        self.started = time.monotonic()
        self.started_at = datetime.now(timezone.utc)
        self._stats_before = client.stats.as_dict()
        self._parser = RowParser(stream.table, stream.children, stream.naive_timezone or client.naive_timezone)
        self._seen: set[tuple] = set()
        self.duplicates = self.outside = 0
        self.source_rows = {t.name: 0 for t in stream.tables}
        self.commits: list[CommitResult] = []
        self._stage: Stage | None = None
        self._staged: dict[str, _StagedTable] = {}

    def request_params(self) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.stream.params)
        if self.window is not None:
            params.update(self.stream.window.params(self.window.start, self.window.end))
        return params

    def add_page(self, page: Page, deleted_at: Sequence[datetime | None] | None = None) -> list[tuple]:
        """Parse and stage one page; returns the keys of the records kept (in the window, not seen before).
        `deleted_at` (one per record) soft-deletes records, and their child rows, as of that time."""
        stream, window = self.stream, self.window
        if self._stage is None:
            self._stage = self.warehouse.new_stage(self.client.system)
            self._staged = {t.name: _StagedTable(self._stage, t, stream.partitioned) for t in stream.tables}
        try:
            parsed = self._parser.parse(page.records)
        except FieldError as exc:
            raise SourcePayloadError(str(exc), system=self.client.system, endpoint=stream.endpoint,
                                     page=page.number) from None
        parent = parsed[stream.table.name]
        keys = list(zip(*(parent[c] for c in stream.table.primary_key)))
        keep = []
        for index, key in enumerate(keys):
            in_window = window is None or window.start <= parent[stream.window.time_column][index] < window.end
            fresh = key not in self._seen
            self.outside += not in_window
            self.duplicates += in_window and not fresh
            keep.append(in_window and fresh)
            if in_window:
                self._seen.add(key)
        kept_keys = [k for k, kept in zip(keys, keep) if kept]
        kept_set = set(kept_keys)
        deleted_by_key = dict(zip(keys, deleted_at or [None] * len(keys)))
        day_by_key = {}
        if stream.partitioned and window is None:
            day_by_key = {k: t.astimezone(self.partition_timezone).date()
                          for k, t in zip(keys, parent[stream.window.time_column])}
        for table_name, columns in parsed.items():
            if table_name == stream.table.name:
                columns = _select(columns, keep)
                row_keys = kept_keys
            else:
                child = next(c for c in stream.children if c.table.name == table_name)
                child_keys = list(zip(*(columns[child_col] for child_col, _ in child.parent_key)))
                columns = _select(columns, [k in kept_set for k in child_keys])
                row_keys = [k for k in child_keys if k in kept_set]
            columns[DELETED_AT_COLUMN] = [deleted_by_key[k] for k in row_keys]
            if window is not None:
                columns[PARTITION_COLUMN] = [window.key] * len(row_keys)
            elif stream.partitioned:
                columns[PARTITION_COLUMN] = [day_by_key[k] for k in row_keys]
            self._staged[table_name].append(columns)
            self.source_rows[table_name] += len(next(iter(columns.values()), []))
        return kept_keys

    @property
    def staged_parent_rows(self) -> int:
        return self._staged[self.stream.table.name].rows if self._staged else 0

    def commit(self, mode: str, extra_loads: Sequence[TableLoad] = ()) -> CommitResult:
        """Land what is staged: "partition" (the window's day), "snapshot" (whole table) or "upsert" (by key).
        `extra_loads` commit in the same transaction (e.g. an audit row per applied change)."""
        if self._stage is None:  # nothing staged yet: an empty result is still a result (it empties the day)
            self._stage = self.warehouse.new_stage(self.client.system)
            self._staged = {t.name: _StagedTable(self._stage, t, self.stream.partitioned) for t in self.stream.tables}
        stream = self.stream
        try:
            for table in self._staged.values():
                table.close()
            parent = TableLoad(self.client.system, stream.table, self._staged[stream.table.name].path, mode=mode,
                               partition=self.window.key if self.window else None, partitioned=stream.partitioned)
            loads = [parent] + [
                TableLoad(self.client.system, child.table, self._staged[child.table.name].path, mode=mode,
                          partition=parent.partition, parent=parent, parent_link=child.parent_key,
                          partitioned=stream.partitioned)
                for child in stream.children]
            result = self.warehouse.commit(loads + list(extra_loads))
        finally:
            self.discard()
        self.commits.append(result)
        return result

    def discard(self) -> None:
        if self._stage is not None:
            self._stage.discard()
        self._stage, self._staged = None, {}

    def report(self, mode: str) -> LoadReport:
        stats = {k: v - self._stats_before.get(k, 0) for k, v in self.client.stats.as_dict().items()}
        published: dict[str, list] = {}
        for commit in self.commits:
            for table, paths in commit.published.items():
                published.setdefault(table, []).extend(p for p in paths if p not in published.get(table, []))
        return LoadReport(
            source=self.client.system, stream=self.stream.name, window=self.window, mode=mode,
            started_at=self.started_at, source_rows=dict(self.source_rows),
            pages=int(stats["pages"]), requests=int(stats["requests"]), throttled=int(stats["throttled"]),
            retries=int(stats["retries"]), token_refreshes=int(stats["token_refreshes"]),
            rate_limit_wait_seconds=round(stats["rate_limit_wait_seconds"], 3),
            seconds=round(time.monotonic() - self.started, 3),
            commit_seconds=round(sum(c.seconds for c in self.commits), 3), published=published,
            duplicates_dropped=self.duplicates, outside_window_dropped=self.outside,
            tables={t.name: t for t in self.stream.tables})


def load_stream(client: SourceClient, stream: Stream, warehouse: Warehouse, *, window: PartitionWindow | None = None,
                progress: ProgressCallback | None = None) -> LoadReport:
    """Pull every page of `stream` (for `window` when partitioned) and land it in one commit; the warehouse
    changes only if every page was read and parsed."""
    load = StreamLoad(client, stream, warehouse, window)
    mode = "partition" if window is not None else "snapshot"
    try:
        for page in client.pages(stream, load.request_params()):
            load.add_page(page)
            if progress:
                progress(stream, page, load.staged_parent_rows)
        load.commit(mode)
    finally:
        load.discard()
    return load.report(mode)
