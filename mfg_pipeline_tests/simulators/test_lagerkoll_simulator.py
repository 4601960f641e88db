"""Lagerkoll production orders simulator: both credential styles and the doc's error body, the paging wrapper (short
last page, empty page past the end, every order exactly once), state filters, lookups by id, article and customer
order, batches, the per-store limit answered with 429 + Retry-After, cancel/finish, and a deterministic dataset."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
import requests

from mfg_pipeline.simulators.base import SimulatorServer
from mfg_pipeline.simulators.catalog import lot_number
from mfg_pipeline.simulators.lagerkoll.app import MAX_LIMIT, LagerkollSimulator
from mfg_pipeline.simulators.lagerkoll.data import (
    CANCELLED,
    DEVELOPING,
    FINISHED,
    NEW,
    LagerkollDataset,
    from_epoch_ms,
    is_serial_tracked,
)

NOW = datetime(2025, 3, 12, 10, 30, tzinfo=timezone.utc)
BASE = "/v1/production_orders"
API_KEY_HEADERS = {"store": "demo-store", "api_key": "demo-api-key", "Accept": "application/json"}
USER_HEADERS = {
    "store": "demo-store",
    "user_id": "demo-user",
    "user_token": "demo-user-token",
    "Accept": "application/json",
}
CREDENTIALS_DONT_MATCH = {
    "errorCode": 900001,
    "errorMessage": "Credentials don't match",
    "errorField": None,
    "errorData": None,
}


def serve(simulator: LagerkollSimulator) -> SimulatorServer:
    return SimulatorServer(simulator).start()


@pytest.fixture(scope="module")
def dataset() -> LagerkollDataset:
    return LagerkollDataset(seed=42, now=NOW)


@pytest.fixture(scope="module")
def server(dataset: LagerkollDataset):
    # A high limit: this module makes a few hundred calls; the limit itself is tested on its own simulator.
    running = serve(LagerkollSimulator(dataset, rate_limit_per_minute=100_000))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http() -> requests.Session:
    session = requests.Session()
    session.headers.update(API_KEY_HEADERS)
    return session


def get(http: requests.Session, server: SimulatorServer, path: str, **params) -> requests.Response:
    return http.get(f"{server.url}{BASE}{path}", params=params, timeout=5)


def fetch_all(http: requests.Session, server: SimulatorServer, path: str, **params) -> list[dict]:
    """Every order of a list, page by page, stopping on `pages` as FACTS.md advises."""
    first = get(http, server, path, **params).json()
    orders, page = list(first["orders"]), first["page"]
    while page + 1 < first["page"] + first["pages"]:
        page += 1
        orders += get(http, server, path, page=page, **params).json()["orders"]
    return orders


# --- auth ----------------------------------------------------------------------------------------------------
def test_ping_needs_no_credentials(server):
    response = requests.get(f"{server.url}/v1/system/ping", timeout=5)
    assert response.status_code == 200


@pytest.mark.parametrize("headers", [API_KEY_HEADERS, USER_HEADERS], ids=["store+api_key", "store+user_token"])
def test_either_credential_style_is_accepted(server, dataset, headers):
    response = requests.get(f"{server.url}{BASE}/{dataset.orders[0]['orderId']}", headers=headers, timeout=5)
    assert response.status_code == 200
    assert response.json() == dataset.orders[0]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"store": "demo-store"},
        {"api_key": "demo-api-key"},
        {"store": "other-store", "api_key": "demo-api-key"},
        {"store": "demo-store", "api_key": "wrong-key"},
        {"store": "demo-store", "user_id": "demo-user"},
        {"store": "demo-store", "user_id": "demo-user", "user_token": "wrong-token"},
        {"store": "demo-store", "user_id": "someone-else", "user_token": "demo-user-token"},
    ],
    ids=[
        "none",
        "store-only",
        "no-store",
        "wrong-store",
        "wrong-key",
        "user-without-token",
        "wrong-token",
        "wrong-user",
    ],
)
def test_bad_or_missing_credentials_get_401_with_the_docs_error_body(server, headers):
    response = requests.get(f"{server.url}{BASE}/state/0", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == CREDENTIALS_DONT_MATCH


def test_simulator_server_passes_the_docs_underscore_headers(dataset):
    with SimulatorServer(LagerkollSimulator(dataset)) as plain:
        response = requests.get(f"{plain.url}{BASE}/state/0", headers=API_KEY_HEADERS, timeout=5)
    assert response.status_code == 200


# --- paging --------------------------------------------------------------------------------------------------
def test_state_list_defaults_to_page_0_of_50_in_the_wrapper(server, http, dataset):
    finished = dataset.orders_in_states(FINISHED)
    body = get(http, server, f"/state/{FINISHED}").json()
    assert set(body) == {"page", "pages", "pageSize", "ordersCount", "orders"}
    assert (body["page"], body["pageSize"], body["ordersCount"]) == (0, 50, len(finished))
    assert body["pages"] == math.ceil(len(finished) / 50)
    assert len(body["orders"]) == 50


def test_production_orders_state_defaults_to_20_per_page_over_all_states(server, http, dataset):
    body = get(http, server, "/production_orders_state").json()
    assert (body["page"], body["pageSize"], body["ordersCount"]) == (0, 20, len(dataset.orders))
    assert len(body["orders"]) == 20


def test_paging_sees_every_order_once_with_a_short_last_page_and_an_empty_page_past_the_end(server, http, dataset):
    limit = 40
    assert len(dataset.orders) % limit, "pick a limit that leaves a short last page"
    first = get(http, server, "/production_orders_state", limit=limit).json()
    pages = first["pages"]
    assert pages == math.ceil(len(dataset.orders) / limit)
    seen = []
    for page in range(pages):
        body = get(http, server, "/production_orders_state", limit=limit, page=page).json()
        assert (body["page"], body["pages"], body["pageSize"]) == (page, pages, limit)
        seen += [o["orderId"] for o in body["orders"]]
        if page < pages - 1:
            assert len(body["orders"]) == limit
        else:
            assert 0 < len(body["orders"]) < limit
    assert sorted(seen) == sorted(o["orderId"] for o in dataset.orders)
    beyond = get(http, server, "/production_orders_state", limit=limit, page=pages)
    assert beyond.status_code == 200
    assert beyond.json()["orders"] == [] and beyond.json()["ordersCount"] == len(dataset.orders)


def test_limit_above_the_cap_is_capped_and_pageSize_says_so(server, http, dataset):
    body = get(http, server, f"/state/{FINISHED}", limit=MAX_LIMIT * 10).json()
    assert body["pageSize"] == MAX_LIMIT
    assert len(body["orders"]) == min(MAX_LIMIT, len(dataset.orders_in_states(FINISHED)))
    assert body["pages"] == math.ceil(len(dataset.orders_in_states(FINISHED)) / MAX_LIMIT)


def test_one_based_paging_option_starts_at_page_1_and_refuses_page_0(dataset):
    running = serve(LagerkollSimulator(dataset, first_page=1))
    try:
        with requests.Session() as http:
            http.headers.update(API_KEY_HEADERS)
            first = get(http, running, "/production_orders_state").json()
            assert first["page"] == 1
            orders = fetch_all(http, running, "/production_orders_state")
            assert sorted(o["orderId"] for o in orders) == sorted(o["orderId"] for o in dataset.orders)
            assert get(http, running, "/production_orders_state", page=0).status_code == 400
    finally:
        running.stop()


@pytest.mark.parametrize(
    "path,params,field",
    [
        ("/state/7", {}, "state"),
        ("/state/new", {}, "state"),
        ("/state/0", {"limit": 0}, "limit"),
        ("/state/0", {"limit": "ten"}, "limit"),
        ("/state/0", {"page": -1}, "page"),
        ("/state/0", {"sort_column": "name"}, "sort_column"),
        ("/state/0", {"order": "up"}, "order"),
        ("/state/0", {"from": 20, "to": 10}, "from"),
        ("/production_orders_state", {"state_from": 4}, "state_from"),
        ("/production_orders_state", {"state_from": 2, "state_to": 1}, "state_from"),
        ("/article/P-1001", {"max_state": 9}, "max_state"),
        ("/abc", {}, "order_id"),
    ],
)
def test_bad_parameters_get_400_common_error_naming_the_parameter(server, http, path, params, field):
    response = get(http, server, path, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["errorCode"] == 900101 and body["errorField"] == field
    assert set(body) == {"errorCode", "errorMessage", "errorField", "errorData"}


# --- filters and lookups -------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", [NEW, DEVELOPING, FINISHED, CANCELLED])
def test_state_endpoint_returns_exactly_that_states_orders_newest_start_first(server, http, dataset, state):
    orders = fetch_all(http, server, f"/state/{state}", limit=MAX_LIMIT)
    expected = sorted(dataset.orders_in_states(state), key=lambda o: (o["startDate"], o["orderId"]), reverse=True)
    assert orders == expected  # same records, same order, in the API's JSON shape


def test_state_endpoint_sorts_by_end_date_ascending_when_asked(server, http, dataset):
    orders = fetch_all(http, server, f"/state/{FINISHED}", sort_column="end_date", order="asc")
    assert [o["orderId"] for o in orders] == [
        o["orderId"] for o in sorted(dataset.orders_in_states(FINISHED), key=lambda o: (o["endDate"], o["orderId"]))
    ]


def test_from_and_to_bound_the_sort_column_inclusively_by_default(server, http, dataset):
    finished = sorted(dataset.orders_in_states(FINISHED), key=lambda o: o["startDate"])
    low, high = finished[10]["startDate"], finished[30]["startDate"]
    orders = fetch_all(http, server, f"/state/{FINISHED}", **{"from": low, "to": high})
    assert sorted(o["orderId"] for o in orders) == sorted(
        o["orderId"] for o in finished if low <= o["startDate"] <= high
    )
    assert {low, high} <= {o["startDate"] for o in orders}


def test_exclusive_boundary_option_leaves_out_orders_exactly_on_from_and_to(dataset):
    finished = sorted(dataset.orders_in_states(FINISHED), key=lambda o: o["startDate"])
    low, high = finished[10]["startDate"], finished[30]["startDate"]
    running = serve(LagerkollSimulator(dataset, boundary="exclusive"))
    try:
        with requests.Session() as http:
            http.headers.update(API_KEY_HEADERS)
            orders = fetch_all(http, running, f"/state/{FINISHED}", **{"from": low, "to": high})
    finally:
        running.stop()
    assert sorted(o["orderId"] for o in orders) == sorted(o["orderId"] for o in finished if low < o["startDate"] < high)


def test_production_orders_state_keeps_states_between_from_and_to(server, http, dataset):
    orders = fetch_all(http, server, "/production_orders_state", state_from=DEVELOPING, state_to=FINISHED)
    assert sorted(o["orderId"] for o in orders) == sorted(
        o["orderId"] for o in dataset.orders_in_states(DEVELOPING, FINISHED)
    )
    assert [o["startDate"] for o in orders] == sorted((o["startDate"] for o in orders), reverse=True)


def test_production_orders_state_query_matches_text_fields_in_utf8(server, http, dataset):
    orders = fetch_all(http, server, "/production_orders_state", query="hämtar")
    expected = [o for o in dataset.orders if "hämtar" in o["comment"]]
    assert expected and sorted(o["orderId"] for o in orders) == sorted(o["orderId"] for o in expected)


def test_order_by_id_returns_the_record_and_unknown_id_is_903001(server, http, dataset):
    order = dataset.orders_in_states(DEVELOPING)[0]
    assert get(http, server, f"/{order['orderId']}").json() == order
    missing = get(http, server, "/999999")
    assert missing.status_code == 404
    assert missing.json()["errorCode"] == 903001


def test_article_endpoint_finds_orders_producing_or_using_it_up_to_max_state(server, http, dataset):
    orders = fetch_all(http, server, "/article/P-1003", max_state=DEVELOPING)
    expected = [
        o for o in dataset.orders if o["state"] <= DEVELOPING and any(a["articleId"] == "P-1003" for a in o["articles"])
    ]
    assert expected and sorted(o["orderId"] for o in orders) == sorted(o["orderId"] for o in expected)
    part_users = fetch_all(http, server, "/article/HW-BOLT-M8")
    assert part_users and all(
        any(p["singleArticleId"] == "HW-BOLT-M8" for g in o["singleArticles"] for p in g["singleArticles"])
        for o in part_users
    )


def test_customer_order_endpoint_lists_its_orders_and_404s_unknown_ones(server, http, dataset):
    shared = next(c for c in dataset.customer_orders if len(dataset.orders_for_customer_order(c)) > 1)
    body = get(http, server, f"/customer_order/{shared}").json()
    assert body["ordersCount"] == len(body["orders"]) == len(dataset.orders_for_customer_order(shared))
    assert {o["customerOrderId"] for o in body["orders"]} == {shared}
    unused = next(c for c in dataset.customer_orders if not dataset.orders_for_customer_order(c))
    assert get(http, server, f"/customer_order/{unused}").json()["orders"] == []
    missing = get(http, server, "/customer_order/1")
    assert missing.status_code == 404 and missing.json()["errorCode"] == 903004


# --- batches -------------------------------------------------------------------------------------------------
def test_batches_list_every_article_with_its_lots_and_serial_numbers(server, http, dataset):
    order = next(
        o
        for o in dataset.orders_in_states(FINISHED)
        if any(is_serial_tracked(dataset.catalog.product(a["articleId"])) for a in o["articles"])
        and any(not is_serial_tracked(dataset.catalog.product(a["articleId"])) for a in o["articles"])
    )
    answer = get(http, server, f"/{order['orderId']}/batch").json()
    assert answer == dataset.batches[order["orderId"]]
    assert [b["articleId"] for b in answer] == [a["articleId"] for a in order["articles"]]
    start_day, finish_day = (
        from_epoch_ms(order[name]).astimezone(dataset.tz).date() for name in ("startDate", "finishDate")
    )
    production_days = [start_day + timedelta(days=n) for n in range((finish_day - start_day).days + 1)]
    for article, batch in zip(order["articles"], answer, strict=True):
        product = dataset.catalog.product(article["articleId"])
        assert batch["countBatch"] == len({b["batchId"] for b in batch["batches"]}) > 0
        # Batches are the plant's lots, so they join with the other systems' lot numbers.
        assert {b["batchId"] for b in batch["batches"]} <= {lot_number(product.code, d) for d in production_days}
        assert sum(b["deliveredAmount"] for b in batch["batches"]) == article["finished"]
        if is_serial_tracked(product):
            serials = [b["serialNr"] for b in batch["batches"]]
            assert batch["countSerial"] == len(set(serials)) == article["finished"]
        else:
            assert batch["countSerial"] == 0
            assert sum(b["orderedAmount"] for b in batch["batches"]) == article["finished"] + article["waste"]


def test_orders_not_yet_started_have_no_batches(server, http, dataset):
    order = dataset.orders_in_states(NEW)[-1]
    answer = get(http, server, f"/{order['orderId']}/batch").json()
    assert [(b["countBatch"], b["countSerial"], b["batches"]) for b in answer] == [(0, 0, [])] * len(answer)
    assert get(http, server, "/999999/batch").json()["errorCode"] == 903001


# --- rate limit ----------------------------------------------------------------------------------------------
def test_requests_over_the_per_store_limit_get_429_with_retry_after(dataset):
    running = serve(LagerkollSimulator(dataset, rate_limit_per_minute=5))
    try:
        with requests.Session() as http:
            http.headers.update(USER_HEADERS)
            statuses = [get(http, running, "/state/0").status_code for _ in range(5)]
            limited = get(http, running, "/state/0")
    finally:
        running.stop()
    assert statuses == [200] * 5
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["errorCode"] == 900429


# --- writes --------------------------------------------------------------------------------------------------
def test_cancel_and_finish_move_open_orders_and_refuse_closed_ones():
    dataset = LagerkollDataset(seed=42, now=NOW)
    running = serve(LagerkollSimulator(dataset))
    try:
        with requests.Session() as http:
            http.headers.update(API_KEY_HEADERS)
            new_id = dataset.orders_in_states(NEW)[0]["orderId"]
            developing_id = dataset.orders_in_states(DEVELOPING)[0]["orderId"]
            cancelled = http.put(f"{running.url}{BASE}/{new_id}/cancel", timeout=5).json()
            finished = http.put(f"{running.url}{BASE}/{developing_id}/finish", timeout=5).json()
            refused = http.put(f"{running.url}{BASE}/{new_id}/finish", timeout=5)
            added = http.post(f"{running.url}{BASE}/", json={"name": "Prov", "state": "0"}, timeout=5).json()
            next_reference = get(http, running, "/pr_ref/next_id").json()["prReference"]
    finally:
        running.stop()
    assert cancelled["state"] == CANCELLED and finished["state"] == FINISHED
    assert finished["finishDate"] is not None and all(a["accuracy"] is not None for a in finished["articles"])
    assert refused.status_code == 400 and refused.json()["errorCode"] == 903003
    assert added["state"] == NEW and dataset.order(added["orderId"]) == added
    assert next_reference == f"PR-{int(added['prReference'].removeprefix('PR-')) + 1}"


def test_doc_example_scalar_style_sends_state_and_flags_as_strings(dataset):
    running = serve(LagerkollSimulator(dataset, scalar_style="doc_example"))
    try:
        order = requests.get(
            f"{running.url}{BASE}/{dataset.orders[0]['orderId']}", headers=API_KEY_HEADERS, timeout=5
        ).json()
    finally:
        running.stop()
    assert order["state"] == str(dataset.orders[0]["state"])
    assert order["reserveInDepth"] in ("true", "false")
    assert all(isinstance(a["waste"], str) for a in order["articles"])


# --- dataset -------------------------------------------------------------------------------------------------
def test_same_seed_gives_the_same_orders_and_batches_and_another_seed_does_not():
    first, again, other = (LagerkollDataset(seed=s, now=NOW) for s in (7, 7, 8))
    assert first.orders == again.orders and first.batches == again.batches
    assert first.customer_orders == again.customer_orders
    assert first.orders != other.orders


def test_dataset_has_a_few_hundred_orders_in_every_state_with_epoch_ms_dates(dataset):
    assert 200 <= len(dataset.orders) <= 500
    assert {o["state"] for o in dataset.orders} == {NEW, DEVELOPING, FINISHED, CANCELLED}
    assert all(isinstance(o["startDate"], int) and o["startDate"] > 10**12 for o in dataset.orders)
    assert all(o["finishDate"] is None for o in dataset.orders if o["state"] != FINISHED)
    assert all(o["finishDate"] <= dataset.now_ms for o in dataset.orders_in_states(FINISHED))
    assert all(o["startDate"] > dataset.now_ms for o in dataset.orders_in_states(NEW)[-5:])
