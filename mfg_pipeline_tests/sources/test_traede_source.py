"""The Traede export source lands every due production order exactly once, with its lines, and marks each one
exported only after it is committed: end to end against the simulator's ground truth in both paging modes, after
a SIGKILL between landing and marking, through Dagster with passing checks, on bad payloads, refused marks and
marks that never take effect, on orders edited mid-run, on re-exports and filters; settings come from the
environment, missing credentials are named, and the token and app key never appear in errors or logs."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster
import pytest

from mfg_pipeline.engine.load import LoadReport
from mfg_pipeline.engine.refresh import RefreshPlan
from mfg_pipeline.http.errors import MissingCredentialError, PaginationLoopError, SourceHttpError, SourcePayloadError
from mfg_pipeline.orchestration.factory import partitioning, source_definitions
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.simulators.base import Fault, SimulatorServer
from mfg_pipeline.simulators.traede.app import TraedeSimulator
from mfg_pipeline.simulators.traede.data import ProductionOrderRecord, TraedeDataset
from mfg_pipeline.sources.registry import source_by_name
from mfg_pipeline.sources.traede import SOURCE, make_client
from mfg_pipeline.sources.traede.client import EXPORT_PATH, MARK_PATH
from mfg_pipeline.sources.traede.settings import DEFAULT_RATE_LIMIT_PER_MINUTE, TraedeSettings
from mfg_pipeline.warehouse.checks import TABLE_CHECKS
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests.conftest import SIM_NOW

TOKEN = "traede-test-token-8d1f4a27"
APP_KEY = "traede-test-app-key-3b95e0c6"
SYSTEM_ID = "mfg-warehouse-test"
GENEROUS_LIMIT = 100_000  # per minute, on both sides: no test here is about throttling
PAGING_MODES = ("paged", "unpaged")
STREAM = SOURCE.stream("production_orders")
EXPORTED_BY_DEFAULT = ("open", "closed")  # drafts only with TRAEDE_INCLUDE_OPEN=1
FIRST_PAGE = 60  # the export's page size (its documented maximum)

# A run of the export in a process of its own, so the test can kill it like a crashed or evicted worker would.
RUN_IN_SUBPROCESS = """
from mfg_pipeline import config
from mfg_pipeline.sources.traede import SOURCE, make_client
from mfg_pipeline.engine.refresh import RefreshPlan
from mfg_pipeline.warehouse.store import Warehouse
stream = SOURCE.stream("production_orders")
stream.loader(make_client(config.data_dir()), stream, Warehouse(config.data_dir()), RefreshPlan())
"""


# --- fixtures and helpers ---------------------------------------------------------------------------------------
@pytest.fixture
def traede_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """TRAEDE_* credentials and system id for the tests; the optional settings unset."""
    monkeypatch.setenv("TRAEDE_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("TRAEDE_APP_KEY", APP_KEY)
    monkeypatch.setenv("TRAEDE_SYSTEM_ID", SYSTEM_ID)
    monkeypatch.setenv("TRAEDE_RATE_LIMIT_PER_MINUTE", str(GENEROUS_LIMIT))
    for name in (
        "TRAEDE_BASE_URL",
        "TRAEDE_INCLUDE_OPEN",
        "TRAEDE_INCLUDE_CLOSED",
        "TRAEDE_NOT_EXPORTED_SINCE",
        "TRAEDE_EXPORT_FILTER_GROUPS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def serve_traede(monkeypatch: pytest.MonkeyPatch, traede_env) -> Iterator[Callable[..., TraedeSimulator]]:
    """Start a Traede simulator with fresh data (kwargs go to TraedeSimulator) and point TRAEDE_BASE_URL at it."""
    servers: list[SimulatorServer] = []

    def serve(export_paging: str = "paged", **kwargs) -> TraedeSimulator:
        kwargs.setdefault("rate_limit_per_minute", GENEROUS_LIMIT)
        simulator = TraedeSimulator(
            TraedeDataset(seed=42, now=SIM_NOW),
            access_token=TOKEN,
            app_key=APP_KEY,
            export_paging=export_paging,
            **kwargs,
        )
        server = SimulatorServer(simulator).start()
        servers.append(server)
        monkeypatch.setenv("TRAEDE_BASE_URL", server.url)
        return simulator

    yield serve
    for server in servers:
        # Stopping waits up to half a second for the server's poll loop; nothing here needs to wait for it.
        threading.Thread(target=server.stop, daemon=True).start()


def run_export(data_dir: Path, progress=None) -> LoadReport:
    client = make_client(data_dir)
    try:
        return STREAM.loader(client, STREAM, Warehouse(data_dir), RefreshPlan(), progress=progress)[-1]
    finally:
        client.close()


def due_now(app: TraedeSimulator, statuses: tuple[str, ...] = EXPORTED_BY_DEFAULT) -> list[ProductionOrderRecord]:
    return app.data.due_orders(SYSTEM_ID, statuses, app.clock())


def instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc) if text else None


def expected_orders(orders: list[ProductionOrderRecord]) -> list[tuple]:
    return sorted(
        (
            o.id,
            str(o.body["production_order_number"]),
            o.body["supplier_id"],
            o.status,
            date.fromisoformat(o.body["delivery_date"]),
            o.body["total_price"],
            instant(o.body["created_at"]),
            instant(o.body["updated_at"]),
            instant(o.body["closed_at"]),
        )
        for o in orders
    )


def expected_lines(app: TraedeSimulator, orders: list[ProductionOrderRecord]) -> list[tuple]:
    products, variants = app.data.products, app.data.variants
    return sorted(
        (
            o.id,
            position,
            line["id"],
            line["product_id"],
            line["variant_id"],
            line["quantity"],
            line["unit_price"],
            line["total_price"],
            products[line["product_id"]]["item_number"],
            variants[line["variant_id"]]["sku"],
            variants[line["variant_id"]]["ean"],
        )
        for o in orders
        for position, line in enumerate(o.lines)
    )


def landed_orders(data_dir: Path) -> list[tuple]:
    return Warehouse(data_dir).query(
        "SELECT id, production_order_number, supplier_id, status, delivery_date, total_price, created_at, "
        "updated_at, closed_at FROM traede.production_orders ORDER BY id"
    )


def landed_lines(data_dir: Path) -> list[tuple]:
    return Warehouse(data_dir).query(
        "SELECT production_order_id, position, line_id, product_id, variant_id, quantity, unit_price, total_price, "
        "product_item_number, variant_sku, variant_ean FROM traede.production_order_lines ORDER BY 1, 2"
    )


def landed_ids(data_dir: Path) -> list[int]:
    return [row[0] for row in Warehouse(data_dir).query("SELECT id FROM traede.production_orders ORDER BY id")]


def parquet_ids(data_dir: Path) -> list[int]:
    warehouse = Warehouse(data_dir)
    path = warehouse.parquet_file("traede", "production_orders", None)
    return [row[0] for row in warehouse.query("SELECT id FROM read_parquet(?) ORDER BY id", [str(path)])]


def marks(app: TraedeSimulator) -> Counter:
    """How many times each order was marked exported to our system_id."""
    return Counter(e["production_order_id"] for e in app.data.export_log if e["system_id"] == SYSTEM_ID)


def assert_everything_landed_once_and_marked(
    app: TraedeSimulator, data_dir: Path, orders: list[ProductionOrderRecord]
) -> None:
    assert landed_orders(data_dir) == expected_orders(orders)
    assert landed_lines(data_dir) == expected_lines(app, orders)
    assert parquet_ids(data_dir) == sorted(o.id for o in orders)
    assert set(marks(app)) == {o.id for o in orders}
    assert due_now(app) == []


# --- end to end -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("paging", PAGING_MODES)
def test_every_due_order_lands_once_with_its_lines_and_is_marked_and_a_second_run_adds_nothing(
    serve_traede, data_dir, paging
):
    app = serve_traede(paging)
    due = due_now(app)
    assert len(due) > FIRST_PAGE  # more than one batch, so marking between reads matters in paged mode

    report = run_export(data_dir)

    assert_everything_landed_once_and_marked(app, data_dir, due)
    assert set(marks(app).values()) == {1}
    assert report.kind == "upsert"
    assert report.source_rows == {
        "production_orders": len(due),
        "production_order_lines": sum(len(o.lines) for o in due),
    }
    assert all(app.data.order(i).status != "draft" for i in landed_ids(data_dir))
    loaded_at_before = Warehouse(data_dir).query("SELECT id, _loaded_at FROM traede.production_orders ORDER BY id")
    mark_calls_before = len(app.requests(MARK_PATH))

    second = run_export(data_dir)

    assert second.source_rows == {"production_orders": 0, "production_order_lines": 0}
    assert len(app.requests(MARK_PATH)) == mark_calls_before
    assert (
        Warehouse(data_dir).query("SELECT id, _loaded_at FROM traede.production_orders ORDER BY id") == loaded_at_before
    )
    assert_everything_landed_once_and_marked(app, data_dir, due)
    assert set(marks(app).values()) == {1}


def test_a_first_run_with_nothing_due_still_creates_the_empty_tables(serve_traede, data_dir, monkeypatch):
    serve_traede()
    nothing = [{"filters": [{"key": "created_at", "operator": "gt", "value": "2100-01-01 00:00:00"}]}]
    monkeypatch.setenv("TRAEDE_EXPORT_FILTER_GROUPS", json.dumps(nothing))

    report = run_export(data_dir)

    assert report.source_rows == {"production_orders": 0, "production_order_lines": 0}
    assert landed_orders(data_dir) == [] and landed_lines(data_dir) == []
    assert parquet_ids(data_dir) == []


# --- the kill test ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("paging", PAGING_MODES)
def test_a_run_killed_between_landing_and_marking_is_completed_by_the_next_run_without_duplicates(
    serve_traede, data_dir, paging
):
    app = serve_traede(paging)
    due = due_now(app)
    # The first mark call stalls, so the run is certainly past its first commit and before any mark when killed.
    stalled_mark = Fault(MARK_PATH, method="POST", status=200, body='{"production_orders": []}', delay=30.0)
    app.inject_fault(stalled_mark)
    worker = subprocess.Popen(
        [sys.executable, "-c", RUN_IN_SUBPROCESS],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while stalled_mark.times > 0:  # the simulator counts the fault down when the mark request arrives
            assert worker.poll() is None, worker.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the run never reached its first mark"
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    first_batch = sorted(o.id for o in due)[:FIRST_PAGE] if paging == "paged" else sorted(o.id for o in due)
    assert landed_ids(data_dir) == first_batch  # landed, durably, by the killed run
    assert marks(app) == Counter()  # and not one of them marked

    run_export(data_dir)

    assert_everything_landed_once_and_marked(app, data_dir, due)
    assert set(marks(app).values()) == {1}


# --- through Dagster --------------------------------------------------------------------------------------------
def test_dagster_materializes_the_export_with_passing_checks_and_finds_the_source_by_name(serve_traede, data_dir):
    app = serve_traede()
    due = due_now(app)
    assert source_by_name("traede") is SOURCE
    assets = source_definitions(SOURCE, partitioning()).assets
    resources = {"sources": SourcesResource(), "warehouse": WarehouseResource(data_dir=str(data_dir))}

    for _ in range(2):  # the second run finds nothing due: its checks must pass too
        result = dagster.materialize(assets, resources=resources)
        assert result.success
        evaluations = result.get_asset_check_evaluations()
        assert {(e.asset_key.path[-1], e.check_name) for e in evaluations} == {
            (table, check) for table in ("production_orders", "production_order_lines") for check in TABLE_CHECKS
        }
        assert all(e.passed for e in evaluations), [e.description for e in evaluations if not e.passed]

    assert_everything_landed_once_and_marked(app, data_dir, due)
    assert set(marks(app).values()) == {1}


# --- bad payloads and refused marks -----------------------------------------------------------------------------
BAD_EXPORT_PAGES = {
    "not JSON": ("<html><body>Down for maintenance</body></html>", "text/html", "not JSON"),
    "no production_orders array": ('{"data": []}', "application/json", "'production_orders' array"),
    "an id that is not an integer": (
        '{"production_orders": [{"id": "forty", "lines": []}]}',
        "application/json",
        "field 'id'",
    ),
    "lines that are not an array": (
        '{"production_orders": [{"id": 49999, "lines": {"id": 1}}]}',
        "application/json",
        "'lines' must be an array",
    ),
}


@pytest.mark.parametrize("case", BAD_EXPORT_PAGES)
def test_a_bad_export_page_fails_naming_system_endpoint_and_page_and_marks_only_what_was_landed(
    serve_traede, data_dir, case
):
    app = serve_traede()
    due = due_now(app)
    body, content_type, detail = BAD_EXPORT_PAGES[case]
    bad_page = Fault(EXPORT_PATH, method="GET", status=200, body=body, content_type=content_type)

    def corrupt_the_next_read(stream, page, rows):
        if rows == FIRST_PAGE:  # the first batch is committed: the read after it gets the bad page
            app.inject_fault(bad_page)

    with pytest.raises(SourcePayloadError) as failure:
        run_export(data_dir, progress=corrupt_the_next_read)

    message = str(failure.value)
    assert message.startswith("traede GET /v10/production-orders/export page 0 (batch 2): ")
    assert detail in message
    first_batch = sorted(o.id for o in due)[:FIRST_PAGE]
    assert landed_ids(data_dir) == parquet_ids(data_dir) == first_batch
    assert sorted(marks(app)) == first_batch

    run_export(data_dir)  # the server is fine again: the next run finishes the job
    assert_everything_landed_once_and_marked(app, data_dir, due)


def test_a_refused_mark_names_the_orders_and_they_come_back_next_run_without_duplicates(serve_traede, data_dir):
    app = serve_traede()
    due = due_now(app)
    refusal = (
        '{"errors": [{"status": "422", "code": 0, "title": "Validation error", '
        '"detail": "The production orders field is required."}]}'
    )
    app.inject_fault(Fault(MARK_PATH, method="POST", status=422, body=refusal))

    with pytest.raises(SourceHttpError) as failure:
        run_export(data_dir)

    message = str(failure.value)
    assert message.startswith("traede POST /v10/production-orders/mark-as-exported: could not mark orders ")
    first_batch = sorted(o.id for o in due)[:FIRST_PAGE]
    assert str(first_batch[:10]) in message and "HTTP 422" in message and "next run" in message
    assert landed_ids(data_dir) == first_batch  # landed before the mark was tried, and kept
    assert marks(app) == Counter()

    run_export(data_dir)
    assert_everything_landed_once_and_marked(app, data_dir, due)


@pytest.mark.parametrize("paging", PAGING_MODES)
def test_marks_that_never_take_effect_stop_the_run_with_an_error_instead_of_looping(serve_traede, data_dir, paging):
    app = serve_traede(paging)
    due = due_now(app)
    app.inject_fault(Fault(MARK_PATH, method="POST", status=200, body='{"production_orders": []}', times=10_000))

    with pytest.raises(PaginationLoopError) as failure:
        run_export(data_dir)

    message = str(failure.value)
    assert message.startswith("traede GET /v10/production-orders/export page 0 (batch 2): ")
    assert "not taking effect" in message and SYSTEM_ID in message
    first_batch = sorted(o.id for o in due)[:FIRST_PAGE] if paging == "paged" else sorted(o.id for o in due)
    assert landed_ids(data_dir) == first_batch
    assert len(app.requests(EXPORT_PATH)) == 2


def test_an_order_edited_after_it_was_marked_is_left_due_and_lands_in_its_new_version_next_run(
    serve_traede, data_dir, caplog
):
    app = serve_traede()
    due = due_now(app)
    first_batch: list[int] = []
    edited: list[int] = []

    def edit_a_marked_order(stream, page, rows):
        if not first_batch:
            first_batch.extend(sorted(r["id"] for r in page.records))
        elif not edited:  # batch 1 is marked by now: an edit in Traede makes its first order due again
            edited.append(first_batch[0])
            app.touch(first_batch[0])

    with caplog.at_level(logging.WARNING, logger="mfg_pipeline.traede"):
        run_export(data_dir, progress=edit_a_marked_order)

    assert edited and f"orders [{edited[0]}] changed in Traede" in caplog.text
    edited_order = app.data.order(edited[0])
    version_landed = Warehouse(data_dir).query("SELECT updated_at FROM traede.production_orders WHERE id = ?", edited)[
        0
    ][0]
    assert version_landed < edited_order.updated_at.replace(microsecond=0)
    assert [o.id for o in due_now(app)] == edited  # everything else is marked; the edit waits, unmarked

    run_export(data_dir)
    assert_everything_landed_once_and_marked(app, data_dir, due)
    assert marks(app)[edited[0]] == 2


# --- settings: re-export, filters, includes ----------------------------------------------------------------------
@pytest.mark.parametrize("paging", PAGING_MODES)
def test_a_re_export_lands_orders_marked_since_again_without_duplicates_and_ends(
    serve_traede, data_dir, monkeypatch, paging
):
    app = serve_traede(paging)
    due = due_now(app)
    run_export(data_dir)
    assert due_now(app) == []

    since = SIM_NOW - timedelta(minutes=1)  # before every mark of the first run (the simulator's clock)
    monkeypatch.setenv("TRAEDE_NOT_EXPORTED_SINCE", since.isoformat())
    exports_before = len(app.requests(EXPORT_PATH))
    report = run_export(data_dir)

    assert report.source_rows["production_orders"] == len(due)
    assert_everything_landed_once_and_marked(app, data_dir, due)
    assert set(marks(app).values()) == {2}
    re_export_reads = app.requests(EXPORT_PATH)[exports_before:]
    # Pages advance (marks do not empty a re-export): paged ends on an empty page, unpaged on one with nothing new.
    assert [r.query["page"] for r in re_export_reads] == (["0", "1", "2"] if paging == "paged" else ["0", "1"])
    assert {r.query["not_exported_since"] for r in re_export_reads} == {since.strftime("%Y-%m-%d %H:%M:%S")}


def test_include_flags_and_filter_groups_choose_what_is_exported(serve_traede, data_dir, monkeypatch):
    app = serve_traede()
    cutoff = SIM_NOW - timedelta(days=14)
    monkeypatch.setenv("TRAEDE_INCLUDE_OPEN", "1")
    monkeypatch.setenv("TRAEDE_INCLUDE_CLOSED", "0")
    monkeypatch.setenv(
        "TRAEDE_EXPORT_FILTER_GROUPS",
        json.dumps(
            [
                {
                    "or": False,
                    "filters": [
                        {"key": "created_at", "operator": "gte", "value": cutoff.strftime("%Y-%m-%d %H:%M:%S")}
                    ],
                }
            ]
        ),
    )
    wanted = [o for o in due_now(app, ("draft", "open")) if o.created_at >= cutoff]
    assert {o.status for o in wanted} == {"draft", "open"}

    run_export(data_dir)

    assert landed_orders(data_dir) == expected_orders(wanted)
    assert landed_lines(data_dir) == expected_lines(app, wanted)
    assert set(marks(app)) == {o.id for o in wanted}
    query = app.requests(EXPORT_PATH)[0].query
    assert query["filter_groups[0][or]"] == "false" and query["filter_groups[0][filters][0][key]"] == "created_at"


@pytest.mark.parametrize("paging", PAGING_MODES)
def test_listing_what_is_due_reads_every_due_order_once_and_marks_nothing(serve_traede, data_dir, paging):
    app = serve_traede(paging)
    due = due_now(app)
    client = make_client(data_dir)
    try:
        listed = [record["id"] for page in client.pages(STREAM) for record in page.records]
    finally:
        client.close()
    assert sorted(listed) == sorted(o.id for o in due)
    assert marks(app) == Counter()


# --- credentials and configuration -------------------------------------------------------------------------------
@pytest.mark.parametrize("variable", ["TRAEDE_ACCESS_TOKEN", "TRAEDE_APP_KEY", "TRAEDE_SYSTEM_ID"])
def test_a_missing_setting_is_named(traede_env, data_dir, monkeypatch, variable):
    monkeypatch.delenv(variable)
    with pytest.raises(MissingCredentialError) as failure:
        make_client(data_dir)
    assert failure.value.variable == variable and variable in str(failure.value)


@pytest.mark.parametrize(
    "variable, value",
    [
        ("TRAEDE_INCLUDE_OPEN", "yes"),
        ("TRAEDE_NOT_EXPORTED_SINCE", "last tuesday"),
        ("TRAEDE_EXPORT_FILTER_GROUPS", '{"key": "created_at"}'),
        ("TRAEDE_RATE_LIMIT_PER_MINUTE", "fast"),
    ],
)
def test_a_malformed_setting_is_refused_naming_the_variable(traede_env, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        TraedeSettings.from_env()


def test_the_rate_limit_defaults_to_the_conservative_value_and_settings_never_show_the_secrets(traede_env, monkeypatch):
    monkeypatch.delenv("TRAEDE_RATE_LIMIT_PER_MINUTE")
    settings = TraedeSettings.from_env()
    assert settings.rate_limit_per_minute == DEFAULT_RATE_LIMIT_PER_MINUTE == 60
    assert settings.base_url == "https://api.traede.com"
    assert (settings.include_open, settings.include_closed, settings.not_exported_since) == (False, True, None)
    assert TOKEN not in repr(settings) and APP_KEY not in repr(settings)


def test_the_token_and_app_key_never_appear_in_errors_or_logs(serve_traede, data_dir, monkeypatch, caplog):
    app = serve_traede()
    echoing = json.dumps({"message": f"Invalid request from Bearer {TOKEN} with app key {APP_KEY}"})
    app.inject_fault(Fault(EXPORT_PATH, method="GET", status=400, body=echoing))
    errors = []
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(SourceHttpError) as echoed:
            run_export(data_dir)
        errors.append(str(echoed.value))
        wrong_key = "wrong-app-key-5e21d9"
        monkeypatch.setenv("TRAEDE_APP_KEY", wrong_key)
        with pytest.raises(SourceHttpError) as refused:
            run_export(data_dir)
        errors.append(str(refused.value))

    assert "Invalid request from *** with app key ***" in errors[0]
    assert "HTTP 401" in errors[1] and "TRAEDE_ACCESS_TOKEN and TRAEDE_APP_KEY" in errors[1]
    for text in errors + [caplog.text]:
        assert TOKEN not in text and APP_KEY not in text and wrong_key not in text
