"""One load of one stream: pages -> typed rows -> staged Parquet -> one warehouse commit. No Dagster inside.

Cost follows change: every record's payload is fingerprinted (with the stream's declaration, so a changed
declaration re-reads everything), and only records that are new, changed, or deleted at the vendor are staged
and have their child lists fetched; an unchanged record costs its share of a list page and nothing more.
Memory stays flat whatever the partition size: pages are parsed and appended to staged Parquet as they arrive;
only keys are kept (to drop a record a shifting list returned twice, and to tell what the source still lists).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone, tzinfo
from enum import Enum
from functools import partial
from typing import Any

import pyarrow as pa

from mfg_pipeline.config import PARTITION_ZONE_VARIABLE, zone_name
from mfg_pipeline.declarations import ChildListGone, PartitionWindow, RefetchingClient, SourceClient, Stream
from mfg_pipeline.engine.staging import KeysFile, Stage, StagedFile, key_schema
from mfg_pipeline.engine.sweep import ChildSweep
from mfg_pipeline.http.client import RequestStats
from mfg_pipeline.http.errors import ChildListError, SourcePayloadError
from mfg_pipeline.http.pagination import Page
from mfg_pipeline.records.schema import FieldError, RowParser, Table
from mfg_pipeline.warehouse.layout import DELETED_AT_COLUMN, FINGERPRINT_COLUMN, PARTITION_COLUMN
from mfg_pipeline.warehouse.merge import NOT_WRITTEN
from mfg_pipeline.warehouse.store import SUBSET, CommitResult, Scope, TableLoad, Warehouse


@dataclass(frozen=True)
class PagesInHand:
    """Stands in for a client when the pages were read earlier (a journal) or made in memory (a benchmark):
    what `StreamLoad` needs of a client, with no HTTP behind it (records carry any children they have)."""

    system: str
    naive_timezone: tzinfo
    stats: RequestStats = field(default_factory=RequestStats)
    built_with: Mapping[str, str] = field(default_factory=dict)

    def with_children(
        self, stream: Stream, records: Sequence[Any], page: int | str, indices: Sequence[int] | None = None
    ) -> list[Any]:
        return list(records)


class PassKind(str, Enum):
    """What a pass over a stream read (see `engine/refresh.py`)."""

    WINDOW = "window"  # one day of a partitioned stream
    FULL = "full"  # the whole list
    OPEN = "open"  # the open records, then by key those that left the open states
    MODIFIED = "modified"  # what the vendor says changed since the previous pass
    UPSERT = "upsert"  # records handed over by a flow of their own (the changes feed, Traede's export)

    def __str__(self) -> str:
        return self.value


@dataclass
class LoadReport:
    """What one pass did: enough for the run's metadata and for the checks that verify the commit."""

    source: str
    stream: str
    kind: PassKind
    window: PartitionWindow | None
    scope: Scope  # what the pass saw whole (a day, the table), or a subset of the records
    started_at: datetime  # UTC wall clock
    records_seen: int  # parent records the source returned (in the window, once each)
    staged_keys: list[tuple]  # parents that were new or changed, staged with their children
    rows_staged: dict[str, int]  # table -> rows written
    deleted_keys: list[tuple]  # parents the source said are gone (refetch found nothing)
    pages: int
    requests: int
    throttled: int
    retries: int
    token_refreshes: int
    rate_limit_wait_seconds: float
    seconds: float
    commit_seconds: float
    published: dict[str, list]  # table -> Parquet files written
    rows_changed: dict[str, int] = field(default_factory=dict)  # table -> rows upserted or soft-deleted
    # table -> rows of the listed scope the pass lacked but kept live: another writer wrote them while it listed
    rows_kept_newer: dict[str, int] = field(default_factory=dict)
    duplicates_dropped: int = 0
    outside_window_dropped: int = 0
    not_matching_filter: int = 0
    touched_partitions: dict[str, set[date | None]] = field(default_factory=dict)  # table -> partitions republished
    # table -> the lake snapshot before the pass's first commit to it (`CommitResult.snapshot_before`)
    snapshot_before: dict[str, int] = field(default_factory=dict)
    # a lake snapshot showing the pass's tables as its last commit left them, or (a pass that had nothing to
    # commit) as it found them unchanged; None: neither
    snapshot_after: int | None = None
    tables: dict[str, Table] = field(default_factory=dict)
    child_sweep: str = "none"  # whose child lists the pass fetched whatever their payload (`ChildSweep.describe`)

    @property
    def source_rows(self) -> dict[str, int]:
        """Rows per table this pass read from the source: every record it listed for the parent, and for a child
        table the rows of the records that were new or changed (unchanged records keep their child rows)."""
        parent = next(iter(self.tables))
        return {name: self.records_seen if name == parent else self.rows_staged.get(name, 0) for name in self.tables}


ProgressCallback = Callable[[Stream, Page, int], None]  # (stream, page, records seen so far)


def snapshot_before(reports: Sequence[LoadReport], table: str) -> int | None:
    """The lake snapshot before the earliest commit of these passes that wrote `table` (`merge.TABLE_NOT_YET` if
    the table did not exist then, `merge.NOT_WRITTEN` if none wrote it; None without passes)."""
    if not reports:
        return None
    snapshots = [report.snapshot_before[table] for report in reports if table in report.snapshot_before]
    return min(snapshots) if snapshots else NOT_WRITTEN


def snapshot_after(reports: Sequence[LoadReport]) -> int | None:
    """A lake snapshot showing these passes' tables as the last of them left or found them (None: none said)."""
    snapshots = [report.snapshot_after for report in reports if report.snapshot_after is not None]
    return max(snapshots) if snapshots else None


def stream_signature(stream: Stream) -> str:
    """How the stream reads records: part of every fingerprint, so a changed declaration re-reads all."""
    parts = [stream.table.signature, *(c.table.signature for c in stream.children)]
    parts += [e.endpoint for e in stream.child_endpoints]
    if stream.post_process is not None:
        parts.append(getattr(stream.post_process, "__qualname__", repr(stream.post_process)))
    return "|".join(parts)


def _parent_part(stored: str | None) -> str | None:
    """The parent record's part of a stored fingerprint (`<parent>/<child lists>` for streams with child
    endpoints)."""
    return stored.split("/", 1)[0] if stored else None


def fingerprint(signature: str, record: Any) -> str:
    payload = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(f"{signature}\n{payload}".encode(), digest_size=16).hexdigest()


def built_with_of(
    client: SourceClient | PagesInHand, stream: Stream, zone: tzinfo | None
) -> tuple[tuple[str, str], ...]:
    """The settings that decide which rows a load of `stream` holds: the client's own (its zone for timestamps
    without an offset) and, for a partitioned stream, the partition zone."""
    settings = dict(client.built_with)
    if stream.partitioned and zone is not None:
        settings[PARTITION_ZONE_VARIABLE] = zone_name(zone)
    return tuple(sorted(settings.items()))


class StreamLoad:
    """One pass over one stream: stage what changed, then commit it with what the pass saw.

    - `window`: a partitioned stream's day; records outside it are dropped (the request window is widened).
    - `placement_timezone` (partitioned stream, no window): records from anywhere in time, each placed in the
      day of its own time column (the changes feed, the open and full passes).
    - `scope`: what the pass lists whole (its day, or the whole table): rows of it the source no longer lists
      are soft-deleted at commit; `SUBSET` (the default): the pass sees some records, and deletes none.
    - `child_sweep`: the records whose child lists are fetched whatever their payload (the daily full pass's
      sweep that catches changes only a child list shows, `engine/sweep.py`); a record is rewritten only if it,
      or one of its lists, changed.
    - `null_keeps_stored`: parent columns the records' shape lacks (a changes feed): a NULL keeps the stored
      value.
    - `partition_zone` (partitioned stream): the zone of the partition days (default: `placement_timezone`),
      checked at commit against the one the warehouse was built with.
    """

    def __init__(
        self,
        client: SourceClient | PagesInHand,
        stream: Stream,
        warehouse: Warehouse,
        *,
        window: PartitionWindow | None = None,
        placement_timezone: tzinfo | None = None,
        scope: Scope = SUBSET,
        child_sweep: ChildSweep | None = None,
        kind: PassKind = PassKind.WINDOW,
        expect: tuple[str, Sequence[Any]] | None = None,
        null_keeps_stored: tuple[str, ...] = (),
        partition_zone: tzinfo | None = None,
    ):
        if window is not None and not stream.partitioned:
            raise ValueError(f"{client.system} {stream.name}: only a partitioned stream takes a window")
        if stream.partitioned and window is None and placement_timezone is None:
            raise ValueError(f"{client.system} {stream.name}: a partitioned stream needs a window or a timezone")
        self.client, self.stream, self.warehouse, self.window = client, stream, warehouse, window
        if scope.lists_whole and scope.listed_after is None:
            # Taken before the first page is asked for: what other writers commit from here on is not this
            # listing's to delete (`merge.py`).
            scope = replace(scope, listed_after=warehouse.listing_snapshot(client.system, stream.table.name))
        self.placement_timezone, self.scope, self.kind = placement_timezone, scope, kind
        wanted = child_sweep is not None and child_sweep.sweeps_anything and bool(stream.child_endpoints)
        self.child_sweep = child_sweep if wanted else None
        self.started = time.monotonic()
        self.started_at = datetime.now(timezone.utc)
        self._stats_before = client.stats.as_dict()
        self._parser = RowParser(stream.table, stream.children, stream.naive_timezone or client.naive_timezone)
        self._signature = stream_signature(stream)
        self._key_columns = stream.table.primary_key
        self._expect = (expect[0], set(expect[1])) if expect else None
        self._null_keeps_stored = null_keeps_stored
        self._built_with = built_with_of(client, stream, partition_zone or placement_timezone)
        self._has_table: bool | None = None
        self._scope_fingerprints: dict[tuple, str | None] | None = None
        self.seen: set[tuple] = set()
        self.staged_keys: list[tuple] = []
        self.rows_staged = {table.name: 0 for table in stream.tables}
        self.deleted_keys: list[tuple] = []
        self.duplicates = self.outside = self.not_matching = 0
        self.commits: list[CommitResult] = []
        self._unchanged_at: int | None = None  # the snapshot at which `nothing_to_commit` found the scope as listed
        self._stage: Stage | None = None
        self._staged: dict[str, StagedFile] = {}
        self._keys: dict[str, KeysFile] = {}
        self._added: dict[str, tuple[Table, StagedFile, bool]] = {}  # tables outside the stream (`add_rows`)

    # --- staging -----------------------------------------------------------------------------------------
    def _open_stage(self) -> None:
        if self._stage is not None:
            return
        stage = self._stage = self.warehouse.new_stage(self.client.system)
        extra = [pa.field(DELETED_AT_COLUMN, pa.timestamp("us", tz="UTC"))]
        if self.stream.partitioned:
            extra.append(pa.field(PARTITION_COLUMN, pa.date32(), nullable=False))
        parent_schema = self.stream.table.arrow_schema([*extra, pa.field(FINGERPRINT_COLUMN, pa.string())])
        self._staged = {self.stream.table.name: StagedFile(stage.file_for(self.stream.table.name), parent_schema)}
        for child in self.stream.children:
            self._staged[child.table.name] = StagedFile(
                stage.file_for(child.table.name), child.table.arrow_schema(extra)
            )
        keys = key_schema(parent_schema, self._key_columns)
        self._keys = {name: KeysFile(stage.file_for(f"_{name}_keys"), keys) for name in ("seen", "deleted")}

    # --- pages -------------------------------------------------------------------------------------------
    def add_page(self, page: Page, deleted_at: Sequence[datetime | None] | None = None) -> list[tuple]:
        """Parse one page and stage its new and changed records (with their children); returns the keys of the
        records kept (in the window, not seen before in this pass). `deleted_at` (one per record, the changes
        feed) soft-deletes records and their child rows as of that time."""
        self._open_stage()
        records = self._records_of(page)
        parents = self._parsed(page, lambda: self._parser.parse_parents(records))
        keys = list(zip(*(parents[c] for c in self._key_columns), strict=True))
        kept = self._kept(keys, parents)
        deleted = deleted_at or [None] * len(records)
        if deleted_at is not None:  # the changes feed: every record is news, in the feed's own shape
            self._see([keys[i] for i in kept])
            self._stage_records(page, records, parents, kept, keys, {}, deleted)
            return [keys[i] for i in kept]
        fingerprints = {i: fingerprint(self._signature, records[i]) for i in kept}
        stored = self._stored_fingerprints([keys[i] for i in kept])
        swept = self._swept(kept, keys, parents)
        changed = [i for i in kept if i not in swept and _parent_part(stored.get(keys[i])) != fingerprints[i]]
        if self.stream.child_endpoints and (changed or swept):
            # A swept record counts as changed if it or one of its lists did; another, if its own payload did.
            fetched = sorted({*changed, *swept})
            records, gone = self._with_children(page, records, fetched, parents, keys)
            kept = [i for i in kept if i not in gone]
            fingerprints.update(
                {i: f"{fingerprints[i]}/{self._children_fingerprint(records[i])}" for i in fetched if i not in gone}
            )
            changed = [
                i for i in fetched if i not in gone and (i not in swept or stored.get(keys[i]) != fingerprints[i])
            ]
        self._see([keys[i] for i in kept])
        if changed:
            self._stage_records(page, records, parents, changed, keys, fingerprints, deleted)
        return [keys[i] for i in kept]

    def _swept(self, kept: list[int], keys: list[tuple], parents: dict[str, list]) -> set[int]:
        sweep = self.child_sweep
        if sweep is None:
            return set()
        if sweep.everything:
            return set(kept)
        states = parents.get(sweep.state_column or "", [None] * len(keys))
        return {i for i in kept if sweep.covers(keys[i], states[i])}

    def _records_of(self, page: Page) -> list[Any]:
        post_process = self.stream.post_process
        return [post_process(r) if post_process and isinstance(r, Mapping) else r for r in page.records]

    def _see(self, kept_keys: list[tuple]) -> None:
        self.seen.update(kept_keys)
        if self.scope.lists_whole:
            self._keys["seen"].add(kept_keys)

    def _with_children(
        self, page: Page, records: list[Any], indices: list[int], parents: dict[str, list], keys: list[tuple]
    ) -> tuple[list[Any], set[int]]:
        """`records` with the child endpoints' lists attached to those at `indices`, and the indices of the
        records the vendor deleted since it listed them (a child list answered 404 and the record is gone too:
        they are soft-deleted)."""
        enriched = self.client.with_children(self.stream, [records[i] for i in indices], page.number, indices)
        out = list(records)
        missing: dict[int, ChildListGone] = {}
        for index, record in zip(indices, enriched, strict=True):
            if isinstance(record, ChildListGone):
                missing[index] = record
            else:
                out[index] = record
        if missing:
            self._confirm_deleted(missing, parents, keys)
            self.mark_deleted([keys[i] for i in missing])
        return out, set(missing)

    def _confirm_deleted(self, missing: dict[int, ChildListGone], parents: dict[str, list], keys: list[tuple]) -> None:
        """Raise the child list's error unless fetching the records again finds none of them: only a record the
        vendor no longer has may be soft-deleted (a 404 for a record that exists means the child path is wrong)."""
        first = next(iter(missing.values())).error
        if self.stream.open_records is None or not isinstance(self.client, RefetchingClient):
            raise first  # no way to ask for one record again: a 404 proves nothing
        rows = [{name: values[i] for name, values in parents.items()} for i in missing]
        found: set[tuple] = set()
        for page in self.client.refetch(self.stream, rows):
            refetched = self._parsed(page, partial(self._parser.parse_parents, self._records_of(page)))
            found.update(zip(*(refetched[c] for c in self._key_columns), strict=True))
        alive = [i for i in missing if keys[i] in found]
        if alive:
            error = missing[alive[0]].error
            raise ChildListError(
                f"{getattr(error, 'detail', error)} (the record itself still exists, so this child path is wrong)",
                system=self.client.system,
                endpoint=getattr(error, "endpoint", self.stream.endpoint),
                status=getattr(error, "status", None),
            ) from error

    def _children_fingerprint(self, record: Any) -> str:
        lists = {e.attach_as: record.get(e.attach_as) for e in self.stream.child_endpoints}
        return fingerprint(self._signature, lists)

    def _stored_fingerprints(self, keys: list[tuple]) -> dict[tuple, str | None]:
        """The stored fingerprints of `keys`. A pass that lists a whole scope (a day, the table) reads the scope's
        once, at its first page; a pass over a subset asks per page. (Every warehouse query reads the lake's
        catalog, so one query per page would cost more than the page.)"""
        if not self._table_exists():
            return {}
        if not self.scope.lists_whole:
            return self.warehouse.live_fingerprints(self.client.system, self.stream.table, keys)
        if self._scope_fingerprints is None:
            partition = self.scope.partition if self.stream.partitioned else None
            self._scope_fingerprints = self.warehouse.live_fingerprints_in(
                self.client.system, self.stream.table, partition
            )
        # A record stored in another partition is not in the day's: it moved, so its payload changed anyway.
        return {key: self._scope_fingerprints[key] for key in keys if key in self._scope_fingerprints}

    def _parsed(self, page: Page, parse: Callable[[], Any]) -> Any:
        try:
            return parse()
        except FieldError as exc:
            raise SourcePayloadError(
                str(exc), system=self.client.system, endpoint=self.stream.endpoint, page=page.number
            ) from None

    def _kept(self, keys: list[tuple], parents: dict[str, list]) -> list[int]:
        """Indices of the records to keep: in the window, and not already seen in this pass."""
        window, kept, kept_here = self.window, [], set()
        times = parents[self.stream.window.time_column] if window is not None and self.stream.window else None
        for index, key in enumerate(keys):
            if window is not None and times is not None and not (window.start <= times[index] < window.end):
                self.outside += 1
                continue
            if key in self.seen or key in kept_here:
                self.duplicates += 1
                continue
            kept.append(index)
            kept_here.add(key)
        if self._expect is not None:
            column, values = self._expect
            self.not_matching += sum(parents[column][i] not in values for i in kept)
        return kept

    def _table_exists(self) -> bool:
        if self._has_table is None:
            self._has_table = self.warehouse.has_table(self.client.system, self.stream.table.name)
        return self._has_table

    def _stage_records(
        self,
        page: Page,
        records: list[Any],
        parents: dict[str, list],
        changed: list[int],
        keys: list[tuple],
        fingerprints: dict[int, str],
        deleted: Sequence[datetime | None],
    ) -> None:
        stream = self.stream
        subset = [records[i] for i in changed]
        parent_rows = {name: [values[i] for i in changed] for name, values in parents.items()}
        children = self._parsed(page, lambda: self._parser.parse_children(subset, parent_rows))
        changed_keys = [keys[i] for i in changed]
        by_key = dict(zip(changed_keys, [deleted[i] for i in changed], strict=True))
        days = self._days(parent_rows, len(changed))
        day_by_key = dict(zip(changed_keys, days, strict=True)) if days is not None else {}
        parent_rows[DELETED_AT_COLUMN] = [by_key[k] for k in changed_keys]
        parent_rows[FINGERPRINT_COLUMN] = [fingerprints.get(i) for i in changed]
        if days is not None:
            parent_rows[PARTITION_COLUMN] = days
        self._append(stream.table.name, parent_rows)
        for child in stream.children:
            columns = children[child.table.name]
            row_keys = list(zip(*(columns[c] for c, _ in child.parent_key), strict=True))
            columns[DELETED_AT_COLUMN] = [by_key[k] for k in row_keys]
            if days is not None:
                columns[PARTITION_COLUMN] = [day_by_key[k] for k in row_keys]
            self._append(child.table.name, columns)
        self.staged_keys.extend(changed_keys)

    def _append(self, table: str, columns: dict[str, list]) -> None:
        self._staged[table].append(columns)
        self.rows_staged[table] += len(next(iter(columns.values()), []))

    def _days(self, parent_rows: dict[str, list], count: int) -> list[date] | None:
        if self.window is not None:
            return [self.window.key] * count
        if self.stream.window is None or self.placement_timezone is None:
            return None
        zone = self.placement_timezone
        return [moment.astimezone(zone).date() for moment in parent_rows[self.stream.window.time_column]]

    def add_rows(self, table: Table, columns: dict[str, list], *, partitioned: bool) -> None:
        """Rows of a table outside the stream (a changes feed's audit rows), upserted by that table's key in the
        same commit as the stream's; a partitioned table's rows carry their day in `PARTITION_COLUMN`."""
        self._open_stage()
        assert self._stage is not None
        if table.name not in self._added:
            day = [pa.field(PARTITION_COLUMN, pa.date32(), nullable=False)] if partitioned else []
            staged = StagedFile(self._stage.file_for(table.name), table.arrow_schema(day))
            self._added[table.name] = (table, staged, partitioned)
        self._added[table.name][1].append(columns)

    def mark_deleted(self, keys: Sequence[tuple]) -> None:
        """The vendor no longer has these records: soft-delete them (and their child rows) at commit."""
        self._open_stage()
        self._keys["deleted"].add(list(keys))
        self.deleted_keys.extend(keys)

    # --- commit ------------------------------------------------------------------------------------------
    def nothing_to_commit(self) -> bool:
        """Nothing staged or deleted, and the scope holds exactly the records seen (all of them unchanged), and is
        published: committing would change no row and republish no file."""
        if self.staged_keys or self.deleted_keys or not self._table_exists():
            return False
        if not self.scope.lists_whole:
            return True
        table, schema = self.stream.table.name, self.client.system
        partition = self.scope.partition if self.stream.partitioned else None
        if (partition is not None or not self.stream.partitioned) and not self.warehouse.is_published(
            self.warehouse.published_file(schema, table, partition)
        ):
            return False
        # Counted at one snapshot, which the pass's checks then read too: a later writer's commit to the scope
        # changes neither this answer nor theirs.
        rows, snapshot = self.warehouse.live_rows_and_snapshot(schema, table, partition)
        if rows != len(self.seen):
            return False
        self._unchanged_at = snapshot
        return True

    def commit(self) -> CommitResult | None:
        """Land what is staged (and soft-delete what the scope no longer holds), with the rows `add_rows` staged,
        in one transaction; returns None when there was nothing to change."""
        self._open_stage()
        try:
            if not self._added and self.nothing_to_commit():
                return None
            added = [
                TableLoad(self.client.system, table, staged.close(), partitioned=partitioned)
                for table, staged, partitioned in self._added.values()
            ]
            result = self.warehouse.commit(self._table_loads() + added)
        finally:
            self.discard()
        self.commits.append(result)
        return result

    def _table_loads(self) -> list[TableLoad]:
        stream, system = self.stream, self.client.system
        paths = {name: staged.close() for name, staged in self._staged.items()}
        seen, deleted = (self._keys[name].close() for name in ("seen", "deleted"))
        parent = TableLoad(
            system,
            stream.table,
            paths[stream.table.name],
            partitioned=stream.partitioned,
            scope=self.scope,
            seen_file=seen if self.scope.lists_whole else None,
            deleted_file=deleted if self.deleted_keys else None,
            deleted_flag=stream.deleted_flag,
            null_keeps_stored=self._null_keeps_stored,
            built_with=self._built_with,
        )
        children = [
            TableLoad(
                system,
                child.table,
                paths[child.table.name],
                partitioned=stream.partitioned,
                parent=parent,
                parent_link=child.parent_key,
                built_with=self._built_with,
            )
            for child in stream.children
        ]
        return [parent, *children]

    def __enter__(self) -> StreamLoad:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.discard()  # whatever the pass left uncommitted: its staged files go

    def discard(self) -> None:
        if self._stage is not None:
            for staged in [*self._staged.values(), *self._keys.values(), *(a[1] for a in self._added.values())]:
                with contextlib.suppress(Exception):  # already closed, or abandoned after an error
                    staged.close()
            self._stage.discard()
        self._stage, self._staged, self._keys, self._added = None, {}, {}, {}

    def report(self) -> LoadReport:
        stats = {k: v - self._stats_before.get(k, 0) for k, v in self.client.stats.as_dict().items()}
        published: dict[str, list] = {}
        changed: dict[str, int] = {}
        kept: dict[str, int] = {}
        touched: dict[str, set[date | None]] = {}
        before: dict[str, int] = {}
        for commit in self.commits:
            for table, paths in commit.published.items():
                published.setdefault(table, []).extend(p for p in paths if p not in published.get(table, []))
            for table, count in commit.changed_rows.items():
                changed[table] = changed.get(table, 0) + count
            for table, count in commit.kept_newer.items():
                kept[table] = kept.get(table, 0) + count
            for table, days in commit.touched.items():
                touched.setdefault(table, set()).update(days)
            for table, snapshot in commit.snapshot_before.items():
                before.setdefault(table, snapshot)  # the first commit's
        return LoadReport(
            source=self.client.system,
            stream=self.stream.name,
            kind=self.kind,
            window=self.window,
            scope=self.scope,
            started_at=self.started_at,
            records_seen=len(self.seen),
            staged_keys=list(self.staged_keys),
            rows_staged=dict(self.rows_staged),
            deleted_keys=list(self.deleted_keys),
            pages=int(stats["pages"]),
            requests=int(stats["requests"]),
            throttled=int(stats["throttled"]),
            retries=int(stats["retries"]),
            token_refreshes=int(stats["token_refreshes"]),
            rate_limit_wait_seconds=round(stats["rate_limit_wait_seconds"], 3),
            seconds=round(time.monotonic() - self.started, 3),
            commit_seconds=round(sum(c.seconds for c in self.commits), 3),
            published=published,
            rows_changed=changed,
            rows_kept_newer=kept,
            duplicates_dropped=self.duplicates,
            outside_window_dropped=self.outside,
            not_matching_filter=self.not_matching,
            touched_partitions=touched,
            snapshot_before=before,
            snapshot_after=self.commits[-1].snapshot_after if self.commits else self._unchanged_at,
            tables={t.name: t for t in self.stream.tables},
            child_sweep=self.child_sweep.describe() if self.child_sweep else "none",
        )
