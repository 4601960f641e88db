"""The settings that decide which rows a load's scope holds, recorded per plant in the lake by the first commit that
used them: the zone whose midnights bound the daily partitions, and a vendor's zone for timestamps sent without an
offset. With another value the same day holds other records, so a day's reload would soft-delete valid rows: a
commit whose value differs from the recorded one refuses, and nothing of it is written.

A deliberate change of the partition zone is `mfg-pipeline rezone`: it moves every row to its day in the new zone
and records it (`rezone` below)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb

from mfg_pipeline.config import PARTITION_ZONE_VARIABLE
from mfg_pipeline.http.errors import ConfigurationError
from mfg_pipeline.records.schema import Table
from mfg_pipeline.warehouse.lake import tables
from mfg_pipeline.warehouse.layout import BUILT_WITH, PARTITION_COLUMN, PLANT_COLUMN, literal, qualified, quote
from mfg_pipeline.warehouse.publish import PublishedTable, record_unpublished
from mfg_pipeline.warehouse.settings import WarehouseSettings


class SettingChangedError(ConfigurationError):
    """A load ran with another value of a setting the plant's rows were built with; nothing was written."""

    def __init__(self, variable: str, recorded: str, wanted: str, plant: str):
        self.variable, self.recorded, self.wanted = variable, recorded, wanted
        if variable == PARTITION_ZONE_VARIABLE:
            change = "to move the warehouse to the new zone on purpose, run `mfg-pipeline rezone` first"
        else:
            change = (
                "the stored times were read in the recorded zone: to read them in the new one, load the history "
                "into a new warehouse (another MFG_DATA_DIR)"
            )
        super().__init__(
            f"{variable} is {wanted!r} but plant {plant}'s rows were built with {recorded!r}: with another zone a day "
            f"holds other records and a reload would soft-delete valid rows, so nothing was written. Set "
            f"{variable}={recorded} again, or {change}."
        )


class BuiltWith:
    """This process's view of one lake's recorded settings: each (variable, value) is checked against the lake
    once, inside the transaction of the first commit that needs it, then trusted for the process's life (runs are
    short-lived processes; `rezone` is an operator's step taken while no load runs)."""

    def __init__(self) -> None:
        self._verified: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def check(
        self, cursor: duckdb.DuckDBPyConnection, plant: str, wanted: Mapping[str, str]
    ) -> list[tuple[str, str, str]]:
        """Raise SettingChangedError on a value that differs from the one recorded for the plant; record the ones
        never recorded. Returns what to `remember` once the transaction has committed."""
        with self._lock:
            unverified = {k: v for k, v in wanted.items() if (plant, k, v) not in self._verified}
        if not unverified:
            return []
        recorded = recorded_settings(cursor, plant, create=True)
        for variable, value in sorted(unverified.items()):
            if variable in recorded and recorded[variable] != value:
                raise SettingChangedError(variable, recorded[variable], value, plant)
            if variable not in recorded:
                _insert(cursor, plant, variable, value)
        return [(plant, variable, value) for variable, value in sorted(unverified.items())]

    def remember(self, verified: list[tuple[str, str, str]]) -> None:
        with self._lock:
            self._verified.update(verified)

    def forget(self) -> None:
        with self._lock:
            self._verified.clear()


_built_with: dict[WarehouseSettings, BuiltWith] = {}
_built_with_lock = threading.Lock()


def built_with_for(settings: WarehouseSettings) -> BuiltWith:
    with _built_with_lock:
        return _built_with.setdefault(settings, BuiltWith())


def recorded_settings(cursor: duckdb.DuckDBPyConnection, plant: str, *, create: bool = False) -> dict[str, str]:
    """variable -> value the plant's rows were built with (empty for a plant that never recorded one)."""
    schema, name = BUILT_WITH.split(".")
    if (schema, name) not in tables(cursor, schema):
        if create:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {BUILT_WITH} (variable VARCHAR, value VARCHAR, recorded_at TIMESTAMPTZ, "
                f"{PLANT_COLUMN} VARCHAR)"
            )
        return {}
    rows = cursor.execute(
        f"SELECT variable, value FROM {BUILT_WITH} WHERE {PLANT_COLUMN} = ? ORDER BY recorded_at", [plant]
    ).fetchall()
    return {variable: value for variable, value in rows}  # the latest recording of a variable wins


def record(cursor: duckdb.DuckDBPyConnection, plant: str, variable: str, value: str) -> None:
    recorded_settings(cursor, plant, create=True)
    cursor.execute(f"DELETE FROM {BUILT_WITH} WHERE variable = ? AND {PLANT_COLUMN} = ?", [variable, plant])
    _insert(cursor, plant, variable, value)


def _insert(cursor: duckdb.DuckDBPyConnection, plant: str, variable: str, value: str) -> None:
    cursor.execute(
        f"INSERT INTO {BUILT_WITH} (variable, value, recorded_at, {PLANT_COLUMN}) VALUES (?, ?, ?, ?)",
        [variable, value, _now(), plant],
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ZonedTable:
    """A partitioned table as `rezone_tables` moves it: its day comes from `time_column`; its child tables copy
    their parent's day through their link ((child column, parent column) pairs)."""

    schema: str
    table: Table
    time_column: str
    children: tuple[tuple[Table, tuple[tuple[str, str], ...]], ...] = ()


def rezone_tables(
    cursor: duckdb.DuckDBPyConnection, tables: Sequence[ZonedTable], plant: str, zone: str
) -> dict[str, int]:
    """In one transaction: every row of the plant to its day in `zone`, the days it left and the days it arrived
    in owed a new published file, and the zone recorded for the plant. Returns qualified parent table -> rows
    moved."""
    moved: dict[str, int] = {}
    of_plant = f"{PLANT_COLUMN} = {literal(plant)}"
    for zoned in tables:
        parent = qualified(zoned.schema, zoned.table.name)
        time_column = quote(zoned.time_column)
        day = f"CAST(timezone({literal(zone)}, {time_column}) AS DATE)"
        misplaced = f"{of_plant} AND {time_column} IS NOT NULL AND {PARTITION_COLUMN} IS DISTINCT FROM {day}"
        pairs = cursor.execute(
            f"SELECT {PARTITION_COLUMN}, {day}, count(*) FROM {parent} WHERE {misplaced} GROUP BY ALL"
        ).fetchall()
        if not pairs:
            continue
        days = {d for old, new, _ in pairs for d in (old, new)}
        cursor.execute(f"UPDATE {parent} SET {PARTITION_COLUMN} = {day} WHERE {misplaced}")
        record_unpublished(
            cursor, PublishedTable(zoned.schema, zoned.table.name, True, zoned.table.primary_key), plant, days
        )
        for child, link in zoned.children:
            joined = " AND ".join(f"c.{quote(c)} = p.{quote(p)}" for c, p in ((PLANT_COLUMN, PLANT_COLUMN), *link))
            cursor.execute(
                f"UPDATE {qualified(zoned.schema, child.name)} AS c SET {PARTITION_COLUMN} = p.{PARTITION_COLUMN} "
                f"FROM {parent} AS p WHERE {joined} AND p.{of_plant} "
                f"AND c.{PARTITION_COLUMN} IS DISTINCT FROM p.{PARTITION_COLUMN}"
            )
            record_unpublished(cursor, PublishedTable(zoned.schema, child.name, True, child.primary_key), plant, days)
        moved[parent] = sum(count for _, _, count in pairs)
    record(cursor, plant, PARTITION_ZONE_VARIABLE, zone)
    return moved
