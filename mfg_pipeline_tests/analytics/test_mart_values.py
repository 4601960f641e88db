"""The facts and marts hold the figures the simulators' own records give (recomputed in Python in `truth.py`):
downtime minutes per machine-day, good and waste per product-day, hours per worker-day with night shifts across
midnight, OEE per machine-day, NCRs per product-month per 1,000 units, invoiced revenue per customer-month, and
every order on the board with its normalized state and progress."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mfg_pipeline_tests.analytics import truth

pytestmark = pytest.mark.xdist_group("analytics_plant")


def test_downtime_minutes_per_machine_day_match_the_vendors_downtimes(plant):
    expected = truth.downtime_minutes_by_machine_day(plant.apps["fusion_ops"])
    landed = {
        (machine, day): minutes
        for machine, day, minutes in plant.rows(
            "SELECT machine_code, downtime_date, sum(duration_minutes) FROM marts.fct_downtime GROUP BY ALL"
        )
    }
    assert landed == pytest.approx(expected)
    assert len(expected) > 10


def test_good_and_waste_per_product_day_match_with_waste_summed_before_the_join(plant):
    expected = truth.good_and_waste_by_product_day(plant.apps["fusion_ops"])
    rows = plant.rows(
        "SELECT product_code, production_date, good_quantity, waste_quantity, scrap_rate FROM marts.mart_scrap_daily"
    )
    assert {(p, d): (g, w) for p, d, g, w, _ in rows} == expected
    for product, day, good, waste, rate in rows:
        assert rate == pytest.approx(waste / (good + waste)), (product, day)
    assert any(w > 0 for _, w in expected.values())


def test_hours_per_worker_day_pair_punches_across_midnight_and_flag_broken_shifts(plant):
    fusion = plant.apps["fusion_ops"]
    expected = truth.hours_by_worker_day(fusion)
    landed = {
        (worker, day): hours
        for day, worker, hours in plant.rows(
            "SELECT shift_date, worker_number, hours_worked FROM marts.mart_labor_daily"
        )
    }
    assert landed == pytest.approx(expected)
    shifts = truth.labor_shifts(fusion)
    night = [
        s
        for s in shifts
        if s.status == "closed" and truth.plant_date(s.clock_in) != truth.plant_date(s.clock_out)  # type: ignore[arg-type]
    ]
    assert night, "the plant has night shifts: some closed shift must cross local midnight"
    statuses = dict(plant.rows("SELECT shift_status, count(*) FROM marts.fct_labor_shift GROUP BY ALL"))
    assert statuses == {s: sum(x.status == s for x in shifts) for s in {x.status for x in shifts}}
    assert statuses.get("missing_out", 0) + statuses.get("missing_in", 0) > 0  # flagged, not dropped


def test_oee_per_machine_day_is_availability_times_performance_times_quality(plant):
    expected = truth.oee_by_machine_day(plant.apps["fusion_ops"])
    rows = plant.rows(
        "SELECT machine_code, shift_date, planned_seconds, downtime_seconds, good_quantity, waste_quantity, "
        "availability, performance, quality, oee FROM marts.mart_oee_daily"
    )
    assert {(m, d) for m, d, *_ in rows} == set(expected)
    for machine, day, planned, downtime, good, waste, availability, performance, quality, oee in rows:
        want = expected[(machine, day)]
        assert (planned, downtime, good, waste) == pytest.approx(
            (want.planned, want.downtime, want.good, want.waste)
        ), (machine, day)
        assert (availability, performance, quality) == pytest.approx(
            (want.availability, want.performance, want.quality)
        ), (machine, day)
        if None not in (availability, performance, quality):
            assert oee == pytest.approx(availability * performance * quality)
    assert any(r[7] is not None for r in rows), "cycle times from the product routings give performance"
    sunday = [r for r in rows if r[1].isoweekday() == 7 and r[2] > 0]
    assert not sunday, "the default calendar plans no Sunday shift"


def test_ncr_rate_counts_ncrs_per_product_month_against_units_produced(plant):
    ncrs = truth.ncrs_by_product_month(plant.apps["isolocity"])
    units = truth.units_by_product_month(plant.apps["fusion_ops"])
    rows = plant.rows(
        "SELECT product_code, month_start, ncrs, units_produced, ncrs_per_1000_units FROM marts.mart_ncr_rate_monthly"
    )
    assert {(p, m): n for p, m, n, _, _ in rows if n} == ncrs
    assert {(p, m): u for p, m, _, u, _ in rows if u} == pytest.approx(units)
    for product, month, count, produced, rate in rows:
        assert rate == (pytest.approx(count * 1000 / produced) if produced else None), (product, month)
    assert any(rate for *_, rate in rows)


def test_invoiced_revenue_per_customer_month_is_exact_decimal_without_drafts_or_deleted_invoices(plant):
    fulcrum = plant.apps["fulcrum"]
    expected = truth.revenue_by_customer_month(fulcrum)
    rows = plant.rows(
        "SELECT customer_id, month_start, currency_code, invoices, net_revenue, gross_revenue "
        "FROM marts.mart_revenue_monthly"
    )
    assert {(c, m, cur): (n, net, gross) for c, m, cur, n, net, gross in rows} == expected
    assert all(isinstance(r[4], Decimal) for r in rows)
    bodies = [i.body for i in fulcrum.data.invoices]
    assert any(b["deleted"] for b in bodies) and any(b["status"] in ("new", "needsApproval") for b in bodies)


def test_the_order_board_has_every_order_once_with_its_shared_state_and_progress(plant):
    expected = truth.order_board(plant.apps)
    rows = plant.rows("SELECT order_key, state, quantity_ordered, quantity_done, progress FROM marts.mart_order_board")
    assert {key: (state, ordered, done) for key, state, ordered, done, _ in rows} == expected
    for key, _, ordered, done, progress in rows:
        assert progress == (pytest.approx(min(done / ordered, 1.0)) if ordered and done is not None else None), key
    systems = {key.split(":")[0] for key in expected}
    assert systems == {"fusion_ops", "lagerkoll", "fulcrum", "traede"}
    assert {state for state, *_ in expected.values()} >= {"planned", "in_progress", "completed"}


def test_a_vendor_state_the_plants_map_lacks_is_unknown_beside_its_raw_value_and_a_warn_check_names_it(plant):
    # As if Traede (whose doc lists no states) sent states the map lacks, for three orders on the board.
    board_orders = [key.split(":")[1] for key in truth.order_board(plant.apps) if key.startswith("traede:")][:3]
    assert len(board_orders) == 3
    sent = {board_orders[0]: "in_production", board_orders[1]: "in_production", board_orders[2]: "sent"}

    def set_statuses(statuses: dict[str, str]) -> None:
        def write(cursor):
            for order_id, status in statuses.items():
                cursor.execute(
                    "UPDATE traede.production_orders SET status = ? WHERE CAST(id AS VARCHAR) = ?", [status, order_id]
                )

        plant.warehouse.lake.write("test: vendor states the map lacks", write)

    before = dict(plant.rows("SELECT CAST(id AS VARCHAR), status FROM traede.production_orders"))
    set_statuses(sent)
    try:
        result = rebuild_the_board(plant)
        rows = plant.rows(
            "SELECT order_id, vendor_state, state FROM marts.mart_order_board WHERE source_system = 'traede'"
        )
        states = {order_id: (vendor_state, state) for order_id, vendor_state, state in rows}
        assert {order_id: states[order_id] for order_id in sent} == {
            order_id: (status, "unknown") for order_id, status in sent.items()
        }
        (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "order_states_mapped"]
        assert not check.passed and check.severity.value == "WARN"
        assert "traede:in_production (2 orders)" in check.description and "traede:sent (1 orders)" in check.description
        assert "seeds/order_states.csv" in check.description
    finally:
        set_statuses({order_id: before[order_id] for order_id in sent})
        restored = rebuild_the_board(plant)
    (check,) = [c for c in restored.get_asset_check_evaluations() if c.check_name == "order_states_mapped"]
    assert check.passed


def rebuild_the_board(plant):
    from dagster import AssetKey

    from mfg_pipeline.orchestration.cycles import QUIET

    result = plant.analytics_defs.resolve_job_def("analytics_build").execute_in_process(
        instance=plant.instance, asset_selection=[AssetKey(["marts", "mart_order_board"])], run_config=QUIET
    )
    assert result.success
    return result


def test_a_switched_off_stream_is_read_as_empty_its_marts_build_with_nulls_and_warn_naming_the_setting(
    plant, monkeypatch
):
    from dagster import AssetKey

    from mfg_pipeline.analytics.definitions import build_analytics_definitions
    from mfg_pipeline.orchestration.cycles import QUIET

    selection = [AssetKey(["staging", "stg_fulcrum__items"]), AssetKey(["marts", "mart_order_board"])]
    monkeypatch.setenv("FULCRUM_STREAMS", "jobs,invoices,sales_orders,customers")  # items left out
    try:
        without_items = build_analytics_definitions()
        graph = without_items.resolve_asset_graph()
        assert not graph.get(AssetKey(["staging", "stg_fulcrum__items"])).parent_keys  # no longer reads the load
        result = without_items.resolve_job_def("analytics_build").execute_in_process(
            instance=plant.instance, asset_selection=selection, run_config=QUIET, raise_on_error=False
        )
        assert result.success
        fulcrum_products = plant.rows(
            "SELECT count(*), count(product_code) FROM marts.mart_order_board WHERE source_system = 'fulcrum'"
        )
        assert fulcrum_products[0][0] > 0 and fulcrum_products[0][1] == 0  # the item numbers came from items
        (check,) = [
            c
            for c in result.get_asset_check_evaluations()
            if c.check_name == "inputs_loaded" and c.asset_key == AssetKey(["marts", "mart_order_board"])
        ]
        assert not check.passed and check.severity.value == "WARN"
        assert "fulcrum.items" in check.description and "FULCRUM_STREAMS" in check.description
    finally:
        monkeypatch.delenv("FULCRUM_STREAMS")
        restored = plant.analytics_defs.resolve_job_def("analytics_build").execute_in_process(
            instance=plant.instance, asset_selection=selection, run_config=QUIET
        )
    assert restored.success
    assert plant.rows("SELECT count(product_code) > 0 FROM marts.mart_order_board WHERE source_system = 'fulcrum'") == [
        (True,)
    ]


def test_the_plant_comparison_per_week_holds_the_weeks_sums_and_their_ratios(plant):
    expected = truth.plant_weeks(plant.apps)
    rows = plant.rows(
        "SELECT plant, week_start, good_quantity, waste_quantity, planned_seconds, run_seconds, downtime_hours, ncrs, "
        "availability, performance, quality, oee, scrap_rate, ncrs_per_1000_units FROM marts.mart_plant_weekly"
    )
    assert {row[0] for row in rows} == {"default"}
    landed = {row[1]: row[2:] for row in rows}
    assert set(landed) == set(expected)
    for week, values in landed.items():
        good, waste, planned, run, downtime, ncrs, availability, performance, quality, oee, scrap, rate = values
        want = expected[week]
        assert (good, waste, ncrs) == (pytest.approx(want.good), pytest.approx(want.waste), want.ncrs), week
        assert (planned, run, downtime) == pytest.approx((want.planned, want.run, want.downtime_hours)), week
        assert availability == (pytest.approx(want.run / want.planned) if want.planned else None), week
        assert performance == (pytest.approx(want.ideal / want.timed_run) if want.timed_run else None), week
        total = want.good + want.waste
        assert quality == (pytest.approx(want.good / total) if total else None), week
        assert scrap == (pytest.approx(want.waste / total) if total else None), week
        assert rate == (pytest.approx(want.ncrs * 1000 / total) if total else None), week
        if None not in (availability, performance, quality):
            assert oee == pytest.approx(availability * performance * quality)
    assert sum(w.ncrs for w in expected.values()) > 0 and sum(w.downtime_hours for w in expected.values()) > 0
