"""Asset checks catch what they claim to: a key held twice (across partitions, in the published Parquet) or a null
key fails the primary-key check, and a row count off from the source fails the count check. A day's check after a run
reads the day's published file and those of the days its keys were on before the run, not every day's file. A run's
count check reads the lake as the run left it and each published file beside the lake as it was when the file was
exported, so a later writer's commit does not turn it red while a file that differs from its export still does."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from mfg_pipeline.warehouse.checks import primary_key_check, row_count_check
from mfg_pipeline.warehouse.publish import SNAPSHOT_METADATA_KEY
from mfg_pipeline.warehouse.store import CommitResult, Scope, TableLoad, Warehouse
from mfg_pipeline_tests.core.test_warehouse import DAY, TABLE, stage_rows

NEXT_DAY = DAY + timedelta(days=1)


THIRD_DAY = DAY + timedelta(days=2)


def land(warehouse: Warehouse, rows, day) -> CommitResult:
    return warehouse.commit(
        [TableLoad("demo", TABLE, stage_rows(warehouse, rows, day), partitioned=True, scope=Scope.day(day))]
    )


def test_clean_partitions_pass_both_checks(tmp_path):
    warehouse = Warehouse(tmp_path)
    land(warehouse, [(1, "a"), (2, "b")], DAY)
    land(warehouse, [(3, "c")], NEXT_DAY)
    outcome = primary_key_check(warehouse, "demo", TABLE, partitioned=True, partition=DAY)
    assert outcome.passed and outcome.metadata["duckdb_rows"] == 2 and outcome.metadata["parquet_rows"] == 2
    assert primary_key_check(warehouse, "demo", TABLE, partitioned=True).passed
    assert row_count_check(warehouse, "demo", TABLE, DAY, source_rows=2).passed


def test_a_key_published_in_two_partitions_fails_the_check_of_either_day(tmp_path):
    warehouse = Warehouse(tmp_path)
    land(warehouse, [(1, "a"), (2, "b")], DAY)
    land(warehouse, [(3, "c")], NEXT_DAY)
    # Key 1 published again in the second day's file, as that day's row: one record in two partitions.
    path = warehouse.parquet_file("demo", "events", NEXT_DAY)
    next_day = pq.read_table(path)
    moved = next_day.slice(0, 1).to_pylist()[0] | {"id": 1, "label": "a again"}
    pq.write_table(pa.concat_tables([next_day, pa.Table.from_pylist([moved], schema=next_day.schema)]), path)
    for day in (DAY, NEXT_DAY, None):
        outcome = primary_key_check(warehouse, "demo", TABLE, partitioned=True, partition=day)
        assert not outcome.passed, day
        assert outcome.metadata["parquet_duplicate_keys"] == 1 and outcome.metadata["duckdb_duplicate_keys"] == 0


def test_a_null_key_in_the_parquet_fails_the_check(tmp_path):
    warehouse = Warehouse(tmp_path)
    land(warehouse, [(1, "a"), (2, "b")], DAY)
    path = warehouse.parquet_file("demo", "events", DAY)
    table = pq.read_table(path)
    column = table.schema.get_field_index("id")
    nullable = table.schema.set(column, table.schema.field("id").with_nullable(True))
    ids = table.column("id").to_pylist()
    table = table.cast(nullable).set_column(column, nullable.field("id"), [[None] + ids[1:]])
    pq.write_table(table, path)
    outcome = primary_key_check(warehouse, "demo", TABLE, partitioned=True, partition=DAY)
    assert not outcome.passed and outcome.metadata["parquet_null_keys"] == 1


def test_a_count_different_from_the_source_fails_the_count_check(tmp_path):
    warehouse = Warehouse(tmp_path)
    land(warehouse, [(1, "a"), (2, "b")], DAY)
    assert not row_count_check(warehouse, "demo", TABLE, DAY, source_rows=3).passed


def test_a_days_check_after_a_run_reads_the_days_file_and_the_files_its_keys_came_from_only(tmp_path):
    warehouse = Warehouse(tmp_path)
    land(warehouse, [(1, "a"), (2, "b")], DAY)
    land(warehouse, [(3, "c")], NEXT_DAY)
    land(warehouse, [(4, "d")], THIRD_DAY)
    moved = warehouse.commit(
        [TableLoad("demo", TABLE, stage_rows(warehouse, [(1, "a, a day later")], NEXT_DAY), partitioned=True)]
    )
    before = moved.snapshot_before["events"]
    outcome = primary_key_check(warehouse, "demo", TABLE, True, NEXT_DAY, snapshot_before=before)
    assert outcome.passed, outcome.description
    # The day's own file, and the day key 1 was on before: not the third day's.
    assert outcome.metadata["parquet_files_checked"] == 2 and outcome.metadata["parquet_rows"] == 2


def test_a_record_moved_between_days_whose_old_file_was_not_republished_fails_the_new_days_check(tmp_path):
    warehouse = Warehouse(tmp_path)
    land(warehouse, [(1, "a"), (2, "b")], DAY)
    land(warehouse, [(3, "c")], NEXT_DAY)
    old_file = warehouse.parquet_file("demo", "events", DAY)
    shutil.copy(old_file, tmp_path / "day-before-the-move.parquet")
    moved = warehouse.commit(
        [TableLoad("demo", TABLE, stage_rows(warehouse, [(1, "a, a day later")], NEXT_DAY), partitioned=True)]
    )
    # A publish that missed the old day: its file still holds key 1, which the new day's file holds too.
    shutil.copy(tmp_path / "day-before-the-move.parquet", old_file)
    before = moved.snapshot_before["events"]
    outcome = primary_key_check(warehouse, "demo", TABLE, True, NEXT_DAY, snapshot_before=before)
    assert not outcome.passed
    assert outcome.metadata["parquet_duplicate_keys"] == 1 and outcome.metadata["duckdb_duplicate_keys"] == 0


def add_to_the_day(warehouse: Warehouse, rows, day) -> CommitResult:
    """Another writer's commit (the changes feed, say): records of the day, without listing the day whole."""
    return warehouse.commit([TableLoad("demo", TABLE, stage_rows(warehouse, rows, day), partitioned=True)])


def test_a_runs_count_check_passes_though_another_writer_changed_the_day_after_the_run(tmp_path):
    warehouse = Warehouse(tmp_path)
    run = land(warehouse, [(1, "a"), (2, "b")], DAY)
    path = warehouse.parquet_file("demo", "events", DAY)
    assert pq.read_metadata(path).metadata[SNAPSHOT_METADATA_KEY.encode()] == str(run.snapshot_after).encode()
    later = add_to_the_day(warehouse, [(3, "c")], DAY)  # between the run's commit and its check
    outcome = row_count_check(warehouse, "demo", TABLE, DAY, source_rows=2, snapshot=run.snapshot_after)
    assert outcome.passed, outcome.description
    assert outcome.metadata == {"source_rows": 2, "duckdb_rows": 2, "parquet_rows": 3}  # the file: the later export
    assert pq.read_metadata(path).metadata[SNAPSHOT_METADATA_KEY.encode()] == str(later.snapshot_after).encode()
    # Read as the lake is now, the run's count is off by the later writer's record.
    assert not row_count_check(warehouse, "demo", TABLE, DAY, source_rows=2).passed


def test_a_published_file_that_differs_from_the_lake_it_was_exported_from_fails_the_count_check(tmp_path):
    warehouse = Warehouse(tmp_path)
    run = land(warehouse, [(1, "a"), (2, "b")], DAY)
    add_to_the_day(warehouse, [(3, "c")], DAY)
    path = warehouse.parquet_file("demo", "events", DAY)
    exported = pq.read_table(path)
    pq.write_table(exported.slice(0, 2), path)  # a row lost, the file still naming its export's snapshot
    outcome = row_count_check(warehouse, "demo", TABLE, DAY, source_rows=2, snapshot=run.snapshot_after)
    assert not outcome.passed and outcome.metadata["parquet_rows"] == 2, outcome.description
