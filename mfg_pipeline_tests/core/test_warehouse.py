"""The warehouse: commits from several processes at once all land (one writer at a time, none fails on DuckDB's
lock), a failed commit changes nothing, and the published Parquet always equals DuckDB."""

from __future__ import annotations

import multiprocessing
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mfg_pipeline.records.schema import INT, STRING, Column, Table
from mfg_pipeline.warehouse.store import PARTITION_COLUMN, Scope, TableLoad, Warehouse

TABLE = Table("events", (Column("id", INT, required=True), Column("label", STRING)), primary_key=("id",))
DAY = date(2026, 11, 1)


_STAGES = []  # a stage is owned while its object lives: keep them, or another process may clean them up


def stage_rows(warehouse: Warehouse, rows: list[tuple[int, str]], day: date) -> Path:
    stage = warehouse.new_stage("demo")
    _STAGES.append(stage)
    path = stage.file_for("events")
    schema = TABLE.arrow_schema([pa.field(PARTITION_COLUMN, pa.date32(), nullable=False)])
    pq.write_table(
        pa.Table.from_pydict(
            {"id": [r[0] for r in rows], "label": [r[1] for r in rows], PARTITION_COLUMN: [day] * len(rows)},
            schema=schema,
        ),
        path,
    )
    return path


def commit_day(data_dir: str, offset: int) -> None:
    warehouse = Warehouse(Path(data_dir))
    day = DAY + timedelta(days=offset)
    for attempt in range(5):  # each process commits its day several times: replaces, never duplicates
        rows = [(offset * 1000 + i, f"run {attempt}") for i in range(200)]
        path = stage_rows(warehouse, rows, day)
        warehouse.commit([TableLoad("demo", TABLE, path, partitioned=True, scope=Scope.day(day))])


def test_commits_from_four_processes_at_once_all_land_without_duplicates(tmp_path):
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=commit_day, args=(str(tmp_path), n)) for n in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    warehouse = Warehouse(tmp_path)
    assert warehouse.query("SELECT count(*), count(DISTINCT id) FROM demo.events")[0] == (800, 800)
    assert warehouse.query("SELECT DISTINCT label FROM demo.events") == [("run 4",)]
    for offset in range(4):
        day = DAY + timedelta(days=offset)
        parquet = pq.read_table(warehouse.parquet_file("demo", "events", day))
        assert sorted(parquet.column("id").to_pylist()) == [offset * 1000 + i for i in range(200)]


def test_a_failing_commit_leaves_the_partition_and_its_parquet_as_they_were(tmp_path):
    warehouse = Warehouse(tmp_path)
    good = stage_rows(warehouse, [(1, "a"), (2, "b")], DAY)
    warehouse.commit([TableLoad("demo", TABLE, good, partitioned=True, scope=Scope.day(DAY))])
    parquet_before = warehouse.parquet_file("demo", "events", DAY).read_bytes()
    duplicate_keys = stage_rows(warehouse, [(3, "c"), (3, "c again")], DAY)
    with pytest.raises(Exception, match="(?i)constraint|duplicate"):
        warehouse.commit([TableLoad("demo", TABLE, duplicate_keys, partitioned=True, scope=Scope.day(DAY))])
    assert warehouse.query("SELECT id, label FROM demo.events ORDER BY id") == [(1, "a"), (2, "b")]
    assert warehouse.parquet_file("demo", "events", DAY).read_bytes() == parquet_before


def test_a_record_that_moved_to_another_day_leaves_its_old_day(tmp_path):
    warehouse = Warehouse(tmp_path)
    next_day = DAY + timedelta(days=1)
    first = stage_rows(warehouse, [(1, "a"), (2, "b")], DAY)
    warehouse.commit([TableLoad("demo", TABLE, first, partitioned=True, scope=Scope.day(DAY))])
    moved = stage_rows(warehouse, [(2, "b, edited into the next day")], next_day)
    warehouse.commit([TableLoad("demo", TABLE, moved, partitioned=True, scope=Scope.day(next_day))])
    assert warehouse.query("SELECT id, partition_date FROM demo.events ORDER BY id") == [(1, DAY), (2, next_day)]
    old_day = pq.read_table(warehouse.parquet_file("demo", "events", DAY)).column("id").to_pylist()
    assert old_day == [1]


def test_every_parquet_file_of_a_table_has_the_same_nullable_schema_so_a_folder_reads_as_one(tmp_path):
    warehouse = Warehouse(tmp_path)
    next_day = DAY + timedelta(days=1)
    with_null = stage_rows(warehouse, [(1, None), (2, "b")], DAY)  # type: ignore[list-item]
    without_null = stage_rows(warehouse, [(3, "c")], next_day)
    warehouse.commit([TableLoad("demo", TABLE, with_null, partitioned=True, scope=Scope.day(DAY))])
    warehouse.commit([TableLoad("demo", TABLE, without_null, partitioned=True, scope=Scope.day(next_day))])
    schemas = [pq.read_schema(warehouse.parquet_file("demo", "events", day)) for day in (DAY, next_day)]
    assert schemas[0] == schemas[1] and all(f.nullable for f in schemas[0])
    folder = warehouse.parquet_file("demo", "events", DAY).parent.parent
    assert sorted(pq.read_table(folder).column("id").to_pylist()) == [1, 2, 3]
