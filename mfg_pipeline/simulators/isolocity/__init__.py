"""ISOlocity API simulator (`isolocity.txt`). `SIMULATOR` serves it for the demo, `dev` and the tests; the app and data
modules load only when it is built."""

from __future__ import annotations

from mfg_pipeline.simulators.serving import SimulatorEntry
from mfg_pipeline.sources.isolocity.settings import IsolocitySettings


def _build(now, seed, scale, rate_limit, history_days, timezone=None):
    from mfg_pipeline.simulators.isolocity.app import IsolocitySimulator
    from mfg_pipeline.simulators.isolocity.data import IsolocityDataset

    dataset = IsolocityDataset(
        seed=seed,
        scale=scale,
        now=now,
        **({"history_days": history_days} if history_days else {}),
        **({"plant_timezone": timezone} if timezone else {}),
    )
    return IsolocitySimulator(dataset, rate_limit_per_minute=rate_limit or 300)


def _live(app, interval_seconds, seed):
    from mfg_pipeline.simulators.isolocity.live import IsolocityMutations
    from mfg_pipeline.simulators.live import LiveMutator

    return LiveMutator(IsolocityMutations(app, seed), interval_seconds)


SIMULATOR = SimulatorEntry(
    "isolocity",
    _build,
    lambda url: {
        IsolocitySettings.BASE_URL_VARIABLE: url,
        IsolocitySettings.API_TOKEN_VARIABLE: "demo-isolocity-token",
    },
    _live,
    rate_limit_variable=IsolocitySettings.RATE_LIMIT_VARIABLE,
)
