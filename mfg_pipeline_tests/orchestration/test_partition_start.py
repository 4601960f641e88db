"""The first daily partition follows the history the warehouse holds when MFG_PARTITION_START_DATE is unset: the
daily cycle's first day in an empty warehouse, the earliest day loaded once an older one lands, never later than
what the daily cycle loads, and reaching back to a day the process is about to load; a set value wins, and a
malformed one fails naming the variable."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from mfg_pipeline.http.errors import SettingError
from mfg_pipeline.orchestration.factory import daily_partitions, partition_start
from mfg_pipeline.warehouse.store import Scope, TableLoad, Warehouse
from mfg_pipeline_tests.core.test_warehouse import TABLE, stage_rows


def load_day(warehouse: Warehouse, day: date) -> None:
    path = stage_rows(warehouse, [(day.toordinal(), "x")], day)
    warehouse.commit([TableLoad("demo", TABLE, path, partitioned=True, scope=Scope.day(day))])


def test_unset_the_first_partition_is_the_earliest_loaded_day_or_the_daily_cycles_first(data_dir, monkeypatch):
    monkeypatch.delenv("MFG_PARTITION_START_DATE", raising=False)
    daily_first = datetime.now(timezone.utc).date() - timedelta(days=7)
    assert partition_start() == daily_first  # an empty warehouse: what the daily cycle will load
    warehouse = Warehouse(data_dir)
    load_day(warehouse, daily_first + timedelta(days=3))
    assert partition_start() == daily_first  # a later first load does not hide days the daily cycle loads
    load_day(warehouse, date(2026, 9, 14))  # a backfill of older history
    assert partition_start() == date(2026, 9, 14)
    assert daily_partitions().get_first_partition_key() == "2026-09-14"
    # a day this process is about to load (the demo's first, `run --partition`) is included, an earlier one only
    assert partition_start(reach_back_to=date(2026, 3, 1)) == date(2026, 3, 1)
    assert partition_start(reach_back_to=date(2026, 10, 1)) == date(2026, 9, 14)


def test_a_set_start_date_wins_and_a_malformed_one_names_the_variable(data_dir, monkeypatch):
    monkeypatch.setenv("MFG_PARTITION_START_DATE", "2026-01-01")
    assert partition_start() == date(2026, 1, 1)
    assert partition_start(reach_back_to=date(2025, 6, 1)) == date(2026, 1, 1)  # the set value still wins
    monkeypatch.setenv("MFG_PARTITION_START_DATE", "first of May")
    with pytest.raises(SettingError, match="MFG_PARTITION_START_DATE='first of May' is not a date"):
        partition_start()
