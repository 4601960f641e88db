"""Publishing splits one ordered query into one Parquet file per day: every row in its day's file once, whatever
batches the rows arrive in, a day without rows gets an empty file, and a split by anything but a date is refused."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mfg_pipeline.warehouse import publish
from mfg_pipeline.warehouse.publish import ParquetStore, _runs

DAY = date(2026, 11, 1)


def test_runs_of_a_sliced_batch_follow_its_days():
    days = [DAY, DAY, DAY + timedelta(days=1), DAY + timedelta(days=3), DAY + timedelta(days=3)]
    batch = pa.RecordBatch.from_pydict({"id": [0, *range(1, 6)], "partition_date": [DAY, *days]}).slice(1)
    runs = [(day, rows.column("id").to_pylist()) for day, rows in _runs(batch, "partition_date")]
    assert runs == [(DAY, [1, 2]), (DAY + timedelta(days=1), [3]), (DAY + timedelta(days=3), [4, 5])]


def test_a_split_writes_each_days_rows_to_its_file_across_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(publish, "EXPORT_BATCH_ROWS", 3)  # runs of days that cross batch boundaries
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE t AS SELECT i AS id, DATE '2026-11-01' + (i // 4)::INT AS partition_date FROM range(10) r(i)"
    )
    days = [DAY + timedelta(days=n) for n in range(4)]  # the last day holds no row
    targets = {day: str(tmp_path / f"date={day}" / "data.parquet") for day in days}
    ParquetStore(None).write_split(connection, "SELECT * FROM t ORDER BY ALL", [], "partition_date", targets)
    landed = {day: pq.read_table(targets[day]).column("id").to_pylist() for day in days}
    assert landed == {days[0]: [0, 1, 2, 3], days[1]: [4, 5, 6, 7], days[2]: [8, 9], days[3]: []}


def test_a_split_by_a_column_that_is_not_a_date_is_refused():
    batch = pa.RecordBatch.from_pydict({"id": [1, 2]})
    with pytest.raises(TypeError, match="DATE column"):
        list(_runs(batch, "id"))
