"""The ISOlocity simulator follows its doc: Bearer auth, the {status, message, meta, data} envelope with
{current_page, from, to, total, per_page} meta, page/per_page paging, NCR filters, 429 with Retry-After, and a
deterministic dataset joined to the shared plant catalog."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests

from mfg_pipeline.simulators.base import SimulatorServer
from mfg_pipeline.simulators.catalog import build_catalog, lot_number
from mfg_pipeline.simulators.isolocity.app import IsolocitySimulator
from mfg_pipeline.simulators.isolocity.data import NCR_SOURCES, NCR_STATUSES, IsolocityDataset

NOW = datetime(2024, 5, 15, 10, 30, tzinfo=timezone.utc)
TOKEN = "demo-isolocity-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def dataset() -> IsolocityDataset:
    return IsolocityDataset(seed=42, now=NOW)


@pytest.fixture(scope="module")
def server(dataset):
    # A generous limit: this module's own requests must never be throttled except in the 429 test.
    with SimulatorServer(IsolocitySimulator(dataset=dataset, rate_limit_per_minute=10_000)) as running:
        yield running


def get(server, path: str, **params) -> requests.Response:
    return requests.get(server.url + path, params=params, headers=AUTH, timeout=5)


def fetch_all(server, path: str, **params) -> tuple[list[dict], list[dict]]:
    """Every record of a list, following `page` until a short page; also each page's meta."""
    records, metas, page = [], [], 1
    while True:
        body = get(server, path, page=page, **params).json()
        records += body["data"]
        metas.append(body["meta"])
        if len(body["data"]) < body["meta"]["per_page"]:
            return records, metas
        page += 1


def test_dataset_is_deterministic_and_covers_every_source_and_status(dataset):
    again = IsolocityDataset(seed=42, now=NOW)
    assert (again.ncrs, again.cars, again.parts, again.suppliers) == (
        dataset.ncrs,
        dataset.cars,
        dataset.parts,
        dataset.suppliers,
    )
    assert IsolocityDataset(seed=43, now=NOW).ncrs != dataset.ncrs
    assert 150 <= len(dataset.ncrs) <= 500
    assert {(n["source"], n["status"]) for n in dataset.ncrs} == {
        (source, status) for source in NCR_SOURCES for status in NCR_STATUSES
    }
    assert any(c["ncr_id"] is not None for c in dataset.cars) and any(c["ncr_id"] is None for c in dataset.cars)
    ncr_ids = {n["id"] for n in dataset.ncrs}
    assert all(c["ncr_id"] in ncr_ids for c in dataset.cars if c["ncr_id"] is not None)


def test_ncr_parts_and_lots_come_from_the_plant_catalog(dataset):
    catalog = build_catalog()
    assert [p["identification"] for p in dataset.parts] == [p.code for p in catalog.products]
    assert [s["name"] for s in dataset.suppliers] == [s.name for s in catalog.suppliers]
    code_by_part_id = {p["id"]: p["identification"] for p in dataset.parts}
    for ncr in dataset.ncrs:
        code = code_by_part_id[ncr["part_id"]]
        produced_on = datetime.strptime(ncr["lot_number"][1:7], "%y%m%d").date()
        assert ncr["lot_number"] == lot_number(code, produced_on)
        assert produced_on.weekday() != 6  # the shop does not produce on Sundays
        datetime.strptime(ncr["created_at"], "%Y-%m-%d %H:%M:%S")
        assert ncr["updated_at"] >= ncr["created_at"]


def test_requests_without_a_valid_bearer_token_get_401_in_the_envelope(server):
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        response = requests.get(server.url + "/api/ncrs", headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json()["status"] == "error" and response.json()["message"]
    assert get(server, "/api/ncrs").status_code == 200


def test_lists_answer_the_envelope_with_meta_and_no_last_page(server, dataset):
    for path, records in (
        ("/api/ncrs", dataset.ncrs),
        ("/api/cars", dataset.cars),
        ("/api/parts", dataset.parts),
        ("/api/suppliers", dataset.suppliers),
    ):
        body = get(server, path).json()
        assert set(body) == {"status", "message", "meta", "data"}
        assert body["status"] == "success" and body["message"] == "The request was successful"
        expected_to = min(50, len(records))
        assert body["meta"] == {"current_page": 1, "from": 1, "to": expected_to, "total": len(records), "per_page": 50}
        assert body["data"] == records[:50]


def test_detail_endpoints_answer_one_record_and_404_for_an_unknown_id(server, dataset):
    for path, record in (
        ("/api/ncrs", dataset.ncrs[7]),
        ("/api/cars", dataset.cars[3]),
        ("/api/parts", dataset.parts[2]),
        ("/api/suppliers", dataset.suppliers[1]),
    ):
        body = get(server, f"{path}/{record['id']}").json()
        assert body == {"status": "success", "message": "The request was successful", "data": record}
        missing = get(server, f"{path}/999999")
        assert missing.status_code == 404 and missing.json()["status"] == "error"
    unknown_route = get(server, "/api/nothing-here")
    assert unknown_route.status_code == 404 and unknown_route.json()["status"] == "error"


def test_paging_sees_every_ncr_exactly_once_and_the_last_page_is_short(server, dataset):
    records, metas = fetch_all(server, "/api/ncrs", per_page=40)
    assert [r["id"] for r in records] == [n["id"] for n in dataset.ncrs]
    assert len(dataset.ncrs) % 40 != 0  # so the last page is short rather than a full one then an empty one
    assert metas[-1]["to"] - metas[-1]["from"] + 1 == len(dataset.ncrs) % 40
    assert metas[-1]["to"] == len(dataset.ncrs)
    for number, meta in enumerate(metas, start=1):
        assert meta["current_page"] == number and meta["total"] == len(dataset.ncrs)
        assert meta["from"] == (number - 1) * 40 + 1


def test_a_page_beyond_the_end_has_empty_data_and_null_from_to(server, dataset):
    body = get(server, "/api/ncrs", page=1000).json()
    assert body["status"] == "success" and body["data"] == []
    assert body["meta"] == {"current_page": 1000, "from": None, "to": None, "total": len(dataset.ncrs), "per_page": 50}


def test_status_and_source_filters_select_matching_ncrs_and_combine(server, dataset):
    records, _ = fetch_all(server, "/api/ncrs", status="Open")
    assert records == [n for n in dataset.ncrs if n["status"] == "Open"]
    # The doc spells sources "internal" and "Internal": both select the same NCRs.
    lower, _ = fetch_all(server, "/api/ncrs", source="internal")
    title, _ = fetch_all(server, "/api/ncrs", source="Internal")
    assert lower == title == [n for n in dataset.ncrs if n["source"] == "internal"]
    both = get(server, "/api/ncrs", status="Closed", source="supplier", per_page=100).json()
    expected = [n for n in dataset.ncrs if n["status"] == "Closed" and n["source"] == "supplier"]
    assert both["data"] == expected[:100] and both["meta"]["total"] == len(expected)


def test_keyword_finds_ncrs_by_lot_number(server, dataset):
    lot = dataset.ncrs[10]["lot_number"]
    body = get(server, "/api/ncrs", keyword=lot.lower()).json()
    assert body["data"] == [n for n in dataset.ncrs if n["lot_number"] == lot]


def test_per_page_is_honoured_and_capped_at_the_maximum(server, dataset):
    small = get(server, "/api/ncrs", per_page=7, page=2).json()
    assert small["data"] == dataset.ncrs[7:14]
    assert small["meta"] == {"current_page": 2, "from": 8, "to": 14, "total": len(dataset.ncrs), "per_page": 7}
    capped = get(server, "/api/ncrs", per_page=5000).json()
    assert capped["meta"]["per_page"] == 100 and capped["data"] == dataset.ncrs[:100]


def test_a_page_or_per_page_that_is_not_a_positive_integer_gets_422(server):
    for params in ({"page": 0}, {"page": "abc"}, {"per_page": -1}, {"per_page": "1.5"}):
        response = get(server, "/api/cars", **params)
        assert response.status_code == 422 and response.json()["status"] == "error"


def test_ncr_list_can_ignore_per_page_so_clients_must_follow_meta(dataset):
    app = IsolocitySimulator(dataset=dataset, honour_ncr_per_page=False, default_per_page=30)
    with SimulatorServer(app) as running:
        body = get(running, "/api/ncrs", per_page=10).json()
        assert body["meta"]["per_page"] == 30 and len(body["data"]) == 30
        records, _ = fetch_all(running, "/api/ncrs", per_page=10)
        assert [r["id"] for r in records] == [n["id"] for n in dataset.ncrs]


def test_paths_can_be_overridden(dataset):
    app = IsolocitySimulator(dataset=dataset, paths={"ncrs": "/api/v2/ncr"})
    with SimulatorServer(app) as running:
        assert get(running, "/api/v2/ncr").json()["meta"]["total"] == len(dataset.ncrs)
        assert get(running, f"/api/v2/ncr/{dataset.ncrs[0]['id']}").json()["data"] == dataset.ncrs[0]
        assert get(running, "/api/ncrs").status_code == 404
        assert get(running, "/api/parts").status_code == 200
    with pytest.raises(ValueError):
        IsolocitySimulator(dataset=dataset, paths={"orders": "/api/orders"})


def test_over_the_rate_limit_answers_429_with_retry_after_in_the_envelope(dataset):
    app = IsolocitySimulator(dataset=dataset, rate_limit_per_minute=3)
    with SimulatorServer(app) as running:
        statuses = [get(running, "/api/parts").status_code for _ in range(3)]
        throttled = get(running, "/api/parts")
        assert statuses == [200, 200, 200]
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        assert throttled.json()["status"] == "error" and throttled.json()["message"]
        assert [r.status for r in app.requests("/api/parts")] == [200, 200, 200, 429]
