"""Traede export API simulator (`traede-export-production-orders.txt`). `SIMULATOR` serves it for the demo, `dev` and
the tests; the app and data modules load only when it is built."""

from __future__ import annotations

from mfg_pipeline.simulators.serving import SimulatorEntry
from mfg_pipeline.sources.traede.settings import TraedeSettings


def _build(now, seed, scale, rate_limit, history_days, timezone=None):
    # Traede's times are UTC and name no plant's day: the plant's zone changes nothing here.
    from mfg_pipeline.simulators.traede.app import TraedeSimulator
    from mfg_pipeline.simulators.traede.data import TraedeDataset

    dataset = TraedeDataset(seed=seed, scale=scale, now=now, **({"history_days": history_days} if history_days else {}))
    return TraedeSimulator(dataset, rate_limit_per_minute=rate_limit or 300)


def _live(app, interval_seconds, seed):
    from mfg_pipeline.simulators.live import LiveMutator
    from mfg_pipeline.simulators.traede.live import TraedeMutations

    return LiveMutator(TraedeMutations(app, seed), interval_seconds)


SIMULATOR = SimulatorEntry(
    "traede",
    _build,
    lambda url: {
        TraedeSettings.BASE_URL_VARIABLE: url,
        TraedeSettings.ACCESS_TOKEN_VARIABLE: "demo-traede-token",
        TraedeSettings.APP_KEY_VARIABLE: "demo-traede-app-key",
        TraedeSettings.SYSTEM_ID_VARIABLE: "mfg-pipeline-demo",
    },
    _live,
    rate_limit_variable=TraedeSettings.RATE_LIMIT_VARIABLE,
)
