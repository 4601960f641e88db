"""Which records of a full pass get their child lists fetched although their own payload did not change.

A child list can change while its parent's payload stays the same (an operation completed under an unchanged job),
and no vendor here says which parents' children changed. So the daily full pass fetches the child lists of:
- every open record (the open-records states the hourly open pass filters by): what is still being worked on;
- a rotating slice of all the others: each record belongs to one of `every` slices (a stable hash of its key), and
  each day sweeps that day's slice, so every record's children are fetched at least once in `every` days while a
  day costs 1/`every` of a whole sweep.
The days a stream's slices were swept are state (`CHILD_SWEEP` in the stream state): a pass sweeps the slices of
the days since its stream's last sweep, so a second pass on the same day (a manual run, a backfill's many runs)
sweeps no slice again, and a day the cycle missed is caught up by the next.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


def slice_of(key: tuple[Any, ...], every: int) -> int:
    """The slice (0 .. every-1) a record's key belongs to; the same in every process and release."""
    return zlib.crc32(repr(key).encode()) % every


def slices_due(last_sweep: date | None, today: date, every: int) -> frozenset[int]:
    """The slices of the days after `last_sweep` up to `today` (all of them when the stream was never swept or
    its last sweep is `every` days old or more)."""
    if last_sweep is None or (today - last_sweep).days >= every:
        return frozenset(range(every))
    days = (last_sweep + timedelta(days=n) for n in range(1, (today - last_sweep).days + 1))
    return frozenset(day.toordinal() % every for day in days)


@dataclass(frozen=True)
class ChildSweep:
    """The records whose child lists a pass fetches whatever their payload: all of them (`everything`), those
    in an open state (`state_column` holds one of `open_states`), and those in one of `slices` of `every`."""

    everything: bool = False
    state_column: str | None = None
    open_states: frozenset[Any] = frozenset()
    slices: frozenset[int] = frozenset()
    every: int = 1

    @classmethod
    def all_records(cls) -> ChildSweep:
        return cls(everything=True)

    @property
    def sweeps_anything(self) -> bool:
        return self.everything or bool(self.open_states) or bool(self.slices)

    def covers(self, key: tuple[Any, ...], state: Any = None) -> bool:
        """Whether the record with `key` (and `state` in `state_column`) is swept."""
        if self.everything or (self.state_column is not None and state in self.open_states):
            return True
        return bool(self.slices) and slice_of(key, self.every) in self.slices

    def describe(self) -> str:
        if self.everything:
            return "every record"
        parts = ["open records"] if self.open_states else []
        if self.slices:
            parts.append("all" if len(self.slices) == self.every else f"{len(self.slices)} of {self.every} slices")
        return " and ".join(parts) or "none"
