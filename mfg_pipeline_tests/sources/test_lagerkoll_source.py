"""The Lagerkoll production orders source against its simulator: every order in every state lands once with state
names, UTC dates, articles, single articles and batches (engine and Dagster, with passing checks, and idempotent);
paging from 0 or from 1, ending on `pages` or on an empty page, and failing when pages were skipped; bad payloads
fail with errors naming system, endpoint and page while committed data stays intact; missing credentials are
named, error codes are shown and secrets are not; either credential style works; 429 + Retry-After is waited out."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import dagster
import pytest

from mfg_pipeline.engine.load import LoadReport
from mfg_pipeline.engine.refresh import load_stream
from mfg_pipeline.http.errors import MissingCredentialError, SourceHttpError, SourcePayloadError
from mfg_pipeline.orchestration.factory import partitioning, source_definitions
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.simulators.base import Fault, SimulatorServer
from mfg_pipeline.simulators.lagerkoll.app import LagerkollSimulator
from mfg_pipeline.simulators.lagerkoll.data import STATE_NAMES, LagerkollDataset, from_epoch_ms
from mfg_pipeline.sources.lagerkoll import SOURCE, make_client
from mfg_pipeline.sources.lagerkoll.client import LagerkollClient
from mfg_pipeline.sources.lagerkoll.settings import LagerkollSettings
from mfg_pipeline.sources.lagerkoll.streams import PRODUCTION_ORDERS
from mfg_pipeline.warehouse.store import Warehouse

NOW = datetime(2025, 3, 12, 10, 30, tzinfo=timezone.utc)
STORE = "store-4711"
API_KEY = "lk-api-key-9c1e55d2"
USER_ID = "user-2231"
USER_TOKEN = "lk-user-token-77ab30f1"
BASE = "/v1/production_orders"
LIST_PATH = f"{BASE}/production_orders_state"
LIST_ENDPOINT = f"GET {LIST_PATH}"
TABLES = [t.name for t in PRODUCTION_ORDERS.tables]


# --- fixtures and helpers --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def full_dataset() -> LagerkollDataset:
    """A week of the simulator's store: 112 orders over three pages of 50, in all four states (read-only here)."""
    return LagerkollDataset(seed=7, now=NOW, history_days=7)


def dataset_of(order_count: int) -> LagerkollDataset:
    """A store holding exactly `order_count` orders (with their batches), for exact page arithmetic."""
    dataset = LagerkollDataset(seed=7, now=NOW, history_days=3)
    kept = dataset.orders[:order_count]
    assert len(kept) == order_count
    dataset.orders = kept
    dataset.orders_by_id = {o["orderId"]: o for o in kept}
    dataset.batches = {o["orderId"]: dataset.batches[o["orderId"]] for o in kept}
    return dataset


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("MFG_DATA_DIR", str(path))
    monkeypatch.delenv("MFG_RATE_LIMIT_BACKEND", raising=False)
    return path


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[Callable[..., LagerkollSimulator]]:
    """Start a Lagerkoll simulator (kwargs go to LagerkollSimulator) and point LAGERKOLL_* at it."""
    servers: list[SimulatorServer] = []

    def start(dataset: LagerkollDataset, **kwargs) -> LagerkollSimulator:
        kwargs.setdefault("rate_limit_per_minute", 100_000)  # the limit is not the subject here
        simulator = LagerkollSimulator(
            dataset, store=STORE, api_key=API_KEY, user_id=USER_ID, user_token=USER_TOKEN, **kwargs
        )
        server = SimulatorServer(simulator).start()
        servers.append(server)
        monkeypatch.setenv("LAGERKOLL_BASE_URL", server.url)
        monkeypatch.setenv("LAGERKOLL_STORE", STORE)
        monkeypatch.setenv("LAGERKOLL_API_KEY", API_KEY)
        monkeypatch.setenv("LAGERKOLL_RATE_LIMIT_PER_MINUTE", "100000")
        monkeypatch.delenv("LAGERKOLL_USER_ID", raising=False)
        monkeypatch.delenv("LAGERKOLL_USER_TOKEN", raising=False)
        return simulator

    yield start
    for server in servers:
        server.stop()


def load(data_dir: Path, page_size: int | None = None, progress=None) -> LoadReport:
    """One engine-level load of the production orders, configured from the environment."""
    if page_size is None:
        client = make_client(data_dir)
    else:
        client = LagerkollClient(dataclasses.replace(LagerkollSettings.from_env(), page_size=page_size), data_dir)
    try:
        return load_stream(client, PRODUCTION_ORDERS, Warehouse(data_dir), progress=progress)
    finally:
        client.close()


def table_contents(data_dir: Path) -> dict[str, list[tuple]]:
    """Every landed row of every table, in DuckDB and in the published Parquet, in key order."""
    warehouse = Warehouse(data_dir)
    contents = {}
    for table in PRODUCTION_ORDERS.tables:
        columns = ", ".join(f'"{c}"' for c in table.column_names)
        key = ", ".join(table.primary_key)
        parquet = warehouse.parquet_file("lagerkoll", table.name, None)
        contents[table.name] = warehouse.query(f"SELECT {columns} FROM lagerkoll.{table.name} ORDER BY {key}")
        contents[f"{table.name}.parquet"] = warehouse.query(
            f"SELECT {columns} FROM read_parquet(?) ORDER BY {key}", [str(parquet)]
        )
    return contents


def landed_orders(data_dir: Path) -> dict[int, tuple]:
    """order id -> (state, state name, start, end, finish, articles, single articles, batches) as landed."""
    rows = Warehouse(data_dir).query("""
        SELECT o.order_id, o.state, o.state_name, o.start_date, o.end_date, o.finish_date,
               (SELECT count(*) FROM lagerkoll.production_order_articles c WHERE c.order_id = o.order_id),
               (SELECT count(*) FROM lagerkoll.production_order_single_articles c WHERE c.order_id = o.order_id),
               (SELECT count(*) FROM lagerkoll.production_order_batches c WHERE c.order_id = o.order_id)
        FROM lagerkoll.production_orders o""")
    assert len(rows) == len({r[0] for r in rows})
    return {r[0]: tuple(r[1:]) for r in rows}


def expected_orders(dataset: LagerkollDataset) -> dict[int, tuple]:
    """The same, from the simulator's ground truth."""

    def instant(ms: int | None) -> datetime | None:
        return None if ms is None else from_epoch_ms(ms)

    return {
        o["orderId"]: (
            o["state"],
            STATE_NAMES[o["state"]],
            instant(o["startDate"]),
            instant(o["endDate"]),
            instant(o["finishDate"]),
            len(o["articles"]),
            sum(len(g["singleArticles"]) for g in o["singleArticles"]),
            sum(len(a["batches"]) for a in dataset.batches[o["orderId"]]),
        )
        for o in dataset.orders
    }


def list_pages_requested(simulator: LagerkollSimulator) -> list[tuple[str | None, int]]:
    return [(r.query.get("page"), r.status) for r in simulator.requests(LIST_PATH)]


def wrapper(
    orders: list[dict], *, page: int = 0, pages: int = 1, page_size: int = 50, orders_count: int | None = None
) -> str:
    return json.dumps(
        {
            "page": page,
            "pages": pages,
            "pageSize": page_size,
            "ordersCount": len(orders) if orders_count is None else orders_count,
            "orders": orders,
        }
    )


# --- end to end --------------------------------------------------------------------------------------------------
def test_load_lands_every_order_in_every_state_once_with_utc_dates_and_children_and_a_rerun_changes_nothing(
    serve, data_dir, full_dataset
):
    simulator = serve(full_dataset)
    report = load(data_dir)

    assert {o["state"] for o in full_dataset.orders} == {0, 1, 2, 3}
    assert [page for page, _ in list_pages_requested(simulator)] == ["0", "1", "2"]
    assert landed_orders(data_dir) == expected_orders(full_dataset)
    assert all(start.utcoffset().total_seconds() == 0 for _, _, start, *_ in landed_orders(data_dir).values())
    expected_batches = sorted(
        (
            order_id,
            article["articleId"],
            entry["batchId"],
            entry["serialNr"],
            entry["orderedAmount"],
            entry["deliveredAmount"],
            entry["bestBefore"],
        )
        for order_id, articles in full_dataset.batches.items()
        for article in articles
        for entry in article["batches"]
    )
    assert (
        sorted(
            Warehouse(data_dir).query(
                "SELECT order_id, article_id, batch_id, serial_nr, ordered_amount, delivered_amount, best_before "
                "FROM lagerkoll.production_order_batches"
            )
        )
        == expected_batches
    )
    # Every state in one list, and one batch call per order.
    assert all(r.query["state_from"] == "0" and r.query["state_to"] == "3" for r in simulator.requests(LIST_PATH))
    batch_calls = [r for r in simulator.requests(BASE) if r.path.endswith("/batch")]
    assert sorted(int(r.path.split("/")[-2]) for r in batch_calls) == sorted(full_dataset.orders_by_id)
    assert report.source_rows["production_orders"] == len(full_dataset.orders)

    before = table_contents(data_dir)
    again = load(data_dir)
    assert table_contents(data_dir) == before
    assert again.source_rows["production_orders"] == report.source_rows["production_orders"]
    assert again.rows_staged == {table: 0 for table in TABLES}  # nothing changed: nothing rewritten
    assert again.duplicates_dropped == 0


def test_doc_example_scalars_land_the_same_typed_values(serve, data_dir, tmp_path, monkeypatch):
    """The doc's examples send `"state": "0"`, `"reserveInDepth": "false"` and `"waste": "0"`; its class tables
    say integer, boolean and double. Both land alike."""
    serve(dataset_of(12), scalar_style="typed")
    load(data_dir)
    typed = table_contents(data_dir)
    serve(dataset_of(12), scalar_style="doc_example")
    monkeypatch.setenv("MFG_DATA_DIR", str(tmp_path / "doc_example"))
    load(tmp_path / "doc_example")
    assert len(typed["production_orders"]) == 12
    assert table_contents(tmp_path / "doc_example") == typed


def test_dagster_materializes_every_table_and_all_asset_checks_pass(serve, data_dir, full_dataset):
    serve(full_dataset)
    result = dagster.materialize(
        source_definitions(SOURCE, partitioning()).assets,
        resources={"sources": SourcesResource(), "warehouse": WarehouseResource(data_dir=str(data_dir))},
    )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 2 * len(TABLES)
    assert {e.asset_key.path[-1] for e in evaluations} == set(TABLES)
    assert all(e.passed for e in evaluations), [
        (e.asset_key, e.check_name, e.description) for e in evaluations if not e.passed
    ]
    assert landed_orders(data_dir) == expected_orders(full_dataset)


# --- paging ------------------------------------------------------------------------------------------------------
def test_empty_store_lands_empty_tables_after_one_request(serve, data_dir):
    simulator = serve(dataset_of(0))
    report = load(data_dir)
    assert list_pages_requested(simulator) == [("0", 200)]
    assert report.source_rows == {name: 0 for name in TABLES}
    assert all(rows == [] for rows in table_contents(data_dir).values())


def test_exactly_one_full_page_takes_one_list_request(serve, data_dir):
    dataset = dataset_of(5)
    simulator = serve(dataset)
    load(data_dir, page_size=5)
    assert list_pages_requested(simulator) == [("0", 200)]
    assert landed_orders(data_dir) == expected_orders(dataset)


def test_short_last_page_ends_the_walk_after_the_pages_the_server_counts(serve, data_dir):
    dataset = dataset_of(13)
    simulator = serve(dataset)
    load(data_dir, page_size=5)
    assert list_pages_requested(simulator) == [("0", 200), ("1", 200), ("2", 200)]
    assert all(r.query["limit"] == "5" for r in simulator.requests(LIST_PATH))
    assert landed_orders(data_dir) == expected_orders(dataset)


def test_server_counting_pages_from_1_is_read_from_page_1_after_it_refuses_page_0(serve, data_dir):
    dataset = dataset_of(13)
    simulator = serve(dataset, first_page=1)
    load(data_dir, page_size=5)
    assert list_pages_requested(simulator) == [("0", 400), ("1", 200), ("2", 200), ("3", 200)]
    assert landed_orders(data_dir) == expected_orders(dataset)


def test_server_counting_pages_from_1_that_answers_page_0_empty_is_read_from_page_1(serve, data_dir):
    dataset = dataset_of(13)
    simulator = serve(dataset, first_page=1)
    simulator.inject_fault(Fault(LIST_PATH, status=200, body=wrapper([], pages=3, page_size=5, orders_count=13)))
    load(data_dir, page_size=5)
    assert list_pages_requested(simulator) == [("0", 200), ("1", 200), ("2", 200), ("3", 200)]
    assert landed_orders(data_dir) == expected_orders(dataset)


def test_server_counting_pages_from_1_that_answers_page_0_with_page_1_is_followed_by_its_echo(serve, data_dir):
    dataset = dataset_of(13)
    simulator = serve(dataset, first_page=1, below_first_page="first")
    load(data_dir, page_size=5)
    assert list_pages_requested(simulator) == [("0", 200), ("2", 200), ("3", 200)]  # page 0 was its page 1
    assert landed_orders(data_dir) == expected_orders(dataset)


def test_the_first_page_can_be_set_and_is_then_not_guessed(serve, data_dir, monkeypatch):
    dataset = dataset_of(13)
    simulator = serve(dataset, first_page=1)
    monkeypatch.setenv("LAGERKOLL_FIRST_PAGE", "1")
    load(data_dir, page_size=5)
    assert list_pages_requested(simulator) == [("1", 200), ("2", 200), ("3", 200)]
    assert landed_orders(data_dir) == expected_orders(dataset)
    monkeypatch.setenv("LAGERKOLL_FIRST_PAGE", "2")
    with pytest.raises(ValueError, match="LAGERKOLL_FIRST_PAGE must be auto, 0 or 1"):
        make_client(data_dir)


def test_an_empty_page_ends_the_walk_even_when_pages_says_there_are_more(serve, data_dir):
    dataset = dataset_of(5)
    simulator = serve(dataset)
    # Page 0 holds every order but claims 3 pages; the simulator's page 1 is then empty.
    simulator.inject_fault(Fault(LIST_PATH, status=200, body=wrapper(dataset.orders, pages=3, page_size=5)))
    load(data_dir, page_size=5)
    assert list_pages_requested(simulator) == [("0", 200), ("1", 200)]
    assert landed_orders(data_dir) == expected_orders(dataset)


def test_a_list_ending_short_of_orders_count_fails_and_keeps_the_landed_snapshot(serve, data_dir):
    dataset = dataset_of(13)
    simulator = serve(dataset)
    load(data_dir, page_size=5)
    before = table_contents(data_dir)
    # A server whose `pages` undercounts: one page of 5 while it counts 13 orders.
    simulator.inject_fault(
        Fault(LIST_PATH, status=200, body=wrapper(dataset.orders[:5], pages=1, page_size=5, orders_count=13))
    )
    with pytest.raises(SourcePayloadError) as failure:
        load(data_dir, page_size=5)
    assert str(failure.value).startswith(f"lagerkoll {LIST_ENDPOINT} page 0: ")
    assert "after 5 orders but ordersCount says 13" in str(failure.value)
    assert table_contents(data_dir) == before


# --- bad payloads ------------------------------------------------------------------------------------------------
def fails_and_keeps_tables(data_dir: Path, error_type: type[Exception], progress=None) -> str:
    """Load (expecting `error_type`) after a good load; returns the message once the tables are checked intact."""
    before = table_contents(data_dir)
    assert before["production_orders"]
    with pytest.raises(error_type) as failure:
        load(data_dir, page_size=5, progress=progress)
    assert table_contents(data_dir) == before
    assert not list((data_dir / "staging" / "lagerkoll").glob("*")), "the failed load's staging was not removed"
    return str(failure.value)


def test_a_page_that_is_not_json_fails_naming_system_endpoint_and_page_and_keeps_the_data(serve, data_dir):
    simulator = serve(dataset_of(13))
    load(data_dir, page_size=5)

    def break_next_page(stream, page, rows) -> None:
        if page.number == 0:
            simulator.inject_fault(Fault(LIST_PATH, status=200, body="not json", content_type="text/plain"))

    message = fails_and_keeps_tables(data_dir, SourcePayloadError, progress=break_next_page)
    assert message.startswith(f"lagerkoll {LIST_ENDPOINT} page 1: response is not JSON")


def test_a_page_without_the_wrapper_fails_naming_the_expected_shape(serve, data_dir):
    dataset = dataset_of(13)
    simulator = serve(dataset)
    load(data_dir, page_size=5)
    simulator.inject_fault(Fault(LIST_PATH, status=200, body=json.dumps(dataset.orders[:5])))  # a bare array
    message = fails_and_keeps_tables(data_dir, SourcePayloadError)
    assert message.startswith(f"lagerkoll {LIST_ENDPOINT} page 0: unexpected response shape")
    assert "{page, pages, pageSize, ordersCount, orders}" in message and "got a JSON array" in message


def test_an_order_field_of_the_wrong_type_fails_naming_the_order_and_field(serve, data_dir):
    dataset = dataset_of(13)
    simulator = serve(dataset)
    load(data_dir, page_size=5)
    broken = {**dataset.orders[2], "startDate": "yesterday"}
    simulator.inject_fault(
        Fault(LIST_PATH, status=200, body=wrapper([dataset.orders[0], dataset.orders[1], broken], pages=1, page_size=5))
    )
    message = fails_and_keeps_tables(data_dir, SourcePayloadError)
    assert message.startswith(f"lagerkoll {LIST_ENDPOINT} page 0: record 2 (orderId={broken['orderId']})")
    assert "field 'startDate'" in message and "'yesterday'" in message


def test_a_batch_answer_that_is_not_json_fails_naming_the_orders_batch_endpoint(serve, data_dir):
    dataset = dataset_of(13)
    simulator = serve(dataset)
    load(data_dir, page_size=5)
    order_id = dataset.orders[7]["orderId"]
    simulator.inject_fault(Fault(f"{BASE}/{order_id}/batch", status=200, body="not json", content_type="text/html"))
    message = fails_and_keeps_tables(data_dir, SourcePayloadError)
    assert message.startswith(f"lagerkoll GET {BASE}/{order_id}/batch: response is not JSON")


def test_batches_of_the_wrong_type_fail_naming_the_field(serve, data_dir):
    dataset = dataset_of(13)
    simulator = serve(dataset)
    load(data_dir, page_size=5)
    order_id = dataset.orders[0]["orderId"]
    simulator.inject_fault(
        Fault(
            f"{BASE}/{order_id}/batch", status=200, body=json.dumps([{"articleId": "P-1", "batches": "L250312-1001"}])
        )
    )
    message = fails_and_keeps_tables(data_dir, SourcePayloadError)
    assert message == f"lagerkoll GET {BASE}/{order_id}/batch: element 0: 'batches' must be an array, got string"


# --- credentials, error codes, secrets ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "unset, extra, variable",
    [
        (["LAGERKOLL_STORE"], {}, "LAGERKOLL_STORE"),
        (["LAGERKOLL_API_KEY"], {}, "LAGERKOLL_API_KEY"),
        (["LAGERKOLL_API_KEY"], {"LAGERKOLL_USER_ID": USER_ID}, "LAGERKOLL_USER_TOKEN"),
        (["LAGERKOLL_API_KEY"], {"LAGERKOLL_USER_TOKEN": USER_TOKEN}, "LAGERKOLL_USER_ID"),
    ],
    ids=["store", "api-key", "user-token-of-a-user-id", "user-id-of-a-user-token"],
)
def test_a_missing_credential_is_named_before_any_request(serve, data_dir, monkeypatch, unset, extra, variable):
    simulator = serve(dataset_of(1))
    for name in unset:
        monkeypatch.delenv(name)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(MissingCredentialError) as failure:
        make_client(data_dir)
    assert failure.value.variable == variable
    assert variable in str(failure.value)
    assert API_KEY not in str(failure.value) and USER_TOKEN not in str(failure.value)
    assert simulator.requests() == []


def test_refused_credentials_show_the_error_code_but_never_the_key(serve, data_dir, monkeypatch):
    serve(dataset_of(1))
    monkeypatch.setenv("LAGERKOLL_API_KEY", "lk-wrong-key-0d9e4b")
    with pytest.raises(SourceHttpError) as failure:
        load(data_dir)
    message = str(failure.value)
    assert message.startswith(f"lagerkoll {LIST_ENDPOINT} page 0: HTTP 401")
    assert '"errorCode":900001' in message and "Credentials don't match" in message
    assert "lk-wrong-key-0d9e4b" not in message


@pytest.mark.parametrize("style", ["api_key", "user_token"])
def test_an_error_body_echoing_the_secret_is_masked_and_keeps_its_error_code(serve, data_dir, monkeypatch, style):
    dataset = dataset_of(3)
    simulator = serve(dataset)
    if style == "user_token":
        monkeypatch.delenv("LAGERKOLL_API_KEY")
        monkeypatch.setenv("LAGERKOLL_USER_ID", USER_ID)
        monkeypatch.setenv("LAGERKOLL_USER_TOKEN", USER_TOKEN)
    secret = API_KEY if style == "api_key" else USER_TOKEN
    order_id = dataset.orders[1]["orderId"]
    simulator.inject_fault(
        Fault(
            f"{BASE}/{order_id}/batch",
            status=400,
            body=json.dumps(
                {
                    "errorCode": 903001,
                    "errorMessage": f"Error when getting production order (key {secret})",
                    "errorField": None,
                    "errorData": None,
                },
                separators=(",", ":"),
            ),
        )
    )
    with pytest.raises(SourceHttpError) as failure:
        load(data_dir)
    message = str(failure.value)
    assert message.startswith(f"lagerkoll GET {BASE}/{order_id}/batch: HTTP 400")
    assert '"errorCode":903001' in message and "(key ***)" in message
    assert secret not in message


def test_settings_repr_shows_no_credentials(serve, monkeypatch):
    serve(dataset_of(1))
    assert API_KEY not in repr(LagerkollSettings.from_env())
    monkeypatch.setenv("LAGERKOLL_USER_ID", USER_ID)
    monkeypatch.setenv("LAGERKOLL_USER_TOKEN", USER_TOKEN)
    assert USER_TOKEN not in repr(LagerkollSettings.from_env())


def test_user_id_and_user_token_replace_the_api_key_when_both_are_set(serve, data_dir, monkeypatch):
    dataset = dataset_of(4)
    serve(dataset)
    monkeypatch.setenv("LAGERKOLL_USER_ID", USER_ID)
    monkeypatch.setenv("LAGERKOLL_USER_TOKEN", USER_TOKEN)
    client = make_client(data_dir)
    try:
        assert client.api.auth.headers == {"store": STORE, "user_id": USER_ID, "user_token": USER_TOKEN}
    finally:
        client.close()
    monkeypatch.delenv("LAGERKOLL_API_KEY")  # not needed at all then
    load(data_dir)
    assert landed_orders(data_dir) == expected_orders(dataset)


def test_client_budget_defaults_to_the_documented_200_per_minute(serve, monkeypatch):
    serve(dataset_of(1))
    monkeypatch.delenv("LAGERKOLL_RATE_LIMIT_PER_MINUTE")
    assert LagerkollSettings.from_env().rate_limit_per_minute == 200


def test_429_with_retry_after_is_waited_out_and_the_load_completes(serve, data_dir):
    dataset = dataset_of(6)
    simulator = serve(dataset)
    simulator.inject_fault(
        Fault(
            LIST_PATH,
            status=429,
            headers={"Retry-After": "1"},
            times=2,
            body=json.dumps(
                {"errorCode": 900429, "errorMessage": "Too many requests", "errorField": None, "errorData": None}
            ),
        )
    )
    report = load(data_dir)
    calls = simulator.requests(LIST_PATH)
    assert [c.status for c in calls] == [429, 429, 200]
    assert calls[1].time - calls[0].time >= 1.0 and calls[2].time - calls[1].time >= 1.0
    assert report.throttled == 2
    assert landed_orders(data_dir) == expected_orders(dataset)
