"""The Fulcrum source against the Fulcrum simulator: daily job partitions on exclusive createdAfterUtc/Before filters
sent in the JSON body (midnight jobs land once, reruns replace), items to make and operations fetched per job,
invoice/line item, sales order and customer snapshots, the Dagster assets and their checks, Skip/Take edge cases,
malformed payloads that leave committed data intact, and credentials kept out of errors and logs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from dagster import materialize
from werkzeug.wrappers import Response

from mfg_pipeline.declarations import PartitionWindow, Stream
from mfg_pipeline.engine.load import LoadReport
from mfg_pipeline.engine.refresh import load_stream
from mfg_pipeline.http.errors import MissingCredentialError, SourceHttpError, SourcePayloadError
from mfg_pipeline.http.pagination import OffsetPaginator
from mfg_pipeline.orchestration.factory import partitioning, source_definitions, table_key
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.simulators.base import Fault, SimulatorServer
from mfg_pipeline.simulators.fulcrum.app import FulcrumSimulator
from mfg_pipeline.simulators.fulcrum.data import FulcrumDataset, FulcrumRecord
from mfg_pipeline.sources.fulcrum import SOURCE, make_client
from mfg_pipeline.sources.fulcrum.settings import FulcrumSettings
from mfg_pipeline.sources.fulcrum.streams import CUSTOMERS, INVOICES, ITEMS, JOBS, SALES_ORDERS
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests.conftest import SIM_NOW

UTC = timezone.utc
TOKEN = "fulcrum-test-token-8c41d7e2b9"
JOBS_LIST = "/api/jobs/list"
INVOICES_LIST = "/api/invoices/list"
HIGH_LIMIT = 100_000  # requests per minute: never the subject except where a test says so
DAYS = (date(2026, 11, 8), date(2026, 11, 9), date(2026, 11, 10))  # a Sunday, then two working days


# --- fixtures and helpers --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fulcrum_dataset() -> FulcrumDataset:
    return FulcrumDataset(seed=42, now=SIM_NOW)


@pytest.fixture
def serve_fulcrum(
    monkeypatch: pytest.MonkeyPatch, data_dir: Path, fulcrum_dataset: FulcrumDataset
) -> Iterator[Callable[..., FulcrumSimulator]]:
    """Start a Fulcrum simulator (kwargs go to FulcrumSimulator) and point FULCRUM_* at it."""
    servers: list[SimulatorServer] = []

    def serve(page_size: int | None = None, **kwargs) -> FulcrumSimulator:
        kwargs.setdefault("dataset", fulcrum_dataset)
        kwargs.setdefault("rate_limit_per_minute", HIGH_LIMIT)
        simulator = FulcrumSimulator(api_token=TOKEN, **kwargs)
        server = SimulatorServer(simulator).start()
        servers.append(server)
        monkeypatch.setenv("FULCRUM_BASE_URL", server.url)
        monkeypatch.setenv("FULCRUM_API_TOKEN", TOKEN)
        monkeypatch.setenv("FULCRUM_RATE_LIMIT_PER_MINUTE", str(HIGH_LIMIT))
        if page_size is None:
            monkeypatch.delenv("FULCRUM_PAGE_SIZE", raising=False)
        else:
            monkeypatch.setenv("FULCRUM_PAGE_SIZE", str(page_size))
        return simulator

    yield serve
    for server in servers:
        server.stop()


@pytest.fixture
def fulcrum(serve_fulcrum) -> FulcrumSimulator:
    """A Fulcrum simulator with the documented defaults (Take up to 1000, child lists paged)."""
    return serve_fulcrum()


def day_window(day: date) -> PartitionWindow:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return PartitionWindow(day, start, start + timedelta(days=1))


def load(data_dir: Path, stream: Stream, day: date | None = None) -> LoadReport:
    client = make_client(data_dir)
    try:
        return load_stream(client, stream, Warehouse(data_dir), window=day_window(day) if day else None)
    finally:
        client.close()


def utc(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def jobs_created_on(dataset: FulcrumDataset, day: date) -> list[FulcrumRecord]:
    window = day_window(day)
    return [job for job in dataset.jobs if window.start <= job.created < window.end]


def query(data_dir: Path, sql: str, params: list | tuple = ()) -> list[tuple]:
    return Warehouse(data_dir).query(sql, params)


def replace_handler_for_page(simulator: FulcrumSimulator, handler: str, skip: str, response: Response) -> None:
    """Answer `response` instead of the real page whose Skip is `skip` (other pages stay real)."""
    original = getattr(simulator, handler)

    def answer(request, company, **path):
        if request.args.get("Skip") == skip:
            return response
        return original(request, company, **path)

    setattr(simulator, handler, answer)


# --- end to end at engine level, against the simulator's ground truth -----------------------------------------
def expected_job_row(job: FulcrumRecord) -> tuple:
    body = job.body
    return (
        body["number"],
        body["name"],
        body["status"],
        body["priority"],
        body["parentItemId"],
        float(body["quantityToMake"]),
        utc(body["productionDueDate"]),
        body["salesOrderId"],
        body["salesOrderLineItemId"],
        utc(body["createdUtc"]),
    )


def test_three_days_of_jobs_land_exactly_the_jobs_created_each_day_with_items_and_operations_once(
    fulcrum, data_dir, fulcrum_dataset
):
    for day in DAYS:
        load(data_dir, JOBS, day)

    rows = query(
        data_dir,
        "SELECT id, partition_date, number, name, status, priority, parent_item_id, "
        "quantity_to_make, production_due_date, sales_order_id, sales_order_line_item_id, "
        "created_utc FROM fulcrum.jobs",
    )
    landed = {row[0]: (row[1], row[2:]) for row in rows}
    assert len(landed) == len(rows)  # no job in two partitions
    expected = {job.id: (day, expected_job_row(job)) for day in DAYS for job in jobs_created_on(fulcrum_dataset, day)}
    assert landed == expected
    # Every day has jobs created exactly at its UTC midnight: they belong to that day, not the one before.
    for day in DAYS:
        midnight = day_window(day).start
        at_midnight = [job.id for job in fulcrum_dataset.jobs if job.created == midnight]
        assert at_midnight and all(landed[job_id][0] == day for job_id in at_midnight)

    items = query(
        data_dir,
        "SELECT job_id, position, item_to_make_id, item_id, quantity_to_make, quantity_made, "
        "is_custom, status, partition_date FROM fulcrum.job_items_to_make",
    )
    assert {row[:8] for row in items} == {
        (
            job_id,
            position,
            item.id,
            item.body["itemId"],
            float(item.body["quantityToMake"]),
            float(item.body["quantityMade"]),
            item.body["isCustom"],
            item.body["status"],
        )
        for job_id in expected
        for position, item in enumerate(fulcrum_dataset.items_to_make[job_id])
    }
    assert all(row[8] == landed[row[0]][0] for row in items)  # children share their job's partition

    operations = query(
        data_dir,
        "SELECT job_id, item_to_make_id, operation_id, operation_order, name, status, "
        "scheduled_start_utc, custom_fields FROM fulcrum.job_operations",
    )
    expected_operations = {
        (
            job_id,
            item.id,
            op.id,
            op.body["order"],
            op.body["name"],
            op.body["status"],
            utc(op.body["scheduledStartUtc"]),
            json.dumps(op.body["customFields"], sort_keys=True, separators=(",", ":")),
        )
        for job_id in expected
        for item in fulcrum_dataset.items_to_make[job_id]
        for op in fulcrum_dataset.operations[item.id]
    }
    assert expected_operations and set(operations) == expected_operations
    assert len(operations) == len(expected_operations)


def test_rerunning_a_day_replaces_it_without_duplicates(fulcrum, data_dir, fulcrum_dataset):
    first = load(data_dir, JOBS, DAYS[1])
    counts = {
        table: query(data_dir, f"SELECT count(*), count(DISTINCT {key}) FROM fulcrum.{table}")[0]
        for table, key in (("jobs", "id"), ("job_items_to_make", "item_to_make_id"), ("job_operations", "operation_id"))
    }
    second = load(data_dir, JOBS, DAYS[1])
    assert second.source_rows["jobs"] == first.source_rows["jobs"]
    assert second.rows_staged == {table: 0 for table in first.rows_staged}  # unchanged: nothing rewritten
    assert first.source_rows["jobs"] == len(jobs_created_on(fulcrum_dataset, DAYS[1]))
    for table, key in (("jobs", "id"), ("job_items_to_make", "item_to_make_id"), ("job_operations", "operation_id")):
        total, distinct = query(data_dir, f"SELECT count(*), count(DISTINCT {key}) FROM fulcrum.{table}")[0]
        assert total == distinct == counts[table][0] == first.source_rows[table]


def test_created_filters_go_in_the_json_body_and_children_are_fetched_only_for_the_days_jobs(
    fulcrum, data_dir, fulcrum_dataset
):
    day = DAYS[2]
    report = load(data_dir, JOBS, day)
    # The engine asks for a window widened by 5 minutes; had the filters gone in the query (which Fulcrum
    # ignores), every job of the dataset would have come back and been dropped here.
    window = day_window(day)
    margin = JOBS.window.margin
    in_margins = [
        job
        for job in fulcrum_dataset.jobs
        if window.start - margin < job.created < window.start or window.end <= job.created < window.end + margin
    ]
    assert in_margins  # the next day's midnight jobs
    assert report.outside_window_dropped == len(in_margins)
    list_calls = fulcrum.requests(JOBS_LIST)
    assert {key for call in list_calls for key in call.query} == {"Skip", "Take", "Sort.Field", "Sort.Dir"}
    jobs_fetched = {
        call.path.split("/")[3] for call in fulcrum.requests("/api/jobs/") if call.path.endswith("/items-to-make/list")
    }
    assert jobs_fetched == {job.id for job in jobs_created_on(fulcrum_dataset, day)}


def test_snapshots_equal_the_simulators_invoices_line_items_sales_orders_and_customers(
    fulcrum, data_dir, fulcrum_dataset
):
    for stream in (INVOICES, SALES_ORDERS, CUSTOMERS):
        load(data_dir, stream)

    invoices = query(
        data_dir,
        "SELECT id, number, issue_date, status, customer_id, sales_order_id, due_date, total, "
        "deleted, billing_address FROM fulcrum.invoices",
    )
    assert {row[:9] for row in invoices} == {
        (
            i.id,
            i.body["number"],
            utc(i.body["issueDate"]),
            i.body["status"],
            i.body["customerId"],
            i.body["salesOrderId"],
            utc(i.body["dueDate"]),
            i.body["total"],
            i.body["deleted"],
        )
        for i in fulcrum_dataset.invoices
    }
    assert all(
        json.loads(row[9]) == next(i.body["billingAddress"] for i in fulcrum_dataset.invoices if i.id == row[0])
        for row in invoices
    )

    lines = query(
        data_dir,
        "SELECT invoice_id, position, line_item_id, line_type, quantity, discounted_price, "
        "name, tax_code_id, sales_order_line_item_id FROM fulcrum.invoice_line_items",
    )
    assert set(lines) == {
        (
            invoice_id,
            position,
            line.id,
            line.body["type"],
            float(line.body["quantity"]),
            float(line.body["discountedPrice"]),
            line.body["name"],
            line.body["taxCodeId"],
            line.body["salesOrderLineItemId"],
        )
        for invoice_id, items in fulcrum_dataset.invoice_line_items.items()
        for position, line in enumerate(items)
    }

    orders = query(
        data_dir,
        "SELECT id, number, ordered_date, status, customer_id, subtotal, external_quote_url FROM fulcrum.sales_orders",
    )
    assert set(orders) == {
        (
            o.id,
            o.body["number"],
            utc(o.body["orderedDate"]),
            o.body["status"],
            o.body["customerId"],
            o.body["subtotal"],
            o.body["externalQuoteUrl"],
        )
        for o in fulcrum_dataset.sales_orders
    }

    customers = query(
        data_dir, "SELECT id, name, customer_code, credit_limit, is_taxable, tax_rate_ids FROM fulcrum.customers"
    )
    assert {row[:5] + (tuple(json.loads(row[5])),) for row in customers} == {
        (
            c.id,
            c.body["name"],
            c.body["customerCode"],
            c.body["creditLimit"],
            c.body["isTaxable"],
            tuple(c.body["taxRateIds"]),
        )
        for c in fulcrum_dataset.customers
    }


def test_child_lists_land_the_same_when_the_server_ignores_paging_on_them(serve_fulcrum, data_dir, fulcrum_dataset):
    # The doc gives the child lists no Skip/Take: a server may send each whole, whatever is asked.
    serve_fulcrum(page_child_lists=False)
    report = load(data_dir, JOBS, DAYS[2])
    jobs = jobs_created_on(fulcrum_dataset, DAYS[2])
    assert report.source_rows == {
        "jobs": len(jobs),
        "job_items_to_make": sum(len(fulcrum_dataset.items_to_make[j.id]) for j in jobs),
        "job_operations": sum(
            len(fulcrum_dataset.operations[i.id]) for j in jobs for i in fulcrum_dataset.items_to_make[j.id]
        ),
    }


def test_a_child_list_page_longer_than_take_is_the_whole_list():
    paginator = OffsetPaginator(take=2, whole_list_when_longer=True)
    first = paginator.first()
    assert paginator.next(first, [{"id": "a"}, {"id": "b"}, {"id": "c"}], None) is None
    assert paginator.next(first, [{"id": "a"}, {"id": "b"}], None) == {"Skip": 2, "Take": 2}


def test_a_429_on_a_child_list_is_retried_after_retry_after(fulcrum, data_dir, fulcrum_dataset):
    job = jobs_created_on(fulcrum_dataset, DAYS[2])[0]
    items_path = f"/api/jobs/{job.id}/items-to-make/list"
    fulcrum.inject_fault(Fault(items_path, status=429, headers={"Retry-After": "1"}))
    report = load(data_dir, JOBS, DAYS[2])
    calls = fulcrum.requests(items_path)
    assert [c.status for c in calls] == [429, 200] and calls[1].time - calls[0].time >= 1.0
    assert report.throttled == 1
    assert query(data_dir, "SELECT count(*) FROM fulcrum.job_items_to_make WHERE job_id = ?", [job.id])[0][0] == len(
        fulcrum_dataset.items_to_make[job.id]
    )


# --- through Dagster ------------------------------------------------------------------------------------------
def test_dagster_materializes_a_jobs_partition_and_the_snapshots_with_every_check_passing(
    fulcrum, data_dir, fulcrum_dataset
):
    assets = source_definitions(SOURCE, partitioning()).assets
    resources = {"sources": SourcesResource(), "warehouse": WarehouseResource(data_dir=str(data_dir))}
    partitioned = [table_key(SOURCE, t) for s in SOURCE.streams if s.partitioned for t in s.tables]
    snapshots = [table_key(SOURCE, t) for s in SOURCE.streams if not s.partitioned for t in s.tables]
    for selection, partition_key in ((partitioned, "2026-11-10"), (snapshots, None)):
        result = materialize(assets, partition_key=partition_key, resources=resources, selection=selection)
        assert result.success
        materialized = {event.asset_key for event in result.get_asset_materialization_events()}
        assert materialized == set(selection)
        evaluations = result.get_asset_check_evaluations()
        assert len(evaluations) == 2 * len(selection)
        assert all(evaluation.passed for evaluation in evaluations), [
            (e.asset_key, e.check_name, e.description) for e in evaluations if not e.passed
        ]
    assert {
        r[0] for r in query(data_dir, "SELECT id FROM fulcrum.jobs WHERE partition_date = ?", [date(2026, 11, 10)])
    } == {j.id for j in jobs_created_on(fulcrum_dataset, date(2026, 11, 10))}
    assert query(data_dir, "SELECT count(*) FROM fulcrum.invoices")[0][0] == len(fulcrum_dataset.invoices)


# --- pagination edge cases ------------------------------------------------------------------------------------
def test_an_empty_result_is_one_empty_page_and_lands_an_empty_day(fulcrum, data_dir):
    report = load(data_dir, JOBS, date(2026, 1, 15))  # before the simulator's history
    assert report.source_rows == {"jobs": 0, "job_items_to_make": 0, "job_operations": 0}
    assert [call.query["Skip"] for call in fulcrum.requests(JOBS_LIST)] == ["0"]
    assert query(data_dir, "SELECT count(*) FROM fulcrum.jobs")[0][0] == 0


def test_exactly_one_full_page_is_followed_by_one_empty_page(serve_fulcrum, data_dir, fulcrum_dataset):
    simulator = serve_fulcrum(page_size=len(fulcrum_dataset.customers))
    report = load(data_dir, CUSTOMERS)
    assert [call.query["Skip"] for call in simulator.requests("/api/customers/list")] == [
        "0",
        str(len(fulcrum_dataset.customers)),
    ]
    assert report.pages == 2
    assert {r[0] for r in query(data_dir, "SELECT id FROM fulcrum.customers")} == {
        c.id for c in fulcrum_dataset.customers
    }


def test_a_short_last_page_ends_the_list_and_small_pages_miss_and_repeat_nothing(
    serve_fulcrum, data_dir, fulcrum_dataset
):
    page_size = 7
    assert len(fulcrum_dataset.sales_orders) % page_size  # so the last page is short
    simulator = serve_fulcrum(page_size=page_size)
    report = load(data_dir, SALES_ORDERS)
    skips = [int(call.query["Skip"]) for call in simulator.requests("/api/sales-orders/list")]
    assert skips == list(range(0, len(fulcrum_dataset.sales_orders), page_size))
    assert report.source_rows["sales_orders"] == len(fulcrum_dataset.sales_orders)
    assert report.duplicates_dropped == 0
    # Jobs of one sales order share their createdUtc; the id sort still pages them without gaps.
    jobs = jobs_created_on(fulcrum_dataset, DAYS[2])
    load(data_dir, JOBS, DAYS[2])
    assert {r[0] for r in query(data_dir, "SELECT id FROM fulcrum.jobs")} == {j.id for j in jobs}


# --- bad payloads -----------------------------------------------------------------------------------------------
def landed_day(data_dir: Path, day: date) -> tuple[set, bytes]:
    ids = {r[0] for r in query(data_dir, "SELECT id FROM fulcrum.jobs WHERE partition_date = ?", [day])}
    return ids, Warehouse(data_dir).parquet_file("fulcrum", "jobs", day).read_bytes()


def test_a_non_json_page_fails_naming_system_endpoint_and_page_and_keeps_the_committed_day(
    serve_fulcrum, data_dir, fulcrum_dataset
):
    simulator = serve_fulcrum(page_size=2)
    day = DAYS[2]
    load(data_dir, JOBS, day)
    before = landed_day(data_dir, day)
    assert before[0]
    replace_handler_for_page(
        simulator, "on_jobs_list", "2", Response("<html>maintenance</html>", status=200, content_type="text/html")
    )
    with pytest.raises(SourcePayloadError) as error:
        load(data_dir, JOBS, day)
    assert str(error.value).startswith("fulcrum POST /api/jobs/list page Skip=2: response is not JSON")
    assert landed_day(data_dir, day) == before


def test_an_object_instead_of_an_array_is_a_payload_error_naming_the_page(fulcrum, data_dir):
    fulcrum.inject_fault(Fault(JOBS_LIST, status=200, body='{"message": "ok"}'))
    with pytest.raises(
        SourcePayloadError,
        match=r"^fulcrum POST /api/jobs/list page Skip=0: expected a JSON array of records, got dict",
    ):
        load(data_dir, JOBS, DAYS[0])


def test_a_job_field_of_the_wrong_type_fails_naming_the_field_and_keeps_the_committed_day(
    fulcrum, data_dir, fulcrum_dataset
):
    day = DAYS[2]
    load(data_dir, JOBS, day)
    before = landed_day(data_dir, day)
    job = jobs_created_on(fulcrum_dataset, day)[0]
    fulcrum.inject_fault(Fault(JOBS_LIST, status=200, body=json.dumps([{**job.body, "quantityToMake": "many"}])))
    with pytest.raises(SourcePayloadError) as error:
        load(data_dir, JOBS, day)
    message = str(error.value)
    assert message.startswith(f"fulcrum POST /api/jobs/list page Skip=0: record 0 (id='{job.id}')")
    assert "field 'quantityToMake'" in message
    assert landed_day(data_dir, day) == before


def test_a_line_item_field_of_the_wrong_type_fails_naming_it_and_keeps_the_invoice_snapshot(
    fulcrum, data_dir, fulcrum_dataset
):
    load(data_dir, INVOICES)
    before = query(data_dir, "SELECT * EXCLUDE (_loaded_at) FROM fulcrum.invoice_line_items ORDER BY ALL")
    invoice = fulcrum_dataset.invoices[0]
    line = fulcrum_dataset.invoice_line_items[invoice.id][0]
    fulcrum.inject_fault(
        Fault(
            f"/api/invoices/{invoice.id}/line-items/list",
            status=200,
            body=json.dumps([{**line.body, "quantity": {"value": 3}}]),
        )
    )
    with pytest.raises(SourcePayloadError) as error:
        load(data_dir, INVOICES)
    message = str(error.value)
    assert message.startswith("fulcrum POST /api/invoices/list page Skip=0: record ")
    assert f"id='{invoice.id}'" in message and "_lineItems[0]: field 'quantity'" in message
    assert query(data_dir, "SELECT * EXCLUDE (_loaded_at) FROM fulcrum.invoice_line_items ORDER BY ALL") == before


def test_a_non_json_child_list_names_the_child_endpoint(fulcrum, data_dir, fulcrum_dataset):
    job = jobs_created_on(fulcrum_dataset, DAYS[2])[0]
    fulcrum.inject_fault(
        Fault(f"/api/jobs/{job.id}/items-to-make/list", status=200, body="not json", content_type="text/plain")
    )
    with pytest.raises(
        SourcePayloadError,
        match=rf"^fulcrum POST /api/jobs/{job.id}/items-to-make/list page Skip=0: response is not JSON",
    ):
        load(data_dir, JOBS, DAYS[2])


def test_a_job_without_a_string_id_fails_before_any_child_call(fulcrum, data_dir, fulcrum_dataset):
    job = jobs_created_on(fulcrum_dataset, DAYS[2])[0]
    fulcrum.inject_fault(Fault(JOBS_LIST, status=200, body=json.dumps([{**job.body, "id": 17}])))
    with pytest.raises(
        SourcePayloadError,
        match=r"^fulcrum POST /api/jobs/list page Skip=0: record 0: field 'id' "
        r"must be a non-empty string",
    ):
        load(data_dir, JOBS, DAYS[2])
    assert not [call for call in fulcrum.requests("/api/jobs/") if call.path != JOBS_LIST]


# --- credentials ------------------------------------------------------------------------------------------------
def test_a_missing_token_names_the_variable(fulcrum, data_dir, monkeypatch):
    monkeypatch.delenv("FULCRUM_API_TOKEN")
    with pytest.raises(MissingCredentialError, match="FULCRUM_API_TOKEN is not set"):
        SOURCE.make_client(data_dir, None)


def test_a_refused_token_names_the_variable_without_showing_the_token(fulcrum, data_dir, monkeypatch):
    wrong = "wrong-token-value-3e9f"
    monkeypatch.setenv("FULCRUM_API_TOKEN", wrong)
    with pytest.raises(SourceHttpError) as error:
        load(data_dir, CUSTOMERS)
    assert str(error.value).startswith("fulcrum POST /api/customers/list page Skip=0: HTTP 401")
    assert "check FULCRUM_API_TOKEN" in str(error.value)
    assert wrong not in str(error.value) and error.value.__cause__ is None


def test_the_token_never_appears_in_errors_logs_or_settings(fulcrum, data_dir, caplog, monkeypatch):
    monkeypatch.setattr("mfg_pipeline.http.client.RetryPolicy.backoff_initial", 0.01)
    fulcrum.inject_fault(Fault(JOBS_LIST, status=503, body=f'{{"message": "upstream saw Bearer {TOKEN}"}}'))
    fulcrum.inject_fault(
        Fault("/api/customers/list", status=400, body=f'{{"message": "bad request with token {TOKEN}"}}')
    )
    with caplog.at_level("DEBUG"):
        load(data_dir, JOBS, DAYS[0])  # the 503 is retried and logged
        with pytest.raises(SourceHttpError) as error:
            load(data_dir, CUSTOMERS)
    assert "HTTP 400" in str(error.value) and "***" in str(error.value)
    assert "retry 1" in caplog.text
    settings = FulcrumSettings.from_env()
    for text in (str(error.value), caplog.text, repr(settings), str(settings)):
        assert TOKEN not in text


def test_an_items_path_the_server_lacks_names_the_setting_and_the_docs_v2_note(fulcrum, data_dir):
    fulcrum.inject_fault(Fault("/api/items/list", status=404, body='{"message": "Not Found"}'))
    with pytest.raises(SourceHttpError) as error:
        load(data_dir, ITEMS)
    first_line = str(error.value).splitlines()[0]
    assert first_line.startswith("fulcrum POST /api/items/list page Skip=0: HTTP 404"), first_line
    assert "FULCRUM_PATH_ITEMS" in first_line and "TO BE REMOVED 11/02/2023" in first_line and "V2" in first_line


def test_an_item_deleted_between_its_jobs_item_list_and_its_operations_list_is_left_out_and_the_load_succeeds(
    serve_fulcrum, data_dir
):
    dataset = FulcrumDataset(seed=42, now=SIM_NOW)  # its own: this test deletes from it
    simulator = serve_fulcrum(dataset=dataset)
    day = DAYS[1]
    job = next(j for j in jobs_created_on(dataset, day) if len(dataset.items_to_make[j.id]) > 1)
    gone, *kept = dataset.items_to_make[job.id]
    operations = f"/api/jobs/{job.id}/items-to-make/{gone.id}/operations/list"
    simulator.before_next(operations, lambda: dataset.items_to_make[job.id].remove(gone))

    load(data_dir, JOBS, day)

    assert simulator.requests(operations)[0].status == 404  # listed, then gone when its operations were asked for
    landed = query(data_dir, "SELECT item_to_make_id FROM fulcrum.job_items_to_make_current WHERE job_id = ?", [job.id])
    assert sorted(item for (item,) in landed) == sorted(item.id for item in kept)
    operations_landed = query(
        data_dir, "SELECT operation_id FROM fulcrum.job_operations_current WHERE job_id = ?", [job.id]
    )
    assert sorted(op for (op,) in operations_landed) == sorted(
        op.id for item in kept for op in dataset.operations[item.id]
    )
    assert query(data_dir, "SELECT deleted_at FROM fulcrum.jobs WHERE id = ?", [job.id]) == [(None,)]
