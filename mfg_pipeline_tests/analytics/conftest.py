"""One simulated plant for the analytics tests: the five simulators at a fixed time with five days of history, each
source's daily cycle (which covers all of it), then the analytics build; shared by the tests of this folder (one xdist
group, `pytestmark` in each module, so one worker builds it once)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult

from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.engine.refresh import DAILY
from mfg_pipeline.orchestration.cycles import QUIET, execute_cycle, failures_of
from mfg_pipeline.simulators.catalog import PLANT_TIMEZONE
from mfg_pipeline.sources.registry import all_sources
from mfg_pipeline.warehouse.store import Warehouse
from mfg_pipeline_tests.conftest import SIM_NOW, serve_simulators

# Fusion's daily partitions: inside the daily cycle's 7-day reload, so every record its simulator holds is loaded.
# The other systems are read whole by the daily cycle; a month of history gives Fulcrum issued, paid, draft and
# deleted invoices.
FUSION_HISTORY_DAYS = 5
HISTORY_DAYS = 30


@dataclass
class Plant:
    apps: dict[str, Any]  # source name -> simulator app (its `data` is the ground truth)
    warehouse: Warehouse
    data_dir: Path
    build: ExecuteInProcessResult
    analytics_defs: Any
    instance: DagsterInstance
    defs: Any  # the loads' definitions

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        return self.warehouse.query(sql, params or [])

    @property
    def manifest(self) -> dict[str, Any]:
        from mfg_pipeline.analytics.project import prepared_project

        return json.loads(prepared_project().manifest_path.read_text())

    def rebuild(self) -> ExecuteInProcessResult:
        job = self.analytics_defs.resolve_job_def("analytics_build")
        return job.execute_in_process(instance=self.instance, raise_on_error=False, run_config=QUIET)


@pytest.fixture(scope="session")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    data_dir = tmp_path_factory.mktemp("plant") / "data"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MFG_DATA_DIR", str(data_dir))
        env.setenv("MFG_PARTITION_TIMEZONE", PLANT_TIMEZONE)
        env.setenv("FUSION_OPS_APPLY_LINGER_SECONDS", "0")
        sources = all_sources()
        fusion = [s for s in sources if s.name == "fusion_ops"]
        others = [s for s in sources if s.name != "fusion_ops"]
        groups = [serve_simulators(fusion, env, FUSION_HISTORY_DAYS), serve_simulators(others, env, HISTORY_DAYS)]
        try:
            instance = DagsterInstance.ephemeral()
            defs = build_definitions()
            for source in sources:
                results = execute_cycle(defs, instance, source, DAILY, SIM_NOW)
                assert all(r.success for r in results), failures_of(results)
            from mfg_pipeline.analytics.definitions import build_analytics_definitions

            analytics = build_analytics_definitions()
            build = analytics.resolve_job_def("analytics_build").execute_in_process(
                instance=instance, raise_on_error=False, run_config=QUIET
            )
            assert build.success, failures_of([build])
            yield Plant(
                apps={name: server.app for running in groups for name, server in running.servers.items()},
                warehouse=Warehouse(data_dir),
                data_dir=data_dir,
                build=build,
                analytics_defs=analytics,
                instance=instance,
                defs=defs,
            )
        finally:
            for running in groups:
                running.stop()
