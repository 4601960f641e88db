"""A vendor's changes feed with a destructive read, made safe by a durable journal. No Dagster inside.

A source with such a feed declares it as a `ChangesFeed` on its `SourceSystem` (`sources/fusion_ops/changes.py`):
its entity types, each the stream its changes land in and how a deletion looks, and how the feed is called. The
Dagster side (`orchestration/changes_feed.py`) turns every declared feed into a sensor and an apply job.

A feed call returns some changed entities and removes them from the channel's stack. Whatever it returned is
therefore committed to the warehouse's journal (one row per page, named by its read time) *before* the next call
to the feed; only then is it ours to lose. Applying is separate: pending batches are applied in read order, each
in one warehouse commit together with an audit row per change (`<system>.change_log`), and a batch is pending
exactly while its id is not in that audit table, so no crash can apply a batch twice or skip one.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

from mfg_pipeline import config
from mfg_pipeline.declarations import Stream
from mfg_pipeline.engine.load import LoadReport, PagesInHand, PassKind, StreamLoad
from mfg_pipeline.http.errors import DeadlineExceeded, SettingError, SourcePayloadError
from mfg_pipeline.http.pagination import Page
from mfg_pipeline.records.schema import BOOL, INT, STRING, TIMESTAMP, Column, Table
from mfg_pipeline.warehouse.journal import FeedJournal
from mfg_pipeline.warehouse.layout import PARTITION_COLUMN
from mfg_pipeline.warehouse.store import Warehouse

CHANGE_LOG_NAME = "change_log"


@runtime_checkable
class FeedClient(Protocol):
    """What reading a feed needs of the source's client: one call to a channel, its records (or
    `DeadlineExceeded`, meaning nothing was read)."""

    def read_changes(self, channel: str, deadline: float | None = None) -> list: ...


@dataclass(frozen=True)
class ChangeType:
    """One entity type of a feed: the stream its changes land in, how the vendor marks a deletion in that type's
    records, and the columns the list endpoints fill but the feed's record lacks, which a feed change keeps
    rather than blanks until the next list pass."""

    name: str  # the channel's type, as the vendor names it
    stream: Stream
    is_deletion: Callable[[Mapping[str, Any]], bool]
    lacks: tuple[str, ...] = ()
    feed_only: bool = False  # no list is pulled: the feed is the table's only writer (its asset is the feed's)


@dataclass(frozen=True)
class Channel:
    name: str  # as the vendor's channel is named; the feed call's path parameter
    change_type: ChangeType

    @property
    def type(self) -> str:
        return self.change_type.name

    @property
    def stream(self) -> Stream:
        return self.change_type.stream


@dataclass(frozen=True)
class ChangesFeed:
    """A source's changes feed, declared. Its settings are named from the source (`<SYSTEM>_CHANGE_CHANNELS`,
    ...), and so are its Dagster job, sensor and worker lock; the defaults are what the vendor's limits allow."""

    system: str
    title: str  # "the <title> changes feed", in descriptions and errors
    change_types: tuple[ChangeType, ...]
    default_channels: str  # `name=TYPE,...`
    endpoint: str  # how errors name a channel's call, with `{channel}`: "GET /api/v1/changes/{channel}"
    naive_timezone_variable: str  # the source's zone for vendor times without an offset
    page_size: int  # a shorter page means the channel is drained
    max_channels: int | None = None
    calls_per_tick: int = 12  # feed calls one sensor tick may make
    seconds_per_tick: int = 20  # well inside Dagster's 60 s sensor limit
    apply_linger_seconds: int = 50
    apply_min_interval_seconds: int = 60
    keep_days: int = 7  # applied journal pages kept this long

    # --- names: each derived here, once ------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return self.system.upper()

    @property
    def channels_variable(self) -> str:
        return f"{self.prefix}_CHANGE_CHANNELS"

    @property
    def linger_variable(self) -> str:
        return f"{self.prefix}_APPLY_LINGER_SECONDS"

    @property
    def min_interval_variable(self) -> str:
        return f"{self.prefix}_APPLY_MIN_INTERVAL_SECONDS"

    @property
    def calls_per_tick_variable(self) -> str:
        return f"{self.prefix}_FEED_CALLS_PER_TICK"

    @property
    def seconds_per_tick_variable(self) -> str:
        return f"{self.prefix}_FEED_SECONDS_PER_TICK"

    @property
    def apply_job_name(self) -> str:
        return f"{self.system}_apply_changes"

    @property
    def sensor_name(self) -> str:
        return f"{self.system}_changes_sensor"

    def worker_lock(self, plant: str) -> str:
        """Held by a live apply run's process (or host, with a Postgres catalog) for one plant's feed."""
        return f"worker-{self.apply_job_name}-{plant}"

    def endpoint_of(self, channel: Channel) -> str:
        return self.endpoint.format(channel=channel.name)

    # --- declarations ------------------------------------------------------------------------------------
    @cached_property
    def types(self) -> dict[str, ChangeType]:
        return {change.name: change for change in self.change_types}

    @cached_property
    def change_log(self) -> Table:
        """The audit table: one row per change applied, keyed by batch and position."""
        names = [change.name for change in self.change_types]
        by_code = [change.name for change in self.change_types if _keyed_by_code(change.stream)]
        return Table(
            name=CHANGE_LOG_NAME,
            primary_key=("batch_id", "position"),
            description=f"Every change applied from the {self.title} changes feed, once: which batch (feed read) "
            "it came in, the entity (entity_id, or entity_code for entities keyed by a code) and whether it was a "
            "deletion.",
            columns=(
                Column(
                    "batch_id",
                    STRING,
                    required=True,
                    description="The feed read (journal page) the change came in: read time, channel and a random "
                    "suffix.",
                ),
                Column("position", INT, required=True, description="Position of the change within its batch."),
                Column(
                    "channel", STRING, description=f"The changes channel it was read from ({self.channels_variable})."
                ),
                Column("entity_type", STRING, description=_one_of(names) + "."),
                Column(
                    "entity_id",
                    INT,
                    description="Id of the changed record"
                    + (f" (NULL for {_one_of(by_code, 'and')} changes)." if by_code else "."),
                ),
                Column("entity_code", STRING, description="Code of a changed record keyed by a code."),
                Column("deleted", BOOL, description="Whether the change was a deletion."),
                Column("read_at", TIMESTAMP, description="When the sensor read the change from the feed (UTC)."),
                Column("applied_at", TIMESTAMP, description="When the change was applied to the warehouse (UTC)."),
            ),
        )

    def channel(self, name: str, type_name: str) -> Channel:
        return Channel(name, self.types[type_name])

    def channels(self) -> list[Channel]:
        """The configured channels: `<SYSTEM>_CHANGE_CHANNELS`, `name=TYPE,...` (default: `default_channels`)."""
        variable, types = self.channels_variable, tuple(sorted(self.types))
        channels = []
        for item in filter(None, (part.strip() for part in config.env_str(variable, self.default_channels).split(","))):
            name, _, kind = item.partition("=")
            kind = kind.strip().upper()
            if not name or kind not in self.types:
                raise SettingError(variable, f"{variable}: {item!r} is not name=TYPE with TYPE one of {types}")
            channels.append(self.channel(name.strip(), kind))
        if self.max_channels is not None and len(channels) > self.max_channels:
            raise SettingError(
                variable, f"{variable}: {len(channels)} channels; {self.title} allows at most {self.max_channels}"
            )
        return channels

    def journal(self, warehouse: Warehouse) -> ChangeJournal:
        return ChangeJournal(self, warehouse)

    def journal_pages(self, warehouse: Warehouse) -> FeedJournal:
        return self.journal(warehouse).pages

    # --- settings ----------------------------------------------------------------------------------------
    def tick_budget(self) -> tuple[int, float]:
        """(feed calls, seconds) one sensor tick may spend."""
        return (
            config.env_int(self.calls_per_tick_variable, self.calls_per_tick),
            float(config.env_int(self.seconds_per_tick_variable, self.seconds_per_tick)),
        )

    def linger_seconds(self) -> float:
        return float(config.env_int(self.linger_variable, self.apply_linger_seconds, minimum=0))

    def min_interval_seconds(self) -> float:
        return float(config.env_int(self.min_interval_variable, self.apply_min_interval_seconds, minimum=0))

    def naive_timezone(self) -> tzinfo:
        return config.env_timezone(self.naive_timezone_variable, "UTC")


def _one_of(names: list[str], conjunction: str = "or") -> str:
    """`A, B or C` (`A` alone)."""
    return f"{', '.join(names[:-1])} {conjunction} {names[-1]}" if len(names) > 1 else names[0]


def _keyed_by_code(stream: Stream) -> bool:
    key = stream.table.primary_key[0]
    return next(c for c in stream.table.columns if c.name == key).type is STRING


# --- the journal ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Batch:
    """One page read from the feed, as saved in the journal."""

    id: str  # sorts by read time
    channel: Channel
    read_at: datetime
    records: list[dict]


class ChangeJournal:
    """The feed's pages in the warehouse's journal (`warehouse/journal.py`) until the batch is in the change log:
    every host sees them, and applying a batch and marking it applied are one commit."""

    def __init__(self, feed: ChangesFeed, warehouse: Warehouse):
        self.feed = feed
        self.pages = FeedJournal(warehouse, feed.system, (feed.system, CHANGE_LOG_NAME), feed.keep_days)

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Held while applying, so batches are applied one at a time and in order."""
        return self.pages.apply_lock()

    def save(self, channel: Channel, records: list, read_at: datetime) -> Batch:
        """Durably: committed to the warehouse before the feed is called again."""
        batch_id = f"{read_at:%Y%m%dT%H%M%S%fZ}-{channel.name}-{uuid.uuid4().hex[:8]}"
        self.pages.save(batch_id, channel.name, channel.type, read_at, records)
        return Batch(batch_id, channel, read_at, records)

    def pending_ids(self) -> list[str]:
        """The ids of the pending batches, oldest read first (without reading them)."""
        return self.pages.pending_ids()

    def pending(self) -> list[Batch]:
        return [
            Batch(page.batch_id, self.feed.channel(page.channel, page.kind), page.read_at, page.records)
            for page in self.pages.pending()
        ]


# --- reading the feed ----------------------------------------------------------------------------------------
@dataclass
class FeedReadReport:
    calls: int = 0
    records: int = 0
    batches: list[Batch] = field(default_factory=list)
    stopped_because: str = "drained"


def read_feed(
    client: FeedClient,
    channel: Channel,
    journal: ChangeJournal,
    *,
    max_calls: int,
    deadline: float,
    on_saved: Callable[[Batch], None] | None = None,
) -> FeedReadReport:
    """Drain `channel` until a short page, `max_calls` calls, or `deadline` (monotonic). Each page is in the
    journal before the next call."""
    report = FeedReadReport()
    while True:
        if report.calls >= max_calls:
            report.stopped_because = "request budget for this tick used"
            return report
        if time.monotonic() >= deadline:
            report.stopped_because = "time budget for this tick used"
            return report
        try:
            records = client.read_changes(channel.name, deadline=deadline)
        except DeadlineExceeded:  # the company's budget is busy (a backfill): nothing was read, try next tick
            report.stopped_because = "time budget for this tick used waiting for the rate limit"
            return report
        read_at = datetime.now(timezone.utc)
        report.calls += 1
        if records:
            batch = journal.save(channel, records, read_at)
            report.batches.append(batch)
            report.records += len(records)
            if on_saved:
                on_saved(batch)
        if len(records) < journal.feed.page_size:
            return report


# --- applying ------------------------------------------------------------------------------------------------
@dataclass
class ApplyReport:
    batches_applied: int = 0
    changes: int = 0
    deletions: int = 0
    partitions_by_table: dict[str, set] = field(default_factory=dict)
    loads: list[LoadReport] = field(default_factory=list)  # one per batch applied: what it wrote

    def add(self, other: ApplyReport) -> None:
        self.batches_applied += other.batches_applied
        self.changes += other.changes
        self.deletions += other.deletions
        for table, days in other.partitions_by_table.items():
            self.partitions_by_table.setdefault(table, set()).update(days)
        self.loads.extend(other.loads)


def apply_pending(
    journal: ChangeJournal, warehouse: Warehouse, *, naive_timezone: tzinfo, partition_timezone: tzinfo
) -> ApplyReport:
    """Apply every pending batch, oldest read first: upsert each entity's current state by key, soft-delete
    what the feed marks deleted, record each change in the change log; all of one batch in one commit."""
    report = ApplyReport()
    with journal.lock():
        for batch in journal.pending():  # read under the lock: what an earlier applier committed is not pending
            _apply_batch(journal.feed, batch, warehouse, naive_timezone, partition_timezone, report)
    return report


def _apply_batch(
    feed: ChangesFeed,
    batch: Batch,
    warehouse: Warehouse,
    naive_timezone: tzinfo,
    partition_timezone: tzinfo,
    report: ApplyReport,
) -> None:
    stream, endpoint = batch.channel.stream, feed.endpoint_of(batch.channel)
    is_deleted = batch.channel.change_type.is_deletion
    # Within one read an entity should appear once, but be safe: the last state of a key wins.
    key_getters = [column.getter for column in stream.table.columns if column.name in stream.table.primary_key]
    latest: dict[Any, dict] = {}
    for record in batch.records:
        if not isinstance(record, Mapping):
            raise SourcePayloadError(
                f"batch {batch.id}: a change is {type(record).__name__}, expected an object",
                system=feed.system,
                endpoint=endpoint,
            )
        latest[tuple(get(record) for get in key_getters)] = record
    records = list(latest.values())
    deleted = [is_deleted(r) for r in records]
    in_hand = PagesInHand(
        feed.system, naive_timezone, built_with={feed.naive_timezone_variable: config.zone_name(naive_timezone)}
    )
    with StreamLoad(
        in_hand,
        stream,
        warehouse,
        kind=PassKind.UPSERT,
        placement_timezone=partition_timezone if stream.partitioned else None,
        null_keeps_stored=batch.channel.change_type.lacks,
    ) as load:
        try:
            keys = load.add_page(
                Page(number=batch.id, records=records, payload=None),
                deleted_at=[batch.read_at if d else None for d in deleted],
            )
        except SourcePayloadError as exc:  # name the feed, not the list endpoint the stream is declared with
            raise SourcePayloadError(exc.detail, system=feed.system, endpoint=endpoint, page=batch.id) from None
        load.add_rows(feed.change_log, _change_log_rows(batch, keys, deleted), partitioned=True)
        result = load.commit()
    assert result is not None  # a load with added rows always commits
    report.loads.append(load.report())
    report.batches_applied += 1
    report.changes += len(keys)
    report.deletions += sum(deleted)
    for table, days in result.touched.items():
        if table != CHANGE_LOG_NAME:
            report.partitions_by_table.setdefault(table, set()).update(
                day.isoformat() if day is not None else None for day in days
            )


def _change_log_rows(batch: Batch, keys: list[tuple], deleted: list[bool]) -> dict[str, list]:
    applied_at = datetime.now(timezone.utc)
    return {
        "batch_id": [batch.id] * len(keys),
        "position": list(range(len(keys))),
        "channel": [batch.channel.name] * len(keys),
        "entity_type": [batch.channel.type] * len(keys),
        "entity_id": [k[0] if isinstance(k[0], int) else None for k in keys],
        "entity_code": [k[0] if isinstance(k[0], str) else None for k in keys],
        "deleted": deleted[: len(keys)],
        "read_at": [batch.read_at] * len(keys),
        "applied_at": [applied_at] * len(keys),
        # Partitioned by read day (UTC), so an apply rewrites today's Parquet file, not the whole history.
        PARTITION_COLUMN: [batch.read_at.astimezone(timezone.utc).date()] * len(keys),
    }
