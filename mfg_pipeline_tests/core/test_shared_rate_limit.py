"""The per-company rate limit holds across processes: four processes calling one simulator as fast as they can
never put more than the limit into any 60-second window, and get no 429."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from mfg_pipeline.simulators.base import SimulatorServer, busiest_window
from mfg_pipeline.simulators.fusion_ops.app import FusionOpsSimulator
from mfg_pipeline.simulators.fusion_ops.data import FusionDataset
from mfg_pipeline_tests.conftest import SIM_NOW

LIMIT = 40  # requests/minute, for the company: small, so the test needs only one window past the first
PROCESSES = 4
REQUESTS_PER_PROCESS = 15  # 60 in all: the first 40 in the first minute, the other 20 only after it

# Each process is what a Dagster run is: its own interpreter with its own client, sharing only MFG_DATA_DIR.
WORKER = textwrap.dedent(f"""
    import json, sys
    from pathlib import Path
    from mfg_pipeline import config
    from mfg_pipeline.sources.fusion_ops import make_client

    client = make_client(config.data_dir())
    for page in range(1, {REQUESTS_PER_PROCESS} + 1):
        client.api.get_json("GET", "/api/v1/productions", params={{"page": page}})
    print(json.dumps({{"requests": client.stats.requests, "throttled": client.stats.throttled}}))
""")


def test_four_processes_share_one_budget_without_a_window_above_the_limit_or_a_429(data_dir):
    simulator = FusionOpsSimulator(
        FusionDataset(seed=42, now=SIM_NOW, history_days=3),
        api_key="key-4p",
        api_secret="secret-4p",
        rate_limit_per_minute=LIMIT,
    )
    with SimulatorServer(simulator) as server:
        env = {
            **os.environ,
            "FUSION_OPS_BASE_URL": server.url,
            "FUSION_OPS_API_KEY": "key-4p",
            "FUSION_OPS_API_SECRET": "secret-4p",
            "FUSION_OPS_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        }
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(PROCESSES)
        ]
        outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0] * PROCESSES, "\n".join(err[-2000:] for _, err in outputs)
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]

    served = simulator.requests()
    assert len(simulator.requests("/api/v1/productions")) == PROCESSES * REQUESTS_PER_PROCESS
    # Token calls too went through the shared budget: every request that arrived was one a client admitted.
    assert len(served) == sum(r["requests"] for r in reports)
    assert [r for r in served if r.status == 429] == []
    assert sum(r["throttled"] for r in reports) == 0
    assert busiest_window([r.time for r in served], 60.0) <= LIMIT
    # The budget was used, not just respected: the first minute is full and the rest waited for the next.
    first = min(r.time for r in served)
    assert sum(r.time < first + 60 for r in served) == LIMIT
