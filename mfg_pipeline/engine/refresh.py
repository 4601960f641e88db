"""Refresh passes: how each cycle keeps a stream fresh at a cost that follows change, not history.

- window pass: one day of a partitioned stream, listed whole (what disappeared from the day is soft-deleted);
- open pass: only the records that can still change (the vendor's own state filter, `OpenRecords`), then every
  record the warehouse holds as open that the list no longer returns, fetched by key: it closed, or was deleted;
- modified pass: only what the vendor says was modified since the previous pass (`ModifiedSince`);
- full pass: every record, so what disappeared is soft-deleted; with `sweep_children` the child lists of the open
  records and of the day's slice of the others are fetched too, catching changes only a child shows
  (`engine/sweep.py`); with `sweep_all`, every record's.
In every pass, a record whose payload is unchanged costs nothing beyond its share of a list page.

`plan_for` turns a cycle (the `mfg/cycle` run tag: hourly, daily, or none for a manual run or a backfill) into
the passes to run; the README's freshness contract states the same table by table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone, tzinfo
from typing import Any

from mfg_pipeline import config
from mfg_pipeline.declarations import OpenRecords, PartitionWindow, SourceClient, Stream
from mfg_pipeline.engine.load import LoadReport, PassKind, ProgressCallback, StreamLoad
from mfg_pipeline.engine.sweep import ChildSweep, slices_due
from mfg_pipeline.http.client import Logger
from mfg_pipeline.http.errors import ChildListError, SettingError, SourceHttpError
from mfg_pipeline.records.schema import STRING
from mfg_pipeline.warehouse.state import CHILD_SWEEP, MODIFIED_PASS
from mfg_pipeline.warehouse.store import SUBSET, Scope, Warehouse

HOURLY, DAILY = "hourly", "daily"
# Statuses with which a server refuses a filter it does not know: the open pass falls back to a full pass.
FILTER_REFUSED_STATUSES = (400, 404, 405, 422)


@dataclass(frozen=True)
class RefreshPlan:
    window: PartitionWindow | None = None  # a partitioned stream's day (a window pass)
    open_pass: bool = False
    modified_pass: bool = False
    full_pass: bool = False
    sweep_children: bool = False  # the full pass fetches the due child lists (open records, the day's slice)
    sweep_all: bool = False  # every record's child lists, in the window or full pass (forced by a run tag)
    sweep_every_days: int = 1  # the slices of the rotating sweep: every record's children once in this many days
    cycle_time: datetime | None = None  # when the run's cycle fired (None: now): the day a sweep counts as
    partition_timezone: tzinfo = timezone.utc  # where a partitioned stream's records land outside a window pass

    @property
    def passes(self) -> list[PassKind]:
        named = (PassKind.WINDOW, self.window is not None), (PassKind.FULL, self.full_pass)
        wanted = (*named, (PassKind.OPEN, self.open_pass), (PassKind.MODIFIED, self.modified_pass))
        return [kind for kind, is_wanted in wanted if is_wanted]


def plan_for(
    stream: Stream,
    cycle: str | None,
    *,
    window: PartitionWindow | None = None,
    anchor: bool = True,
    sweep_all: bool = False,
    sweep_every_days: int = 1,
    cycle_time: datetime | None = None,
    partition_timezone: tzinfo = timezone.utc,
) -> RefreshPlan:
    """The passes a run makes for `stream`. `anchor`: this run is the one of its cycle that also makes the
    cross-day passes of a partitioned stream (the run for today's partition); other partitions of the same
    cycle only reload their day. A full pass outside the hourly cycle sweeps the child lists that are due."""
    sweep_all = sweep_all and bool(stream.child_endpoints)
    plan = RefreshPlan(
        window=window,
        partition_timezone=partition_timezone,
        sweep_all=sweep_all,
        sweep_every_days=sweep_every_days,
        cycle_time=cycle_time,
    )
    if stream.partitioned and not anchor:
        return plan
    if cycle == DAILY or (cycle is None and not stream.partitioned):
        return replace(plan, full_pass=stream.readable_whole, sweep_children=bool(stream.child_endpoints))
    if cycle == HOURLY:
        if stream.open_records is not None:
            return replace(plan, open_pass=True)
        if stream.modified_since is not None:
            return replace(plan, modified_pass=True)
        return replace(plan, full_pass=not stream.partitioned and stream.readable_whole)
    return plan


@dataclass
class Refresh:
    """One run's passes over one stream."""

    client: SourceClient
    stream: Stream
    warehouse: Warehouse
    plan: RefreshPlan
    progress: ProgressCallback | None = None
    log: Logger = logging.getLogger("mfg_pipeline.refresh")

    def run(self) -> list[LoadReport]:
        reports = []
        if self.plan.window is not None:
            sweep = ChildSweep.all_records() if self.plan.sweep_all and not self.plan.full_pass else None
            with StreamLoad(**self._load_args(PassKind.WINDOW, Scope.day(self.plan.window.key), sweep)) as load:
                self._walk(load, window=self.plan.window)
                load.commit()
            reports.append(load.report())
        if self.plan.full_pass:
            reports.append(self.full())
        elif self.plan.open_pass:
            reports.append(self.open())
        elif self.plan.modified_pass:
            reports.append(self.modified())
        return reports

    def _load_args(self, kind: PassKind, scope: Scope, sweep: ChildSweep | None = None, **extra: Any) -> dict[str, Any]:
        placement = None if kind is PassKind.WINDOW or not self.stream.partitioned else self.plan.partition_timezone
        return {
            "client": self.client,
            "stream": self.stream,
            "warehouse": self.warehouse,
            "window": self.plan.window if kind is PassKind.WINDOW else None,
            "placement_timezone": placement,
            "scope": scope,
            "child_sweep": sweep,
            "kind": kind,
            "partition_zone": self.plan.partition_timezone if self.stream.partitioned else None,
            **extra,
        }

    def _walk(self, load: StreamLoad, *, window: PartitionWindow | None = None, params: dict | None = None) -> None:
        """Every page of one list into `load`."""
        for page in self.client.pages(self.stream, window, params or {}):
            load.add_page(page)
            if self.progress:
                self.progress(self.stream, page, len(load.seen))

    def full(self, sweep: bool | None = None) -> LoadReport:
        wanted = (self.plan.sweep_children or self.plan.sweep_all) if sweep is None else sweep
        child_sweep = self._due_sweep() if wanted else None
        with StreamLoad(**self._load_args(PassKind.FULL, Scope.whole_table(), child_sweep)) as load:
            self._walk(load)
            load.commit()
        self._remember_pass(load)
        swept = load.child_sweep  # None when the stream has no child lists: nothing to remember
        if swept is not None and (swept.everything or swept.slices):
            swept_at = self.plan.cycle_time or load.started_at
            self.warehouse.set_stream_state(self.client.system, self.stream.name, CHILD_SWEEP, swept_at)
        return load.report()

    def _due_sweep(self) -> ChildSweep:
        """The open records' child lists, and those of the slices due since this stream's last sweep."""
        if self.plan.sweep_all:
            return ChildSweep.all_records()
        zone, every = self.plan.partition_timezone, self.plan.sweep_every_days
        last = self.warehouse.stream_state(self.client.system, self.stream.name, CHILD_SWEEP)
        today = (self.plan.cycle_time or datetime.now(timezone.utc)).astimezone(zone).date()
        spec = self.stream.open_records
        return ChildSweep(
            state_column=spec.column if spec else None,
            open_states=frozenset(open_values(spec)) if spec else frozenset(),
            slices=slices_due(last.astimezone(zone).date() if last else None, today, every),
            every=every,
        )

    def modified(self) -> LoadReport:
        spec = self.stream.modified_since
        assert spec is not None
        since = self.warehouse.stream_state(self.client.system, self.stream.name, MODIFIED_PASS)
        if since is None:
            return self.full(sweep=False)  # no pass to count from yet
        with StreamLoad(**self._load_args(PassKind.MODIFIED, SUBSET)) as load:
            self._walk(load, params={spec.param: spec.format(since - spec.overlap)})
            load.commit()
        self._remember_pass(load)
        return load.report()

    def _remember_pass(self, load: StreamLoad) -> None:
        if self.stream.modified_since is not None:
            self.warehouse.set_stream_state(self.client.system, self.stream.name, MODIFIED_PASS, load.started_at)

    def open(self) -> LoadReport:
        spec = self.stream.open_records
        assert spec is not None
        values = open_values(spec)
        if not values:
            return self.full(sweep=False)
        stored_open = self._stored_open(spec, values)
        refused: SourceHttpError | None = None
        with StreamLoad(**self._load_args(PassKind.OPEN, SUBSET, expect=(spec.column, values))) as load:
            try:
                for params in spec.requests(values):
                    self._walk(load, params=params)
            except SourceHttpError as exc:
                # Only the filtered list's own answer says the filter was refused, not a record's child list.
                if isinstance(exc, ChildListError) or exc.status not in FILTER_REFUSED_STATUSES:
                    raise
                refused = exc
            else:
                if load.not_matching:
                    self.log.warning(
                        f"{self.client.system} {self.stream.name}: {load.not_matching} records outside the open "
                        f"states came back: the server may ignore the filter (harmless: they are landed as they are)"
                    )
                self._refetch_closed(load, stored_open)
                load.commit()
        if refused is not None:
            self.log.warning(
                f"{refused}: the open-records filter was refused; reading the whole list instead "
                f"(set {spec.setting or 'the open states'} to match what the server accepts)"
            )
            return self.full(sweep=False)
        return load.report()

    def _stored_open(self, spec: OpenRecords, values: tuple[Any, ...]) -> list[dict[str, Any]]:
        table = self.stream.table
        if not self.warehouse.has_table(self.client.system, table.name):
            return []
        columns = list(dict.fromkeys([*table.primary_key, *spec.refetch.columns]))
        return self.warehouse.live_rows_where(self.client.system, table, spec.column, values, columns)

    def _refetch_closed(self, load: StreamLoad, stored_open: list[dict[str, Any]]) -> None:
        """Records stored as open that the open list no longer returns: fetch them by key; what the vendor no
        longer has is soft-deleted."""
        key_columns = self.stream.table.primary_key
        missing = [row for row in stored_open if tuple(row[c] for c in key_columns) not in load.seen]
        if not missing:
            return
        for page in self.client.refetch(self.stream, missing):
            load.add_page(page)
        gone = [key for key in (tuple(row[c] for c in key_columns) for row in missing) if key not in load.seen]
        if gone:
            load.mark_deleted(gone)


def refresh_stream(
    client: SourceClient,
    stream: Stream,
    warehouse: Warehouse,
    plan: RefreshPlan,
    progress: ProgressCallback | None = None,
    log: Logger | None = None,
) -> list[LoadReport]:
    """Run `plan`'s passes over `stream`, each landing in its own commit."""
    refresh = Refresh(client, stream, warehouse, plan, progress)
    if log is not None:
        refresh.log = log
    return refresh.run()


def load_stream(
    client: SourceClient,
    stream: Stream,
    warehouse: Warehouse,
    *,
    window: PartitionWindow | None = None,
    progress: ProgressCallback | None = None,
) -> LoadReport:
    """One complete load: a partitioned stream's day, or a snapshot's whole list (with every child list)."""
    plan = RefreshPlan(window=window, full_pass=window is None, sweep_all=True)
    return refresh_stream(client, stream, warehouse, plan, progress)[-1]


def open_values(spec: OpenRecords) -> tuple[Any, ...]:
    """The open states: the declaration's, or the comma-separated values of `spec.setting` when it is set
    (empty: no open pass)."""
    raw = config.env_get(spec.setting) if spec.setting else None
    if raw is None or spec.setting is None:
        return spec.values
    coerce: Callable[[Any], Any] = (spec.value_type or STRING).coerce
    try:
        return tuple(coerce(part.strip()) for part in raw.split(",") if part.strip())
    except (TypeError, ValueError):
        raise SettingError(
            spec.setting,
            f"Environment variable {spec.setting} must be a comma-separated list of "
            f"{(spec.value_type or STRING).name} values, got {raw!r}",
        ) from None
