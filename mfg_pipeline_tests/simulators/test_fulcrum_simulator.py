"""The Fulcrum Pro simulator follows its doc: Bearer auth, POST …/list with Skip/Take (0..max) and Sort.Field/Dir
returning bare JSON arrays, JSON filter bodies (exclusive createdAfterUtc/createdBeforeUtc on jobs, numbers and
status on invoices), child lists for items to make, operations and invoice line items, 429 with Retry-After,
and a deterministic dataset joined to the shared plant catalog."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from mfg_pipeline.simulators.base import SimulatorServer
from mfg_pipeline.simulators.catalog import build_catalog, lot_number
from mfg_pipeline.simulators.fulcrum.app import FulcrumSimulator
from mfg_pipeline.simulators.fulcrum.data import UNAPPROVED_JOB_STATUSES, FulcrumDataset, format_utc

NOW = datetime(2024, 5, 15, 10, 30, tzinfo=timezone.utc)
TOKEN = "demo-fulcrum-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def dataset() -> FulcrumDataset:
    return FulcrumDataset(seed=42, now=NOW)


@pytest.fixture(scope="module")
def server(dataset):
    # A generous limit: this module's own requests must never be throttled except in the 429 test.
    with SimulatorServer(FulcrumSimulator(dataset=dataset, rate_limit_per_minute=10_000)) as running:
        yield running


def post(server, path: str, body: dict | None = None, **params) -> requests.Response:
    return requests.post(server.url + path, params=params, json=body, headers=AUTH, timeout=5)


def fetch_all(server, path: str, body: dict | None = None, take: int = 50, **params) -> list[dict]:
    """Every record of a list, following Skip by Take until a page shorter than Take."""
    records, skip = [], 0
    while True:
        page = post(server, path, body, Skip=skip, Take=take, **params).json()
        records += page
        if len(page) < take:
            return records
        skip += take


# --- dataset ----------------------------------------------------------------------------------------------
def test_dataset_is_deterministic_and_a_different_seed_differs(dataset):
    again = FulcrumDataset(seed=42, now=NOW)
    assert [j.body for j in again.jobs] == [j.body for j in dataset.jobs]
    assert [i.body for i in again.invoices] == [i.body for i in dataset.invoices]
    assert {k: [r.body for r in v] for k, v in again.operations.items()} == {
        k: [r.body for r in v] for k, v in dataset.operations.items()
    }
    assert [j.body for j in FulcrumDataset(seed=43, now=NOW).jobs] != [j.body for j in dataset.jobs]


def test_dataset_has_hundreds_of_jobs_with_doc_shaped_ids_and_midnight_ties(dataset):
    assert 200 <= len(dataset.jobs) <= 600
    assert all(len(j.id) == 24 and len(j.body["parentItemId"]) == 24 for j in dataset.jobs)
    assert all(len(i.id) == 36 for items in dataset.items_to_make.values() for i in items)
    assert all(len(o.id) == 36 for ops in dataset.operations.values() for o in ops)
    assert all(j.created <= NOW for j in dataset.jobs)
    midnight_jobs = [j for j in dataset.jobs if j.body["createdUtc"].endswith("T00:00:00Z")]
    assert len({j.body["createdUtc"] for j in midnight_jobs}) >= dataset.history_days
    stamps = [j.body["createdUtc"] for j in dataset.jobs]
    assert len(set(stamps)) < len(stamps)  # jobs of one sales order share an instant
    assert {j.body["status"] for j in dataset.jobs} >= {"draft", "inProgress", "complete", "cancelled"}


def test_dataset_joins_the_plant_catalog(dataset):
    catalog = build_catalog()
    codes = {p.code for p in catalog.products}
    assert {j.body["name"] for j in dataset.jobs} <= codes
    assert all(j.body["parentItemId"] == dataset.item_ids[j.body["name"]] for j in dataset.jobs)
    assert [c.body["customerCode"] for c in dataset.customers] == [c.code for c in catalog.customers]
    job = next(j for j in dataset.jobs if j.body["status"] == "complete")
    item = dataset.items_to_make[job.id][0]
    operations = dataset.operations[item.id]
    assert [o.body["name"] for o in operations] == list(catalog.product(job.body["name"]).operations)
    first_day = datetime.fromisoformat(operations[0].body["scheduledStartUtc"]).astimezone(dataset.plant_tz).date()
    assert {o.body["customFields"]["lotNumber"] for o in operations} == {lot_number(job.body["name"], first_day)}


def test_unapproved_jobs_have_no_operations_and_invoice_totals_add_up(dataset):
    unapproved = [j for j in dataset.jobs if j.body["status"] in UNAPPROVED_JOB_STATUSES]
    assert unapproved
    assert all(not dataset.operations[i.id] for j in unapproved for i in dataset.items_to_make[j.id])
    for invoice in dataset.invoices:
        lines = [line.body for line in dataset.invoice_line_items[invoice.id]]
        assert any(line["type"] == "part" for line in lines)
        assert invoice.body["total"] == pytest.approx(sum(line["discountedSubtotal"] for line in lines))


# --- auth, paging, sorting ------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}])
def test_requests_without_the_bearer_token_get_401(server, headers):
    response = requests.post(server.url + "/api/jobs/list", json={}, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_skip_take_paging_sees_every_job_exactly_once_in_creation_order(server, dataset):
    jobs = fetch_all(server, "/api/jobs/list", {}, take=70)
    assert [j["id"] for j in jobs] == [j.id for j in dataset.jobs]
    assert [j["number"] for j in jobs] == sorted(j["number"] for j in jobs)
    assert jobs == [j.body for j in dataset.jobs]


def test_last_page_is_short_and_past_the_end_is_an_empty_array(server, dataset):
    total = len(dataset.jobs)
    last = post(server, "/api/jobs/list", {}, Skip=total - 3, Take=10).json()
    assert [j["id"] for j in last] == [j.id for j in dataset.jobs[-3:]]
    assert post(server, "/api/jobs/list", {}, Skip=total, Take=10).json() == []
    assert post(server, "/api/jobs/list", {}, Skip=0, Take=0).json() == []


def test_an_empty_body_and_no_take_give_the_default_page(server, dataset):
    response = requests.post(server.url + "/api/jobs/list", headers=AUTH, timeout=5)
    assert response.status_code == 200
    assert [j["id"] for j in response.json()] == [j.id for j in dataset.jobs[:100]]


@pytest.mark.parametrize(
    "params",
    [
        {"Take": 1001},
        {"Take": -1},
        {"Skip": -1},
        {"Take": "ten"},
        {"Sort.Field": "createdUtc", "Sort.Dir": "sideways"},
        {"Sort.Field": "noSuchField"},
    ],
)
def test_out_of_range_paging_and_bad_sort_are_rejected(server, params):
    assert post(server, "/api/jobs/list", {}, **params).status_code == 400


def test_take_up_to_max_take_is_accepted_and_max_take_is_a_knob(server, dataset):
    assert len(post(server, "/api/jobs/list", {}, Take=1000).json()) == len(dataset.jobs)
    with SimulatorServer(FulcrumSimulator(dataset=dataset, max_take=50)) as small:
        assert post(small, "/api/jobs/list", {}, Take=51).status_code == 400
        assert len(post(small, "/api/jobs/list", {}, Take=50).json()) == 50


def test_sort_field_and_direction_order_the_whole_list_before_paging(server, dataset):
    by_quantity = fetch_all(
        server, "/api/jobs/list", {}, take=100, **{"Sort.Field": "quantityToMake", "Sort.Dir": "descending"}
    )
    expected = sorted((j.body for j in dataset.jobs), key=lambda b: b["quantityToMake"], reverse=True)
    assert [j["id"] for j in by_quantity] == [b["id"] for b in expected]
    names = [
        c["name"]
        for c in post(
            server, "/api/customers/list", {}, Take=100, **{"Sort.Field": "name", "Sort.Dir": "ascending"}
        ).json()
    ]
    assert names == sorted(c.body["name"] for c in dataset.customers)


# --- filters --------------------------------------------------------------------------------------------
def test_created_after_and_before_are_both_exclusive(server, dataset):
    boundary = next(
        j for j in dataset.jobs if j.body["createdUtc"].endswith("T00:00:00Z") and NOW - j.created > timedelta(days=10)
    )
    stamp = boundary.body["createdUtc"]
    at_boundary = {j.id for j in dataset.jobs if j.created == boundary.created}
    after = {j["id"] for j in fetch_all(server, "/api/jobs/list", {"createdAfterUtc": stamp}, take=1000)}
    before = {j["id"] for j in fetch_all(server, "/api/jobs/list", {"createdBeforeUtc": stamp}, take=1000)}
    assert not at_boundary & (after | before)
    assert after == {j.id for j in dataset.jobs if j.created > boundary.created}
    assert before == {j.id for j in dataset.jobs if j.created < boundary.created}
    assert len(after) + len(before) + len(at_boundary) == len(dataset.jobs)
    # A bare date means midnight UTC.
    assert {j["id"] for j in fetch_all(server, "/api/jobs/list", {"createdAfterUtc": stamp[:10]}, take=1000)} == after


def test_a_created_window_holds_one_utc_day_and_days_partition_the_jobs(server, dataset):
    day_start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    # After is exclusive, so one second before midnight lets the midnight jobs in; before excludes the next day.
    window = {
        "createdAfterUtc": format_utc(day_start - timedelta(seconds=1)),
        "createdBeforeUtc": format_utc(day_start + timedelta(days=1)),
    }
    jobs = fetch_all(server, "/api/jobs/list", window, take=1000)
    assert jobs and {j["createdUtc"][:10] for j in jobs} == {"2024-05-01"}
    assert [j["id"] for j in jobs] == [j.id for j in dataset.jobs if j.created.date() == day_start.date()]


def test_job_filters_by_numbers_status_sales_order_and_incomplete_operations(server, dataset):
    some = dataset.jobs[10:13]
    by_number = post(server, "/api/jobs/list", {"numbers": [j.body["number"] for j in some]}, Take=10).json()
    assert [j["id"] for j in by_number] == [j.id for j in some]
    held = fetch_all(server, "/api/jobs/list", {"statuses": ["hold", "cancelled"]}, take=1000)
    assert {j["status"] for j in held} == {"hold", "cancelled"}
    order_job = next(j for j in dataset.jobs if j.body["salesOrderId"])
    same_order = post(server, "/api/jobs/list", {"salesOrderId": order_job.body["salesOrderId"]}, Take=10).json()
    assert order_job.id in {j["id"] for j in same_order}
    assert {j["salesOrderId"] for j in same_order} == {order_job.body["salesOrderId"]}
    open_jobs = fetch_all(server, "/api/jobs/list", {"hasIncompleteOperations": True}, take=1000)
    assert {j["id"] for j in open_jobs} == {j.id for j in dataset.jobs if dataset.job_has_incomplete_operations(j.id)}
    assert not {j["status"] for j in open_jobs} & UNAPPROVED_JOB_STATUSES


@pytest.mark.parametrize(
    "body",
    [
        {"numbers": []},
        {"status": "finished"},
        {"statuses": ["nope"]},
        {"createdAfterUtc": "yesterday"},
        {"salesOrderId": "short"},
        {"jobIds": ["x"] * 501},
    ],
)
def test_invalid_filter_bodies_are_rejected(server, body):
    assert post(server, "/api/jobs/list", body, Take=10).status_code == 400


def test_invoice_filters_by_status_numbers_and_external_reference(server, dataset):
    paid = fetch_all(server, "/api/invoices/list", {"status": "paid"}, take=1000)
    assert [i["id"] for i in paid] == [i.id for i in dataset.invoices if i.body["status"] == "paid"]
    wanted = [dataset.invoices[0].body["number"], dataset.invoices[5].body["number"]]
    numbered = post(server, "/api/invoices/list", {"numbers": wanted}, Take=10).json()
    assert [i["number"] for i in numbered] == wanted
    referenced = next(i for i in dataset.invoices if i.body["externalReferences"])
    external_id = referenced.body["externalReferences"]["accounting"]["externalId"]
    found = post(server, "/api/invoices/list", {"externalReference": {"externalId": external_id}}, Take=10).json()
    assert [i["id"] for i in found] == [referenced.id]
    assert post(server, "/api/invoices/list", {"status": "void"}, Take=10).status_code == 400


def test_sales_orders_and_customers_lists_page_and_filter(server, dataset):
    orders = fetch_all(server, "/api/sales-orders/list", {}, take=40)
    assert [o["id"] for o in orders] == [o.id for o in dataset.sales_orders]
    complete = fetch_all(server, "/api/sales-orders/list", {"status": "complete"}, take=1000)
    assert complete and {o["status"] for o in complete} == {"complete"}
    customers = post(server, "/api/customers/list", {"name": "hydraulics"}, Take=100).json()
    assert [c["name"] for c in customers] == ["Nordic Hydraulics AS"]
    assert post(server, "/api/customers/list", None, Take=100).json() == [c.body for c in dataset.customers]


# --- single records and child lists ---------------------------------------------------------------------
def test_single_job_and_invoice_by_id_and_unknown_or_malformed_ids(server, dataset):
    job, invoice = dataset.jobs[0], dataset.invoices[0]
    assert requests.get(f"{server.url}/api/jobs/{job.id}", headers=AUTH, timeout=5).json() == job.body
    assert requests.get(f"{server.url}/api/invoices/{invoice.id}", headers=AUTH, timeout=5).json() == invoice.body
    assert requests.get(f"{server.url}/api/jobs/{'0' * 24}", headers=AUTH, timeout=5).status_code == 404
    assert requests.get(f"{server.url}/api/jobs/abc", headers=AUTH, timeout=5).status_code == 400


def test_child_lists_return_items_to_make_operations_and_invoice_line_items(server, dataset):
    job = next(j for j in dataset.jobs if len(dataset.items_to_make[j.id]) > 1 and j.body["status"] == "complete")
    items = post(server, f"/api/jobs/{job.id}/items-to-make/list", {}).json()
    assert items == [i.body for i in dataset.items_to_make[job.id]]
    assert items[0]["itemId"] == job.body["parentItemId"]
    for item in items:
        operations = post(server, f"/api/jobs/{job.id}/items-to-make/{item['id']}/operations/list", {}).json()
        assert operations == [o.body for o in dataset.operations[item["id"]]]
        assert [o["order"] for o in operations] == list(range(1, len(operations) + 1))
        assert {o["status"] for o in operations} == {"complete"}
    other_job = dataset.jobs[0] if dataset.jobs[0].id != job.id else dataset.jobs[1]
    misplaced = post(server, f"/api/jobs/{other_job.id}/items-to-make/{items[0]['id']}/operations/list", {})
    assert misplaced.status_code == 404
    invoice = next(i for i in dataset.invoices if len(dataset.invoice_line_items[i.id]) > 2)
    lines = post(server, f"/api/invoices/{invoice.id}/line-items/list", {}).json()
    assert lines == [line.body for line in dataset.invoice_line_items[invoice.id]]
    assert post(server, f"/api/invoices/{invoice.id}/line-items/list", {}, Skip=1, Take=1).json() == lines[1:2]


def test_child_lists_can_ignore_paging_when_the_knob_says_so(dataset):
    invoice = next(i for i in dataset.invoices if len(dataset.invoice_line_items[i.id]) > 2)
    with SimulatorServer(FulcrumSimulator(dataset=dataset, page_child_lists=False)) as unpaged:
        lines = post(unpaged, f"/api/invoices/{invoice.id}/line-items/list", {}, Skip=1, Take=1).json()
    assert lines == [line.body for line in dataset.invoice_line_items[invoice.id]]


# --- rate limit -----------------------------------------------------------------------------------------
def test_requests_over_the_limit_get_429_with_retry_after(dataset):
    with SimulatorServer(FulcrumSimulator(dataset=dataset, rate_limit_per_minute=3)) as limited:
        statuses = [post(limited, "/api/customers/list", {}, Take=1).status_code for _ in range(3)]
        refused = post(limited, "/api/customers/list", {}, Take=1)
        log = limited.app.requests("/api/customers/list")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert [r.status for r in log] == [200, 200, 200, 429]
