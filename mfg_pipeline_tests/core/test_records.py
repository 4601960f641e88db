"""Typed record parsing: timestamps in every documented shape become UTC, durations become seconds, and a value of
the wrong type fails naming the record and the field."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from mfg_pipeline.records.schema import (
    INT,
    STRING,
    TIMESTAMP,
    Column,
    FieldError,
    RowParser,
    Table,
    child_table,
    parse_duration_seconds,
    parse_instant,
)

UTC = timezone.utc


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2016-09-20T17:55:32.000+01:00", datetime(2016, 9, 20, 16, 55, 32, tzinfo=UTC)),
        ("2017-12-21T10:30:21.000Z", datetime(2017, 12, 21, 10, 30, 21, tzinfo=UTC)),
        ("2020-07-20T09:15:15+0100", datetime(2020, 7, 20, 8, 15, 15, tzinfo=UTC)),
        ("2020-07-20T09:15:15+01", datetime(2020, 7, 20, 8, 15, 15, tzinfo=UTC)),
        ("2020-01-01 12:00:00", datetime(2020, 1, 1, 12, tzinfo=UTC)),
        (1_700_000_000_000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
    ],
)
def test_timestamps_in_every_documented_shape_become_utc(raw, expected):
    assert parse_instant(raw) == expected


def test_a_timestamp_without_offset_is_read_in_the_vendors_zone():
    assert parse_instant("2020-07-20T09:15:15", ZoneInfo("Europe/Berlin")) == datetime(
        2020, 7, 20, 7, 15, 15, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "raw, seconds", [("00H02m00s", 120), ("01H08m05s", 4085), ("123H00m01s", 442801), ("09:13:00", 33180), (75, 75)]
)
def test_durations_become_integer_seconds(raw, seconds):
    assert parse_duration_seconds(raw) == seconds


@pytest.mark.parametrize("raw", ["2 minutes", "", "00H61", True, [1]])
def test_malformed_durations_are_rejected(raw):
    with pytest.raises((ValueError, TypeError)):
        parse_duration_seconds(raw)


TABLE = Table(
    "things",
    (Column("id", INT, required=True), Column("seen_at", TIMESTAMP, "seen-at"), Column("owner", STRING, "owner.name")),
    primary_key=("id",),
)
PARTS = child_table("thing_parts", "parts", [("thing_id", "id", INT)], [Column("code", STRING, "code")])


def test_nested_paths_and_child_arrays_become_flat_columns_keyed_to_the_parent():
    parsed = RowParser(TABLE, [PARTS]).parse(
        [
            {
                "id": 7,
                "seen-at": "2026-01-01T00:00:00Z",
                "owner": {"name": "Ann"},
                "parts": [{"code": "a"}, {"code": "b"}],
            },
            {"id": 8, "parts": []},
        ]
    )
    assert parsed["things"] == {
        "id": [7, 8],
        "seen_at": [datetime(2026, 1, 1, tzinfo=UTC), None],
        "owner": ["Ann", None],
    }
    assert parsed["thing_parts"] == {"thing_id": [7, 7], "position": [0, 1], "code": ["a", "b"]}


@pytest.mark.parametrize(
    "record, message",
    [
        ({"id": "seven"}, "record 0 (id='seven'): field 'id': expected an integer, got 'seven'"),
        ({"id": 1, "seen-at": "yesterday"}, "record 0 (id=1): field 'seen-at': expected an ISO 8601 timestamp"),
        ({"seen-at": "2026-01-01T00:00:00Z"}, "record 0 (id=None): field 'id' is required but missing"),
        ({"id": 1, "parts": {"code": "a"}}, "record 0 (id=1): field 'parts' must be an array, got dict"),
        ("not an object", "record 0 is str, expected an object"),
    ],
)
def test_wrong_types_fail_naming_the_record_and_the_field(record, message):
    with pytest.raises(FieldError) as error:
        RowParser(TABLE, [PARTS]).parse([record])
    assert str(error.value).startswith(message)
