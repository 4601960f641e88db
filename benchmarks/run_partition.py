"""One Dagster run of `fusion_ops_daily` for one partition, in its own process (as Dagster's run launcher does).

Used by `fusion_backfill.py`; prints one JSON line: the day, success, rows per table, the run's peak RSS.
"""

from __future__ import annotations

import json
import sys
import time

from dagster import DagsterInstance
from procstat import peak_rss_mb

from mfg_pipeline.definitions import build_definitions


def main(day: str) -> None:
    started = time.monotonic()
    job = build_definitions().resolve_job_def("fusion_ops_daily")
    with DagsterInstance.get() as instance:
        result = job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False)
    rows = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if "rows" in materialization.metadata:
            rows[materialization.asset_key.path[-1]] = materialization.metadata["rows"].value
    print(
        json.dumps(
            {
                "day": day,
                "success": result.success,
                "rows": rows,
                "seconds": time.monotonic() - started,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
