"""Typed records, declared once: a table is a list of columns, each naming where its value comes from in the
vendor's JSON and what type it lands as. From that one declaration come the parser (raw JSON -> typed rows,
with errors that name the field), the Arrow schema of the Parquet files and the DuckDB DDL.
"""

from __future__ import annotations

import json
import re
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone, tzinfo
from typing import Any

import pyarrow as pa

UTC = timezone.utc


class FieldError(ValueError):
    """A value in a record does not have the documented type; the message names the field."""


# --- column types -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnType:
    name: str
    arrow: pa.DataType
    duckdb: str
    coerce: Callable[[Any], Any]  # raw JSON value (never None) -> Python value, or raises ValueError/TypeError


def _to_str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return str(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise TypeError(f"expected an integer, got {value!r}")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value)
    raise TypeError(f"expected a number, got {value!r}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "0", "1"):
        return value.lower() in ("true", "1")
    raise TypeError(f"expected a boolean, got {value!r}")


def parse_instant(value: Any, naive_timezone: tzinfo = UTC) -> datetime:
    """ISO 8601 with `Z`, `+01:00`, `+0100` or `+01`; epoch milliseconds as a number; `YYYY-MM-DD HH:MM:SS`.
    A value without an offset is read in `naive_timezone` (the vendor's documented local zone)."""
    if isinstance(value, bool):
        raise TypeError("expected a timestamp, got a boolean")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if not isinstance(value, str):
        raise TypeError(f"expected a timestamp, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"expected an ISO 8601 timestamp, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=naive_timezone)
    return moment.astimezone(UTC)


_DURATION_HMS = re.compile(r"^\s*(\d+)H(\d{1,2})m(\d{1,2})s\s*$", re.IGNORECASE)
_DURATION_CLOCK = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})\s*$")


def parse_duration_seconds(value: Any) -> int:
    """Durations as integer seconds, from `00H02m00s` (lists) or `09:13:00` (the changes feed) or a number."""
    if isinstance(value, bool):
        raise TypeError("expected a duration, got a boolean")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        match = _DURATION_HMS.match(value) or _DURATION_CLOCK.match(value)
        if match:
            hours, minutes, seconds = (int(g) for g in match.groups())
            return hours * 3600 + minutes * 60 + seconds
    raise ValueError(f"expected a duration like 00H02m00s, got {value!r}")


def _to_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    raise TypeError(f"expected a date, got {value!r}")


def _to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


STRING = ColumnType("string", pa.string(), "VARCHAR", _to_str)
INT = ColumnType("integer", pa.int64(), "BIGINT", _to_int)
FLOAT = ColumnType("number", pa.float64(), "DOUBLE", _to_float)
BOOL = ColumnType("boolean", pa.bool_(), "BOOLEAN", _to_bool)
TIMESTAMP = ColumnType("timestamp", pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ", parse_instant)
DURATION_SECONDS = ColumnType("duration (seconds)", pa.int64(), "BIGINT", parse_duration_seconds)
DATE = ColumnType("date", pa.date32(), "DATE", _to_date)
JSON = ColumnType("json", pa.string(), "JSON", _to_json)


# --- columns and tables --------------------------------------------------------------------------------------
Getter = Callable[[Mapping[str, Any]], Any]


def path_getter(path: str) -> Getter:
    """`a.b.c` walks nested objects; a missing key or a null on the way gives None."""
    keys = path.split(".")

    def get(record: Mapping[str, Any]) -> Any:
        value: Any = record
        for key in keys:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
        return value

    get.label = path  # type: ignore[attr-defined]
    return get


def first_of(*paths: str) -> Getter:
    """The first non-null of several paths (vendors spell one field differently in different endpoints)."""
    getters = [path_getter(p) for p in paths]

    def get(record: Mapping[str, Any]) -> Any:
        for getter in getters:
            value = getter(record)
            if value is not None:
                return value
        return None

    get.label = f"first_of({', '.join(paths)})"  # type: ignore[attr-defined]
    return get


def code_of(path: str) -> Getter:
    """A reference given either as a bare code string or as an object with a `code` (both occur in the doc)."""
    getter = path_getter(path)

    def get(record: Mapping[str, Any]) -> Any:
        value = getter(record)
        return value.get("code") if isinstance(value, Mapping) else value

    get.label = f"code_of({path})"  # type: ignore[attr-defined]
    return get


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    source: str | Getter | None = None  # dotted path in the vendor JSON; defaults to `name`
    required: bool = False
    description: str = ""

    @property
    def getter(self) -> Getter:
        if callable(self.source):
            return self.source
        return path_getter(self.source or self.name)

    @property
    def source_label(self) -> str:
        return self.source if isinstance(self.source, str) else self.name

    @property
    def signature(self) -> str:
        """What the column is and where it comes from: a change here changes how records are read."""
        source = (
            self.source
            if isinstance(self.source, str) or self.source is None
            else getattr(self.source, "label", getattr(self.source, "__qualname__", repr(self.source)))
        )
        return f"{self.name}:{self.type.name}:{source}"


@dataclass(frozen=True)
class Table:
    """A warehouse table: its columns, its key, and how rows are read out of a vendor record."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    description: str = ""
    # For a child table: the JSON array inside the parent record that holds its rows.
    source_array: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        missing = set(self.primary_key) - set(names)
        if missing:
            raise ValueError(f"table {self.name}: primary key columns {sorted(missing)} are not declared")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(c.signature for c in self.columns)})@{self.source_array or ''}"

    def arrow_schema(self, extra: Sequence[pa.Field] = ()) -> pa.Schema:
        fields = [pa.field(c.name, c.type.arrow, nullable=c.name not in self.primary_key) for c in self.columns]
        return pa.schema(fields + list(extra))


@dataclass(frozen=True)
class ChildTable:
    """Rows nested as an array inside each parent record (e.g. a production's produced waste).
    Keyed by the parent's key plus the row's position in the array."""

    table: Table
    parent_key: tuple[tuple[str, str], ...]  # (child column, parent column) pairs


class RowParser:
    """Turns a page of raw records into typed column lists for one table (and its children).

    Errors name the record (by index and key) and the field, so the caller can add system/endpoint/page. The
    parent columns and the child tables can be parsed separately (`parse_parents`, `parse_children`): the load
    engine reads every record's key and fingerprint first, and the children only of records that changed.
    """

    def __init__(self, table: Table, children: Iterable[ChildTable] = (), naive_timezone: tzinfo = UTC):
        self.table = table
        self.children = tuple(children)
        self._getters = [(c, c.getter) for c in table.columns]
        self._child_getters = {
            child.table.name: [
                (c, c.getter)
                for c in child.table.columns
                if c.name not in dict(child.parent_key) and c.name != "position"
            ]
            for child in self.children
        }
        self._naive_timezone = naive_timezone

    def _coerce(self, column: Column, raw: Any) -> Any:
        if raw is None or (raw == "" and column.type is not STRING):
            if column.required:
                raise FieldError(f"field '{column.source_label}' is required but missing")
            return None
        try:
            if column.type is TIMESTAMP:
                return parse_instant(raw, self._naive_timezone)
            return column.type.coerce(raw)
        except (TypeError, ValueError) as exc:
            raise FieldError(f"field '{column.source_label}': {exc}") from None

    def parse(self, records: Sequence[Any]) -> dict[str, dict[str, list]]:
        """{table name: {column: values}} for the parent table and each child table."""
        parents = self.parse_parents(records)
        return {self.table.name: parents, **self.parse_children(records, parents)}

    def parse_parents(self, records: Sequence[Any]) -> dict[str, list]:
        """{column: values} of the parent table, one value per record."""
        out: dict[str, list] = {c.name: [] for c in self.table.columns}
        for index, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise FieldError(f"record {index} is {type(record).__name__}, expected an object")
            try:
                row = [self._coerce(column, getter(record)) for column, getter in self._getters]
            except FieldError as exc:
                raise FieldError(f"record {index} ({self._describe(record)}): {exc}") from None
            for column, value in zip(self.table.columns, row, strict=True):
                out[column.name].append(value)
        return out

    def parse_children(self, records: Sequence[Any], parents: Mapping[str, list]) -> dict[str, dict[str, list]]:
        """{child table: {column: values}}: the rows of each record's arrays, keyed by `parents` (the parsed
        parent columns of the same records, in the same order)."""
        out: dict[str, dict[str, list]] = {
            child.table.name: {c.name: [] for c in child.table.columns} for child in self.children
        }
        for child in self.children:
            columns = out[child.table.name]
            links = [(child_col, parents[parent_col]) for child_col, parent_col in child.parent_key]
            for index, record in enumerate(records):
                for position, item, label in self._array_items(child, record, index):
                    for child_col, values in links:
                        columns[child_col].append(values[index])
                    columns["position"].append(position)
                    for column, getter in self._child_getters[child.table.name]:
                        try:
                            columns[column.name].append(self._coerce(column, getter(item)))
                        except FieldError as exc:
                            raise FieldError(f"record {index} ({self._describe(record)}): {label}: {exc}") from None
        return out

    def _array_items(self, child: ChildTable, record: Mapping, index: int) -> Iterator[tuple[int, Mapping, str]]:
        """(position, item, label) for each row of a child table in one record. `source_array` may step through
        an array of arrays (`groups[].items`): every inner item is a row, and sees its group as `_parent`."""
        outer_path, _, inner_path = (child.table.source_array or "").partition("[].")
        outer = self._array(path_getter(outer_path)(record), outer_path, record, index)
        if not inner_path:
            yield from ((position, item, f"{outer_path}[{position}]") for position, item in enumerate(outer))
            return
        position = 0
        for group_index, group in enumerate(outer):
            where = f"{outer_path}[{group_index}].{inner_path}"
            for item_index, item in enumerate(self._array(path_getter(inner_path)(group), where, record, index)):
                yield position, ChainMap(dict(item), {"_parent": group}), f"{where}[{item_index}]"
                position += 1

    def _array(self, items: Any, where: str, record: Mapping, index: int) -> list[Mapping]:
        if items is None:
            return []
        if not isinstance(items, list):
            raise FieldError(
                f"record {index} ({self._describe(record)}): field '{where}' must be an array, "
                f"got {type(items).__name__}"
            )
        for position, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise FieldError(f"record {index} ({self._describe(record)}): '{where}[{position}]' must be an object")
        return items

    def _describe(self, record: Mapping) -> str:
        keys = [c for c in self.table.columns if c.name in self.table.primary_key]
        return ", ".join(f"{c.source_label}={c.getter(record)!r}" for c in keys) or "no key"


def child_table(
    name: str,
    source_array: str,
    parent_key: Sequence[tuple[str, str, ColumnType]],
    columns: Sequence[Column],
    description: str = "",
) -> ChildTable:
    """A child table keyed by (parent key columns..., position)."""
    key_columns = tuple(Column(child_col, col_type, required=True) for child_col, _, col_type in parent_key)
    position = Column("position", INT, required=True, description="Index of the row in the parent's array.")
    table = Table(
        name=name,
        columns=key_columns + (position,) + tuple(columns),
        primary_key=tuple(c.name for c in key_columns) + ("position",),
        description=description,
        source_array=source_array,
    )
    return ChildTable(table=table, parent_key=tuple((c, p) for c, p, _ in parent_key))


__all__ = [
    "BOOL",
    "DATE",
    "DURATION_SECONDS",
    "FLOAT",
    "INT",
    "JSON",
    "STRING",
    "TIMESTAMP",
    "Column",
    "ChildTable",
    "ColumnType",
    "FieldError",
    "RowParser",
    "Table",
    "child_table",
    "code_of",
    "first_of",
    "path_getter",
    "parse_instant",
    "parse_duration_seconds",
]
