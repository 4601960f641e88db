"""Benchmark: a `mfg-pipeline dev` session left running, as a data engineer leaves it on a first day: the first
start's preload, then the daemon's schedules, the changes-feed sensor and its apply runs against the live
simulators. Prints every job's runs by final status, the apply runs per hour, and the false failures: runs marked
failed after they had logged RUN_SUCCESS (must be 0).

    .venv/bin/python benchmarks/dev_session.py --minutes 30
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus  # noqa: E402

from mfg_pipeline.sources.fusion_ops.changes import FEED  # noqa: E402
from mfg_pipeline_tests.servers import free_port, interrupt_group  # noqa: E402

READY = "Serving dagster-webserver"


def run_dev(data_dir: Path, minutes: float, preload_days: int) -> tuple[float, float]:
    """Start `mfg-pipeline dev`, wait for the webserver, leave it running `minutes`, stop it; returns (seconds to
    the webserver, seconds it served)."""
    executable = Path(sys.executable).with_name("mfg-pipeline")
    command = [str(executable), "dev", "--port", "0", "--preload-days", str(preload_days), "-p", str(free_port())]
    log = (data_dir / "dev.log").open("w")
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        env={**os.environ, "MFG_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            log.write(line)
            if READY in line:
                break
        else:
            raise SystemExit(f"dev stopped before serving; see {data_dir / 'dev.log'}")
        ready = time.monotonic() - started
        print(f"webserver up after {ready:.0f}s (preload included); serving {minutes:g} min", flush=True)
        deadline = time.monotonic() + minutes * 60
        os.set_blocking(process.stdout.fileno(), False)
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(5)
            for line in process.stdout:
                log.write(line)
        return ready, time.monotonic() - started - ready
    finally:
        interrupt_group(process, timeout=60)
        log.close()


def false_failures(instance: DagsterInstance, run_ids: list[str]) -> list[str]:
    """Failed runs whose event log has RUN_SUCCESS: the run ended well and was marked failed after."""
    return [
        run_id
        for run_id in run_ids
        if instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_SUCCESS).records
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="minutes the session serves after the preload")
    parser.add_argument("--preload-days", type=int, default=7, help="days dev loads on its first start")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mfg-dev-session-") as folder:
        data_dir = Path(folder) / "data"
        data_dir.mkdir()
        ready, served = run_dev(data_dir, args.minutes, args.preload_days)
        with DagsterInstance.from_config(str(data_dir / "dagster_home")) as instance:
            records = instance.get_run_records()
            by_job: dict[str, Counter[str]] = {}
            failed: list[str] = []
            for record in records:
                run = record.dagster_run
                by_job.setdefault(run.job_name, Counter())[run.status.value] += 1
                if run.status == DagsterRunStatus.FAILURE:
                    failed.append(run.run_id)
            false = false_failures(instance, failed)
            print(f"\n{'job':40} runs by final status")
            for job, statuses in sorted(by_job.items()):
                print(f"{job:40} " + ", ".join(f"{status} {count}" for status, count in sorted(statuses.items())))
            applied = sum(by_job.get(FEED.apply_job_name, Counter()).values())
            print(f"\nwebserver up after {ready:.0f}s; served {served / 60:.1f} min")
            print(f"apply runs: {applied} ({applied / (served / 3600):.0f} per hour)")
            print(f"failed runs: {len(failed)}; false failures (RUN_SUCCESS, then marked failed): {len(false)}")
            for run_id in failed:
                message = next(
                    (
                        r.event_log_entry.dagster_event.message
                        for r in instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_FAILURE).records
                        if r.event_log_entry.dagster_event is not None
                    ),
                    "",
                )
                print(f"  {run_id[:8]} {instance.get_run_by_id(run_id).job_name}: {(message or '').splitlines()[:1]}")


if __name__ == "__main__":
    main()
