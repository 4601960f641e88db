"""The dlt reference for our benchmark: a Fusion Operations backfill done with dlt's `rest_api` source.

What it measures: rows, wall time, peak memory and failed days of loading N UTC days of productions, downtimes and
punch clocks with `dlt.sources.rest_api` at dlt's default settings (see `dlt_worker.py`), one process per day and
at most `parallelism` processes at once, as Dagster runs one process per partition. It is "the reference a user
would pick instead" of our pipeline: the same workload against the same simulator, so the comparison shows what
our pipeline's shared rate limit, token reuse and partition-exact windows buy over dlt's per-process retries.

dlt is not a dependency of the project: this module runs under the project's venv and only drives a separate
venv that has dlt (`ensure_dlt_venv`), where `dlt_worker.py` runs. Nothing here imports dlt or `mfg_pipeline`.

    python = ensure_dlt_venv()
    result = run_dlt_backfill(python, server.url, "key", "secret", days, parallelism=4, workdir=Path("/tmp/dlt"))
    # {"rows", "seconds", "peak_rss_mb", "failed_days", "errors", "days", "output_dir"}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import Any

DLT_VERSION = "1.31.0"
REQUIREMENTS = (f"dlt[duckdb,parquet]=={DLT_VERSION}", "psutil", "requests")
HERE = Path(__file__).resolve().parent
DEFAULT_VENV = HERE / ".dlt-venv"
WORKER = HERE / "dlt_worker.py"
API_KEY_ENV = "FUSION_OPS_API_KEY"  # must match dlt_worker.py
API_SECRET_ENV = "FUSION_OPS_API_SECRET"
_MARKER = ".mfg-benchmark-requirements"  # written into the venv once its install succeeded
STDERR_TAIL = 1500  # characters of a failed worker's stderr kept in `errors`


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_dlt_venv(path: Path = DEFAULT_VENV) -> Path:
    """Create the venv at `path` with dlt and its extras unless it already has them; return its python.

    Idempotent and quick when present: a marker file naming the installed requirements is written only after
    pip succeeded, so a half-finished install is redone and a version change reinstalls.
    """
    venv = Path(path)
    python = _venv_python(venv)
    marker = venv / _MARKER
    wanted = "\n".join(REQUIREMENTS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *REQUIREMENTS],
        check=False,
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        raise RuntimeError(f"installing {' '.join(REQUIREMENTS)} into {venv} failed:\n{pip.stderr[-3000:]}")
    marker.write_text(wanted)
    return python


def _run_day(
    python: Path, base_url: str, env: dict[str, str], day: date, output_dir: Path, timeout: float | None
) -> dict[str, Any]:
    """One worker process; its JSON line, or a failure record when it died, failed or printed none."""
    command = [str(python), str(WORKER), base_url, day.isoformat(), str(output_dir)]
    try:
        # cwd: dlt reads `.dlt/config.toml` and `secrets.toml` from the working directory; keep it ours.
        proc = subprocess.run(
            command, check=False, env=env, cwd=output_dir, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return {
            "day": day.isoformat(),
            "rows": 0,
            "failed": True,
            "error": f"timed out after {timeout} s; stderr: {stderr[-STDERR_TAIL:]}",
        }
    report: dict[str, Any] = {}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            try:
                report = json.loads(line)
                break
            except ValueError:
                continue
    failed = proc.returncode != 0 or not report or "error" in report
    report.setdefault("day", day.isoformat())
    report.setdefault("rows", 0)
    report["failed"] = failed
    if failed:
        # The worker's own one-line error when it printed one (its stderr then only repeats it as a traceback),
        # else the end of its stderr (it crashed before reporting, e.g. an import error).
        reason = report.get("error") or f"exit code {proc.returncode}, no report line; stderr: {proc.stderr.strip()}"
        report["error"] = reason if len(reason) <= STDERR_TAIL else "..." + reason[-STDERR_TAIL:]
    return report


def run_dlt_backfill(
    python: Path,
    base_url: str,
    api_key: str,
    api_secret: str,
    days: list[date],
    parallelism: int,
    workdir: Path,
    timeout: float | None = 1800.0,
) -> dict[str, Any]:
    """Load `days` with one `dlt_worker.py` process each, at most `parallelism` at a time.

    Returns `{"rows": total over successful days, "seconds": wall time of the whole backfill, "peak_rss_mb": max
    over workers, "failed_days": [...], "errors": [short stderr tails], "days": per-day reports, "output_dir"}`.
    A day whose worker fails (e.g. dlt gave up after its retries on 429) is listed in `failed_days`, never
    dropped silently. Each call writes into a fresh folder under `workdir`, so reruns do not append to old data.
    `timeout` bounds each worker (seconds; None for none).
    """
    if parallelism < 1:
        raise ValueError("parallelism must be at least 1")
    output_dir = Path(workdir).resolve() / f"run-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}-{time.monotonic_ns()}"
    output_dir.mkdir(parents=True)
    env = {
        **os.environ,
        API_KEY_ENV: api_key,
        API_SECRET_ENV: api_secret,
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }  # no phoning home from the benchmark
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        reports = list(pool.map(lambda day: _run_day(python, base_url, env, day, output_dir, timeout), days))
    seconds = time.perf_counter() - started
    failed = [r for r in reports if r["failed"]]
    return {
        "rows": sum(int(r.get("rows", 0)) for r in reports if not r["failed"]),
        "seconds": round(seconds, 3),
        "peak_rss_mb": max((float(r.get("peak_rss_mb", 0.0)) for r in reports), default=0.0),
        "failed_days": [r["day"] for r in failed],
        "errors": [f"{r['day']}: {r['error']}" for r in failed],
        "days": reports,
        "output_dir": str(output_dir),
    }
