"""Benchmark: a month of the Fusion changes feed, one apply a minute, then the lake's files and a query's time over
the productions, without maintenance and after it.

    .venv/bin/python benchmarks/feed_month.py                 # 30 days x 1,440 minutes (hours)
    .venv/bin/python benchmarks/feed_month.py --days 2        # a shorter month

A Fusion simulator serves on localhost (its rate limit lifted); the week its changes fall in is loaded first. Then
every simulated minute its live shop makes a few changes, the sensor's work reads them from the feed into the
warehouse's journal, and `apply_pending` applies them: the real feed path, one apply (one commit, and the journal's
page commits) a minute, no time compressed but the minute itself. After the month: the lake's data files and
snapshots and a query's median time, then `maintain` (as the daily job runs it, the retention passed) and the same
figures again.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))

from mfg_pipeline.declarations import PartitionWindow  # noqa: E402
from mfg_pipeline.engine.refresh import load_stream  # noqa: E402
from mfg_pipeline.simulators.base import SimulatorServer  # noqa: E402
from mfg_pipeline.simulators.fusion_ops.app import FusionOpsSimulator  # noqa: E402
from mfg_pipeline.simulators.fusion_ops.data import FusionDataset  # noqa: E402
from mfg_pipeline.simulators.fusion_ops.live import LiveShop  # noqa: E402

UTC = timezone.utc
API_KEY, API_SECRET = "bench-key-3e1", "bench-secret-77c"
CHANGES_PER_MINUTE = 3
QUERY = "SELECT partition_date, count(*), sum(quantity) FROM fusion_ops.productions_current GROUP BY ALL ORDER BY 1"


def median_query_seconds(warehouse, repeats: int = 7) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        warehouse.query(QUERY)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=30.0, help="simulated days, one apply a minute")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="mfg-feed-month-") as folder:
        simulator = FusionOpsSimulator(
            api_key=API_KEY,
            api_secret=API_SECRET,
            dataset=FusionDataset(seed=args.seed, now=now),
            rate_limit_per_minute=100_000,
        )
        with SimulatorServer(simulator) as server:
            os.environ.update(
                {
                    "MFG_DATA_DIR": folder,
                    "FUSION_OPS_BASE_URL": server.url,
                    "FUSION_OPS_API_KEY": API_KEY,
                    "FUSION_OPS_API_SECRET": API_SECRET,
                    "FUSION_OPS_RATE_LIMIT_PER_MINUTE": "100000",
                }
            )
            run(simulator, Path(folder), now, args)


def run(simulator: FusionOpsSimulator, folder: Path, now: datetime, args: argparse.Namespace) -> None:
    from mfg_pipeline.engine.feed import apply_pending, read_feed
    from mfg_pipeline.sources.fusion_ops import make_client
    from mfg_pipeline.sources.fusion_ops.changes import FEED
    from mfg_pipeline.sources.fusion_ops.streams import DOWNTIMES, PRODUCTIONS, PUNCH_CLOCKS
    from mfg_pipeline.warehouse.maintenance import data_files, maintain, snapshot_count
    from mfg_pipeline.warehouse.store import Warehouse

    warehouse = Warehouse(folder)
    client = make_client(folder)
    for days_back in range(7):  # the week the changes fall in, as the daily cycle loads it
        day = (now - timedelta(days=days_back)).date()
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for stream in (PRODUCTIONS, DOWNTIMES, PUNCH_CLOCKS):
            load_stream(client, stream, warehouse, window=PartitionWindow(day, start, start + timedelta(days=1)))
    journal = FEED.journal(warehouse)
    shop = LiveShop(simulator, seed=args.seed)
    channels = FEED.channels()
    minutes = int(args.days * 1440)
    apply_seconds: list[float] = []
    started = time.monotonic()
    for minute in range(1, minutes + 1):
        for _ in range(CHANGES_PER_MINUTE):
            shop.step()
        for channel in channels:
            read_feed(client, channel, journal, max_calls=12, deadline=time.monotonic() + 20)
        began = time.perf_counter()
        apply_pending(journal, warehouse, naive_timezone=UTC, partition_timezone=UTC)
        apply_seconds.append(time.perf_counter() - began)
        if minute % 1440 == 0:
            print(
                f"  day {minute // 1440}: {data_files(warehouse):,} data files, {snapshot_count(warehouse):,} "
                f"snapshots, query {median_query_seconds(warehouse) * 1000:.0f} ms, "
                f"{time.monotonic() - started:.0f}s so far",
                flush=True,
            )
    before = (data_files(warehouse), snapshot_count(warehouse), median_query_seconds(warehouse))
    report = maintain(warehouse, now=datetime.now(UTC) + timedelta(days=31))
    after = (data_files(warehouse), snapshot_count(warehouse), median_query_seconds(warehouse))
    ordered = sorted(apply_seconds)
    print(
        f"\n{minutes:,} applies ({CHANGES_PER_MINUTE} changes a minute for {args.days:g} days): median apply "
        f"{statistics.median(ordered) * 1000:.0f} ms, p95 {ordered[int(len(ordered) * 0.95)] * 1000:.0f} ms"
    )
    print(f"{'':22} {'data files':>10} {'snapshots':>10} {'query (ms)':>11}")
    print(f"{'without maintenance':22} {before[0]:>10,} {before[1]:>10,} {before[2] * 1000:>11.1f}")
    print(f"{'after maintenance':22} {after[0]:>10,} {after[1]:>10,} {after[2] * 1000:>11.1f}")
    print(f"maintenance: {report.summary()}; the query {before[2] / after[2]:.1f}x as fast after it")


if __name__ == "__main__":
    main()
