"""Fulcrum Pro API simulator (`fulcrum.txt`). `SIMULATOR` serves it for the demo, `dev` and the tests; the app and data
modules load only when it is built."""

from __future__ import annotations

from mfg_pipeline.simulators.serving import SimulatorEntry
from mfg_pipeline.sources.fulcrum.settings import FulcrumSettings


def _build(now, seed, scale, rate_limit, history_days, timezone=None):
    from mfg_pipeline.simulators.fulcrum.app import FulcrumSimulator
    from mfg_pipeline.simulators.fulcrum.data import FulcrumDataset

    dataset = FulcrumDataset(
        seed=seed,
        scale=scale,
        now=now,
        **({"history_days": history_days} if history_days else {}),
        **({"plant_timezone": timezone} if timezone else {}),
    )
    return FulcrumSimulator(dataset, rate_limit_per_minute=rate_limit or 300)


def _live(app, interval_seconds, seed):
    from mfg_pipeline.simulators.fulcrum.live import FulcrumMutations
    from mfg_pipeline.simulators.live import LiveMutator

    return LiveMutator(FulcrumMutations(app, seed), interval_seconds)


SIMULATOR = SimulatorEntry(
    "fulcrum",
    _build,
    lambda url: {FulcrumSettings.BASE_URL_VARIABLE: url, FulcrumSettings.API_TOKEN_VARIABLE: "demo-fulcrum-token"},
    _live,
    rate_limit_variable=FulcrumSettings.RATE_LIMIT_VARIABLE,
)
