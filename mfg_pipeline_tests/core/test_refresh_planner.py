"""The refresh planner: which passes each cycle makes for every registered stream (the README's freshness table),
and that a partition outside its cycle's anchor run only reloads its own day."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from mfg_pipeline.declarations import PartitionWindow
from mfg_pipeline.engine.refresh import DAILY, HOURLY, plan_for
from mfg_pipeline.sources.registry import all_sources

WINDOW = PartitionWindow(
    date(2026, 11, 12), datetime(2026, 11, 12, tzinfo=timezone.utc), datetime(2026, 11, 13, tzinfo=timezone.utc)
)
# source, stream: passes of the hourly cycle, the daily cycle, and a run outside the cycles (manual or backfill),
# each in the cycle's anchor run; "/sweep": the full pass fetches the child lists the sweep owes.
PLANS = [
    ("fusion_ops", "productions", "window", "window", "window"),
    ("fusion_ops", "downtimes", "window", "window", "window"),
    ("fusion_ops", "punch_clocks", "window", "window", "window"),
    ("fusion_ops", "production_orders", "open", "full", "full"),
    ("fusion_ops", "products", "modified", "full", "full"),
    ("lagerkoll", "production_orders", "open", "full/sweep", "full/sweep"),
    ("fulcrum", "jobs", "window+open", "window+full/sweep", "window"),
    ("fulcrum", "invoices", "open", "full/sweep", "full/sweep"),
    ("fulcrum", "sales_orders", "open", "full", "full"),
    ("fulcrum", "customers", "full", "full", "full"),
    ("fulcrum", "items", "full", "full", "full"),
    ("isolocity", "ncrs", "open", "full", "full"),
    ("isolocity", "cars", "full", "full", "full"),
    ("isolocity", "parts", "full", "full", "full"),
    ("traede", "production_orders", "full", "full", "full"),  # planned so, but its own flow runs (`loader`)
]
STREAMS = {(source.name, stream.name): stream for source in all_sources() for stream in source.streams}


def described(stream, cycle) -> str:
    plan = plan_for(stream, cycle, window=WINDOW if stream.partitioned else None)
    return "+".join(map(str, plan.passes)) + ("/sweep" if plan.sweep_children else "")


def test_the_plan_table_names_every_registered_stream():
    assert sorted((source, stream) for source, stream, *_ in PLANS) == sorted(STREAMS)


@pytest.mark.parametrize(
    ("source", "stream", "hourly", "daily", "outside"), PLANS, ids=[f"{s}.{t}" for s, t, *_ in PLANS]
)
def test_each_cycle_makes_the_passes_the_freshness_table_promises(source, stream, hourly, daily, outside):
    declared = STREAMS[(source, stream)]
    assert [described(declared, cycle) for cycle in (HOURLY, DAILY, None)] == [hourly, daily, outside]


@pytest.mark.parametrize("cycle", [HOURLY, DAILY, None])
def test_a_partition_that_is_not_its_cycles_anchor_only_reloads_its_day(cycle):
    for declared in STREAMS.values():
        if declared.partitioned:
            plan = plan_for(declared, cycle, window=WINDOW, anchor=False)
            assert plan.passes == ["window"] and not plan.sweep_children


def test_a_forced_sweep_applies_only_to_streams_with_child_lists():
    forced = {name: plan_for(s, DAILY, sweep_all=True).sweep_all for name, s in STREAMS.items()}
    assert {name for name, on in forced.items() if on} == {
        (source, stream) for (source, stream), s in STREAMS.items() if s.child_endpoints
    }
