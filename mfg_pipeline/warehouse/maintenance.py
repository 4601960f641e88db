"""Upkeep of the lake: the changes feed commits every minute and every commit adds small files (or inlined rows in
the catalog), so once a day the files are merged, old snapshots expired and files no snapshot needs removed.

For each table group, under its writer lock (so no load races the rewrite): publish what a killed run left
unpublished; flush the rows small commits inlined into the catalog into Parquet; merge adjacent small files; and
rewrite files that mostly hold deleted rows (updates and soft deletes leave deletion files behind). Rewriting files
changes no row, so nothing is republished for it. Then, for the whole lake: expire snapshots older than the
time-travel retention (MFG_WAREHOUSE_TIME_TRAVEL_DAYS, default 30), remove the files only expired snapshots used,
and files no snapshot ever committed (a crashed writer's) once they are a day old.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import duckdb

from mfg_pipeline.warehouse.lake import tables
from mfg_pipeline.warehouse.publish import publish_unpublished
from mfg_pipeline.warehouse.settings import LAKE_ALIAS, WarehouseSettingError
from mfg_pipeline.warehouse.store import Warehouse

RETENTION_VARIABLE = "MFG_WAREHOUSE_TIME_TRAVEL_DAYS"
DEFAULT_RETENTION_DAYS = 30
ORPHAN_AGE = timedelta(days=1)  # a file no snapshot references is a crashed writer's once it is this old
REWRITE_DELETE_SHARE = 0.25  # rewrite a file once a quarter of its rows are deleted


def retention_days() -> int:
    raw = os.environ.get(RETENTION_VARIABLE)
    if not raw:
        return DEFAULT_RETENTION_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise WarehouseSettingError(RETENTION_VARIABLE, f"must be a number of days, got {raw!r}") from None
    if days < 1:
        raise WarehouseSettingError(RETENTION_VARIABLE, f"must be at least 1 day, got {days}")
    return days


@dataclass
class MaintenanceReport:
    data_files_before: int = 0
    data_files_after: int = 0
    snapshots_before: int = 0
    snapshots_after: int = 0
    files_removed: int = 0
    groups: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"data files {self.data_files_before} -> {self.data_files_after}, snapshots {self.snapshots_before} -> "
            f"{self.snapshots_after}, {self.files_removed} files removed, {len(self.groups)} table groups, "
            f"{self.seconds:.1f}s"
        )


def maintain(warehouse: Warehouse, now: datetime | None = None, days: int | None = None) -> MaintenanceReport:
    started = time.monotonic()
    now = now or datetime.now(timezone.utc)
    lake = warehouse.lake
    report = MaintenanceReport(data_files_before=data_files(warehouse), snapshots_before=snapshot_count(warehouse))
    # Every schema that holds tables: a source's (its writer group), the analytics layer's, the pipeline's own.
    for schema in sorted({schema for schema, _ in lake.tables()}):
        with warehouse.writer(schema, f"maintaining {schema}"):
            publish_unpublished(lake, warehouse.parquet, warehouse.parquet_path, schema)
            with lake.cursor() as cursor:
                for _, table in tables(cursor, schema):
                    _compact(cursor, schema, table)
        report.groups.append(schema)
    retention = timedelta(days=days or retention_days())
    with lake.cursor() as cursor:
        cursor.execute(f"CALL ducklake_expire_snapshots('{LAKE_ALIAS}', older_than => ?)", [now - retention])
        removed = cursor.execute(f"CALL ducklake_cleanup_old_files('{LAKE_ALIAS}', cleanup_all => true)").fetchall()
        orphans = cursor.execute(
            f"CALL ducklake_delete_orphaned_files('{LAKE_ALIAS}', older_than => ?)", [now - ORPHAN_AGE]
        ).fetchall()
    report.files_removed = len(removed) + len(orphans)
    report.data_files_after = data_files(warehouse)
    report.snapshots_after = snapshot_count(warehouse)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _compact(cursor: duckdb.DuckDBPyConnection, schema: str, table: str) -> None:
    cursor.execute(
        f"CALL ducklake_flush_inlined_data('{LAKE_ALIAS}', schema_name => ?, table_name => ?)", [schema, table]
    )
    cursor.execute(f"CALL ducklake_merge_adjacent_files('{LAKE_ALIAS}', ?, schema => ?)", [table, schema])
    cursor.execute(
        f"CALL ducklake_rewrite_data_files('{LAKE_ALIAS}', ?, schema => ?, delete_threshold => ?)",
        [table, schema, REWRITE_DELETE_SHARE],
    )


def data_files(warehouse: Warehouse) -> int:
    """The Parquet data files the lake's current snapshot reads (inlined rows are in the catalog, not in files)."""
    total = 0
    with warehouse.lake.cursor() as cursor:
        for schema, table in tables(cursor):
            total += cursor.execute(
                f"SELECT count(*) FROM ducklake_list_files('{LAKE_ALIAS}', ?, schema => ?)", [table, schema]
            ).fetchone()[0]  # type: ignore[index]
    return total


def snapshot_count(warehouse: Warehouse) -> int:
    return int(warehouse.query(f"SELECT count(*) FROM ducklake_snapshots('{LAKE_ALIAS}')")[0][0])
