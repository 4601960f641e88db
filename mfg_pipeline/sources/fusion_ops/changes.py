"""The Fusion Operations changes feed: a destructive read, made safe by a durable journal. No Dagster inside.

`GET /api/v1/changes/{channel}` returns up to 25 changed entities, oldest first, and removes them from the
channel's stack. Whatever the feed returned is therefore committed to the warehouse's journal (one row per page,
named by its read time) *before* the next call to the feed; only then is it ours to lose. Applying is separate:
pending batches are applied in read order, each in one warehouse transaction together with an audit row per change
(`fusion_ops.change_log`), and a batch is pending exactly while its id is not in that audit table, so no crash can
apply a batch twice or skip one.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mfg_pipeline.config import env_int, env_str, zone_name
from mfg_pipeline.declarations import Stream
from mfg_pipeline.engine.load import LoadReport, PagesInHand, PassKind, StreamLoad
from mfg_pipeline.engine.staging import Stage
from mfg_pipeline.http.errors import DeadlineExceeded, SettingError, SourcePayloadError
from mfg_pipeline.http.pagination import Page
from mfg_pipeline.records.schema import BOOL, INT, STRING, TIMESTAMP, Column, Table
from mfg_pipeline.sources.fusion_ops.client import SYSTEM
from mfg_pipeline.sources.fusion_ops.settings import COMPANY_TIMEZONE_VARIABLE
from mfg_pipeline.sources.fusion_ops.streams import (
    DOWNTIMES,
    PRODUCTION_ORDERS,
    PRODUCTIONS,
    PRODUCTS,
    PUNCH_CLOCKS,
    STOCK,
)
from mfg_pipeline.warehouse.journal import FeedJournal
from mfg_pipeline.warehouse.layout import PARTITION_COLUMN
from mfg_pipeline.warehouse.store import TableLoad, Warehouse

FEED_PAGE_SIZE = 25  # the doc: "a maximum of 25 per service call"
MAX_CHANNELS = 3  # the doc: "You can create up to 3 channels per organization"


@dataclass(frozen=True)
class ChangeType:
    """One entity type of the feed: the stream its changes land in, how the doc marks a deletion in that type's
    records, and the columns the list endpoints fill but the feed's record lacks (the doc's examples), which a
    feed change keeps rather than blanks until the next list pass."""

    name: str  # the channel's type, as the doc names it
    stream: Stream
    is_deletion: Callable[[Mapping[str, Any]], bool]
    lacks: tuple[str, ...] = ()
    feed_only: bool = False  # no list is pulled: the feed is the table's only writer (its asset is the feed's)


CHANGE_TYPES: dict[str, ChangeType] = {
    change.name: change
    for change in (
        # the list's `worker-name=true` gives the worker's name; the feed sends the worker's number
        ChangeType("PRODUCTION", PRODUCTIONS, lambda r: r.get("status") == "deleted", lacks=("worker_name",)),
        ChangeType("DOWN_TIME", DOWNTIMES, lambda r: r.get("event-type") == "downtime_deleted"),
        ChangeType("PUNCH_CLOCK", PUNCH_CLOCKS, lambda r: r.get("notification") == "punch_clock_deleted"),
        ChangeType("PRODUCTION_ORDER", PRODUCTION_ORDERS, lambda r: r.get("running-status") == "deleted"),
        # keyed by code; GET /api/v1/products fills these two, the PRODUCT feed example does not
        ChangeType(
            "PRODUCT",
            PRODUCTS,
            lambda r: r.get("notification") == "product_deleted",
            lacks=("standard_uom_code", "label_code"),
        ),
        ChangeType("STOCK", STOCK, lambda r: False, feed_only=True),  # the doc shows no deletion for inventory
    )
}
CHANNEL_TYPES = tuple(sorted(CHANGE_TYPES))
CHANNELS_VARIABLE = "FUSION_OPS_CHANGE_CHANNELS"
DEFAULT_CHANNELS = "production=PRODUCTION,downtime=DOWN_TIME,punch_clock=PUNCH_CLOCK"

CHANGE_LOG = Table(
    name="change_log",
    primary_key=("batch_id", "position"),
    description="Every change applied from the Fusion Operations changes feed, once: which batch (feed read) it "
    "came in, the entity (entity_id, or entity_code for products and stock) and whether it was a "
    "deletion.",
    columns=(
        Column(
            "batch_id",
            STRING,
            required=True,
            description="The feed read (journal file) the change came in: read time, channel and a random suffix.",
        ),
        Column("position", INT, required=True, description="Position of the change within its batch."),
        Column("channel", STRING, description="The changes channel it was read from (FUSION_OPS_CHANGE_CHANNELS)."),
        Column(
            "entity_type", STRING, description="PRODUCTION, DOWN_TIME, PUNCH_CLOCK, PRODUCTION_ORDER, PRODUCT or STOCK."
        ),
        Column("entity_id", INT, description="Id of the changed record (NULL for products and stock)."),
        Column("entity_code", STRING, description="Product code of a changed product or stock entry."),
        Column("deleted", BOOL, description="Whether the change was a deletion."),
        Column("read_at", TIMESTAMP, description="When the sensor read the change from the feed (UTC)."),
        Column("applied_at", TIMESTAMP, description="When the change was applied to the warehouse (UTC)."),
    ),
)


@dataclass(frozen=True)
class Channel:
    name: str  # as created in the Fusion Operations integrations menu; the path parameter
    type: str

    @property
    def change_type(self) -> ChangeType:
        return CHANGE_TYPES[self.type]

    @property
    def stream(self) -> Stream:
        return self.change_type.stream


def channels_from_env() -> list[Channel]:
    """FUSION_OPS_CHANGE_CHANNELS: `name=TYPE,...` (default: production records, downtimes and punch clocks)."""
    raw = env_str(CHANNELS_VARIABLE, DEFAULT_CHANNELS)
    channels = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, _, kind = item.partition("=")
        kind = kind.strip().upper()
        if not name or kind not in CHANNEL_TYPES:
            raise SettingError(
                CHANNELS_VARIABLE, f"{CHANNELS_VARIABLE}: {item!r} is not name=TYPE with TYPE one of {CHANNEL_TYPES}"
            )
        channels.append(Channel(name.strip(), kind))
    if len(channels) > MAX_CHANNELS:
        raise SettingError(
            CHANNELS_VARIABLE,
            f"{CHANNELS_VARIABLE}: {len(channels)} channels; an organization has at most {MAX_CHANNELS}",
        )
    return channels


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

    def __init__(self, warehouse: Warehouse, keep_days: int = 7):
        self.pages = FeedJournal(warehouse, SYSTEM, (SYSTEM, CHANGE_LOG.name), keep_days)

    @classmethod
    def for_warehouse(cls, warehouse: Warehouse) -> ChangeJournal:
        return cls(warehouse)

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
            Batch(page.batch_id, Channel(page.channel, page.kind), page.read_at, page.records)
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
    client: Any,
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
        if len(records) < FEED_PAGE_SIZE:
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
    """Apply every pending batch, oldest read first: upsert each entity's current state by id, soft-delete
    what the feed marks deleted, record each change in the change log; all of one batch in one transaction."""
    report = ApplyReport()
    with journal.lock():
        for batch in journal.pending():  # read under the lock: what an earlier applier committed is not pending
            _apply_batch(batch, warehouse, naive_timezone, partition_timezone, report)
    return report


def _apply_batch(
    batch: Batch, warehouse: Warehouse, naive_timezone: tzinfo, partition_timezone: tzinfo, report: ApplyReport
) -> None:
    stream = batch.channel.stream
    is_deleted = batch.channel.change_type.is_deletion
    # Within one read an entity appears once (the doc), but be safe: the last state of a key wins.
    key_getters = [column.getter for column in stream.table.columns if column.name in stream.table.primary_key]
    latest: dict[Any, dict] = {}
    for record in batch.records:
        if not isinstance(record, Mapping):
            raise SourcePayloadError(
                f"batch {batch.id}: a change is {type(record).__name__}, expected an object",
                system=SYSTEM,
                endpoint=f"GET /api/v1/changes/{batch.channel.name}",
            )
        latest[tuple(get(record) for get in key_getters)] = record
    records = list(latest.values())
    deleted = [is_deleted(r) for r in records]
    load = StreamLoad(
        PagesInHand(SYSTEM, naive_timezone, built_with={COMPANY_TIMEZONE_VARIABLE: zone_name(naive_timezone)}),
        stream,
        warehouse,
        kind=PassKind.UPSERT,
        placement_timezone=partition_timezone if stream.partitioned else None,
        null_keeps_stored=batch.channel.change_type.lacks,
    )
    page = Page(number=batch.id, records=records, payload=None)
    try:
        keys = load.add_page(page, deleted_at=[batch.read_at if d else None for d in deleted])
    except SourcePayloadError as exc:  # name the feed, not the list endpoint the stream is declared with
        raise SourcePayloadError(
            exc.detail, system=SYSTEM, endpoint=f"GET /api/v1/changes/{batch.channel.name}", page=batch.id
        ) from None
    stage = warehouse.new_stage(SYSTEM)
    try:
        result = load.commit(extra_loads=[_stage_change_log(stage, batch, keys, deleted)])
    finally:
        stage.discard()
    assert result is not None  # a load with extra loads always commits
    report.loads.append(load.report())
    report.batches_applied += 1
    report.changes += len(keys)
    report.deletions += sum(deleted)
    for table, days in result.touched.items():
        if table != CHANGE_LOG.name:
            report.partitions_by_table.setdefault(table, set()).update(
                day.isoformat() if day is not None else None for day in days
            )


def _stage_change_log(stage: Stage, batch: Batch, keys: list[tuple], deleted: list[bool]) -> TableLoad:
    applied_at = datetime.now(timezone.utc)
    path = stage.file_for(CHANGE_LOG.name)
    columns = {
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
    schema = CHANGE_LOG.arrow_schema([pa.field(PARTITION_COLUMN, pa.date32(), nullable=False)])
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path)
    return TableLoad(SYSTEM, CHANGE_LOG, path, partitioned=True)


def tick_budget() -> tuple[int, float]:
    """(feed calls, seconds) one sensor tick may spend: FUSION_OPS_FEED_CALLS_PER_TICK (default 12: with a tick
    every 30 s that is at most 24 of the company's 120 requests/minute, leaving the rest to scheduled runs and
    backfills) and FUSION_OPS_FEED_SECONDS_PER_TICK (default 20, well inside Dagster's 60 s sensor limit)."""
    return env_int("FUSION_OPS_FEED_CALLS_PER_TICK", 12), float(env_int("FUSION_OPS_FEED_SECONDS_PER_TICK", 20))
