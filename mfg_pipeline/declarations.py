"""Declarations: what a source system is and what each of its streams pulls, and how it stays fresh.

A stream is a few attributes in the spirit of singer-sdk: path, table with its key, child tables (arrays inside
the record) and child endpoints (lists fetched per record), the time filter that partitions it, and how the
vendor lets us ask for only the records that can still change. A source is its name, its streams and a factory
for its client. Adding an entity is one `Stream(...)`; adding a vendor is one folder under
`mfg_pipeline/sources/` exporting a `SourceSystem`, and its module in `sources/registry.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from string import Formatter
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from mfg_pipeline.http.client import Logger, RequestStats
from mfg_pipeline.http.pagination import Page, Paginator, RecordSelector
from mfg_pipeline.records.schema import ChildTable, ColumnType, Table

if TYPE_CHECKING:  # the engine builds on these declarations; only the loader's signature names its types
    from mfg_pipeline.engine.feed import ChangesFeed
    from mfg_pipeline.engine.load import LoadReport, ProgressCallback
    from mfg_pipeline.engine.refresh import RefreshPlan
    from mfg_pipeline.warehouse.store import Warehouse


def iso_utc(moment: datetime) -> str:
    """`2026-11-01T00:00:00Z`: ISO 8601 with an explicit zone, so no server applies its company's zone to it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PartitionWindow:
    key: date  # the partition's day (in the partition timezone)
    start: datetime  # aware
    end: datetime  # aware, exclusive


@dataclass(frozen=True)
class TimeWindowFilter:
    """How a day partition becomes request filters, and which column places a record in exactly one partition.

    The request window is widened by `margin` on both sides and every record is then kept only if
    `start <= record[time_column] < end`: whatever the server's reading of "after"/"before" at the exact
    boundary (inclusive or exclusive, seconds or minutes), no record is lost and none lands in two partitions.
    """

    after_param: str
    before_param: str
    time_column: str
    format: Callable[[datetime], Any] = iso_utc
    margin: timedelta = timedelta(minutes=5)

    def params(self, window: PartitionWindow) -> dict[str, Any]:
        return {
            self.after_param: self.format(window.start - self.margin),
            self.before_param: self.format(window.end + self.margin),
        }


@dataclass(frozen=True)
class ChildEndpoint:
    """Child records served by their own endpoint, fetched per parent record and attached to it under
    `attach_as` (a key starting with "_", so it never shadows a vendor field), where the stream's child tables
    read them. `path` is a template over the parent's raw record: `{id}`, or `{_parent.id}` for a grandchild's
    grandparent (nested endpoints see their parent record under `_parent`); values are URL-quoted. Children are
    fetched only for parents that are new or changed (see the load engine), so an unchanged parent costs nothing.
    """

    attach_as: str
    path: str
    method: str = "GET"
    paginator: Callable[[], Paginator] | None = None  # None: one call whose answer is the whole list
    select: RecordSelector | None = None  # answer -> list of child records (default: the answer itself)
    body: Any = None  # JSON body of each call (e.g. `{}`: "no filter" for a POST list)
    dedupe_on: str | None = None  # a child seen on an earlier page (a list that shifted) is kept once
    children: tuple[ChildEndpoint, ...] = ()
    path_types: tuple[type, ...] = (str, int)  # what a path field's raw value may be (others are a payload error)

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class ById:
    """Fetch one record by its key: `GET path` (a template over the stored row's columns, e.g. `{order_id}`, and
    `{path}` for the stream's own, possibly configured, list path); 404 means the vendor deleted it."""

    path: str
    select: RecordSelector | None = None  # answer -> the record
    params: Mapping[str, Any] = field(default_factory=dict)  # query parameters of every call

    @property
    def columns(self) -> list[str]:
        """The stored columns the path is built from (`{path}` is the stream's own path, not a column)."""
        return [name for _, name, _, _ in Formatter().parse(self.path) if name and name != "path"]


@dataclass(frozen=True)
class ByKeysFilter:
    """Fetch records through the list, filtered to a set of keys (`param` takes values of `column`), at most
    `batch` per call; a key the filtered list does not return was deleted by the vendor."""

    param: str
    column: str
    batch: int = 100

    @property
    def columns(self) -> list[str]:
        return [self.column]


Refetch = ById | ByKeysFilter


@dataclass(frozen=True)
class OpenRecords:
    """Records that can still change, and how to ask the vendor for only those.

    `column` holds the record's state and `values` are the open states (overridable by the environment variable
    `setting`, since how a vendor filters is often unconfirmed; an empty value turns the open pass off). The
    hourly cycle lists the open records with `requests(values)` (one dict of filters per call) and then fetches
    every record the warehouse holds as open that the open list no longer returns (it closed, or was deleted)
    with `refetch`.
    """

    column: str
    values: tuple[Any, ...]
    requests: Callable[[tuple[Any, ...]], list[dict[str, Any]]]
    refetch: Refetch
    setting: str | None = None
    value_type: ColumnType | None = None  # how the setting's comma-separated values are read (default: strings)


@dataclass(frozen=True)
class ModifiedSince:
    """A filter that returns only records modified after an instant (e.g. Fusion's `modification-date`): the
    hourly cycle asks for what changed since the previous pass started, less `overlap`."""

    param: str
    format: Callable[[datetime], Any] = iso_utc
    overlap: timedelta = timedelta(minutes=10)


class StreamLoader(Protocol):
    """How a stream with a flow of its own is loaded: the signature of `engine.refresh.refresh_stream`."""

    def __call__(
        self,
        client: SourceClient,
        stream: Stream,
        warehouse: Warehouse,
        plan: RefreshPlan,
        progress: ProgressCallback | None = None,
        log: Logger | None = None,
    ) -> list[LoadReport]: ...


@dataclass(frozen=True)
class Stream:
    name: str
    path: str
    table: Table
    description: str
    children: tuple[ChildTable, ...] = ()  # tables read from arrays inside each (enriched) record
    child_endpoints: tuple[ChildEndpoint, ...] = ()
    window: TimeWindowFilter | None = None  # None: unpartitioned, pulled whole as a snapshot
    params: Mapping[str, Any] = field(default_factory=dict)
    method: str = "GET"
    # Vendor timestamps without an offset are in this zone (None: the source's default).
    naive_timezone: tzinfo | None = None
    # A flow of its own instead of the refresh passes (e.g. Traede's export, then mark as exported).
    loader: StreamLoader | None = None
    # Reshapes one raw record before it is parsed (a hook for nesting the row parser cannot read directly).
    post_process: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    open_records: OpenRecords | None = None
    modified_since: ModifiedSince | None = None
    # Can the whole list be read in one walk (no window)? Always for snapshots; for a partitioned stream only
    # when the vendor's list is cheap to read whole (Fulcrum jobs), so a daily pass can see every record.
    whole_list: bool | None = None
    # A boolean column the vendor sets on records it deleted or voided (e.g. Fulcrum's `deleted`): hidden from
    # `<table>_current` and the published Parquet, like rows the pipeline soft-deleted.
    deleted_flag: str | None = None

    @property
    def partitioned(self) -> bool:
        return self.window is not None

    @property
    def readable_whole(self) -> bool:
        return self.whole_list if self.whole_list is not None else not self.partitioned

    @property
    def tables(self) -> tuple[Table, ...]:
        return (self.table,) + tuple(c.table for c in self.children)

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class ChildListGone:
    """What `with_children` returns in place of a record one of whose child lists answered 404: the vendor may
    have deleted the record after listing it. The load confirms that by fetching the record again before it
    soft-deletes it; a record that still exists means the child path itself is wrong, and `error` is raised."""

    error: Exception


class SourceClient(Protocol):
    """What the load engine needs from a vendor client (no Dagster inside)."""

    @property
    def system(self) -> str: ...

    @property
    def stats(self) -> RequestStats: ...

    @property
    def naive_timezone(self) -> tzinfo: ...

    @property
    def built_with(self) -> Mapping[str, str]:
        """Settings (variable -> value) that decide which rows a load holds, e.g. the zone `naive_timezone` came
        from: the warehouse records them and refuses a load with another value."""
        ...

    def pages(
        self, stream: Stream, window: PartitionWindow | None = None, params: Mapping[str, Any] | None = None
    ) -> Iterator[Page]:
        """Every page of the stream's list: for `window` (a partitioned stream's day) or whole, with `params`
        (extra filters, e.g. the open states) added to the stream's own."""
        ...

    def with_children(
        self, stream: Stream, records: Sequence[Any], page: int | str, indices: Sequence[int] | None = None
    ) -> list[Any]:
        """The records with their child endpoints' lists attached (what the child tables read); `indices` are
        their positions on the page, for errors. A record whose child list answered 404 comes back as a
        `ChildListGone`."""
        ...

    def refetch(self, stream: Stream, rows: Sequence[Mapping[str, Any]]) -> Iterator[Page]:
        """The current version of stored records (given as their stored rows); a record the vendor no longer
        has is simply not in any page."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SourceSystem:
    """One vendor: its DuckDB schema / asset prefix / group (`name`), its streams and how to build a client."""

    name: str
    title: str
    streams: tuple[Stream, ...]
    make_client: Callable[[Path, Logger | None], SourceClient]  # (data_dir, logger) -> client
    # Its settings' variables that hold secrets: a plants file may only name the variable that holds each one.
    secret_variables: tuple[str, ...] = ()
    concurrency_limit: int = 2  # concurrent runs calling this vendor (the Dagster pool's default limit)
    description: str = ""
    switched_off: tuple[str, ...] = ()  # streams its <NAME>_STREAMS setting leaves out (see registry.selected)
    # The module serving this vendor's simulator (exports `SIMULATOR`), for the demo, `dev` and the tests.
    simulator_module: str | None = None
    # A changes feed with a destructive read (`engine/feed.py`): the definitions add its sensor and apply job.
    changes_feed: ChangesFeed | None = None

    def stream(self, name: str) -> Stream:
        return next(s for s in self.streams if s.name == name)

    @property
    def simulator(self) -> str:
        return self.simulator_module or f"mfg_pipeline.simulators.{self.name}"


SettingsT = TypeVar("SettingsT")
ClientT = TypeVar("ClientT")
ClientT_co = TypeVar("ClientT_co", covariant=True)


class ClientFactory(Protocol[ClientT_co]):
    def __call__(self, data_dir: Path, logger: Logger | None = None) -> ClientT_co: ...


def client_from_env(
    settings_from_env: Callable[[], SettingsT], build: Callable[[SettingsT, Path, Logger | None], ClientT]
) -> ClientFactory[ClientT]:
    """A source's `make_client`: its settings read from the environment at each call (so a missing credential
    fails the run that needs it, naming the variable), then its client built from them."""

    def make_client(data_dir: Path, logger: Logger | None = None) -> ClientT:
        return build(settings_from_env(), data_dir, logger)

    return make_client


@runtime_checkable
class RefetchingClient(Protocol):
    """A client that can fetch stored records again (every `SourceClient`; `PagesInHand` cannot)."""

    def refetch(self, stream: Stream, rows: Sequence[Mapping[str, Any]]) -> Iterator[Page]: ...
