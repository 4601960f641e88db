"""Autodesk Fusion Operations API simulator (`fusion-operations.txt`). `SIMULATOR` serves it for the demo, `dev` and
the tests; the app and data modules load only when it is built."""

from __future__ import annotations

from mfg_pipeline.simulators.serving import SimulatorEntry
from mfg_pipeline.sources.fusion_ops.settings import FusionOpsSettings


def _build(now, seed, scale, rate_limit, history_days, timezone=None):
    from mfg_pipeline.simulators.fusion_ops.app import FusionOpsSimulator
    from mfg_pipeline.simulators.fusion_ops.data import FusionDataset

    dataset = FusionDataset(
        seed=seed,
        scale=scale,
        now=now,
        **({"history_days": history_days} if history_days else {}),
        **({"company_timezone": timezone} if timezone else {}),
    )
    return FusionOpsSimulator(dataset, rate_limit_per_minute=rate_limit or 120)


def _live(app, interval_seconds, seed):
    from mfg_pipeline.simulators.fusion_ops.live import LiveShop

    return LiveShop(app, interval_seconds=interval_seconds, seed=seed)


SIMULATOR = SimulatorEntry(
    "fusion_ops",
    _build,
    lambda url: {
        FusionOpsSettings.BASE_URL_VARIABLE: url,
        FusionOpsSettings.API_KEY_VARIABLE: "demo-key",
        FusionOpsSettings.API_SECRET_VARIABLE: "demo-secret",
    },
    _live,
    rate_limit_variable=FusionOpsSettings.RATE_LIMIT_VARIABLE,
)
