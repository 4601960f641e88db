"""The Fusion client and the shared HTTP layer against the simulator: token refresh, 429 Retry-After, 5xx retries,
malformed pages, paging loops, missing credentials and secrets kept out of errors."""

from __future__ import annotations

import time
from datetime import date, datetime, timezone

import pytest
from werkzeug.wrappers import Request, Response

from mfg_pipeline.declarations import PartitionWindow
from mfg_pipeline.engine.refresh import load_stream
from mfg_pipeline.http.client import RetryPolicy
from mfg_pipeline.http.errors import MissingCredentialError, PaginationLoopError, SourceHttpError, SourcePayloadError
from mfg_pipeline.simulators.base import Fault
from mfg_pipeline.sources.fusion_ops import SOURCE, make_client
from mfg_pipeline.sources.fusion_ops.streams import PRODUCTIONS, PUNCH_CLOCKS
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests.fusion_ops.conftest import API_KEY, API_SECRET

DAY = date(2026, 11, 10)
WINDOW = PartitionWindow(DAY, datetime(2026, 11, 10, tzinfo=timezone.utc), datetime(2026, 11, 11, tzinfo=timezone.utc))
PRODUCTIONS_PATH = "/api/v1/productions"


def productions_of_day(simulator) -> set[int]:
    return {r.id for r in simulator.data.productions if WINDOW.start <= r.start < WINDOW.end}


def load_productions(data_dir):
    client = make_client(data_dir)
    try:
        return load_stream(client, PRODUCTIONS, Warehouse(data_dir), window=WINDOW)
    finally:
        client.close()


def landed_ids(data_dir) -> set[int]:
    return {
        r[0] for r in Warehouse(data_dir).query("SELECT id FROM fusion_ops.productions WHERE partition_date = ?", [DAY])
    }


def test_expired_token_gets_401_then_a_new_token_then_success(fusion, data_dir):
    client = make_client(data_dir)
    pages = client.pages(PRODUCTIONS, None, {"page": 1})
    next(iter(pages))  # a token is now in use
    fusion.expire_tokens()
    report = load_stream(client, PRODUCTIONS, Warehouse(data_dir), window=WINDOW)
    statuses = [(r.method, r.path, r.status) for r in fusion.requests()]
    assert ("GET", PRODUCTIONS_PATH, 401) in statuses and ("POST", "/api/v1/authorization", 201) in statuses
    assert report.token_refreshes == 1
    assert landed_ids(data_dir) == productions_of_day(fusion)


def test_first_token_reuses_the_company_token_and_creates_one_only_when_none_exists(fusion, data_dir):
    load_productions(data_dir)
    load_productions(data_dir)  # a second run (new client) gets the existing token with GET
    auth_calls = [(r.method, r.status) for r in fusion.requests("/api/v1/authorization")]
    assert auth_calls == [("GET", 404), ("POST", 201), ("GET", 200)]


def test_token_is_renewed_before_it_expires(serve_fusion, data_dir, monkeypatch):
    fusion = serve_fusion(token_ttl=2.0)
    monkeypatch.setenv("FUSION_OPS_TOKEN_TTL_SECONDS", "2")
    client = make_client(data_dir)
    list(
        client.pages(
            PUNCH_CLOCKS, None, {"page": 1, "date-after": "2026-11-10T00:00:00Z", "date-before": "2026-11-10T01:00:00Z"}
        )
    )
    time.sleep(1.2)  # past the refresh margin (half the TTL when the TTL is short), before expiry
    list(
        client.pages(
            PUNCH_CLOCKS, None, {"page": 1, "date-after": "2026-11-10T00:00:00Z", "date-before": "2026-11-10T01:00:00Z"}
        )
    )
    assert [r.status for r in fusion.requests("/api/v1/punchclocks")] == [200, 200]  # never a 401
    assert client.stats.token_refreshes == 0
    assert len([r for r in fusion.requests("/api/v1/authorization") if r.method == "POST"]) >= 2


def test_429_is_retried_after_the_servers_retry_after(fusion, data_dir):
    fusion.inject_fault(Fault(PRODUCTIONS_PATH, status=429, headers={"Retry-After": "2"}, times=1))
    report = load_productions(data_dir)
    calls = fusion.requests(PRODUCTIONS_PATH)
    assert [c.status for c in calls[:2]] == [429, 200]
    assert calls[1].time - calls[0].time >= 2.0
    assert report.throttled == 1
    assert landed_ids(data_dir) == productions_of_day(fusion)


def test_the_servers_own_rate_limit_is_obeyed_when_another_integration_used_the_budget(serve_fusion, data_dir):
    # The client believes it has 1000/min; the server allows 2 per 3 s (someone else spends the rest).
    fusion = serve_fusion(client_rate_limit=1000, rate_limit_per_minute=2, rate_window_seconds=3.0)
    report = load_productions(data_dir)
    assert report.throttled > 0
    assert landed_ids(data_dir) == productions_of_day(fusion)
    admitted = [r.time for r in fusion.requests() if r.status != 429]
    for i, start in enumerate(admitted):  # the server never admitted more than its limit per window
        assert sum(1 for t in admitted[i:] if t - start < 3.0) <= 2


def test_5xx_and_dropped_connections_are_retried_then_succeed(fusion, data_dir):
    fusion.inject_fault(Fault(PRODUCTIONS_PATH, status=503, times=2))
    fusion.inject_fault(
        Fault(PRODUCTIONS_PATH, status=502, body="<html>bad gateway</html>", content_type="text/html", times=1)
    )
    report = load_productions(data_dir)
    assert [c.status for c in fusion.requests(PRODUCTIONS_PATH)][:4] == [503, 503, 502, 200]
    assert report.retries == 3
    assert landed_ids(data_dir) == productions_of_day(fusion)


def test_persistent_5xx_fails_with_system_endpoint_and_page_after_the_last_attempt(fusion, data_dir):
    fusion.inject_fault(Fault(PRODUCTIONS_PATH, status=500, times=100))
    client = make_client(data_dir)
    client.api.retry = RetryPolicy(max_attempts=3, backoff_initial=0.01)
    with pytest.raises(SourceHttpError) as error:
        load_stream(client, PRODUCTIONS, Warehouse(data_dir), window=WINDOW)
    assert str(error.value) == ("fusion_ops GET /api/v1/productions page 1: HTTP 500, giving up after 3 attempts")
    assert len(fusion.requests(PRODUCTIONS_PATH)) == 3


def test_non_json_page_fails_naming_system_endpoint_and_page_and_keeps_the_partition(fusion, data_dir):
    load_productions(data_dir)
    before = landed_ids(data_dir)
    parquet = Warehouse(data_dir).parquet_file("fusion_ops", "productions", DAY).read_bytes()
    original = fusion.on_productions

    def second_page_broken(request, company):  # page 1 is fine, page 2 is broken: nothing of this run may land
        if request.args.get("page") == "2":
            return Response("<html>maintenance</html>", status=200, content_type="text/html")
        return original(request, company)

    fusion.on_productions = second_page_broken
    with pytest.raises(SourcePayloadError) as error:
        load_productions(data_dir)
    assert str(error.value).startswith("fusion_ops GET /api/v1/productions page 2: response is not JSON")
    assert landed_ids(data_dir) == before
    assert Warehouse(data_dir).parquet_file("fusion_ops", "productions", DAY).read_bytes() == parquet


def test_a_field_of_the_wrong_type_fails_naming_the_field_and_page(fusion, data_dir):
    load_productions(data_dir)
    before = landed_ids(data_dir)
    fusion.inject_fault(
        Fault(
            PRODUCTIONS_PATH, status=200, body='[{"id": 1, "start-time": "2026-11-10T08:00:00Z", "quantity": "many"}]'
        )
    )
    with pytest.raises(SourcePayloadError) as error:
        load_productions(data_dir)
    message = str(error.value)
    assert message.startswith("fusion_ops GET /api/v1/productions page 1: record 0 (id=1)")
    assert "field 'quantity'" in message
    assert landed_ids(data_dir) == before


def test_an_object_instead_of_an_array_is_a_payload_error(fusion, data_dir):
    fusion.inject_fault(Fault(PRODUCTIONS_PATH, status=200, body='{"error": "oops"}'))
    with pytest.raises(SourcePayloadError, match="page 1: expected a JSON array of records, got dict"):
        load_productions(data_dir)


def test_a_server_ignoring_the_page_parameter_is_detected_not_followed_forever(fusion, data_dir):
    original = fusion.on_productions

    def always_page_one(request, company):  # a server that drops the page parameter
        query = request.query_string.decode().replace("page=", "ignored=")
        return original(Request({**request.environ, "QUERY_STRING": query}), company)

    fusion.on_productions = always_page_one
    with pytest.raises(PaginationLoopError, match="page 2: the server returned the same records"):
        load_productions(data_dir)


def test_exactly_one_full_page_then_an_empty_page_ends_the_list(fusion, data_dir):
    client = make_client(data_dir)
    starts = sorted(r.start for r in fusion.data.productions if WINDOW.start <= r.start < WINDOW.end)
    assert len(starts) > 26 and starts[24] < starts[25]
    # A window holding exactly 25 productions: the first 25 of the day (the simulator reads bounds exclusively).
    params = {
        "start-time-after": "2026-11-09T23:59:59Z",
        "start-time-before": starts[25].strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    pages = list(client.pages(PRODUCTIONS, None, params))
    assert [len(p.records) for p in pages] == [25, 0]
    empty = list(client.pages(PRODUCTIONS, None, {"start-time-after": "2030-01-01T00:00:00Z"}))
    assert [len(p.records) for p in empty] == [0]


def test_missing_credentials_name_the_variable(fusion, data_dir, monkeypatch):
    monkeypatch.delenv("FUSION_OPS_API_SECRET")
    with pytest.raises(MissingCredentialError, match="FUSION_OPS_API_SECRET is not set"):
        SOURCE.make_client(data_dir, None)


def test_wrong_credentials_fail_naming_the_variables_without_showing_them(fusion, data_dir, monkeypatch):
    monkeypatch.setenv("FUSION_OPS_API_SECRET", "wrong-secret-value")
    with pytest.raises(SourceHttpError) as error:
        load_productions(data_dir)
    assert "check FUSION_OPS_API_KEY and FUSION_OPS_API_SECRET" in str(error.value)
    assert "wrong-secret-value" not in str(error.value)


def test_secrets_never_appear_in_errors_or_logs(fusion, data_dir, caplog):
    fusion.inject_fault(Fault(PRODUCTIONS_PATH, status=400, body=f'{{"message": "bad request for {API_KEY}"}}'))
    token_holder = {}
    with caplog.at_level("DEBUG"):
        client = make_client(data_dir)
        with pytest.raises(SourceHttpError) as error:
            load_stream(client, PRODUCTIONS, Warehouse(data_dir), window=WINDOW)
        token_holder["token"] = client._token_auth.secrets()[0]
    text = str(error.value) + caplog.text + repr(error.value.__cause__) + repr(error.value.__context__)
    assert "HTTP 400" in str(error.value)
    for secret in (API_KEY, API_SECRET, token_holder["token"]):
        assert secret not in text
