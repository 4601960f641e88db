"""Serving the registered sources' simulators on localhost, and the environment that points the pipeline at them.

Each simulator package exports `SIMULATOR`, a `SimulatorEntry`; the source names its package
(`SourceSystem.simulator`). Used by `mfg-pipeline demo`, `simulators` and `dev`, the tests and the benchmarks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.simulators.base import SimulatorApp, SimulatorServer


@dataclass(frozen=True)
class SimulatorEntry:
    system: str
    # (now, seed, scale, rate_limit_per_minute | None, history_days | None) -> app
    build: Callable[..., SimulatorApp]
    env: Callable[[str], dict[str, str]]  # base URL -> environment for the pipeline (demo credentials)
    # (app, interval_seconds, seed) -> a started-on-demand thread that keeps changing the app's records
    live: Callable[..., Any] | None = None
    # The pipeline's request budget for this vendor (its settings' variable): set beside a simulator whose limit
    # was changed, so client and server agree.
    rate_limit_variable: str | None = None


def simulator_of(source: SourceSystem) -> SimulatorEntry:
    """The `SIMULATOR` of a source's simulator package; a clear error when the source has none."""
    try:
        module = importlib.import_module(source.simulator)
    except ModuleNotFoundError:
        module = None
    entry = getattr(module, "SIMULATOR", None)
    if not isinstance(entry, SimulatorEntry):
        raise LookupError(
            f"source {source.name!r} has no simulator: add {source.simulator} exporting SIMULATOR "
            "(a SimulatorEntry), or run the demo with --against-env"
        )
    return entry


@dataclass
class RunningSimulators:
    servers: dict[str, SimulatorServer]
    entries: dict[str, SimulatorEntry]
    rate_limits: dict[str, int] = field(default_factory=dict)  # system -> the limit it was started with, if set

    @property
    def env(self) -> dict[str, str]:
        """What points the pipeline at the simulators: base URLs, demo credentials and, for a simulator started with
        its own rate limit, the same budget for the client."""
        env: dict[str, str] = {}
        for system, server in self.servers.items():
            entry = self.entries[system]
            env.update(entry.env(server.url))
            if system in self.rate_limits and entry.rate_limit_variable:
                env[entry.rate_limit_variable] = str(self.rate_limits[system])
        return env

    def total_requests(self) -> int:
        return sum(len(s.app.requests()) for s in self.servers.values())

    def start_live(self, interval_seconds: float, seed: int = 5) -> list[Any]:
        """Keep every simulator that can changing its records (a create, edit or delete every interval)."""
        started = []
        for system, server in self.servers.items():
            live = self.entries[system].live
            if live is not None and interval_seconds > 0:
                started.append(live(server.app, interval_seconds=interval_seconds, seed=seed).start())
        return started

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def start_simulators(
    sources: Sequence[SourceSystem],
    *,
    now: datetime,
    seed: int = 42,
    scale: int = 1,
    host: str = "127.0.0.1",
    first_port: int = 0,
    rate_limits: dict[str, int] | None = None,
    history_days: int | None = None,
) -> RunningSimulators:
    """Serve each source's simulator in a background thread (port 0: any free port). `rate_limits` (system ->
    requests a minute) replaces a vendor's documented limit; `env` then gives the client the same budget."""
    entries = {source.name: simulator_of(source) for source in sources}
    limits = {system: limit for system, limit in (rate_limits or {}).items() if system in entries}
    servers = {}
    for index, (system, entry) in enumerate(entries.items()):
        app = entry.build(now, seed, scale, limits.get(system), history_days)
        port = first_port + index if first_port else 0
        servers[system] = SimulatorServer(app, host=host, port=port).start()
    return RunningSimulators(servers, entries, limits)
