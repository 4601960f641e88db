"""The child sweep's cadence: which records' child lists a pass fetches and which slices a day owes (pure parts;
the contract suite runs them against the simulators, `test_refresh_planner.py` pins which passes sweep)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from mfg_pipeline.engine.sweep import ChildSweep, slice_of, slices_due

DAY = date(2026, 11, 12)


def test_a_key_always_falls_in_the_same_slice_and_slices_are_even():
    keys = [(f"job-{n:05d}",) for n in range(7000)]
    assert [slice_of(k, 7) for k in keys] == [slice_of(k, 7) for k in keys]
    sizes = Counter(slice_of(k, 7) for k in keys)
    assert sorted(sizes) == list(range(7)) and min(sizes.values()) > 850 and max(sizes.values()) < 1150
    assert slice_of((500004,), 7) == slice_of((500004,), 7) and {slice_of(k, 1) for k in keys} == {0}


def test_a_stream_never_swept_owes_every_slice_and_a_second_pass_the_same_day_owes_none():
    assert slices_due(None, DAY, 7) == frozenset(range(7))
    assert slices_due(DAY, DAY, 7) == frozenset()
    assert slices_due(DAY, DAY - timedelta(days=1), 7) == frozenset()  # a clock behind the last sweep: nothing


def test_daily_passes_sweep_each_slice_once_in_every_days_and_catch_up_a_missed_day():
    swept = [next(iter(slices_due(DAY + timedelta(days=n - 1), DAY + timedelta(days=n), 7))) for n in range(1, 8)]
    assert sorted(swept) == list(range(7))
    assert len(slices_due(DAY, DAY + timedelta(days=3), 7)) == 3  # two days missed: their slices come too
    assert slices_due(DAY, DAY + timedelta(days=9), 7) == frozenset(range(7))


def test_a_sweep_covers_open_records_and_its_slices_and_describes_itself():
    sweep = ChildSweep(state_column="status", open_states=frozenset({"inProgress"}), slices=frozenset({2}), every=7)
    in_slice = next(k for k in ((f"j{n}",) for n in range(100)) if slice_of(k, 7) == 2)
    other = next(k for k in ((f"j{n}",) for n in range(100)) if slice_of(k, 7) != 2)
    assert sweep.covers(other, "inProgress") and sweep.covers(in_slice, "complete")
    assert not sweep.covers(other, "complete")
    assert ChildSweep.all_records().covers(other, "complete")
    assert not ChildSweep().sweeps_anything
    assert sweep.describe() == "open records and 1 of 7 slices"
    assert ChildSweep.all_records().describe() == "every record"
