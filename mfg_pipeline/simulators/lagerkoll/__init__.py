"""Lagerkoll production orders API simulator (`lagerkoll-production-orders.txt`). `SIMULATOR` serves it for the demo,
`dev` and the tests; the app and data modules load only when it is built."""

from __future__ import annotations

from mfg_pipeline.simulators.serving import SimulatorEntry
from mfg_pipeline.sources.lagerkoll.settings import LagerkollSettings


def _build(now, seed, scale, rate_limit, history_days, timezone=None):
    from mfg_pipeline.simulators.lagerkoll.app import LagerkollSimulator
    from mfg_pipeline.simulators.lagerkoll.data import LagerkollDataset

    dataset = LagerkollDataset(
        seed=seed,
        scale=scale,
        now=now,
        **({"history_days": history_days} if history_days else {}),
        **({"store_timezone": timezone} if timezone else {}),
    )
    return LagerkollSimulator(dataset, rate_limit_per_minute=rate_limit or 200)


def _live(app, interval_seconds, seed):
    from mfg_pipeline.simulators.lagerkoll.live import LagerkollMutations
    from mfg_pipeline.simulators.live import LiveMutator

    return LiveMutator(LagerkollMutations(app, seed), interval_seconds)


SIMULATOR = SimulatorEntry(
    "lagerkoll",
    _build,
    lambda url: {
        LagerkollSettings.BASE_URL_VARIABLE: url,
        LagerkollSettings.STORE_VARIABLE: "demo-store",
        LagerkollSettings.API_KEY_VARIABLE: "demo-api-key",
    },
    _live,
    rate_limit_variable=LagerkollSettings.RATE_LIMIT_VARIABLE,
)
