"""The published Parquet: each table's current state as plain Parquet files, for Power BI and any reader that does
not speak DuckLake (DuckLake's delete files are not something Power BI can apply).

Layout: `<parquet path>/<schema>/<table>/plant=<plant>/date=YYYY-MM-DD/data.parquet` for partitioned tables,
`…/<table>/plant=<plant>/data.parquet` otherwise, under MFG_PARQUET_PATH (a folder, or an S3 prefix): a reader of
the table's folder (Power BI, `read_parquet(…, hive_partitioning = true)`) sees `plant` and `date` as columns.

Cost follows change, and a crash cannot leave a file stale: the merge records, in its own transaction, which
partitions it changed (`main._mfg_unpublished_<schema>`). After the commit the writer exports each of them from the
table's `_current` view and crosses them off; a run killed in between leaves them listed, and the next commit of
the group exports them first. Every file is written whole before it is visible (a temporary name and a rename; an
S3 object appears when its upload completes), so readers see the old file or the new one. Each file names, in its
key-value metadata (`mfg_lake_snapshot`), a lake snapshot whose rows it holds.
"""

from __future__ import annotations

import bisect
import fnmatch
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mfg_pipeline.warehouse.lake import Lake, insert_rows
from mfg_pipeline.warehouse.layout import (
    CURRENT_VIEW_SUFFIX,
    INTERNAL_SCHEMA,
    PARTITION_COLUMN,
    PLANT_COLUMN,
    UNPUBLISHED_PREFIX,
    legacy_published,
    literal,
    published_path,
    qualified,
    quote,
)
from mfg_pipeline.warehouse.settings import S3Settings

EXPORT_BATCH_ROWS = 65_536  # rows per batch written to Parquet (bounds an export's memory)
# The key of a published file's metadata that names the lake snapshot it was exported from: a check compares the
# file with the lake as it was then, whatever a later writer committed (`checks.row_count_check`).
SNAPSHOT_METADATA_KEY = "mfg_lake_snapshot"


class ParquetStore:
    """Writes whole Parquet files under a local folder or an S3 prefix (reads go through DuckDB)."""

    def __init__(self, s3: S3Settings | None):
        self._s3 = s3
        self._s3fs: pafs.S3FileSystem | None = None

    def _filesystem(self, path: str) -> tuple[pafs.FileSystem, str]:
        if not path.startswith("s3://"):
            return pafs.LocalFileSystem(), path
        if self._s3fs is None:
            s3 = self._s3 or S3Settings.from_env()
            self._s3fs = pafs.S3FileSystem(  # credentials: the AWS SDK's chain (AWS_ACCESS_KEY_ID, …)
                region=s3.region,
                endpoint_override=s3.endpoint,
                scheme="https" if s3.use_ssl else "http",
                force_virtual_addressing=s3.url_style == "vhost",
            )
        return self._s3fs, path.removeprefix("s3://")

    def write(
        self,
        cursor: duckdb.DuckDBPyConnection,
        query: str,
        params: Sequence[Any],
        target: str,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """The query's rows as one Parquet file, in batches (`metadata`: the file's key-value metadata)."""
        reader = cursor.sql(query, params=list(params)).to_arrow_reader(EXPORT_BATCH_ROWS)
        with self.file(target, reader.schema, metadata) as file:
            for batch in reader:
                file.write(batch)

    def write_split(
        self,
        cursor: duckdb.DuckDBPyConnection,
        query: str,
        params: Sequence[Any],
        column: str,
        targets: Mapping[Any, str],
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """One query's rows, ordered by `column`, as one file per value of it (`targets`: value -> file); a value
        with no rows gets an empty file. One scan however many files it feeds."""
        reader = cursor.sql(query, params=list(params)).to_arrow_reader(EXPORT_BATCH_ROWS)
        written: set[Any] = set()
        current: Any = None
        file: _ParquetFile | None = None
        try:
            for batch in reader:
                for value, rows in _runs(batch, column):
                    if file is None or value != current:
                        if file is not None:
                            file.close()
                        file, current = self.file(targets[value], reader.schema, metadata).open(), value
                        written.add(value)
                    file.write(rows)
        finally:
            if file is not None:
                file.close()
        for value, target in targets.items():
            if value not in written:
                with self.file(target, reader.schema, metadata):
                    pass

    def file(self, target: str, schema: pa.Schema, metadata: Mapping[str, str] | None = None) -> _ParquetFile:
        """A Parquet file written whole before it is visible: every column nullable, so the files of one table
        agree on one schema whatever rows each holds (a folder read would fail otherwise)."""
        filesystem, path = self._filesystem(target)
        nullable = pa.schema([f.with_nullable(True) for f in schema], metadata=dict(metadata or {}))
        return _ParquetFile(filesystem, path, nullable)

    def exists(self, path_or_glob: str) -> bool:
        """Whether a file exists, or any file of a pattern (`*` within folder levels), locally or in the bucket."""
        filesystem, path = self._filesystem(path_or_glob)
        if "*" not in path:
            return filesystem.get_file_info(path).type == pafs.FileType.File
        parts = path.split("/")
        fixed = "/".join(parts[: next(i for i, part in enumerate(parts) if "*" in part)])
        if filesystem.get_file_info(fixed).type != pafs.FileType.Directory:
            return False
        selector = pafs.FileSelector(fixed, recursive=True)
        return any(
            info.type == pafs.FileType.File and fnmatch.fnmatch(info.path, path)
            for info in filesystem.get_file_info(selector)
        )

    def remove_matching(self, pattern: str) -> None:
        """Remove every file or folder a pattern (`*` in its last level) matches."""
        filesystem, path = self._filesystem(pattern)
        folder, _, name = path.rpartition("/")
        if filesystem.get_file_info(folder).type != pafs.FileType.Directory:
            return
        for info in filesystem.get_file_info(pafs.FileSelector(folder)):
            if fnmatch.fnmatch(info.base_name, name):
                self.remove(("s3://" if pattern.startswith("s3://") else "") + info.path)

    def remove(self, target: str) -> None:
        """Remove a file, or a folder and what it holds."""
        filesystem, path = self._filesystem(target)
        info = filesystem.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            filesystem.delete_dir(path)
        elif info.type == pafs.FileType.File:
            filesystem.delete_file(path)


def _runs(batch: pa.RecordBatch, column: str) -> Iterator[tuple[Any, pa.RecordBatch]]:
    """(value, rows) for each run of equal values of `column` (a DATE, the partition column) in a batch in its
    ascending order: each run's end by binary search over the column's days. Not pyarrow.compute: importing it
    costs every run about 10 MB; nor a walk of the values as Python dates, which costs more than writing the
    files."""
    values = batch.column(column)
    if not pa.types.is_date32(values.type) or values.null_count:
        raise TypeError(f"published files are split by a DATE column without nulls, not {column} {values.type}")
    days = memoryview(values.buffers()[1]).cast("i")[values.offset : values.offset + len(values)]
    start = 0
    while start < len(days):
        end = bisect.bisect_right(days, days[start], lo=start)
        yield values[start].as_py(), batch.slice(start, end - start)
        start = end


class _ParquetFile:
    """One file being written: under a temporary name then renamed (locally), or as one S3 upload that appears
    when it completes. A context manager: an error leaves no file behind."""

    def __init__(self, filesystem: pafs.FileSystem, path: str, schema: pa.Schema):
        self.filesystem, self.path, self.schema = filesystem, path, schema
        self.local = isinstance(filesystem, pafs.LocalFileSystem)
        self.written = (
            f"{os.path.dirname(path)}/.{os.path.basename(path)}.{uuid.uuid4().hex}.tmp" if self.local else path
        )
        self._writer: pq.ParquetWriter | None = None

    def open(self) -> _ParquetFile:
        self.filesystem.create_dir(os.path.dirname(self.path), recursive=True)
        self._writer = pq.ParquetWriter(self.written, self.schema, compression="zstd", filesystem=self.filesystem)
        return self

    def write(self, batch: pa.RecordBatch) -> None:
        assert self._writer is not None
        self._writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=self.schema))

    def close(self, keep: bool = True) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.local:
            if keep:
                os.replace(self.written, self.path)
            elif os.path.exists(self.written):
                os.unlink(self.written)

    def __enter__(self) -> _ParquetFile:
        return self.open()

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self.close(keep=error is None)


@dataclass(frozen=True)
class PublishedTable:
    """What publishing needs of one table: where it is, whether it is partitioned, and the order of its rows."""

    schema: str
    name: str
    partitioned: bool
    order_by: tuple[str, ...]  # the primary key


def unpublished_name(schema: str) -> str:
    """The table of a group's partitions committed but not yet published (one table per group: only the group's
    writer, holding its lock, writes it, so it never conflicts with another group's commit)."""
    return f"{UNPUBLISHED_PREFIX}{schema}"


def record_unpublished(
    cursor: duckdb.DuckDBPyConnection, table: PublishedTable, plant: str, partitions: Iterable[date | None]
) -> None:
    """In the merge's own transaction: these partitions of a plant now owe an export (crossed off once
    published)."""
    rows = [[table.name, partition, table.partitioned, list(table.order_by), plant] for partition in partitions]
    if not rows:
        return
    pending = qualified(INTERNAL_SCHEMA, unpublished_name(table.schema))
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {pending} (table_name VARCHAR, partition_date DATE, partitioned BOOLEAN, "
        f"order_by VARCHAR[], {PLANT_COLUMN} VARCHAR)"
    )
    insert_rows(cursor, pending, rows)


def publish_unpublished(
    lake: Lake, store: ParquetStore, parquet_path: str, schema: str, snapshot: int | None = None
) -> dict[str, set[date | None]]:
    """Export every partition of `schema` that owes one, of any plant (this commit's, and any a run killed after
    its commit left), then cross them off; returns table -> partitions published. The caller holds the group's
    lock, so the group's tables stay as they are until it is released: each file names a snapshot that shows them
    so (`snapshot`, or the latest)."""
    if not lake.has_table(INTERNAL_SCHEMA, unpublished_name(schema)):
        return {}
    pending = qualified(INTERNAL_SCHEMA, unpublished_name(schema))
    rows = lake.read(
        f"SELECT DISTINCT table_name, partition_date, partitioned, order_by, {PLANT_COLUMN} FROM {pending}"
    )
    if not rows:
        return {}
    owed: dict[tuple[PublishedTable, str], set[date | None]] = {}
    for name, partition, partitioned, order_by, plant in rows:
        owed.setdefault((PublishedTable(schema, name, partitioned, tuple(order_by)), plant), set()).add(partition)
    with lake.cursor() as cursor:
        metadata = {SNAPSHOT_METADATA_KEY: str(lake.snapshot_id(cursor) if snapshot is None else snapshot)}
        for (table, plant), partitions in owed.items():
            _export(cursor, store, parquet_path, table, plant, partitions, metadata)
    lake.write(f"{schema}: crossing off the published partitions", lambda c: c.execute(f"DELETE FROM {pending}"))
    published: dict[str, set[date | None]] = {}
    for (table, _), partitions in owed.items():
        published.setdefault(table.name, set()).update(partitions)
    return published


def _export(
    cursor: duckdb.DuckDBPyConnection,
    store: ParquetStore,
    parquet_path: str,
    table: PublishedTable,
    plant: str,
    partitions: set[date | None],
    metadata: Mapping[str, str],
) -> None:
    """Publish partitions of one plant's rows of a table (or all its rows of an unpartitioned table) as the
    `_current` view shows them: one query for all of them. The plant is both a column of the file and its folder
    (a folder reader that reads Hive partitions sees one value for both)."""
    view = qualified(table.schema, table.name + CURRENT_VIEW_SUFFIX)
    key = [quote(c) for c in table.order_by]  # none known (a table upgraded to plants): rows in any order
    rows = f"SELECT * FROM {view} WHERE {PLANT_COLUMN} = {literal(plant)}"
    days = sorted(p for p in partitions if p is not None)
    _remove_legacy_files(store, parquet_path, table)
    if not table.partitioned or not days:
        target = published_path(parquet_path, table.schema, table.name, plant, None)
        store.write(cursor, f"{rows} ORDER BY {', '.join(key) or 'ALL'}", [], target, metadata)
        return
    targets = {day: published_path(parquet_path, table.schema, table.name, plant, day) for day in days}
    # The days as literals: DuckLake prunes the other days' files for those, not for a bound list or range.
    listed = ", ".join(f"DATE '{day.isoformat()}'" for day in days)
    order = ", ".join([PARTITION_COLUMN, *key])
    query = f"{rows} AND {PARTITION_COLUMN} IN ({listed}) ORDER BY {order}"
    store.write_split(cursor, query, [], PARTITION_COLUMN, targets, metadata)


_legacy_checked: set[tuple[str, str, str]] = set()


def _remove_legacy_files(store: ParquetStore, parquet_path: str, table: PublishedTable) -> None:
    """A table published before plants had a folder level is republished under `plant=`; its old files go, so a
    folder reader does not count its rows twice (checked once per table and process)."""
    checked = (parquet_path, table.schema, table.name)
    if checked in _legacy_checked:
        return
    for legacy in legacy_published(parquet_path, table.schema, table.name):
        store.remove_matching(legacy)
    _legacy_checked.add(checked)
