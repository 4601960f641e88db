"""The contract every registered source keeps, against its simulator, through the real schedules and jobs: the
daily cycle lands the simulator's records exactly once and a rerun changes nothing; a refused credential is named;
a malformed page is named by system, endpoint and page and leaves committed data intact; no secret reaches logs,
metadata or files; after old records change (status, child rows, a deletion, a new record) the hourly cycle makes
the open records current and the daily cycle makes every record current."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.engine.refresh import DAILY, HOURLY
from mfg_pipeline.engine.sweep import slice_of
from mfg_pipeline.orchestration.cycles import execute_backfill, execute_cycle, failures_of
from mfg_pipeline.orchestration.factory import CYCLE_TIME_TAG
from mfg_pipeline.simulators.base import Fault
from mfg_pipeline.sources.registry import SOURCE_MODULES, all_sources, source_by_name
from mfg_pipeline.warehouse.checks import TABLE_CHECKS
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests.conftest import SIM_NOW, serve_simulators
from mfg_pipeline_tests.contract.kits import KITS, Kit, days_back, restrict

SOURCES = [source.name for source in all_sources()]
HISTORY_DAYS = 14
SWEEP_DAYS = 3  # MFG_CHILD_SWEEP_EVERY_DAYS in the tests that follow the rotating sweep


@pytest.fixture(params=SOURCES)
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def served(kit: Kit, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[Any]:
    """The kit's simulator (fixed data, no rate limit in the way) with the environment pointing at it."""
    running = serve_simulators([source_by_name(kit.source)], monkeypatch, HISTORY_DAYS)
    yield running.servers[kit.source].app
    running.stop()


class Cycles:
    """A source's cycles on one Dagster instance (see `execute_cycle`)."""

    def __init__(self, source_name: str):
        self.source = source_by_name(source_name)
        self.defs = build_definitions()
        self.instance = DagsterInstance.ephemeral()

    def run(self, cycle: str, now: Any = SIM_NOW) -> list[Any]:
        return execute_cycle(self.defs, self.instance, self.source, cycle, now)


def assert_every_materialized_table_has_its_checks(results: list[Any]) -> None:
    """Every run that writes a table evaluates both of its checks (none shows "Not evaluated" after it)."""
    for result in results:
        materialized = {e.materialization.asset_key for e in result.get_asset_materialization_events()}
        checked: dict[Any, set[str]] = {}
        for check in result.get_asset_check_evaluations():
            checked.setdefault(check.asset_key, set()).add(check.check_name)
        unchecked = {key.to_user_string(): sorted(set(TABLE_CHECKS) - checked.get(key, set())) for key in materialized}
        assert {k: v for k, v in unchecked.items() if v} == {}, result.run_id


def loaded_days(cycle: str) -> set:
    return days_back(SIM_NOW.date(), 7 if cycle == DAILY else 2)


def assert_current(
    kit: Kit, app: Any, warehouse: Warehouse, cycle: str, keys: set | None = None, tables: tuple[str, ...] | None = None
) -> None:
    days = loaded_days(cycle)
    truth, landed = kit.truth(app, days), kit.landed(warehouse, days)
    if keys is not None:
        truth, landed = restrict(truth, kit.parent, keys), restrict(landed, kit.parent, keys)
    for table in tables or tuple(truth):
        assert landed[table] == truth[table], f"{kit.source}.{table} is stale after the {cycle} cycle"


def test_every_registered_source_has_a_kit_and_every_kit_a_registration():
    assert sorted(KITS) == sorted(SOURCES), (
        f"registered {sorted(SOURCES)} (from {len(SOURCE_MODULES)} modules) but kits for {sorted(KITS)}"
    )


def test_the_daily_cycle_lands_the_simulators_records_once_and_a_rerun_changes_nothing(kit, served, data_dir):
    cycles = Cycles(kit.source)
    results = cycles.run(DAILY)
    assert all(r.success for r in results), failures_of(results)
    assert all(c.passed for r in results for c in r.get_asset_check_evaluations()), [
        (c.asset_key, c.description) for r in results for c in r.get_asset_check_evaluations() if not c.passed
    ]
    warehouse = Warehouse(data_dir)
    assert_current(kit, served, warehouse, DAILY)
    tables = [t.name for s in source_by_name(kit.source).streams for t in s.tables]
    before = {t: warehouse.query(f"SELECT * EXCLUDE (_loaded_at) FROM {kit.source}.{t} ORDER BY ALL") for t in tables}
    again = cycles.run(DAILY)
    assert all(r.success for r in again), failures_of(again)
    after = {t: warehouse.query(f"SELECT * EXCLUDE (_loaded_at) FROM {kit.source}.{t} ORDER BY ALL") for t in tables}
    assert after == before


def test_after_old_records_change_the_hourly_cycle_makes_the_open_ones_current_and_the_daily_cycles_all(
    kit, served, data_dir, monkeypatch
):
    monkeypatch.setenv("MFG_CHILD_SWEEP_EVERY_DAYS", str(SWEEP_DAYS))
    cycles = Cycles(kit.source)
    assert all(r.success for r in cycles.run(DAILY))  # the first sweep: every record's child lists
    warehouse = Warehouse(data_dir)
    open_before = kit.open_keys(served)
    change = kit.mutate(served)
    assert change.edited and change.children and change.created
    hourly = cycles.run(HOURLY, SIM_NOW + timedelta(hours=1))
    assert all(r.success for r in hourly), failures_of(hourly)
    assert_every_materialized_table_has_its_checks(hourly)
    recent = open_before | kit.open_keys(served) | set(change.created) | set(change.deleted)
    assert_current(kit, served, warehouse, HOURLY, keys=recent, tables=(kit.parent,))
    daily = cycles.run(DAILY, SIM_NOW + timedelta(hours=2))
    assert all(r.success for r in daily), failures_of(daily)
    assert_every_materialized_table_has_its_checks(daily)
    # The same day: every record current but the children of closed records, whose slice comes on its day.
    assert_current_but(kit, served, warehouse, change.closed_children)
    for key in change.deleted:
        assert key not in kit.landed(warehouse)[kit.parent]
    monkeypatch.setenv("MFG_DAILY_LOOKBACK_DAYS", "0")  # the days ahead only sweep: no need to reload the week
    for days in range(1, SWEEP_DAYS + 1 if change.closed_children else 1):
        at = SIM_NOW + timedelta(days=days)
        assert all(r.success for r in cycles.run(DAILY, at))
        due = [k for k in change.closed_children if slice_of(k, SWEEP_DAYS) == at.date().toordinal() % SWEEP_DAYS]
        change.closed_children = [k for k in change.closed_children if k not in due]
        assert_current_but(kit, served, warehouse, change.closed_children)
    assert change.closed_children == []


def assert_current_but(kit: Kit, app: Any, warehouse: Warehouse, closed_children: list[tuple]) -> None:
    """Every table current after a daily cycle, but the child rows under `closed_children`, which are stale."""
    truth, landed = kit.truth(app, loaded_days(DAILY)), kit.landed(warehouse, loaded_days(DAILY))
    for table in truth:
        rows_t, rows_l = truth[table], landed[table]
        stale_parents = {k[:1] for k in rows_t.keys() | rows_l.keys() if rows_t.get(k) != rows_l.get(k)}
        is_child_table = kit.keys[table] > 1
        owed = set(closed_children) & {k[:1] for k in rows_t} if is_child_table else set()
        assert stale_parents == owed, f"{kit.source}.{table}: stale under {sorted(stale_parents)[:5]}, owed {owed}"


def test_a_refused_credential_fails_naming_the_variable_and_never_the_secret(kit, served, data_dir, monkeypatch):
    monkeypatch.setenv(kit.credential, "refused-credential-value-0000")
    results = Cycles(kit.source).run(DAILY)
    messages = failures_of(results)
    assert messages and all(kit.credential in m for m in messages), messages
    assert not any("refused-credential-value-0000" in m for m in messages)


def test_a_malformed_page_is_named_and_leaves_the_committed_data_as_it_was(kit, served, data_dir):
    cycles = Cycles(kit.source)
    assert all(r.success for r in cycles.run(DAILY))
    warehouse = Warehouse(data_dir)
    tables = [t.name for s in source_by_name(kit.source).streams for t in s.tables]
    before = {t: warehouse.query(f"SELECT * EXCLUDE (_loaded_at) FROM {kit.source}.{t} ORDER BY ALL") for t in tables}
    fault = kit.break_page(served)
    served.inject_fault(fault)
    messages = failures_of(cycles.run(DAILY))
    assert messages, "the malformed page went unnoticed"
    named = [m for m in messages if f"Failure: {kit.source} " in m and " page " in m]
    assert named, messages
    after = {t: warehouse.query(f"SELECT * EXCLUDE (_loaded_at) FROM {kit.source}.{t} ORDER BY ALL") for t in tables}
    assert after == before


def test_no_secret_reaches_logs_metadata_or_files(kit, served, data_dir, caplog):
    with caplog.at_level(logging.DEBUG):
        cycles = Cycles(kit.source)
        results = cycles.run(DAILY) + cycles.run(HOURLY, SIM_NOW + timedelta(hours=1))
    assert all(r.success for r in results), failures_of(results)
    texts = [caplog.text]
    for result in results:
        for event in result.all_events:
            texts.append(repr(event))
        texts.extend(repr(entry) for entry in cycles.instance.all_logs(result.run_id))
    for secret in kit.secrets:
        assert not any(secret in text for text in texts), f"{secret!r} in logs or event metadata"
    for path in Path(data_dir).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in kit.secrets:
                assert secret.encode() not in data, f"{secret!r} in {path}"


def path_patterns(paths: list[str]) -> list[re.Pattern[str]]:
    """Declared endpoint paths (`/api/jobs/{id}/...`) as patterns over served paths."""
    unescaped = (re.escape(p).replace(r"\{", "{").replace(r"\}", "}") for p in paths)
    return [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in unescaped]


def child_paths(endpoints: Any) -> Iterator[str]:
    for endpoint in endpoints:
        yield endpoint.path
        yield from child_paths(endpoint.children)


def child_endpoint_patterns(source_name: str) -> list[re.Pattern[str]]:
    """The paths of every child endpoint the source declares, as patterns over served paths."""
    streams = source_by_name(source_name).streams
    return path_patterns([p for stream in streams for p in child_paths(stream.child_endpoints)])


WITH_CHILD_ENDPOINTS = [name for name in SOURCES if child_endpoint_patterns(name)]
KEY_COLUMN = {"lagerkoll": "order_id", "fulcrum": "id"}


@pytest.mark.parametrize("kit", WITH_CHILD_ENDPOINTS, indirect=True)
def test_with_nothing_changed_the_hourly_cycle_asks_for_no_child_list_and_the_daily_one_only_for_open_records(
    kit, served, data_dir
):
    cycles = Cycles(kit.source)
    assert all(r.success for r in cycles.run(DAILY))
    patterns = child_endpoint_patterns(kit.source)
    served.clear_log()
    assert all(r.success for r in cycles.run(HOURLY, SIM_NOW + timedelta(hours=1)))
    requests = served.requests()
    assert requests, "the cycles made no request at all"
    assert [r.path for r in requests if any(p.match(r.path) for p in patterns)] == []
    served.clear_log()
    assert all(r.success for r in cycles.run(DAILY, SIM_NOW + timedelta(hours=2)))  # no slice due the same day
    asked_for = {r.path.split("/")[3] for r in served.requests() if any(p.match(r.path) for p in patterns)}
    open_ids = open_parent_ids(kit.source, Warehouse(data_dir))
    assert open_ids and asked_for == open_ids


def open_parent_ids(source_name: str, warehouse: Warehouse) -> set[str]:
    """The ids of the stored records, of every stream with child lists, in their open-records states."""
    ids: set[str] = set()
    for stream in source_by_name(source_name).streams:
        spec = stream.open_records
        if stream.child_endpoints and spec is not None:
            placeholders = ", ".join("?" for _ in spec.values)
            rows = warehouse.query(
                f"SELECT {stream.table.primary_key[0]} FROM {source_name}.{stream.table.name}_current "
                f"WHERE {spec.column} IN ({placeholders})",
                list(spec.values),
            )
            ids.update(str(row[0]) for row in rows)
    return ids


def test_every_source_with_child_endpoints_says_where_its_child_lists_are_and_how_a_parent_vanishes():
    assert [n for n in WITH_CHILD_ENDPOINTS if KITS[n].vanishing is None or KITS[n].child_path is None] == []


@pytest.mark.parametrize("kit", WITH_CHILD_ENDPOINTS, indirect=True)
def test_a_parent_deleted_between_its_list_and_its_child_list_is_soft_deleted_and_the_run_succeeds(
    kit, served, data_dir, monkeypatch
):
    monkeypatch.setenv("MFG_CHILD_SWEEP_EVERY_DAYS", "1")  # every record's child lists, every day
    cycles = Cycles(kit.source)
    assert all(r.success for r in cycles.run(DAILY))
    key, delete = kit.vanishing(served)
    child_path = kit.child_path(key)
    served.before_next(child_path, delete)  # listed, then gone when its child list is asked for: a 404
    served.clear_log()

    results = cycles.run(DAILY, SIM_NOW + timedelta(days=1))  # the next day's sweep asks for every child list

    assert all(r.success for r in results), failures_of(results)
    failed_checks = [
        (c.asset_key, c.description) for r in results for c in r.get_asset_check_evaluations() if not c.passed
    ]
    assert failed_checks == []
    assert served.requests(child_path)[0].status == 404
    warehouse = Warehouse(data_dir)
    deleted = warehouse.query(
        f"SELECT deleted_at IS NOT NULL FROM {kit.source}.{kit.parent} WHERE {KEY_COLUMN[kit.source]} = ?", [*key]
    )
    assert deleted == [(True,)]
    assert_current(kit, served, warehouse, DAILY)


@pytest.mark.parametrize("kit", WITH_CHILD_ENDPOINTS, indirect=True)
def test_a_child_list_answering_404_for_a_record_that_still_exists_fails_and_deletes_nothing(
    kit, served, data_dir, monkeypatch
):
    monkeypatch.setenv("MFG_CHILD_SWEEP_EVERY_DAYS", "1")  # every record's child lists, every day
    cycles = Cycles(kit.source)
    assert all(r.success for r in cycles.run(DAILY))
    warehouse = Warehouse(data_dir)
    before = kit.landed(warehouse)
    key, _ = kit.vanishing(served)
    served.inject_fault(Fault(kit.child_path(key), status=404, body='{"message": "Not found"}'))

    results = cycles.run(DAILY, SIM_NOW + timedelta(days=1))

    messages = failure_lines(results)
    assert messages and all("the record itself still exists, so this child path is wrong" in m for m in messages)
    assert kit.landed(warehouse) == before


@pytest.mark.parametrize("kit", WITH_CHILD_ENDPOINTS, indirect=True)
def test_a_child_lists_refusal_in_the_hourly_pass_fails_the_run_and_is_not_taken_for_a_refused_filter(
    kit, served, data_dir, caplog
):
    cycles = Cycles(kit.source)
    change = kit.mutate(served)  # a new open record: the hourly pass lists it, then asks for its child lists
    new_child_path = kit.child_path(change.created[0])
    served.inject_fault(Fault(new_child_path, status=400, body='{"message": "Bad request"}'))
    served.clear_log()

    with caplog.at_level(logging.WARNING):
        results = cycles.run(HOURLY, SIM_NOW + timedelta(hours=1))

    assert any("HTTP 400" in m and new_child_path in m for m in failure_lines(results)), failure_lines(results)
    assert "filter was refused" not in caplog.text


def failure_lines(results: list[Any]) -> list[str]:
    return [
        event.step_failure_data.error.message.splitlines()[0]
        for result in results
        for event in result.all_events
        if event.is_step_failure
    ]


def has_both_kinds(name: str) -> bool:
    streams = source_by_name(name).streams
    return any(s.partitioned for s in streams) and any(not s.partitioned for s in streams)


@pytest.mark.parametrize("kit", [name for name in SOURCES if has_both_kinds(name)], indirect=True)
def test_a_backfill_of_the_refresh_job_lists_and_sweeps_its_unpartitioned_streams_once(kit, served, data_dir):
    cycles = Cycles(kit.source)
    assert all(r.success for r in cycles.run(DAILY))
    source = source_by_name(kit.source)
    snapshots = [s for s in source.streams if not s.partitioned]
    patterns = path_patterns([p for s in snapshots for p in (s.path, *child_paths(s.child_endpoints))])
    job = cycles.defs.resolve_job_def(f"{kit.source}_refresh")
    days = sorted(d.isoformat() for d in days_back(SIM_NOW.date(), 9))

    def snapshot_requests() -> list[str]:
        return sorted(r.path for r in served.requests() if any(p.match(r.path) for p in patterns))

    same_day = {CYCLE_TIME_TAG: SIM_NOW.isoformat()}  # the simulated day, as the daily cycle's sweep counted it
    served.clear_log()
    one = job.execute_in_process(instance=cycles.instance, partition_key=days[-1], tags=same_day, raise_on_error=False)
    assert one.success
    one_run = snapshot_requests()
    assert one_run, "the run made no request for the unpartitioned streams"

    served.clear_log()
    runs = execute_backfill(cycles.defs, cycles.instance, f"{kit.source}_refresh", days, SIM_NOW, same_day)
    assert all(r.success for r in runs), failures_of(runs)
    assert len(days) == 10 and snapshot_requests() == one_run
    windows = [r for r in served.requests() if not any(p.match(r.path) for p in patterns)]
    assert len(windows) >= len(days)  # every partition's own day was listed


def test_a_sources_client_writes_under_the_name_its_assets_and_checks_read(kit, served, data_dir):
    source = source_by_name(kit.source)
    client = source.make_client(data_dir, None)
    try:
        assert client.system == source.name == kit.source
    finally:
        client.close()
