"""One day of Fusion Operations data loaded with dlt's `rest_api` source: the reference side of our benchmark.

What it measures: the wall time, peak memory and rows of loading one UTC day of productions, downtimes and punch
clocks the way a dlt user would, with `dlt.sources.rest_api` configured declaratively and every other setting at
dlt's documented default. In particular the HTTP client keeps dlt's default retry policy (5 attempts; 429 and 5xx
retried; `Retry-After` honoured, else exponential backoff with factor 1 up to 300 s) and there is no client-side
rate limit, because dlt has none: how it fares against the API's per-company limit when several of these run at
once is part of what the benchmark compares.

Run by `dlt_reference.run_dlt_backfill` under a separate interpreter that has dlt (it never imports
`mfg_pipeline`), one process per day like one Dagster run per partition:

    FUSION_OPS_API_KEY=... FUSION_OPS_API_SECRET=... python dlt_worker.py BASE_URL 2026-03-10 OUTPUT_DIR

Secrets come from the environment, never from argv (which other users can read in the process list). On success
it prints one JSON line to stdout, `{"day", "rows", "table_rows", "seconds", "peak_rss_mb"}`, and exits 0; on
failure it prints a JSON line with an `error` key as well and exits 1.

Destination: dlt's `filesystem` destination writing Parquet under OUTPUT_DIR. Several workers run at once, and a
single DuckDB file admits one writer process at a time, so a shared `duckdb` destination would make concurrent
workers fail on its lock; the filesystem destination names every file by its load id, so concurrent loads of the
same dataset never touch the same file. Each worker keeps its own pipeline state (`pipelines_dir`) per day.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()  # before importing dlt: its import time is part of what a run costs

import argparse
import json
import os
import sys
import traceback
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any

# dlt's anonymous usage telemetry would try to reach the internet at exit; it has no effect on loading.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt
from dlt.sources.helpers import requests  # `requests` with dlt's default retry policy
from dlt.sources.rest_api import rest_api_source
from procstat import peak_rss_mb  # this folder's shared helper (no mfg_pipeline import)

API_KEY_ENV = "FUSION_OPS_API_KEY"
API_SECRET_ENV = "FUSION_OPS_API_SECRET"
AUTHORIZATION_PATH = "/api/v1/authorization"
DATASET = "fusion_ops"

# (resource name, path, the list's documented time filter prefix): `<prefix>-after` / `<prefix>-before`, the same
# parameters as `mfg_pipeline/sources/fusion_ops/streams.py`.
RESOURCES: tuple[tuple[str, str, str], ...] = (
    ("productions", "/api/v1/productions", "start-time"),
    ("downtimes", "/api/v1/downtimes", "start-time"),
    ("punchclocks", "/api/v1/punchclocks", "date"),
)


def iso_utc(moment: datetime) -> str:
    """`2026-03-10T00:00:00Z`, the format our pipeline sends (explicit zone: no company-timezone reading)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch_token(base_url: str, api_key: str, api_secret: str) -> str:
    """The company's current token (GET), or a new one (POST) when none exists yet, as the doc describes."""
    url = base_url.rstrip("/") + AUTHORIZATION_PATH
    try:
        response = requests.get(url, auth=(api_key, api_secret))  # raises on an error status, after retries
    except requests.HTTPError as exc:
        if exc.response is None or exc.response.status_code != 404:
            raise
        # "If a token doesn't exist yet, one can be generated using the POST method."
        response = requests.post(url, auth=(api_key, api_secret), json={"scopes": ["productions_write"]})
    token = response.json().get("token")
    if not isinstance(token, str) or not token:
        raise RuntimeError(f"{AUTHORIZATION_PATH} answered without a token")
    return token


def build_source(base_url: str, token: str, day: date) -> Any:
    """The declarative `rest_api` config: token in the `access_token` query parameter, page numbers from 1."""
    start = datetime.combine(day, dtime(0, 0), tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    return rest_api_source(
        {
            "client": {
                "base_url": base_url,
                "auth": {"type": "api_key", "name": "access_token", "api_key": token, "location": "query"},
                # The API returns a bare array with no total or next link. dlt's page-number paginator can only stop
                # on an empty page (`stop_after_empty_page`, its default); it has no "short page" option, so every
                # list costs one more request than the data needs.
                "paginator": {
                    "type": "page_number",
                    "page_param": "page",
                    "base_page": 1,
                    "total_path": None,
                    "stop_after_empty_page": True,
                },
            },
            "resources": [
                {
                    "name": name,
                    "endpoint": {
                        "path": path,
                        "params": {f"{prefix}-after": iso_utc(start), f"{prefix}-before": iso_utc(end)},
                    },
                }
                for name, path, prefix in RESOURCES
            ],
        },
        name=DATASET,
    )


def run(base_url: str, api_key: str, api_secret: str, day: date, output_dir: Path) -> dict[str, Any]:
    token = fetch_token(base_url, api_key, api_secret)
    pipeline = dlt.pipeline(
        pipeline_name=f"{DATASET}_{day:%Y%m%d}",
        pipelines_dir=str(output_dir / ".dlt-pipelines" / f"{day:%Y%m%d}"),
        destination=dlt.destinations.filesystem(bucket_url=(output_dir / "data").resolve().as_uri()),
        dataset_name=DATASET,
    )
    pipeline.run(build_source(base_url, token, day), loader_file_format="parquet")
    # Rows normalized into each table (the load writes exactly these); dlt's own `_dlt_*` tables left out.
    trace = pipeline.last_trace
    normalize_info = trace.last_normalize_info if trace is not None else None
    if normalize_info is None:
        raise RuntimeError("dlt recorded no normalize step, so no row counts")
    counts = normalize_info.row_counts
    table_rows = {table: n for table, n in sorted(counts.items()) if not table.startswith("_dlt")}
    return {"rows": sum(table_rows.get(name, 0) for name, _, _ in RESOURCES), "table_rows": table_rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("day", type=date.fromisoformat, help="UTC day, YYYY-MM-DD")
    parser.add_argument("output_dir", type=Path)
    args = parser.parse_args(argv)
    api_key, api_secret = os.environ.get(API_KEY_ENV), os.environ.get(API_SECRET_ENV)
    if not api_key or not api_secret:
        parser.error(f"set {API_KEY_ENV} and {API_SECRET_ENV} in the environment")
    result: dict[str, Any] = {"day": args.day.isoformat()}
    code = 0
    try:
        result.update(run(args.base_url, api_key, api_secret, args.day, args.output_dir))
    except Exception as exc:  # noqa: BLE001  reported, not hidden: the caller counts the day as failed
        code = 1
        result.update(rows=0, error=f"{type(exc).__name__}: {exc}"[:2000])
        traceback.print_exc(file=sys.stderr)
    result.update(seconds=round(time.perf_counter() - _STARTED, 3), peak_rss_mb=peak_rss_mb())
    print(json.dumps(result), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
