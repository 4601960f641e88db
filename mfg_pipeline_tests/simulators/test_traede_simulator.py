"""The Traede export simulator behaves as its doc says: both credentials, per-system export state (unmarked
orders keep coming back, marked ones leave until touched or re-exported), at most 10 marks per call, paging from
0, includes[] nesting, include_open/include_closed, bruno filter groups, 429 with Retry-After, and determinism."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests

from mfg_pipeline.simulators.base import SimulatorServer
from mfg_pipeline.simulators.catalog import build_catalog
from mfg_pipeline.simulators.traede.app import TraedeSimulator
from mfg_pipeline.simulators.traede.data import LEGACY_SYSTEM_ID, TraedeDataset, format_timestamp

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
TOKEN = "demo-traede-token"
APP_KEY = "demo-traede-app-key"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Traede-App-Key": APP_KEY}
EXPORT = "/v10/production-orders/export"
MARK = "/v10/production-orders/mark-as-exported"


@pytest.fixture(scope="module")
def shared_simulator():
    # One server for the module (stopping one takes half a second); tests keep apart by using their own
    # system_id, since export state is per system. The rate limit is the 429 test's business.
    app = TraedeSimulator(TraedeDataset(now=NOW), rate_limit_per_minute=100_000)
    with SimulatorServer(app) as server:
        yield app, server.url


@pytest.fixture
def simulator(shared_simulator, request):
    app, url = shared_simulator
    return app, url, request.node.name


def export(url: str, system_id: str | None, **params) -> requests.Response:
    query = [("system_id", system_id)] if system_id is not None else []
    for name, value in params.items():
        values = value if isinstance(value, list) else [value]
        query += [("includes[]" if name == "includes" else name, v) for v in values]
    return requests.get(url + EXPORT, params=query, headers=AUTH, timeout=5)


def export_ids(url: str, system_id: str, **params) -> list[int]:
    """Every order the export gives, page by page from 0 until an empty page."""
    ids, page = [], 0
    while True:
        response = export(url, system_id, page=page, **params)
        assert response.status_code == 200, response.text
        orders = response.json()["production_orders"]
        if not orders:
            return ids
        ids += [o["id"] for o in orders]
        page += 1


def mark(url: str, system_id: str, order_ids: list[int]) -> requests.Response:
    items = [{"production_order_id": i, "system_id": system_id, "note": "synced by test"} for i in order_ids]
    return requests.post(url + MARK, json={"production_orders": items}, headers=AUTH, timeout=5)


def mark_all(url: str, system_id: str, order_ids: list[int]) -> None:
    for start in range(0, len(order_ids), 10):
        assert mark(url, system_id, order_ids[start : start + 10]).status_code == 200


def test_both_bearer_token_and_app_key_are_required(simulator):
    _, url, system = simulator
    params = {"system_id": system}
    attempts = {
        "nothing": {},
        "token only": {"Authorization": f"Bearer {TOKEN}"},
        "app key only": {"X-Traede-App-Key": APP_KEY},
        "wrong token": {"Authorization": "Bearer nope", "X-Traede-App-Key": APP_KEY},
        "wrong app key": {"Authorization": f"Bearer {TOKEN}", "X-Traede-App-Key": "nope"},
    }
    for headers in attempts.values():
        assert requests.get(url + EXPORT, params=params, headers=headers, timeout=5).status_code == 401
    assert requests.post(url + MARK, json={"production_orders": []}, timeout=5).status_code == 401
    assert requests.get(url + EXPORT, params=params, headers=AUTH, timeout=5).status_code == 200
    with_query_token = requests.get(
        url + EXPORT, params={**params, "access_token": TOKEN}, headers={"X-Traede-App-Key": APP_KEY}, timeout=5
    )
    assert with_query_token.status_code == 200


def test_export_without_system_id_is_a_bad_request(simulator):
    _, url, _ = simulator
    assert export(url, None).status_code == 400


def test_paging_from_zero_sees_every_unexported_open_order_once(simulator):
    app, url, system = simulator
    open_ids = [o.id for o in app.data.orders_with_status("open")]
    assert 100 <= len(app.data.orders) <= 300
    first_page = export(url, system).json()["production_orders"]
    assert [o["id"] for o in first_page] == open_ids[:20]  # default limit 20, ordered by id
    seen = export_ids(url, system, limit=7)
    assert seen == open_ids and len(set(seen)) == len(seen)
    capped = export(url, system, limit=500, include_open=1, include_closed=1).json()["production_orders"]
    assert len(capped) == 60  # limit is capped at 60


def test_marked_orders_leave_the_export_and_unmarked_keep_coming_back(simulator):
    app, url, system = simulator
    before = export_ids(url, system)
    response = mark(url, system, before[:10])
    assert response.status_code == 200
    assert [m["production_order_id"] for m in response.json()["production_orders"]] == before[:10]
    assert export_ids(url, system) == before[10:]
    assert export_ids(url, system) == before[10:]  # not marked: still there on the next run
    assert export_ids(url, system + "-other") == before  # export state is per system_id
    assert set(app.data.export_state[system]) == set(before[:10])


def test_marking_again_is_idempotent(simulator):
    app, url, system = simulator
    order_id = export_ids(url, system)[0]
    assert mark(url, system, [order_id]).status_code == 200
    assert mark(url, system, [order_id, order_id]).status_code == 200
    assert order_id not in export_ids(url, system)
    assert [e["production_order_id"] for e in app.data.export_log if e["system_id"] == system] == [order_id] * 3


def test_marking_with_php_form_fields_works_like_json(simulator):
    _, url, system = simulator
    order_id = export_ids(url, system)[0]
    form = {
        "production_orders[0][production_order_id]": str(order_id),
        "production_orders[0][system_id]": system,
        "production_orders[0][note]": "form post",
    }
    assert requests.post(url + MARK, data=form, headers=AUTH, timeout=5).status_code == 200
    assert order_id not in export_ids(url, system)


def test_touched_order_comes_back_after_being_marked(simulator):
    app, url, system = simulator
    ids = export_ids(url, system)
    mark_all(url, system, ids)
    assert export_ids(url, system) == []
    touched_at = app.touch(ids[3])
    assert export_ids(url, system) == [ids[3]]
    assert export(url, system).json()["production_orders"][0]["updated_at"] == format_timestamp(touched_at)
    mark_all(url, system, [ids[3]])
    assert export_ids(url, system) == []


def test_more_than_ten_marks_per_call_are_rejected_and_nothing_is_marked(simulator):
    app, url, system = simulator
    ids = export_ids(url, system)
    response = mark(url, system, ids[:11])
    assert response.status_code == 422
    assert "10" in response.json()["errors"][0]["detail"]
    assert export_ids(url, system) == ids
    assert system not in app.data.export_state


def test_unknown_or_incomplete_marks_reject_the_whole_call(simulator):
    _, url, system = simulator
    ids = export_ids(url, system)
    unknown = mark(url, system, [ids[0], 999_999])
    assert unknown.status_code == 422
    assert any("999999" in e["detail"] for e in unknown.json()["errors"])
    no_system = requests.post(
        url + MARK, json={"production_orders": [{"production_order_id": ids[0]}]}, headers=AUTH, timeout=5
    )
    assert no_system.status_code == 422
    assert requests.post(url + MARK, json={"production_orders": []}, headers=AUTH, timeout=5).status_code == 422
    assert export_ids(url, system) == ids


def test_includes_control_which_relations_are_nested(simulator):
    app, url, system = simulator
    catalog = build_catalog()
    plain = export(url, system).json()["production_orders"][0]
    assert "lines" not in plain and "supplier" not in plain
    lines_only = export(url, system, includes="lines").json()["production_orders"][0]
    assert lines_only["lines"] and all("product" not in line for line in lines_only["lines"])
    for order in export(url, system, includes=["lines", "lines.product"]).json()["production_orders"]:
        for line in order["lines"]:
            assert line["product"]["id"] == line["product_id"]
            assert line["product"]["item_number"] in {p.code for p in catalog.products}
            assert "variant" not in line
    implied = export(url, system, includes=["lines.variant", "supplier"]).json()["production_orders"][0]
    first_line = implied["lines"][0]  # lines.variant alone loads the lines too
    assert first_line["variant"]["sku"].startswith(app.data.products[first_line["product_id"]]["item_number"])
    assert implied["supplier"]["name"] in {s.name for s in catalog.suppliers}
    order = app.data.order(plain["id"])
    assert implied == app.data.render_order(order, frozenset({"lines", "lines.variant", "supplier"}))
    assert export(url, system, includes="shipments").status_code == 400


def test_include_open_adds_drafts_and_include_closed_adds_closed_orders(simulator):
    app, url, system = simulator

    def statuses(**flags) -> set[str]:
        return {app.data.order(i).status for i in export_ids(url, system, **flags)}

    assert statuses() == {"open"}
    assert statuses(include_open=1) == {"open", "draft"}
    assert statuses(include_closed=1) == {"open", "closed"}
    assert len(export_ids(url, system, include_open=1, include_closed=1)) == len(app.data.orders)
    assert export(url, system, include_open="true").status_code == 400


def test_not_exported_since_re_exports_orders_marked_at_or_after_it(simulator):
    _, url, system = simulator
    ids = export_ids(url, system)
    before_marking = "2024-03-01 11:59:00"
    mark_all(url, system, ids)
    assert export_ids(url, system) == []
    assert export_ids(url, system, not_exported_since=before_marking) == ids
    assert export_ids(url, system, not_exported_since="2030-01-01T00:00:00Z") == []  # marks before it stand
    assert export(url, system, not_exported_since="yesterday").status_code == 400


def test_legacy_system_gets_never_exported_and_updated_since_orders_only(simulator):
    app, url, _ = simulator
    state = app.data.export_state[LEGACY_SYSTEM_ID]
    expected = [o.id for o in app.data.orders_with_status("open") if o.id not in state or o.updated_at > state[o.id]]
    assert 0 < len(expected) < len(app.data.orders_with_status("open"))
    assert export_ids(url, LEGACY_SYSTEM_ID) == expected


def test_filter_groups_select_on_updated_at_in_bruno_syntax(simulator):
    app, url, system = simulator
    cutoff = "2024-02-20 00:00:00"
    group = {
        "filter_groups[0][filters][0][key]": "updated_at",
        "filter_groups[0][filters][0][value]": cutoff,
        "filter_groups[0][filters][0][operator]": "gt",
        "filter_groups[0][or]": "false",
    }
    expected = [o.id for o in app.data.orders_with_status("open") if o.body["updated_at"] > cutoff]
    assert len(expected) > 0
    assert export_ids(url, system, **group) == expected
    either = {
        **group,
        "filter_groups[0][or]": "true",
        "filter_groups[0][filters][1][key]": "created_at",
        "filter_groups[0][filters][1][value]": "2024-01-2",
        "filter_groups[0][filters][1][operator]": "sw",
    }
    expected_either = [
        o.id
        for o in app.data.orders_with_status("open")
        if o.body["updated_at"] > cutoff or o.body["created_at"].startswith("2024-01-2")
    ]
    assert len(expected) < len(expected_either)
    assert export_ids(url, system, **either) == expected_either
    assert export(url, system, **{**group, "filter_groups[0][filters][0][operator]": "like"}).status_code == 400
    assert export(url, system, **{**group, "filter_groups[0][filters][0][key]": "status"}).status_code == 400


def test_too_many_requests_get_429_with_retry_after():
    app = TraedeSimulator(TraedeDataset(now=NOW), rate_limit_per_minute=3)
    with SimulatorServer(app) as server:
        codes = [export(server.url, "warehouse").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        refused = export(server.url, "warehouse")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_same_seed_and_now_give_the_same_records_and_another_seed_does_not():
    everything = frozenset(
        {
            "lines",
            "lines.product",
            "lines.variant",
            "supplier",
            "deliveryNotes",
            "salesOrders",
            "salesOrders.lines",
            "salesOrders.lines.product",
            "salesOrders.delivery",
            "salesOrders.shop",
        }
    )

    def records(seed: int) -> tuple[list[dict], dict]:
        data = TraedeDataset(seed=seed, now=NOW)
        return [data.render_order(o, everything) for o in data.orders], data.export_state

    assert records(42) == records(42)
    assert records(42) != records(7)


def test_unpaged_mode_answers_every_due_order_regardless_of_page():
    app = TraedeSimulator(TraedeDataset(now=NOW), export_paging="unpaged")
    with SimulatorServer(app) as server:
        open_ids = [o.id for o in app.data.orders_with_status("open")]
        for page in (0, 1, 5):
            orders = export(server.url, "warehouse", page=page, limit=5).json()["production_orders"]
            assert [o["id"] for o in orders] == open_ids
