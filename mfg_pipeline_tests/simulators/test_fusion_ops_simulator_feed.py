"""The Fusion Operations simulator's changes feed and live mode follow the doc: token required, `[]` when empty,
oldest change first, at most 25 per call, removed once read, one entry per entity with its latest state, per-type
deletion markers and field spellings (`HH:MM:SS` time-spent, punch `entry`, order `is-active`), 24 h retention, at
most 3 channels, 404 for an unknown channel; products and stock (keyed by product code) feed the PRODUCT and STOCK
channels in the doc's Products and Inventory shapes; mutations show in the lists at once; LiveShop keeps changing
the shop; and the generated dataset stays the same for the same seed."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

import pytest
import requests
from werkzeug.test import Client

from mfg_pipeline.simulators.base import SimulatorServer
from mfg_pipeline.simulators.catalog import lot_number
from mfg_pipeline.simulators.fusion_ops.app import DEFAULT_CHANNELS, Change, FusionOpsSimulator
from mfg_pipeline.simulators.fusion_ops.data import PRODUCT_ENDPOINT_ONLY_FIELDS, FusionDataset
from mfg_pipeline.simulators.fusion_ops.live import LiveShop

NOW = datetime(2026, 11, 12, 14, 30, tzinfo=timezone.utc)
LATER = NOW + timedelta(hours=2)  # after every generated record, so list filters find only what a test made
BASIC = ("demo-key", "demo-secret")
PRODUCT_CHANNELS = {"products": "PRODUCT", "stock": "STOCK", "production": "PRODUCTION"}
# The doc's PRODUCT feed example, field by field and in order.
PRODUCT_FIELDS = [
    "code",
    "name",
    "observations",
    "section",
    "unit-cost",
    "unit-price",
    "families",
    "operations",
    "components",
    "custom-fields",
    "notification",
    "serializable",
    "shipping-package-types",
    "external-stock",
    "stock-max",
    "min-quantity-reorder",
    "quantity-multiple",
    "scrap-allowance",
    "shelf-life",
    "parameters",
]


def make(**kwargs) -> tuple[FusionOpsSimulator, Client, str]:
    """A fresh simulator (own dataset: tests mutate it), a WSGI client and a valid token."""
    kwargs.setdefault("dataset", FusionDataset(seed=42, now=NOW, history_days=3))
    kwargs.setdefault("rate_limit_per_minute", 100_000)
    simulator = FusionOpsSimulator(**kwargs)
    client = Client(simulator)
    response = client.post("/api/v1/authorization", auth=BASIC)
    assert response.status_code == 201, response.text
    return simulator, client, response.get_json()["token"]


def feed(client: Client, token: str, channel: str, **params) -> list[dict]:
    response = client.get(f"/api/v1/changes/{channel}", query_string={"access_token": token, **params})
    assert response.status_code == 200, response.text
    assert response.content_type == "application/json"
    return response.get_json()


def list_ids(client: Client, token: str, path: str, **params) -> list[int]:
    """Every id a list endpoint gives, page by page from 1 until a short page."""
    ids, page = [], 1
    while True:
        response = client.get(path, query_string={"access_token": token, "page": page, **params})
        assert response.status_code == 200, response.text
        chunk = response.get_json()
        ids += [r["id"] for r in chunk]
        if len(chunk) < 25:
            return ids
        page += 1


def list_item(client: Client, token: str, path: str, record_id: int, **params) -> dict:
    page = 1
    while chunk := client.get(path, query_string={"access_token": token, "page": page, **params}).get_json():
        for item in chunk:
            if item["id"] == record_id:
                return item
        page += 1
    raise AssertionError(f"{record_id} not in {path}")


def test_changes_feed_without_a_valid_token_is_401():
    _, client, _ = make()
    assert client.get("/api/v1/changes/production").status_code == 401
    assert client.get("/api/v1/changes/production", query_string={"access_token": "nope"}).status_code == 401


def test_feed_is_an_empty_array_when_nothing_changed_and_generated_history_does_not_feed_it():
    simulator, client, token = make()
    assert simulator.channels == DEFAULT_CHANNELS
    for channel in DEFAULT_CHANNELS:
        response = client.get(f"/api/v1/changes/{channel}", query_string={"access_token": token})
        assert response.status_code == 200 and response.get_data(as_text=True) == "[]"


def test_feed_gives_oldest_change_first_at_most_25_per_call_and_removes_what_it_returned():
    simulator, client, token = make()
    made = [simulator.create_punch_clock(worker=w % 9 + 1, at=LATER + timedelta(minutes=w)) for w in range(30)]
    first = feed(client, token, "punch_clock")
    second = feed(client, token, "punch_clock")
    assert [r["id"] for r in first] == made[:25]
    assert [r["id"] for r in second] == made[25:]
    assert feed(client, token, "punch_clock") == []
    # read entities come back only when they change again
    simulator.update_punch_clock(made[3], kind=0)
    assert [r["id"] for r in feed(client, token, "punch_clock")] == [made[3]]


def test_entity_changed_twice_before_read_appears_once_at_the_newest_place_with_its_latest_state():
    simulator, client, token = make()
    a = simulator.create_production(quantity=5, start=LATER, end=LATER + timedelta(minutes=30))
    b = simulator.create_production(quantity=7, start=LATER, end=LATER + timedelta(minutes=40))
    simulator.update_production(a, quantity=99)
    records = feed(client, token, "production")
    assert [r["id"] for r in records] == [b, a]
    assert records[1]["quantity"] == 99
    assert simulator.pending_changes("production") == []


def test_deletion_markers_are_the_documented_ones_and_only_present_on_deletion():
    channels = {"production": "PRODUCTION", "downtime": "DOWN_TIME", "orders": "PRODUCTION_ORDER"}
    simulator, client, token = make(channels=channels)
    kept_p = simulator.create_production(start=LATER, end=LATER + timedelta(minutes=10))
    gone_p = simulator.create_production(start=LATER, end=LATER + timedelta(minutes=20))
    simulator.delete_production(gone_p)
    kept_d = simulator.create_downtime(start=LATER, end=LATER + timedelta(minutes=5))
    gone_d = simulator.create_downtime(start=LATER, end=LATER + timedelta(minutes=6))
    simulator.delete_downtime(gone_d)
    kept_o = simulator.create_production_order(start=LATER)
    gone_o = simulator.create_production_order(start=LATER)
    simulator.delete_production_order(gone_o)

    productions = {r["id"]: r for r in feed(client, token, "production")}
    assert "status" not in productions[kept_p] and productions[gone_p]["status"] == "deleted"
    downtimes = {r["id"]: r for r in feed(client, token, "downtime")}
    assert "event-type" not in downtimes[kept_d] and downtimes[gone_d]["event-type"] == "downtime_deleted"
    orders = {r["id"]: r for r in feed(client, token, "orders")}
    assert orders[kept_o]["running-status"] == "notstarted" and orders[gone_o]["running-status"] == "deleted"
    assert all("is-active" in o and "active" not in o for o in orders.values())
    assert all("workers-assigned" not in o for o in orders.values())

    # punch clocks: a separate simulator, since a 4th channel is not allowed
    simulator, client, token = make()
    kept = simulator.create_punch_clock(worker=3, kind=1, at=LATER)
    gone = simulator.create_punch_clock(worker=3, kind=0, at=LATER + timedelta(hours=8))
    simulator.delete_punch_clock(gone)
    punches = feed(client, token, "punch_clock")
    assert punches == [
        {"id": kept, "date": punches[0]["date"], "worker": {"number": 3}, "entry": 1},
        {
            "id": gone,
            "date": punches[1]["date"],
            "notification": "punch_clock_deleted",
            "worker": {"number": 3},
            "entry": 0,
        },
    ]


def test_feed_records_match_the_list_items_with_the_feed_spellings():
    simulator, client, token = make()
    downtime = simulator.create_downtime(
        machine="M02", downtime_type="Maintenance", start=LATER, end=LATER + timedelta(hours=9, minutes=13)
    )
    production = simulator.create_production(worker=4, quantity=12, start=LATER, end=LATER + timedelta(minutes=45))
    punch = simulator.create_punch_clock(worker=2, kind=1, at=LATER)

    listed = list_item(client, token, "/api/v1/downtimes", downtime, **{"start-time-after": NOW.isoformat()})
    [fed] = feed(client, token, "downtime")
    assert listed["time-spent"] == "09H13m00s" and fed["time-spent"] == "09:13:00"
    assert {k: v for k, v in fed.items() if k != "time-spent"} == {k: v for k, v in listed.items() if k != "time-spent"}

    listed = list_item(client, token, "/api/v1/productions", production, **{"start-time-after": NOW.isoformat()})
    [fed] = feed(client, token, "production")
    assert {k: fed[k] for k in listed} == listed  # every list field, same values
    assert listed["work-time"] == "00H45m00s" and fed["quantity"] == 12 and "status" not in fed

    listed = list_item(client, token, "/api/v1/punchclocks", punch, **{"date-after": NOW.isoformat()})
    [fed] = feed(client, token, "punch_clock")
    assert listed == {"id": punch, "date": fed["date"], "worker": {"number": 2}, "type": 1}
    assert fed == {"id": punch, "date": listed["date"], "worker": {"number": 2}, "entry": 1}


def test_production_orders_feed_shows_workers_only_when_asked():
    simulator, client, token = make(channels={"orders": "PRODUCTION_ORDER"})
    order = simulator.data.production_orders[0]
    simulator.update_production_order(order.id, notes="rush")
    [without] = feed(client, token, "orders")
    simulator.update_production_order(order.id, notes="very rush")
    [with_workers] = feed(client, token, "orders", workers="true")
    assert "workers-assigned" not in without and with_workers["workers-assigned"] == order.body["workers-assigned"]
    assert without["notes"] == "rush" and with_workers["notes"] == "very rush"
    assert without["is-active"] == order.body["active"] and "active" not in without


def test_list_endpoints_reflect_creates_updates_and_deletes_at_once():
    simulator, client, token = make()
    after = {"start-time-after": NOW.isoformat()}
    first_new = simulator.data._next_id["production"]
    a = simulator.create_production(worker=5, quantity=3, start=LATER, end=LATER + timedelta(minutes=30))
    b = simulator.create_production(worker=5, quantity=4, start=LATER, end=LATER + timedelta(minutes=50))
    assert (a, b) == (first_new, first_new + 1)  # ids continue the dataset's sequence
    assert list_ids(client, token, "/api/v1/productions", **after) == [a, b]

    simulator.update_production(a, quantity=30, start=LATER + timedelta(hours=1), end=LATER + timedelta(hours=2))
    item = list_item(client, token, "/api/v1/productions", a, **after)
    assert item["quantity"] == 30 and item["work-time"] == "01H00m00s"
    # the edited start moves the record for the time filters too
    later = {"start-time-after": (LATER + timedelta(minutes=30)).isoformat()}
    assert list_ids(client, token, "/api/v1/productions", **later) == [a]

    simulator.delete_production(b)
    assert list_ids(client, token, "/api/v1/productions", **after) == [a]
    with pytest.raises(KeyError):
        simulator.update_production(b, quantity=1)

    d = simulator.create_downtime(machine="M03", start=LATER, end=LATER + timedelta(minutes=5))
    simulator.update_downtime(d, downtime_type="Cleaning")
    assert list_item(client, token, "/api/v1/downtimes", d, **after)["downtime-type"] == "Cleaning"
    simulator.delete_downtime(d)
    assert list_ids(client, token, "/api/v1/downtimes", **after) == []

    p = simulator.create_punch_clock(worker=1, kind=1, at=LATER)
    simulator.update_punch_clock(p, kind=0)
    assert list_item(client, token, "/api/v1/punchclocks", p, **{"date-after": NOW.isoformat()})["type"] == 0
    simulator.delete_punch_clock(p)
    assert list_ids(client, token, "/api/v1/punchclocks", **{"date-after": NOW.isoformat()}) == []

    o = simulator.create_production_order(products={"P-1001": 100}, start=LATER)
    simulator.update_production_order(o, quantity_produced={"P-1001": 100})
    order = list_item(client, token, "/api/v1/production-orders", o, **{"start-date-after": NOW.isoformat()})
    assert order["running-status"] == "closed" and order["active"] is False
    simulator.delete_production_order(o)
    assert list_ids(client, token, "/api/v1/production-orders", **{"start-date-after": NOW.isoformat()}) == []

    assert [(c.type, c.op) for c in simulator.change_log] == [
        ("PRODUCTION", "create"),
        ("PRODUCTION", "create"),
        ("PRODUCTION", "update"),
        ("PRODUCTION", "delete"),
        ("DOWN_TIME", "create"),
        ("DOWN_TIME", "update"),
        ("DOWN_TIME", "delete"),
        ("PUNCH_CLOCK", "create"),
        ("PUNCH_CLOCK", "update"),
        ("PUNCH_CLOCK", "delete"),
        ("PRODUCTION_ORDER", "create"),
        ("PRODUCTION_ORDER", "update"),
        ("PRODUCTION_ORDER", "delete"),
    ]
    assert all(isinstance(c, Change) and c.time <= time.time() for c in simulator.change_log)


def test_changes_older_than_the_retention_are_dropped():
    simulator, client, token = make(feed_retention_seconds=0.3)
    old = simulator.create_punch_clock(at=LATER)
    time.sleep(0.45)
    fresh = simulator.create_punch_clock(at=LATER)
    assert [r["id"] for r in feed(client, token, "punch_clock")] == [fresh]
    assert old not in simulator.pending_changes("punch_clock")


def test_every_channel_of_the_type_gets_the_change_and_is_read_separately():
    simulator, client, token = make(channels={"a": "PRODUCTION", "b": "PRODUCTION", "stock": "STOCK"})
    made = simulator.create_production(start=LATER, end=LATER + timedelta(minutes=5))
    assert [r["id"] for r in feed(client, token, "a")] == [made]
    assert [r["id"] for r in feed(client, token, "b")] == [made]
    assert feed(client, token, "stock") == []  # nothing changed stock


def test_more_than_three_channels_or_an_unknown_type_is_rejected():
    four = {"a": "PRODUCTION", "b": "DOWN_TIME", "c": "PUNCH_CLOCK", "d": "STOCK"}
    with pytest.raises(ValueError):
        FusionOpsSimulator(FusionDataset(now=NOW, history_days=1), channels=four)
    with pytest.raises(ValueError):
        FusionOpsSimulator(FusionDataset(now=NOW, history_days=1), channels={"a": "INVOICE"})


def test_unknown_channel_is_a_404_with_a_json_message():
    _, client, token = make()
    response = client.get("/api/v1/changes/nope", query_string={"access_token": token})
    assert response.status_code == 404 and "message" in response.get_json()


def test_feed_calls_count_toward_the_rate_limit():
    _, client, token = make(rate_limit_per_minute=3)  # the token POST was the first
    assert [
        client.get("/api/v1/changes/production", query_string={"access_token": token}).status_code for _ in range(3)
    ] == [200, 200, 429]


def test_live_shop_keeps_changing_the_shop_over_http_and_logs_each_change():
    simulator = FusionOpsSimulator(FusionDataset(now=NOW, history_days=3), rate_limit_per_minute=100_000)
    with SimulatorServer(simulator) as server:
        token = requests.post(server.url + "/api/v1/authorization", auth=BASIC, timeout=5).json()["token"]
        with LiveShop(simulator, interval_seconds=0.02, seed=1) as shop:
            deadline = time.time() + 5
            while len(simulator.change_log) < 40 and time.time() < deadline:
                time.sleep(0.05)
        count = len(simulator.change_log)
        time.sleep(0.1)
        assert len(simulator.change_log) == count >= 40  # stopped means stopped
        assert shop._thread is None
        ops = {c.op for c in simulator.change_log}
        assert ops == {"create", "update", "delete"}
        fed = []
        while batch := requests.get(
            server.url + "/api/v1/changes/production", params={"access_token": token}, timeout=5
        ).json():
            assert len(batch) <= 25
            fed += batch
        changed = {c.entity_id for c in simulator.change_log if c.type == "PRODUCTION"}
        assert fed and {r["id"] for r in fed} == changed
        deleted = {c.entity_id for c in simulator.change_log if c.type == "PRODUCTION" and c.op == "delete"}
        assert {r["id"] for r in fed if r.get("status") == "deleted"} == deleted


def test_live_shop_makes_the_same_choices_for_the_same_seed():
    def run(seed: int) -> list[tuple[str, int, str]]:
        simulator = FusionOpsSimulator(FusionDataset(now=NOW, history_days=3))
        shop = LiveShop(simulator, seed=seed)
        return [(c.type, c.entity_id, c.op) for c in (shop.step() for _ in range(50))]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_generated_dataset_is_unchanged_for_the_same_seed_and_mutations_only_add():
    simulator, _, _ = make(dataset=FusionDataset(seed=42, now=NOW))
    LiveShop(simulator, seed=2).start().stop()  # a thread that never stepped changes nothing
    shop = LiveShop(simulator, seed=2)
    for _ in range(40):
        shop.step()
    fresh = FusionDataset(seed=42, now=NOW)
    again = FusionDataset(seed=42, now=NOW)
    for kind in ("production", "downtime", "punch", "order"):
        generated = fresh.records(kind)
        assert [(r.id, r.body, r.start, r.end) for r in generated] == [
            (r.id, r.body, r.start, r.end) for r in again.records(kind)
        ]
        mutated = simulator.data.records(kind)
        ids = [r.id for r in generated]
        assert [r.id for r in mutated[: len(generated)]] == ids
        assert all(r.id > ids[-1] for r in mutated[len(generated) :])  # new ids continue the sequence
    untouched = {c.entity_id for c in simulator.change_log}
    assert all(
        r.body == g.body and not r.deleted
        for r, g in zip(simulator.data.productions, fresh.productions, strict=False)  # mutations only add
        if r.id not in untouched
    )


# --- products and stock --------------------------------------------------------------------------------------
def test_product_channel_returns_an_updated_product_in_the_documented_shape_and_then_an_empty_array():
    simulator, client, token = make(channels=PRODUCT_CHANNELS)
    catalog_product = simulator.data.catalog.products[2]
    simulator.update_product(catalog_product.code, unit_price=99.5, name="Renamed part")
    [product] = feed(client, token, "products")
    assert list(product) == PRODUCT_FIELDS
    assert product["code"] == catalog_product.code and product["name"] == "Renamed part"
    assert product["unit-price"] == 99.5 and product["notification"] is None
    assert [op["code"] for op in product["operations"]] == list(catalog_product.operations)
    assert feed(client, token, "products") == []
    assert feed(client, token, "stock") == [] and feed(client, token, "production") == []  # no cascade
    assert [(c.type, c.entity_id, c.op) for c in simulator.change_log] == [("PRODUCT", catalog_product.code, "update")]


def test_deleted_product_carries_the_product_deleted_notification_and_leaves_the_endpoints():
    simulator, client, token = make(channels=PRODUCT_CHANNELS)
    kept, gone = simulator.data.catalog.products[0].code, simulator.data.catalog.products[1].code
    simulator.update_product(kept, observations="checked")
    simulator.delete_product(gone)
    records = feed(client, token, "products")
    assert [(r["code"], r["notification"]) for r in records] == [(kept, None), (gone, "product_deleted")]
    assert list(records[1]) == PRODUCT_FIELDS
    with pytest.raises(KeyError):
        simulator.update_product(gone, unit_price=1)
    with pytest.raises(KeyError):
        simulator.set_stock(gone, 5)
    query = {"access_token": token}
    assert client.get(f"/api/v1/products/{gone}", query_string=query).status_code == 404
    assert client.get(f"/api/v1/stock/{gone}", query_string=query).status_code == 404
    listed = [p["code"] for p in client.get("/api/v1/products", query_string=query).get_json()]
    assert gone not in listed and kept in listed
    assert simulator.change_log[-1] == Change(simulator.change_log[-1].time, "PRODUCT", gone, "delete")


def test_stock_channel_returns_the_current_stock_with_lots_summing_to_the_stock():
    simulator, client, token = make(channels=PRODUCT_CHANNELS)
    code = simulator.data.catalog.products[4].code
    old, older = lot_number(code, date(2020, 1, 2)), lot_number(code, date(2020, 1, 1))  # never today's lot
    before = simulator.data.stock[code].body
    simulator.set_stock(code, 40.0, lots={older: 15.0, old: 25.0})
    [stock] = feed(client, token, "stock")
    assert stock == {
        "product-code": code,
        "stock": 40.0,
        "lot": [{"code": older, "stock": 15.0}, {"code": old, "stock": 25.0}],
    }
    assert before != stock and feed(client, token, "stock") == []
    response = client.get(f"/api/v1/stock/{code}", query_string={"access_token": token})
    assert response.status_code == 200 and response.get_json() == stock
    # without lots: a rise lands in today's lot, a fall takes from the oldest lot first; the sum always holds
    simulator.set_stock(code, 50.0)
    simulator.set_stock(code, 30.0)
    [stock] = feed(client, token, "stock")
    today = datetime.now(timezone.utc).astimezone(simulator.data.tz).date()
    assert stock["stock"] == 30.0 and sum(lot["stock"] for lot in stock["lot"]) == 30.0
    assert stock["lot"] == [{"code": old, "stock": 20.0}, {"code": lot_number(code, today), "stock": 10.0}]
    assert [(c.type, c.entity_id, c.op) for c in simulator.change_log] == [("STOCK", code, "update")] * 3
    with pytest.raises(ValueError):
        simulator.set_stock(code, 10.0, lots={old: 9.0})  # lots must sum to the stock
    with pytest.raises(ValueError):
        simulator.set_stock(code, -1.0)


def test_product_changed_twice_before_a_read_appears_once_at_the_newest_place_with_its_latest_state():
    simulator, client, token = make(channels=PRODUCT_CHANNELS)
    first, second = (p.code for p in simulator.data.catalog.products[:2])
    simulator.update_product(first, unit_price=10)
    simulator.update_product(second, unit_price=20)
    simulator.update_product(first, unit_price=11, name="Latest name")
    assert simulator.pending_changes("products") == [second, first]
    records = feed(client, token, "products")
    assert [(r["code"], r["unit-price"], r["name"]) for r in records] == [
        (second, 20.0, simulator.data.catalog.products[1].name),
        (first, 11.0, "Latest name"),
    ]
    simulator.set_stock(first, 7.0)
    simulator.set_stock(second, 8.0)
    simulator.set_stock(first, 9.0)
    assert [(r["product-code"], r["stock"]) for r in feed(client, token, "stock")] == [(second, 8.0), (first, 9.0)]


def test_generated_products_and_stock_cover_the_catalog_and_lots_join_the_productions_lot_numbers():
    dataset = FusionDataset(seed=42, now=NOW, history_days=10)
    codes = [p.code for p in dataset.catalog.products]
    assert list(dataset.products) == codes and list(dataset.stock) == codes
    produced_lots = {(r.body["operation"]["product"], r.body["lot-number"]) for r in dataset.productions}
    stocked = 0
    for code, record in dataset.stock.items():
        body = record.body
        assert body["product-code"] == code and body["stock"] == sum(lot["stock"] for lot in body["lot"])
        assert all((code, lot["code"]) in produced_lots and lot["stock"] > 0 for lot in body["lot"])
        stocked += bool(body["lot"])
    assert stocked >= len(codes) // 2
    for code, record in dataset.products.items():
        stored = list(record.body)  # the feed's fields, plus those only the products endpoints show
        assert [f for f in stored if f not in PRODUCT_ENDPOINT_ONLY_FIELDS] == PRODUCT_FIELDS and record.id == code
        assert set(PRODUCT_ENDPOINT_ONLY_FIELDS) <= set(stored)
        assert record.body["unit-price"] == dataset.catalog.product(code).unit_price
    again = FusionDataset(seed=42, now=NOW, history_days=10)
    assert [r.body for r in again.products.values()] == [r.body for r in dataset.products.values()]
    assert [r.body for r in again.stock.values()] == [r.body for r in dataset.stock.values()]


def test_products_endpoints_list_get_and_create_a_product():
    simulator, client, token = make(channels=PRODUCT_CHANNELS)
    query = {"access_token": token}
    listed = client.get("/api/v1/products/", query_string=query).get_json()
    assert [p["code"] for p in listed] == [p.code for p in simulator.data.catalog.products]
    assert all("notification" not in p for p in listed)
    one = client.get("/api/v1/products/P-1003", query_string=query).get_json()
    assert one == listed[2]
    code = simulator.create_product("P-9001", "Prototype", unit_price=12.5, operations=["CUT", "PACK"])
    with pytest.raises(ValueError):
        simulator.create_product("P-9001", "Again")
    [fed] = feed(client, token, "products")
    assert code == "P-9001" and fed["code"] == code and fed["operations"][1]["code"] == "PACK"
    modified = {"modification-date": NOW.isoformat(), **query}
    assert [p["code"] for p in client.get("/api/v1/products", query_string=modified).get_json()] == [code]
    assert client.get(f"/api/v1/stock/{code}", query_string=query).get_json() == {
        "product-code": code,
        "stock": 0.0,
        "lot": [],
    }
    assert client.get("/api/v1/products/NOPE", query_string=query).status_code == 404


def test_live_shop_also_reprices_products_and_moves_stock_on_product_and_stock_channels():
    simulator, client, token = make(channels=PRODUCT_CHANNELS)
    shop = LiveShop(simulator, seed=4)
    for _ in range(300):
        shop.step()
    changed = {t: [c.entity_id for c in simulator.change_log if c.type == t] for t in ("PRODUCT", "STOCK")}
    assert changed["PRODUCT"] and changed["STOCK"]
    catalog = {p.code for p in simulator.data.catalog.products}
    assert set(changed["PRODUCT"]) <= catalog and set(changed["STOCK"]) <= catalog
    products = feed(client, token, "products")
    assert sorted(r["code"] for r in products) == sorted(set(changed["PRODUCT"]))
    stored = {r["code"]: simulator.data.products[r["code"]].body for r in products}
    assert all(
        r == {k: v for k, v in stored[r["code"]].items() if k not in PRODUCT_ENDPOINT_ONLY_FIELDS} for r in products
    )
    stock = feed(client, token, "stock")
    assert sorted(r["product-code"] for r in stock) == sorted(set(changed["STOCK"]))
    assert all(r["stock"] == pytest.approx(sum(lot["stock"] for lot in r["lot"])) for r in stock)
