"""Declarations: what a source system is and what each of its streams pulls.

A stream is a few attributes (path, table with its key, child tables, the time filter that partitions it) in the
spirit of singer-sdk; a source is its name, its streams and a factory for its client. Adding an entity is one
`Stream(...)` entry; adding a vendor is one folder under `mfg_pipeline/sources/` exporting a `SourceSystem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol

from mfg_pipeline.http.client import Logger, Page, RequestStats
from mfg_pipeline.records.schema import ChildTable, Table


def iso_utc(moment: datetime) -> str:
    """`2026-11-01T00:00:00Z`: ISO 8601 with an explicit zone, so no server applies its company's zone to it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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

    def params(self, start: datetime, end: datetime) -> dict[str, Any]:
        return {self.after_param: self.format(start - self.margin), self.before_param: self.format(end + self.margin)}


@dataclass(frozen=True)
class Stream:
    name: str
    path: str
    table: Table
    description: str
    children: tuple[ChildTable, ...] = ()
    window: TimeWindowFilter | None = None  # None: unpartitioned, pulled whole as a snapshot
    params: Mapping[str, Any] = field(default_factory=dict)
    method: str = "GET"
    # Vendor timestamps without an offset are in this zone (None: the source's default).
    naive_timezone: tzinfo | None = None
    # A flow of its own instead of `loading.load_stream` (same signature), e.g. export -> land -> mark.
    loader: Callable[..., Any] | None = None

    @property
    def partitioned(self) -> bool:
        return self.window is not None

    @property
    def tables(self) -> tuple[Table, ...]:
        return (self.table,) + tuple(c.table for c in self.children)

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


class SourceClient(Protocol):
    """What the load engine needs from a vendor client (no Dagster inside)."""

    system: str
    stats: RequestStats
    naive_timezone: tzinfo

    def pages(self, stream: Stream, params: Mapping[str, Any]) -> Iterator[Page]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SourceSystem:
    """One vendor: its DuckDB schema / asset prefix / group (`name`), its streams and how to build a client."""

    name: str
    title: str
    streams: tuple[Stream, ...]
    make_client: Callable[[Path, Logger | None], SourceClient]  # (data_dir, logger) -> client
    concurrency_limit: int = 2  # concurrent runs calling this vendor (the Dagster pool's default limit)
    description: str = ""
    # Source-specific Dagster definitions beyond the generated ones (e.g. sensors): a callable returning
    # {"assets": [...], "jobs": [...], "sensors": [...], "schedules": [...]}, imported only when Dagster loads.
    extra_definitions: Callable[[], dict[str, list]] | None = None

    def stream(self, name: str) -> Stream:
        return next(s for s in self.streams if s.name == name)
