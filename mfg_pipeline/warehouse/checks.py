"""Data checks run after every load, on both copies of a table: the lake's table and its published Parquet.

DuckLake enforces no primary key, so the merge keeps keys unique (under the table group's writer lock) and this
check verifies it, in the lake and in the Parquet BI tools read (a stale partition file or a record that moved
between days would show up here). Each check looks at the warehouse's plant's rows and files. A run's count checks
read the lake as the run left it (the snapshot its commit reports) and each published file beside the lake as it was
when the file was exported (the snapshot the file names), so a writer committing after the run (the changes feed,
another run) does not turn them red.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mfg_pipeline.records.schema import Table
from mfg_pipeline.warehouse.layout import (
    DELETED_AT_COLUMN,
    PARTITION_COLUMN,
    PLANT_COLUMN,
    at_snapshot,
    keys_relation,
    quote,
)
from mfg_pipeline.warehouse.merge import NOT_WRITTEN, TABLE_NOT_YET
from mfg_pipeline.warehouse.publish import SNAPSHOT_METADATA_KEY
from mfg_pipeline.warehouse.store import Warehouse

# The two checks every loaded table carries (their names in Dagster).
PRIMARY_KEY_CHECK = "primary_key_unique_not_null"
ROW_COUNT_CHECK = "row_count_matches_source"
TABLE_CHECKS = (PRIMARY_KEY_CHECK, ROW_COUNT_CHECK)


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _parquet_glob(warehouse: Warehouse, schema: str, table: Table, partitioned: bool) -> str | None:
    pattern = warehouse.published_glob(schema, table.name, partitioned)
    return pattern if warehouse.is_published(pattern) else None


def _key_stats(
    warehouse: Warehouse, relation: str, table: Table, params: list, partition: date | None
) -> tuple[int, int, int]:
    """(rows, rows with a null key, keys held more than once). With `partition`: that day's rows, and those of its
    keys held more than once anywhere in the table; the work is a semi-join on the day's keys, so memory stays
    bounded by the partition, not the table."""
    key = ", ".join(quote(c) for c in table.primary_key)
    null_key = " OR ".join(f"{quote(c)} IS NULL" for c in table.primary_key)
    if partition is None:
        day, scope, candidates, all_params = "", relation, relation, [*params, *params]
    else:
        # The day's keys read once (each read of a lake table costs its catalog lookups), then matched against the
        # whole table's.
        day = f"WITH day AS MATERIALIZED (SELECT {key} FROM {relation} WHERE {PARTITION_COLUMN} = ?) "
        scope, candidates, all_params = "day", f"{relation} SEMI JOIN day USING ({key})", [*params, partition, *params]
    # One query: every query of the lake reads its catalog first.
    rows, nulls, duplicates = warehouse.query(
        f"{day}SELECT count(*), count(*) FILTER (WHERE {null_key}), (SELECT count(*) FROM (SELECT {key} FROM "
        f"{candidates} GROUP BY {key} HAVING count(*) > 1)) FROM {scope}",
        all_params,
    )[0]
    return rows, nulls, duplicates


def primary_key_check(
    warehouse: Warehouse,
    schema: str,
    table: Table,
    partitioned: bool,
    partition: date | None = None,
    snapshot_before: int | None = None,
) -> CheckOutcome:
    """Key unique and not null in the lake and in the published Parquet (for `partition`: the day's keys, each
    checked against the whole table). A table not created yet (nothing landed so far) holds no key at all.

    `snapshot_before` (the lake snapshot before the run's first commit) lets a day's check read only the
    published files that can hold its keys, not every day's file of the table's history."""
    relations: dict[str, tuple[str, list]] = {}
    if warehouse.has_table(schema, table.name):
        relations["duckdb"] = (_plant_rows(schema, table), [warehouse.plant])
    metadata: dict[str, Any] = {"primary_key": ", ".join(table.primary_key)}
    files = _files_for_day(warehouse, schema, table, partition, snapshot_before) if partitioned else None
    if files:
        relations["parquet"] = ("read_parquet(?, union_by_name = true)", [files])
        metadata["parquet_files_checked"] = len(files)
    elif glob := _parquet_glob(warehouse, schema, table, partitioned):
        relations["parquet"] = ("read_parquet(?, union_by_name = true)", [glob])
    failures = []
    for label, (relation, params) in relations.items():
        rows, nulls, duplicates = _key_stats(warehouse, relation, table, params, partition)
        metadata.update({f"{label}_rows": rows, f"{label}_null_keys": nulls, f"{label}_duplicate_keys": duplicates})
        if nulls or duplicates:
            failures.append(f"{label}: {duplicates} duplicated and {nulls} null keys")
    passed = not failures
    description = "Key unique and not null in the warehouse and Parquet" if relations else "No row landed yet"
    return CheckOutcome(PRIMARY_KEY_CHECK, passed, description if passed else "; ".join(failures), metadata)


def _files_for_day(
    warehouse: Warehouse, schema: str, table: Table, partition: date | None, snapshot_before: int | None
) -> list[str] | None:
    """The published files that can hold a key of one day's file: that file, and the files of the days its keys
    were on at `snapshot_before`. A record a run moved between days is in its old day's file until that file is
    republished, so that file is read too: the lake's past says which it is, whatever the merge computed. A run
    that did not write the table (NOT_WRITTEN) moved no record: the day's file alone. None (every file of the table
    is read) without a day, a published day's file, or a snapshot that held the table."""
    if partition is None or snapshot_before is None or snapshot_before == TABLE_NOT_YET:
        return None
    day_file = warehouse.published_file(schema, table.name, partition)
    if not warehouse.is_published(day_file):
        return None
    if snapshot_before == NOT_WRITTEN:
        return [day_file]
    key = ", ".join(quote(c) for c in table.primary_key)
    earlier = warehouse.query(
        f"SELECT DISTINCT {PARTITION_COLUMN} FROM {at_snapshot(schema, table.name, snapshot_before)} "
        f"WHERE {PLANT_COLUMN} = ? AND ({key}) IN (SELECT {key} FROM read_parquet(?)) ORDER BY ALL",
        [warehouse.plant, day_file],
    )
    others = [warehouse.published_file(schema, table.name, day) for (day,) in earlier if day != partition]
    return [day_file, *(file for file in others if warehouse.is_published(file))]


def _plant_rows(schema: str, table: Table, snapshot: int | None = None) -> str:
    """The rows of the plant given as the parameter (at `snapshot`, if given)."""
    return f"(SELECT * FROM {at_snapshot(schema, table.name, snapshot)} WHERE {PLANT_COLUMN} = ?)"


def row_count_check(
    warehouse: Warehouse,
    schema: str,
    table: Table,
    partition: date | None,
    source_rows: int,
    partitioned: bool | None = None,
    deleted_flag: str | None = None,
    kept_newer: int = 0,
    snapshot: int | None = None,
) -> CheckOutcome:
    """The scope's live rows in DuckDB and in its Parquet equal what the source listed for it: one partition, or
    (`partition` None) the whole table. Rows the vendor flags deleted (`deleted_flag`) are not published. Rows
    another writer wrote while the pass listed (`kept_newer`, which the listing lacked and left live) count too.

    `snapshot` (the pass's `LoadReport.snapshot_after`): the lake is counted as the pass left it, and a published
    file as the lake was when it was exported, so a writer committing to the scope after the pass (the changes
    feed, another run) cannot turn the check red. None: both as they are now."""
    where, day = (f"AND {PARTITION_COLUMN} = ?", [partition]) if partition else ("", [])
    live = f"{DELETED_AT_COLUMN} IS NULL AND {PLANT_COLUMN} = ? {where}"
    params: list[Any] = [warehouse.plant, *day]
    published_rows = f"count(*) FILTER (WHERE {quote(deleted_flag)} IS NOT TRUE)" if deleted_flag else "count(*)"
    parquet_rows, exported_at = _parquet_rows(warehouse, schema, table, partition, partitioned)
    # The file beside the lake as it was exported (another snapshot than the pass's when a later commit republished
    # it, or an earlier one exported it and the pass found its scope unchanged); several files, or one that names no
    # snapshot: the lake as it is now.
    file_at = exported_at if snapshot is not None else None
    # One read of the lake for both counts (each read of a lake table costs its catalog lookups).
    if file_at == snapshot:
        relation = at_snapshot(schema, table.name, snapshot)
        query, query_params = f"SELECT count(*), {published_rows} FROM {relation} WHERE {live}", params
    else:
        lake, file = (at_snapshot(schema, table.name, at) for at in (snapshot, file_at))
        query = f"SELECT (SELECT count(*) FROM {lake} WHERE {live}), (SELECT {published_rows} FROM {file} WHERE {live})"
        query_params = [*params, *params]
    duckdb_rows, published = warehouse.query(query, query_params)[0]
    passed = duckdb_rows == source_rows + kept_newer and parquet_rows == published
    newer = f" (+{kept_newer} written by another writer while the pass listed)" if kept_newer else ""
    description = f"{source_rows} rows from the source{newer}, {duckdb_rows} in DuckDB, {parquet_rows} in Parquet" + (
        "" if partition is None else f" for {partition.isoformat()}"
    )
    metadata = {"source_rows": source_rows, "duckdb_rows": duckdb_rows, "parquet_rows": parquet_rows}
    if kept_newer:
        metadata["rows_written_meanwhile"] = kept_newer
    return CheckOutcome(ROW_COUNT_CHECK, passed, description, metadata)


def _parquet_rows(
    warehouse: Warehouse, schema: str, table: Table, partition: date | None, partitioned: bool | None
) -> tuple[int, int | None]:
    """Rows of the scope's published Parquet, and the lake snapshot its one file was exported from (None: several
    files, or a file written before files named it)."""
    if partition is not None or not partitioned:
        path = warehouse.published_file(schema, table.name, partition)
        if not warehouse.is_published(path):
            return 0, None
        rows, exported_at = warehouse.query(
            "SELECT count(*), (SELECT decode(value) FROM parquet_kv_metadata(?) WHERE decode(key) = ?) "
            "FROM read_parquet(?)",
            [path, SNAPSHOT_METADATA_KEY, path],
        )[0]
        return rows, None if exported_at is None else int(exported_at)
    glob = _parquet_glob(warehouse, schema, table, True)
    return (warehouse.query("SELECT count(*) FROM read_parquet(?)", [glob])[0][0] if glob else 0), None


def rows_for_keys_check(
    warehouse: Warehouse,
    schema: str,
    table: Table,
    key_columns: Sequence[str],
    keys: Sequence[tuple],
    expected_rows: int,
    snapshot: int | None = None,
) -> CheckOutcome:
    """The rows this load wrote are in DuckDB: for `keys` (of the table, or of its parent through `key_columns`),
    DuckDB holds exactly `expected_rows` rows, live or marked deleted, at `snapshot` (the load's
    `LoadReport.snapshot_after`: as the load left them, whatever a later writer changed; None: now)."""
    if keys:
        written, params = keys_relation(key_columns, keys)
        using = ", ".join(quote(c) for c in key_columns)
        held = warehouse.query(
            f"SELECT count(*) FROM {_plant_rows(schema, table, snapshot)} SEMI JOIN {written} USING ({using})",
            [warehouse.plant, *params],
        )[0][0]
    else:
        held = 0
    passed = held == expected_rows
    return CheckOutcome(
        ROW_COUNT_CHECK,
        passed,
        f"{expected_rows} rows written for {len(keys)} new or changed records, {held} in DuckDB",
        {"rows_written": expected_rows, "duckdb_rows": held},
    )


def combined(outcomes: Sequence[CheckOutcome]) -> CheckOutcome:
    """One outcome for several evaluations of the same check (one per pass of a run)."""
    first = outcomes[0]
    if len(outcomes) == 1:
        return first
    metadata: dict[str, Any] = {}
    for index, outcome in enumerate(outcomes, start=1):
        metadata.update({f"pass_{index}_{key}": value for key, value in outcome.metadata.items()})
    return CheckOutcome(
        first.name, all(o.passed for o in outcomes), "; ".join(o.description for o in outcomes), metadata
    )
