"""A pass that lists a day whole soft-deletes, for their absence, only the rows no other writer touched after it
began listing: a record the changes feed (or another run) lands or rewrites in that day meanwhile stays live, and
the pass's row-count check counts it instead of failing. A record another writer lands after the pass (committed or
found unchanged) does not fail the pass's check either: it counts the lake as the pass left or found it."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from mfg_pipeline.declarations import PartitionWindow
from mfg_pipeline.engine.load import LoadReport, PagesInHand, PassKind, StreamLoad
from mfg_pipeline.http.pagination import Page
from mfg_pipeline.simulators.fusion_ops.data import FusionDataset
from mfg_pipeline.sources.fusion_ops.streams import PRODUCTIONS
from mfg_pipeline.warehouse.checks import CheckOutcome, row_count_check
from mfg_pipeline.warehouse.store import Scope, Warehouse
from mfg_pipeline_tests.conftest import SIM_NOW

UTC = timezone.utc


def productions_of_one_day() -> tuple[PartitionWindow, list[dict]]:
    """Four productions that started on one UTC day, and that day's window."""
    bodies = [r.body for r in FusionDataset(seed=42, now=SIM_NOW, history_days=3).productions]
    by_day: dict = {}
    for body in bodies:
        by_day.setdefault(datetime.fromisoformat(body["start-time"]).astimezone(UTC).date(), []).append(body)
    day, records = next((d, r) for d, r in sorted(by_day.items()) if len(r) >= 4)
    start = datetime.combine(day, time(), UTC)
    return PartitionWindow(day, start, start + timedelta(days=1)), records[:4]


def day_pass(warehouse: Warehouse, window: PartitionWindow) -> StreamLoad:
    """The daily partition's pass over one day (its listing begins when it is made)."""
    return StreamLoad(
        PagesInHand("fusion_ops", UTC),
        PRODUCTIONS,
        warehouse,
        window=window,
        scope=Scope.day(window.key),
        kind=PassKind.WINDOW,
        partition_zone=UTC,
    )


def feed_upsert(warehouse: Warehouse, records: list[dict]) -> None:
    """What a changes-feed apply commits: the records, placed by their own start time, deleting nothing."""
    with StreamLoad(
        PagesInHand("fusion_ops", UTC), PRODUCTIONS, warehouse, placement_timezone=UTC, kind=PassKind.UPSERT
    ) as load:
        load.add_page(Page(number=1, records=records, payload=None))
        load.commit()


def live_ids(warehouse: Warehouse) -> set[int]:
    return {row[0] for row in warehouse.query("SELECT id FROM fusion_ops.productions WHERE deleted_at IS NULL")}


def test_records_another_writer_lands_or_rewrites_while_a_day_is_listed_stay_live_and_the_check_counts_them(
    data_dir,
):
    window, (kept, gone, rewritten, new) = productions_of_one_day()
    warehouse = Warehouse(data_dir)
    with day_pass(warehouse, window) as first:
        first.add_page(Page(number=1, records=[kept, gone, rewritten], payload=None))
        first.commit()

    with day_pass(warehouse, window) as listing:
        # The vendor lists the day: `gone` was deleted there, `rewritten` had moved out and `new` did not exist yet.
        listing.add_page(Page(number=1, records=[kept], payload=None))
        # Before the pass commits, the feed lands `rewritten` back in the day (changed) and `new`.
        feed_upsert(warehouse, [{**rewritten, "quantity": rewritten.get("quantity", 0) + 1}, new])
        listing.commit()
        report = listing.report()

    assert live_ids(warehouse) == {kept["id"], rewritten["id"], new["id"]}
    assert warehouse.query("SELECT id FROM fusion_ops.productions WHERE deleted_at IS NOT NULL") == [(gone["id"],)]
    assert report.rows_kept_newer == {"productions": 2}
    check = day_check(warehouse, window, report)
    assert check.passed, check.description
    assert "2 written by another writer while the pass listed" in check.description


def test_a_record_absent_from_a_days_listing_and_untouched_since_it_began_is_soft_deleted(data_dir):
    window, (kept, gone, *_) = productions_of_one_day()
    warehouse = Warehouse(data_dir)
    with day_pass(warehouse, window) as first:
        first.add_page(Page(number=1, records=[kept, gone], payload=None))
        first.commit()
    with day_pass(warehouse, window) as listing:
        listing.add_page(Page(number=1, records=[kept], payload=None))
        listing.commit()
        assert listing.report().rows_kept_newer == {}
    assert live_ids(warehouse) == {kept["id"]}


def test_a_days_first_listing_deletes_nothing_another_writer_landed_while_it_listed(data_dir):
    window, (kept, new, *_) = productions_of_one_day()
    warehouse = Warehouse(data_dir)
    with day_pass(warehouse, window) as listing:  # the table does not exist yet when the listing begins
        listing.add_page(Page(number=1, records=[kept], payload=None))
        feed_upsert(warehouse, [new])
        listing.commit()
    assert live_ids(warehouse) == {kept["id"], new["id"]}


def day_check(warehouse: Warehouse, window: PartitionWindow, report: LoadReport) -> CheckOutcome:
    """The day's row-count check as the pass's asset evaluates it."""
    return row_count_check(
        warehouse,
        "fusion_ops",
        PRODUCTIONS.table,
        window.key,
        report.records_seen,
        partitioned=True,
        kept_newer=report.rows_kept_newer.get("productions", 0),
        snapshot=report.snapshot_after,
    )


def test_a_record_another_writer_lands_after_a_days_pass_does_not_fail_the_passs_check(data_dir):
    window, (kept, changed, new, _) = productions_of_one_day()
    listed = Page(number=1, records=[kept, {**changed, "quantity": 1 + changed.get("quantity", 0)}], payload=None)
    warehouse = Warehouse(data_dir)
    with day_pass(warehouse, window) as first:
        first.add_page(Page(number=1, records=[kept, changed], payload=None))
        first.commit()
    with day_pass(warehouse, window) as committed:  # a record changed: the pass commits
        committed.add_page(listed)
        assert committed.commit() is not None
        committed_report = committed.report()
    with day_pass(warehouse, window) as unchanged:  # nothing changed: the pass commits nothing
        unchanged.add_page(listed)
        assert unchanged.commit() is None
        unchanged_report = unchanged.report()
    feed_upsert(warehouse, [new])  # after both passes, before their checks
    assert unchanged_report.snapshot_after is not None and committed_report.snapshot_after is not None
    for report in (committed_report, unchanged_report):
        check = day_check(warehouse, window, report)
        assert check.passed, check.description
        assert check.metadata == {"source_rows": 2, "duckdb_rows": 2, "parquet_rows": 3}
    # Counted as the lake is now, the pass would be off by the feed's record.
    now = row_count_check(warehouse, "fusion_ops", PRODUCTIONS.table, window.key, 2, partitioned=True)
    assert not now.passed and now.metadata["duckdb_rows"] == 3
