"""A plant described by the plants file loads as one described by the environment: its Fusion company's URL and
credentials come from the file (the credentials from the variables it names), its days from its zone, and a
credential variable it names that nobody set fails the run naming that variable."""

from __future__ import annotations

import os
from datetime import date
from zoneinfo import ZoneInfo

from dagster import DagsterInstance

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests.fusion_ops.conftest import API_KEY, API_SECRET
from mfg_pipeline_tests.fusion_ops.test_fusion_end_to_end import expected_productions, landed_productions
from mfg_pipeline_tests.fusion_ops.test_partition_zone import first_failure_line

DAY = date(2026, 11, 10)


def run_day(day: date):
    return (
        build_definitions()
        .resolve_job_def("fusion_ops_daily")
        .execute_in_process(partition_key=day.isoformat(), instance=DagsterInstance.ephemeral(), raise_on_error=False)
    )


def test_a_day_loads_from_the_company_and_zone_the_plants_file_gives(fusion, data_dir, tmp_path, monkeypatch):
    url = os.environ["FUSION_OPS_BASE_URL"]
    for variable in ("FUSION_OPS_BASE_URL", "FUSION_OPS_API_KEY", "FUSION_OPS_API_SECRET"):
        monkeypatch.delenv(variable)  # only the file describes the plant
    plants = tmp_path / "plants.yaml"
    plants.write_text(
        "plants:\n"
        "  - name: berlin\n"
        "    timezone: Europe/Berlin\n"
        "    sources:\n"
        "      fusion_ops:\n"
        f"        FUSION_OPS_BASE_URL: {url}\n"
        "        FUSION_OPS_API_KEY: ${BERLIN_FUSION_KEY}\n"
        "        FUSION_OPS_API_SECRET: ${BERLIN_FUSION_SECRET}\n"
    )
    monkeypatch.setenv("MFG_PLANTS_FILE", str(plants))
    monkeypatch.setenv("BERLIN_FUSION_KEY", API_KEY)
    refused = run_day(DAY)
    assert not refused.success
    assert "Failure: Environment variable BERLIN_FUSION_SECRET is not set" in first_failure_line(refused)
    monkeypatch.setenv("BERLIN_FUSION_SECRET", API_SECRET)
    assert run_day(DAY).success
    landed = landed_productions(Warehouse(data_dir), DAY)
    assert landed and landed == expected_productions(fusion, DAY, ZoneInfo("Europe/Berlin"))
