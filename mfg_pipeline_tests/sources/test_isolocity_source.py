"""The ISOlocity source against its simulator: NCRs, CARs and parts land exactly as served, once each, at engine
level and through Dagster with passing asset checks; paging follows the server's `meta` (empty list, exact full
pages, short last page, a server capping or ignoring `per_page`); bad payloads and non-success envelopes fail with
errors naming system, endpoint and page and leave the last good load intact; paths, timezone and credentials come
from the environment, missing ones are named, and the token never appears in errors or logs."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster
import pytest
from werkzeug.wrappers import Request, Response

from mfg_pipeline.declarations import Stream
from mfg_pipeline.engine.load import LoadReport
from mfg_pipeline.engine.refresh import load_stream
from mfg_pipeline.http.errors import MissingCredentialError, SourceHttpError, SourcePayloadError
from mfg_pipeline.http.pagination import PageMetaPaginator
from mfg_pipeline.orchestration.factory import partitioning, source_definitions
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.records.schema import TIMESTAMP, Table
from mfg_pipeline.simulators.base import Fault, SimulatorServer
from mfg_pipeline.simulators.isolocity.app import IsolocitySimulator
from mfg_pipeline.simulators.isolocity.data import NCR_SOURCES, NCR_STATUSES, IsolocityDataset
from mfg_pipeline.sources.isolocity import SOURCE, make_client
from mfg_pipeline.sources.isolocity.settings import PATH_SETTINGS, IsolocitySettings
from mfg_pipeline.sources.isolocity.streams import CARS, NCRS, PARTS
from mfg_pipeline.sources.registry import source_by_name
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests.conftest import SIM_NOW

TOKEN = "isolocity-test-token-4c9e2b71"
NCRS_PATH, CARS_PATH, PARTS_PATH = "/api/ncrs", "/api/cars", "/api/parts"
SERVER_PAGE_SIZE = 50  # the simulator's default, as the doc's
GENEROUS_LIMIT = 10_000  # per minute, on both sides: no test but the 429 one may be throttled


def quality_dataset() -> IsolocityDataset:
    """The simulator's deterministic data, with parts of no, one and two batch ids among those with three."""
    dataset = IsolocityDataset(seed=42, now=SIM_NOW)
    dataset.parts[0]["batch_ids"] = ["B-2026-001", "B-2026-002"]
    dataset.parts[1]["batch_ids"] = []
    dataset.parts[3]["batch_ids"] = ["B-2026-017"]
    return dataset


class OnePageCorrupted(IsolocitySimulator):
    """The ISOlocity simulator, except that while `armed`, one page of one list is replaced by `corrupt(payload)`
    (a dict is sent as JSON, a str as an HTML body), to see a failure after good pages."""

    def __init__(self, *args: Any, path: str, page: int, corrupt: Callable[[dict], Any], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.corrupt_path, self.corrupt_page, self.corrupt = path, page, corrupt
        self.armed = False

    def _maybe_corrupted(self, request: Request, response: Response) -> Response:
        if not (
            self.armed and request.path == self.corrupt_path and request.args.get("page", "1") == str(self.corrupt_page)
        ):
            return response
        replacement = self.corrupt(json.loads(response.get_data()))
        if isinstance(replacement, str):
            return Response(replacement, status=200, content_type="text/html")
        return Response(json.dumps(replacement), status=200, content_type="application/json")

    def on_ncrs(self, request: Request, company: str) -> Response:
        return self._maybe_corrupted(request, super().on_ncrs(request, company))

    def on_cars(self, request: Request, company: str) -> Response:
        return self._maybe_corrupted(request, super().on_cars(request, company))


@pytest.fixture
def serve_isolocity(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[Callable[..., IsolocitySimulator]]:
    """Start an ISOlocity simulator (kwargs go to the simulator class) and point ISOLOCITY_* at it."""
    servers: list[SimulatorServer] = []
    for variable in (setting.variable for setting in PATH_SETTINGS.values()):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("ISOLOCITY_TIMEZONE", raising=False)

    def serve(simulator_class: type[IsolocitySimulator] = IsolocitySimulator, **kwargs: Any) -> IsolocitySimulator:
        kwargs.setdefault("dataset", quality_dataset())
        kwargs.setdefault("rate_limit_per_minute", GENEROUS_LIMIT)
        simulator = simulator_class(api_token=TOKEN, **kwargs)
        server = SimulatorServer(simulator).start()
        servers.append(server)
        monkeypatch.setenv("ISOLOCITY_BASE_URL", server.url)
        monkeypatch.setenv("ISOLOCITY_API_TOKEN", TOKEN)
        monkeypatch.setenv("ISOLOCITY_RATE_LIMIT_PER_MINUTE", str(GENEROUS_LIMIT))
        return simulator

    yield serve
    for server in servers:
        server.stop()


# --- helpers ----------------------------------------------------------------------------------------------
def load(data_dir: Path, stream: Stream) -> LoadReport:
    client = make_client(data_dir)
    try:
        return load_stream(client, stream, Warehouse(data_dir))
    finally:
        client.close()


def api_utc(text: str, zone: Any = timezone.utc) -> datetime:
    """An API timestamp (`YYYY-MM-DD HH:MM:SS`, read in `zone`) as the UTC instant it must land as."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone).astimezone(timezone.utc)


def expected_rows(table: Table, records: list[dict], zone: Any = timezone.utc) -> list[tuple]:
    """The simulator's records as warehouse rows: column names are the API's field names."""
    timestamps = {c.name for c in table.columns if c.type is TIMESTAMP}
    return [
        tuple(api_utc(r[c], zone) if c in timestamps else r[c] for c in table.column_names)
        for r in sorted(records, key=lambda r: r["id"])
    ]


def landed_rows(data_dir: Path, table: Table) -> list[tuple]:
    columns = ", ".join(f'"{c}"' for c in table.column_names)
    order = ", ".join(table.primary_key)
    return Warehouse(data_dir).query(f"SELECT {columns} FROM isolocity.{table.name} ORDER BY {order}")


def published_rows(data_dir: Path, table: Table) -> list[tuple]:
    columns = ", ".join(f'"{c}"' for c in table.column_names)
    order = ", ".join(table.primary_key)
    path = Warehouse(data_dir).parquet_file("isolocity", table.name, None)
    return Warehouse(data_dir).query(f"SELECT {columns} FROM read_parquet(?) ORDER BY {order}", [str(path)])


def expected_batch_rows(dataset: IsolocityDataset) -> list[tuple]:
    return [
        (part["id"], position, batch_id)
        for part in dataset.parts
        for position, batch_id in enumerate(part["batch_ids"])
    ]


def pages_requested(simulator: IsolocitySimulator, path: str) -> list[int]:
    return [int(r.query.get("page", "1")) for r in simulator.requests(path) if r.path == path]


# --- end to end against the ground truth ------------------------------------------------------------------
def test_ncrs_cars_and_parts_land_exactly_as_served_once_each_and_a_rerun_changes_nothing(serve_isolocity, data_dir):
    simulator = serve_isolocity()
    dataset = simulator.data
    reports = {stream.name: load(data_dir, stream) for stream in SOURCE.streams}

    batch_table = PARTS.children[0].table
    expected = {
        NCRS.table: expected_rows(NCRS.table, dataset.ncrs),
        CARS.table: expected_rows(CARS.table, dataset.cars),
        PARTS.table: expected_rows(PARTS.table, dataset.parts),
        batch_table: expected_batch_rows(dataset),
    }
    for table, rows in expected.items():
        assert rows, f"the ground truth for {table.name} is empty: the test would prove nothing"
        assert landed_rows(data_dir, table) == rows, table.name
        assert published_rows(data_dir, table) == rows, table.name
    assert reports["ncrs"].source_rows == {"ncrs": len(dataset.ncrs)}
    batch_ids = sum(len(part["batch_ids"]) for part in dataset.parts)
    assert reports["parts"].source_rows == {"parts": len(dataset.parts), "part_batch_ids": batch_ids}

    # Every source and status arrives, because the NCR list is asked for unfiltered.
    landed_kinds = set(Warehouse(data_dir).query("SELECT DISTINCT source, status FROM isolocity.ncrs"))
    assert landed_kinds == {(source, status) for source in NCR_SOURCES for status in NCR_STATUSES}
    assert all(set(r.query) <= {"page", "per_page"} for r in simulator.requests(NCRS_PATH))
    # Every NCR points to a landed part.
    orphans = Warehouse(data_dir).query(
        "SELECT count(*) FROM isolocity.ncrs n LEFT JOIN isolocity.parts p ON n.part_id = p.id WHERE p.id IS NULL"
    )
    assert orphans == [(0,)]

    for stream in SOURCE.streams:
        load(data_dir, stream)
    for table, rows in expected.items():
        assert landed_rows(data_dir, table) == rows, f"{table.name} changed on a rerun"
        assert published_rows(data_dir, table) == rows, f"{table.name} Parquet changed on a rerun"


def test_timestamps_without_offset_are_read_in_isolocity_timezone(serve_isolocity, data_dir, monkeypatch):
    simulator = serve_isolocity()
    monkeypatch.setenv("ISOLOCITY_TIMEZONE", "America/Chicago")
    load(data_dir, CARS)
    chicago = ZoneInfo("America/Chicago")
    assert landed_rows(data_dir, CARS.table) == expected_rows(CARS.table, simulator.data.cars, chicago)
    first = simulator.data.cars[0]
    assert landed_rows(data_dir, CARS.table)[0][3] != api_utc(first["created_at"])  # really shifted


def test_dagster_materializes_every_isolocity_asset_and_every_check_passes(serve_isolocity, data_dir):
    simulator = serve_isolocity()
    assert source_by_name("isolocity") is SOURCE  # found by module name, no registry entry needed

    result = dagster.materialize(
        source_definitions(SOURCE, partitioning()).assets,
        resources={"sources": SourcesResource(), "warehouse": WarehouseResource(data_dir=str(data_dir))},
    )

    assert result.success
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert materialized == {"isolocity/ncrs", "isolocity/cars", "isolocity/parts", "isolocity/part_batch_ids"}
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 4 * 2  # primary key and row count, on each table
    assert [(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed] == []
    assert landed_rows(data_dir, NCRS.table) == expected_rows(NCRS.table, simulator.data.ncrs)


# --- pagination ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ncr_count, expected_pages",
    [
        (0, [1]),  # empty list: one request, an empty table
        (SERVER_PAGE_SIZE, [1]),  # exactly one full page: meta.total says it is the last, no empty page asked for
        (2 * SERVER_PAGE_SIZE, [1, 2]),
        (2 * SERVER_PAGE_SIZE + 23, [1, 2, 3]),  # last page short
    ],
    ids=["empty", "one-full-page", "two-full-pages", "last-page-short"],
)
def test_paging_stops_where_meta_says_the_list_ends(serve_isolocity, data_dir, ncr_count, expected_pages):
    dataset = quality_dataset()
    dataset.ncrs = dataset.ncrs[:ncr_count]
    assert len(dataset.ncrs) == ncr_count
    simulator = serve_isolocity(dataset=dataset)

    report = load(data_dir, NCRS)

    assert pages_requested(simulator, NCRS_PATH) == expected_pages
    assert report.source_rows == {"ncrs": ncr_count}
    assert landed_rows(data_dir, NCRS.table) == expected_rows(NCRS.table, dataset.ncrs)


def test_an_empty_list_soft_deletes_the_whole_snapshot(serve_isolocity, data_dir):
    simulator = serve_isolocity()
    load(data_dir, NCRS)
    landed = landed_rows(data_dir, NCRS.table)
    assert landed
    simulator.data.ncrs = []  # every NCR deleted at the vendor

    load(data_dir, NCRS)

    warehouse = Warehouse(data_dir)
    assert warehouse.query("SELECT count(*) FROM isolocity.ncrs_current")[0][0] == 0
    assert warehouse.query("SELECT count(*) FROM isolocity.ncrs WHERE deleted_at IS NOT NULL")[0][0] == len(landed)
    assert published_rows(data_dir, NCRS.table) == []


def test_a_server_ignoring_per_page_is_followed_at_its_own_page_size(serve_isolocity, data_dir):
    simulator = serve_isolocity(honour_ncr_per_page=False, default_per_page=30)
    ncrs = simulator.data.ncrs
    assert len(ncrs) % 30 != 0 and SERVER_PAGE_SIZE > 30  # pages shorter than asked for, and a short last one

    load(data_dir, NCRS)

    assert pages_requested(simulator, NCRS_PATH) == list(range(1, math.ceil(len(ncrs) / 30) + 1))
    assert landed_rows(data_dir, NCRS.table) == expected_rows(NCRS.table, ncrs)


def test_a_server_capping_per_page_is_followed_at_its_cap(serve_isolocity, data_dir):
    simulator = serve_isolocity(max_per_page=20)
    cars = simulator.data.cars
    assert len(cars) > 20

    load(data_dir, CARS)

    assert pages_requested(simulator, CARS_PATH) == list(range(1, math.ceil(len(cars) / 20) + 1))
    assert landed_rows(data_dir, CARS.table) == expected_rows(CARS.table, cars)


@pytest.mark.parametrize(
    "meta, expected_next",
    [
        ({"current_page": 1, "per_page": 30, "total": 95, "from": 1, "to": 30}, {"page": 2, "per_page": 30}),
        ({"current_page": 2, "per_page": 50, "total": 100, "from": 51, "to": 100}, None),
        ({"current_page": 2, "per_page": 50, "total": 130, "from": 51, "to": 130}, None),  # `to` reached total
        ({"current_page": 4, "per_page": 30, "total": 95, "from": None, "to": None}, None),  # 4 * 30 >= 95
    ],
    ids=["more-at-server-size", "exact-end", "to-reached-total", "page-times-size-covers-total"],
)
def test_page_meta_paginator_continues_only_while_meta_says_records_remain(meta, expected_next):
    paginator = PageMetaPaginator(page_size=50)
    params = {**paginator.first(), "page": meta["current_page"]}
    assert paginator.next(params, [{"id": 1}], {"meta": meta}) == expected_next
    assert paginator.next(params, [], {"meta": meta}) is None  # an empty page always ends the list


# --- bad payloads -------------------------------------------------------------------------------------------
def _with_record_field(payload: dict, index: int, field: str, value: Any) -> dict:
    records = [dict(r) for r in payload["data"]]
    records[index][field] = value
    return {**payload, "data": records}


@pytest.mark.parametrize(
    "stream, path, page, corrupt, expected",
    [
        (NCRS, NCRS_PATH, 1, lambda p: "<html><body>Down for maintenance</body></html>", "response is not JSON"),
        (
            NCRS,
            NCRS_PATH,
            2,
            lambda p: {"status": "error", "message": "Database unavailable", "data": []},
            "the envelope's status is 'error', not 'success': Database unavailable",
        ),
        (NCRS, NCRS_PATH, 3, lambda p: {**p, "status": "fail"}, "status is 'fail'"),
        (
            NCRS,
            NCRS_PATH,
            2,
            lambda p: _with_record_field(p, 10, "quantity", "a dozen"),
            "field 'quantity': expected an integer, got 'a dozen'",
        ),
        (NCRS, NCRS_PATH, 2, lambda p: {**p, "data": {"id": 1}}, "'data' must be an array of records, got an object"),
        (
            NCRS,
            NCRS_PATH,
            1,
            lambda p: {**p, "meta": {**p["meta"], "total": "many"}},
            "meta.total must be an integer of at least 0, got 'many'",
        ),
        (
            CARS,
            CARS_PATH,
            2,
            lambda p: _with_record_field(p, 0, "created_at", "last Tuesday"),
            "field 'created_at': expected an ISO 8601 timestamp, got 'last Tuesday'",
        ),
        (CARS, CARS_PATH, 1, lambda p: [p], "expected the {status, message, meta, data} envelope, got an array"),
    ],
    ids=[
        "not-json",
        "status-error-http-200",
        "status-fail-with-data",
        "record-field-type",
        "data-not-array",
        "meta-total-type",
        "timestamp-type",
        "no-envelope",
    ],
)
def test_a_bad_page_fails_naming_system_endpoint_and_page_and_keeps_the_last_good_load(
    serve_isolocity, data_dir, stream, path, page, corrupt, expected
):
    simulator = serve_isolocity(OnePageCorrupted, path=path, page=page, corrupt=corrupt)
    records = simulator.data.ncrs if stream is NCRS else simulator.data.cars
    load(data_dir, stream)
    good = expected_rows(stream.table, records)
    assert landed_rows(data_dir, stream.table) == good
    simulator.armed = True

    with pytest.raises(SourcePayloadError) as failure:
        load(data_dir, stream)

    message = str(failure.value)
    assert message.startswith(f"isolocity GET {path} page {page}: "), message
    assert expected in message
    assert pages_requested(simulator, path)[-1] == page  # nothing was asked for after the bad page
    assert landed_rows(data_dir, stream.table) == good
    assert published_rows(data_dir, stream.table) == good


def test_a_429_in_the_envelope_is_retried_after_retry_after_and_the_load_completes(serve_isolocity, data_dir):
    simulator = serve_isolocity()
    simulator.inject_fault(
        Fault(
            NCRS_PATH,
            status=429,
            headers={"Retry-After": "1"},
            times=1,
            body='{"status": "error", "message": "Too Many Attempts."}',
        )
    )

    report = load(data_dir, NCRS)

    assert [r.status for r in simulator.requests(NCRS_PATH)][:2] == [429, 200]
    assert report.throttled == 1
    assert landed_rows(data_dir, NCRS.table) == expected_rows(NCRS.table, simulator.data.ncrs)


# --- configuration and secrets ------------------------------------------------------------------------------
def test_paths_come_from_the_environment_and_a_wrong_one_names_its_variable(serve_isolocity, data_dir, monkeypatch):
    simulator = serve_isolocity(paths={"ncrs": "/quality/v2/ncr-reports"})

    with pytest.raises(SourceHttpError) as failure:
        load(data_dir, NCRS)
    assert "isolocity GET /api/ncrs page 1: HTTP 404" in str(failure.value)
    assert "ISOLOCITY_PATH_NCRS" in str(failure.value)

    monkeypatch.setenv("ISOLOCITY_PATH_NCRS", "/quality/v2/ncr-reports")
    load(data_dir, NCRS)
    assert landed_rows(data_dir, NCRS.table) == expected_rows(NCRS.table, simulator.data.ncrs)


@pytest.mark.parametrize("variable", ["ISOLOCITY_BASE_URL", "ISOLOCITY_API_TOKEN"])
def test_a_missing_required_variable_is_named(serve_isolocity, data_dir, monkeypatch, variable):
    serve_isolocity()
    monkeypatch.delenv(variable)
    with pytest.raises(MissingCredentialError) as failure:
        make_client(data_dir)
    assert failure.value.variable == variable
    assert variable in str(failure.value)
    assert TOKEN not in str(failure.value)


def test_a_refused_token_names_its_variable_and_never_shows_the_token(serve_isolocity, data_dir, monkeypatch):
    serve_isolocity()
    wrong_token = "isolocity-revoked-token-0aa7"
    monkeypatch.setenv("ISOLOCITY_API_TOKEN", wrong_token)
    with pytest.raises(SourceHttpError) as failure:
        load(data_dir, NCRS)
    assert failure.value.status == 401
    assert "ISOLOCITY_API_TOKEN" in str(failure.value)
    assert wrong_token not in str(failure.value)


def test_a_server_echoing_the_token_has_it_masked_in_errors_and_logs(serve_isolocity, data_dir, caplog):
    simulator = serve_isolocity()
    echo = json.dumps({"status": "error", "message": f"bad request for Bearer {TOKEN}"})
    simulator.inject_fault(Fault(NCRS_PATH, status=503, body=echo, headers={"Retry-After": "0"}, times=1))
    simulator.inject_fault(Fault(NCRS_PATH, status=400, body=echo, times=1))

    with caplog.at_level(logging.DEBUG), pytest.raises(SourceHttpError) as failure:
        load(data_dir, NCRS)

    assert failure.value.status == 400
    assert "***" in str(failure.value) and TOKEN not in str(failure.value)
    assert "retry 1" in caplog.text and TOKEN not in caplog.text
    settings = IsolocitySettings.from_env()
    assert settings.api_token == TOKEN and TOKEN not in repr(settings)
