"""Benchmark: the Fusion changes feed at its real timescale. The sensor ticks every 30 s, apply runs linger 50 s
and start at least 60 s apart (the defaults), each in a thread as the run launcher would start it, while a live
shop changes a record every second; prints how long each change took to become visible in the warehouse (p95
must stay <= 60 s) and how many apply runs it took (<= 60 an hour).

    .venv/bin/python benchmarks/feed_latency.py                 # 5 minutes of changes, then the last ticks
    .venv/bin/python benchmarks/feed_latency.py --minutes 20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))

from dagster import DagsterInstance  # noqa: E402

from mfg_pipeline.orchestration.changes_feed import SENSOR_INTERVAL_SECONDS  # noqa: E402
from mfg_pipeline.simulators.base import SimulatorServer  # noqa: E402
from mfg_pipeline.simulators.fusion_ops.app import FusionOpsSimulator  # noqa: E402
from mfg_pipeline.simulators.fusion_ops.data import FusionDataset  # noqa: E402
from mfg_pipeline.warehouse.store import Warehouse  # noqa: E402
from mfg_pipeline_tests.fusion_ops.live_feed import run_live_feed  # noqa: E402

API_KEY, API_SECRET = "bench-key-f33d", "bench-secret-1a7"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="minutes of live changes")
    args = parser.parse_args()
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory(prefix="mfg-feed-latency-") as folder:
        fusion = FusionOpsSimulator(
            api_key=API_KEY, api_secret=API_SECRET, dataset=FusionDataset(seed=42, now=now - timedelta(minutes=1))
        )
        with SimulatorServer(fusion) as server:
            os.environ.update(
                {
                    "MFG_DATA_DIR": folder,
                    "FUSION_OPS_BASE_URL": server.url,
                    "FUSION_OPS_API_KEY": API_KEY,
                    "FUSION_OPS_API_SECRET": API_SECRET,
                }
            )
            for name in ("FUSION_OPS_APPLY_LINGER_SECONDS", "FUSION_OPS_APPLY_MIN_INTERVAL_SECONDS"):
                os.environ.pop(name, None)  # the defaults: 50 s and 60 s
            (Path(folder) / "dagster_home").mkdir()
            # Disposed before its folder goes, so its compute-log watchers stop quietly.
            with DagsterInstance.local_temp(tempdir=str(Path(folder) / "dagster_home")) as instance:
                outcome = run_live_feed(
                    fusion,
                    instance,
                    Warehouse(folder),
                    tick_seconds=SENSOR_INTERVAL_SECONDS,
                    shop_seconds=args.minutes * 60,
                    settle_seconds=2 * SENSOR_INTERVAL_SECONDS + 5,
                )
    span_hours = max(outcome.run_starts[-1] - outcome.run_starts[0], 1.0) / 3600 if outcome.run_starts else 1.0
    print(
        f"changes-feed latency over {len(outcome.latencies)} changes ({args.minutes:g} minutes, a change a second): "
        f"p95 {outcome.p95:.1f}s, max {max(outcome.latencies):.1f}s, never visible {len(outcome.missing)}; "
        f"{len(outcome.run_starts)} apply runs, at least {min(outcome.gaps, default=0):.0f}s apart "
        f"({(len(outcome.run_starts) - 1) / span_hours:.0f} an hour), all succeeded: {all(outcome.runs_succeeded)}"
    )


if __name__ == "__main__":
    main()
