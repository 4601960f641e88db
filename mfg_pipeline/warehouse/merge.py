"""The merge of one staged table into the lake, inside the load's transaction.

Rows the source sent are upserted by key (replacing any version, in any partition or state). Rows of the part of
the table the source listed whole that it no longer lists are soft-deleted (`deleted_at`), with their child rows:
only those no other writer touched after the listing began (`Scope.listed_after`), since a row the changes feed or
another run wrote meanwhile may be newer than the listing.
A child table's rows are replaced for every parent that was staged. DuckLake enforces no primary key, so the key
is kept unique here (delete, then insert, by key) and checked by the asset checks.

A load is one plant's: its rows get the plant's `PLANT_COLUMN`, which leads every key and link, and what it
soft-deletes is only ever that plant's rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from mfg_pipeline.records.schema import Table
from mfg_pipeline.warehouse.layout import (
    DELETED_AT_COLUMN,
    LOADED_AT_COLUMN,
    PARTITION_COLUMN,
    PLANT_COLUMN,
    at_snapshot,
    literal,
    qualified,
    quote,
)


@dataclass(frozen=True)
class Scope:
    """What a pass listed whole, so what it no longer lists was deleted at the vendor: one day (`Scope.day`),
    every row of the table (`Scope.whole_table()`), or only some records (`Scope.subset()`: nothing is deleted)."""

    lists_whole: bool
    partition: date | None = None  # the day listed whole (None: the whole table, or a subset)
    # The lake snapshot taken just before the listing began (`StreamLoad` sets it; None: the rows as they are at
    # the merge count as listed against). Only rows that snapshot held live, and that no writer rewrote since, are
    # soft-deleted for their absence. TABLE_NOT_YET: the table did not exist then, so none is.
    listed_after: int | None = None

    @classmethod
    def whole_table(cls) -> Scope:
        return cls(lists_whole=True)

    @classmethod
    def day(cls, partition: date) -> Scope:
        return cls(lists_whole=True, partition=partition)

    @classmethod
    def subset(cls) -> Scope:
        return cls(lists_whole=False)


SUBSET = Scope.subset()
TABLE_NOT_YET = -1  # `Scope.listed_after` of a listing that began before its table existed
NOT_WRITTEN = -2  # a run's snapshot before its first commit to a table it did not write (it moved no record)


@dataclass(frozen=True)
class TableLoad:
    """One staged table to merge.

    - `staged_file`: rows to upsert by key (replacing any version, in any partition or state).
    - `scope` (a parent table): when the pass listed it whole, rows of that scope whose key is neither in
      `seen_file` (default: the staged keys) nor staged are soft-deleted, with their child rows.
    - `deleted_file` (a parent table): keys the vendor says are gone: soft-deleted, with their child rows.
    - `parent` (a child table): the staged rows replace the child rows of every staged parent.
    """

    schema: str
    table: Table
    staged_file: Path
    partitioned: bool = False
    scope: Scope = SUBSET
    seen_file: Path | None = None
    deleted_file: Path | None = None
    parent: TableLoad | None = None
    parent_link: tuple[tuple[str, str], ...] = ()  # (child column, parent column)
    deleted_flag: str | None = None  # parent: a vendor column marking deleted records (hidden like soft deletes)
    # Columns whose staged NULL keeps the stored value: the records come in a shape that lacks them (a changes feed).
    null_keeps_stored: tuple[str, ...] = ()
    # Settings that decided which rows the load holds (variable, value): checked against the ones the warehouse
    # was built with (`built_with.py`).
    built_with: tuple[tuple[str, str], ...] = ()

    @property
    def qualified(self) -> str:
        return qualified(self.schema, self.table.name)

    @property
    def key(self) -> tuple[str, ...]:
        """The stored key: the plant, then the declared key."""
        return (PLANT_COLUMN, *self.table.primary_key)

    @property
    def link(self) -> tuple[tuple[str, str], ...]:
        """A child table's link to its parent, the plant first."""
        return ((PLANT_COLUMN, PLANT_COLUMN), *self.parent_link)


class DuplicateKeyError(ValueError):
    """A staged file holds one key twice: the load is wrong, and nothing of it is committed."""


@dataclass(frozen=True)
class Merged:
    changed: int  # rows upserted or soft-deleted
    partitions: frozenset[date | None]  # partitions whose rows changed (None: an unpartitioned table changed)
    # Rows of the listed scope the listing lacked but kept live: another writer wrote them after it began.
    kept_newer: int = 0


def merge(cursor: duckdb.DuckDBPyConnection, load: TableLoad, plant: str, deleted_parents: dict[str, str]) -> Merged:
    """Apply `load` as plant `plant`'s rows. `deleted_parents` (parent table -> temp table of the keys soft-deleted
    by this transaction) carries a parent's deletions to its child tables."""
    staged = _staged(load.staged_file, plant)
    _refuse_duplicate_keys(cursor, load, staged)
    # Few staged rows (a changes-feed batch, an hourly pass): their keys as literals let DuckLake skip every data
    # file whose key range holds none of them, instead of reading the table's whole history for a join.
    key_column = load.table.primary_key[0]
    of_plant = f"t.{PLANT_COLUMN} = {literal(plant)}"
    key_match = " AND ".join(f"t.{quote(c)} = s.{quote(c)}" for c in load.key) + f" AND {of_plant}"
    key_match += _among(cursor, f"t.{quote(key_column)}", f"SELECT DISTINCT {quote(key_column)} FROM {staged}")
    changed = kept_newer = 0
    gone: str | None = None
    if load.parent is None:
        gone, kept_newer = _soft_delete_candidates(cursor, load, plant, staged)
        if gone:
            deleted_parents[load.table.name] = gone
    partitions = _partitions_touched(cursor, load, plant, staged, gone or deleted_parents.get(_parent_name(load)))
    if load.parent is None:
        if gone:
            changed += _soft_delete(cursor, load, gone)
    else:
        changed += _cascade_deletions(cursor, load, deleted_parents.get(load.parent.table.name))
        parent_staged = _staged(load.parent.staged_file, plant)
        link = " AND ".join(f"t.{quote(c)} = s.{quote(p)}" for c, p in load.link) + f" AND {of_plant}"
        child_column, parent_column = load.parent_link[0]
        link += _among(
            cursor, f"t.{quote(child_column)}", f"SELECT DISTINCT {quote(parent_column)} FROM {parent_staged}"
        )
        cursor.execute(f"DELETE FROM {load.qualified} t USING {parent_staged} s WHERE {link}")
    rows = staged
    if load.null_keeps_stored:
        rows = _with_stored_values(cursor, load, staged, key_match)
    cursor.execute(f"DELETE FROM {load.qualified} t USING {staged} s WHERE {key_match}")
    inserted = cursor.execute(
        f"INSERT INTO {load.qualified} BY NAME SELECT *, now() AS {LOADED_AT_COLUMN} FROM {rows}"
    ).fetchone()
    changed += int(inserted[0]) if inserted else 0
    if not load.partitioned:
        partitions = frozenset({None}) if changed else frozenset()
    return Merged(changed, partitions, kept_newer)


def _parent_name(load: TableLoad) -> str:
    return load.parent.table.name if load.parent is not None else load.table.name


def _partitions_touched(
    cursor: duckdb.DuckDBPyConnection, load: TableLoad, plant: str, staged: str, gone: str | None
) -> frozenset[date | None]:
    """The partitions this merge changes (read before it runs): the staged rows', and the stored rows' it
    replaces (a record can move between days) or soft-deletes, and for a child table its staged or deleted
    parents' stored rows'."""
    if not load.partitioned:
        return frozenset()
    found = {row[0] for row in cursor.execute(f"SELECT DISTINCT {PARTITION_COLUMN} FROM {staged}").fetchall()}
    if load.parent is None:
        key = ", ".join(quote(c) for c in load.key)
        matched = f"SELECT {key} FROM {staged}" + (f" UNION SELECT {key} FROM {gone}" if gone else "")
    else:
        links = [(quote(c), quote(p)) for c, p in load.link]
        key, parents = ", ".join(c for c, _ in links), ", ".join(p for _, p in links)
        matched = f"SELECT {parents} FROM {_staged(load.parent.staged_file, plant)}"
        if gone:
            matched += f" UNION SELECT {parents} FROM {gone}"
    where = f"({key}) IN ({matched}) AND {PLANT_COLUMN} = {literal(plant)}"
    first = load.table.primary_key[0] if load.parent is None else load.parent_link[0][0]
    where += _among(
        cursor,
        quote(first),
        f"SELECT DISTINCT {quote(first if load.parent is None else load.parent_link[0][1])} FROM ({matched})",
    )
    stored = cursor.execute(f"SELECT DISTINCT {PARTITION_COLUMN} FROM {load.qualified} WHERE {where}").fetchall()
    return frozenset(found | {row[0] for row in stored})


LITERAL_KEYS_MAX = 2000  # up to this many keys are spelled out for file pruning; more are joined as they are


def _among(cursor: duckdb.DuckDBPyConnection, column: str, values_sql: str) -> str:
    """` AND <column> IN (<the values, as literals>)` when `values_sql` yields few values, else nothing."""
    values = cursor.execute(f"SELECT * FROM ({values_sql}) LIMIT {LITERAL_KEYS_MAX + 1}").fetchall()
    if len(values) > LITERAL_KEYS_MAX:
        return ""
    if not values:
        return " AND FALSE"
    return f" AND {column} IN ({', '.join(_literal_value(v) for (v,) in values)})"


def _literal_value(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return literal(str(value))


def _refuse_duplicate_keys(cursor: duckdb.DuckDBPyConnection, load: TableLoad, staged: str) -> None:
    keys = ", ".join(quote(c) for c in load.table.primary_key)  # one plant's rows: the declared key decides
    duplicate = cursor.execute(f"SELECT {keys} FROM {staged} GROUP BY ALL HAVING count(*) > 1 LIMIT 1").fetchone()
    if duplicate is not None:
        key = dict(zip(load.table.primary_key, duplicate, strict=True))
        raise DuplicateKeyError(f"{load.schema}.{load.table.name}: the load holds the key {key} twice (duplicate key)")


def _parquet(path: Path) -> str:
    return f"read_parquet({literal(str(path))})"


def _staged(path: Path, plant: str) -> str:
    """A staged file's rows as plant `plant`'s (staging knows nothing of plants: the warehouse's scope does)."""
    return f"(SELECT *, {literal(plant)} AS {PLANT_COLUMN} FROM {_parquet(path)})"


def _temp_name(prefix: str) -> str:
    return f"_{prefix}_{uuid.uuid4().hex[:12]}"


def _with_stored_values(cursor: duckdb.DuckDBPyConnection, load: TableLoad, staged: str, key_match: str) -> str:
    """A temp table of the staged rows in which each of `load.null_keeps_stored` that is NULL holds the stored
    row's value (taken before the stored rows are replaced)."""
    kept = _temp_name("kept")
    replaced = ", ".join(f"coalesce(s.{quote(c)}, t.{quote(c)}) AS {quote(c)}" for c in load.null_keeps_stored)
    cursor.execute(
        f"CREATE TEMP TABLE {kept} AS SELECT s.* REPLACE ({replaced}) FROM {staged} s "
        f"LEFT JOIN {load.qualified} t ON {key_match}"
    )
    return kept


def _soft_delete_candidates(
    cursor: duckdb.DuckDBPyConnection, load: TableLoad, plant: str, staged: str
) -> tuple[str | None, int]:
    """A temp table of the keys to soft-delete (None when the load can delete nothing): the scope's live rows (of
    the load's plant) the source no longer lists, less those written after the listing began, and the keys it says
    are gone; and how many rows the listing lacked but were written after it began (kept live)."""
    keys = ", ".join(quote(c) for c in load.key)
    candidates, kept_newer = [], 0
    if load.scope.lists_whole:
        seen = _staged(load.seen_file or load.staged_file, plant)
        in_scope = f"{PLANT_COLUMN} = {literal(plant)} AND {DELETED_AT_COLUMN} IS NULL"
        if load.scope.partition is not None:
            in_scope += f" AND {PARTITION_COLUMN} = DATE '{load.scope.partition.isoformat()}'"
        absent = _temp_name("absent")
        listed = f"SELECT {keys} FROM {seen} UNION ALL SELECT {keys} FROM {staged}"
        cursor.execute(
            f"CREATE TEMP TABLE {absent} AS SELECT {keys}, {LOADED_AT_COLUMN} FROM {load.qualified} "
            f"ANTI JOIN ({listed}) USING ({keys}) WHERE {in_scope}"
        )
        listed_after = load.scope.listed_after
        if listed_after is None:
            judged = absent
        else:
            # A row is the listing's to judge only if the snapshot before it held that very version (the same
            # `_loaded_at`): one another writer added, moved into the scope or rewrote since may be newer.
            judged = _temp_name("judged")
            before = (
                "WHERE false"
                if listed_after == TABLE_NOT_YET
                else f"SEMI JOIN (SELECT {keys}, {LOADED_AT_COLUMN} FROM "
                f"{at_snapshot(load.schema, load.table.name, listed_after)} WHERE {in_scope}) "
                f"USING ({keys}, {LOADED_AT_COLUMN})"
            )
            cursor.execute(f"CREATE TEMP TABLE {judged} AS SELECT {keys} FROM {absent} {before}")
            counts = cursor.execute(f"SELECT (SELECT count(*) FROM {absent}), (SELECT count(*) FROM {judged})")
            absent_rows, judged_rows = counts.fetchone()  # type: ignore[misc]
            kept_newer = int(absent_rows) - int(judged_rows)
        candidates.append(f"SELECT {keys} FROM {judged}")
    if load.deleted_file is not None:
        candidates.append(f"SELECT {keys} FROM {_staged(load.deleted_file, plant)}")
    if not candidates:
        return None, kept_newer
    gone = _temp_name("gone")
    cursor.execute(f"CREATE TEMP TABLE {gone} AS {' UNION '.join(candidates)}")
    return gone, kept_newer


def _soft_delete(cursor: duckdb.DuckDBPyConnection, load: TableLoad, gone: str) -> int:
    match = " AND ".join(f"t.{quote(c)} = g.{quote(c)}" for c in load.key)
    cursor.execute(
        f"UPDATE {load.qualified} t SET {DELETED_AT_COLUMN} = now() FROM {gone} g "
        f"WHERE {match} AND t.{DELETED_AT_COLUMN} IS NULL"
    )
    return int(cursor.execute(f"SELECT count(*) FROM {gone}").fetchone()[0])  # type: ignore[index]


def _cascade_deletions(cursor: duckdb.DuckDBPyConnection, load: TableLoad, gone: str | None) -> int:
    if gone is None:
        return 0
    link = " AND ".join(f"t.{quote(c)} = g.{quote(p)}" for c, p in load.link)
    result = cursor.execute(
        f"UPDATE {load.qualified} t SET {DELETED_AT_COLUMN} = now() FROM {gone} g "
        f"WHERE {link} AND t.{DELETED_AT_COLUMN} IS NULL"
    ).fetchone()
    return int(result[0]) if result else 0
