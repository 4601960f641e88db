"""A durable journal of pages read from a destructive feed, kept in the lake so that every host sees it: the sensor
that reads the feed and the run that applies it may run on different machines.

A page is one row, committed before the feed is called again (a DuckLake commit is durable in its catalog:
SQLite's or Postgres's own commit). A page is *pending* until its batch id appears in the audit table its apply
writes in the same transaction as the data (`applied_in`): applying a page and marking it applied are one commit,
so no crash can apply a page twice or lose one. Applied pages are pruned after `keep_days`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import duckdb

from mfg_pipeline.warehouse.layout import FEED_JOURNAL as JOURNAL
from mfg_pipeline.warehouse.layout import PARTITION_COLUMN, PLANT_COLUMN, qualified
from mfg_pipeline.warehouse.store import Warehouse

APPLY_LOCK_SECONDS = 600.0


@dataclass(frozen=True)
class JournalPage:
    batch_id: str  # sorts by read time
    channel: str
    kind: str  # the channel's type
    read_at: datetime
    records: list


class FeedJournal:
    """The journal of one system's feed at the warehouse's plant (each plant is its own company with its own
    feed); `applied_in` is (schema, table) of the audit table holding `batch_id`."""

    def __init__(self, warehouse: Warehouse, system: str, applied_in: tuple[str, str], keep_days: int = 7):
        self.warehouse = warehouse
        self.system = system
        self.plant = warehouse.plant
        self.applied_in = applied_in
        self.keep_days = keep_days

    def save(self, batch_id: str, channel: str, kind: str, read_at: datetime, records: list) -> None:
        def append(cursor: duckdb.DuckDBPyConnection) -> None:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {JOURNAL} (system VARCHAR, batch_id VARCHAR, channel VARCHAR, "
                f"kind VARCHAR, read_at TIMESTAMPTZ, records VARCHAR, {PLANT_COLUMN} VARCHAR)"
            )
            cursor.execute(
                f"INSERT INTO {JOURNAL} (system, {PLANT_COLUMN}, batch_id, channel, kind, read_at, records) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [self.system, self.plant, batch_id, channel, kind, read_at, json.dumps(records)],
            )

        self.warehouse.lake.write(f"{self.system} feed journal ({self.plant}): saving batch {batch_id}", append)

    def pending_ids(self) -> list[str]:
        """The ids of the pending pages, oldest read first (without their records)."""
        return [row[0] for row in self._pending("j.batch_id")]

    def pending(self) -> list[JournalPage]:
        return [
            JournalPage(batch_id, channel, kind, read_at, json.loads(records))
            for batch_id, channel, kind, read_at, records in self._pending(
                "j.batch_id, j.channel, j.kind, j.read_at, j.records"
            )
        ]

    def _pending(self, columns: str) -> list[tuple]:
        if not self.warehouse.has_table(*JOURNAL.split(".")):
            return []
        applied = ""
        if self.warehouse.has_table(*self.applied_in):
            # The audit table is partitioned by read day: only the days the journal still holds are read.
            applied = (
                f"AND NOT EXISTS (SELECT 1 FROM {qualified(*self.applied_in)} a WHERE a.batch_id = j.batch_id "
                f"AND a.{PLANT_COLUMN} = j.{PLANT_COLUMN} AND a.{PARTITION_COLUMN} >= "
                f"(SELECT min(read_at)::DATE - 1 FROM {JOURNAL} WHERE system = ? AND {PLANT_COLUMN} = ?))"
            )
        return self.warehouse.query(
            f"SELECT {columns} FROM {JOURNAL} j WHERE j.system = ? AND j.{PLANT_COLUMN} = ? {applied} "
            "ORDER BY j.batch_id",
            [self.system, self.plant] * (2 if applied else 1),
        )

    @contextmanager
    def apply_lock(self) -> Iterator[None]:
        """Held while applying, so pages are applied one at a time and in read order."""
        with self.warehouse.locks.hold(
            f"apply-{self.system}-{self.plant}", APPLY_LOCK_SECONDS, f"{self.system} feed apply ({self.plant})"
        ):
            yield

    def prune(self, now: datetime | None = None) -> int:
        """Remove applied pages read more than `keep_days` ago; returns how many."""
        if not self.warehouse.has_table(*JOURNAL.split(".")) or not self.warehouse.has_table(*self.applied_in):
            return 0
        cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=self.keep_days)
        audit = qualified(*self.applied_in)

        def prune(cursor: duckdb.DuckDBPyConnection) -> int:
            row = cursor.execute(
                f"DELETE FROM {JOURNAL} j WHERE system = ? AND {PLANT_COLUMN} = ? AND read_at < ? AND EXISTS "
                f"(SELECT 1 FROM {audit} a WHERE a.batch_id = j.batch_id AND a.{PLANT_COLUMN} = j.{PLANT_COLUMN})",
                [self.system, self.plant, cutoff],
            ).fetchone()
            return int(row[0]) if row else 0

        return self.warehouse.lake.write(f"{self.system} feed journal: pruning", prune)
