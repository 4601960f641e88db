"""The deployment's definitions without its schedules: the code location `feed_plants.py` gives the daemon, so
that only the changes-feed sensors (one per Fusion company) and their apply runs use the machine while it measures
them. The hourly and daily cycles are `plants.py`'s to measure."""

from __future__ import annotations

from dagster import Definitions

from mfg_pipeline.definitions import build_definitions


def _without_schedules(deployment: Definitions) -> Definitions:
    return Definitions(
        assets=deployment.assets,
        asset_checks=deployment.asset_checks,
        jobs=deployment.jobs,
        sensors=deployment.sensors,
        resources=deployment.resources,
        executor=deployment.executor,
        loggers=deployment.loggers,
    )


defs = _without_schedules(build_definitions())
