"""Serving the registered sources' simulators on localhost, and the environment that points the pipeline at them.

Each simulator package exports `SIMULATOR`, a `SimulatorEntry`; the source names its package
(`SourceSystem.simulator`). Used by `mfg-pipeline demo`, `simulators` and `dev`, the tests and the benchmarks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml

from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.simulators.base import SimulatorApp, SimulatorServer


@dataclass(frozen=True)
class SimulatorEntry:
    system: str
    # (now, seed, scale, rate_limit_per_minute | None, history_days | None, timezone | None) -> app; the timezone
    # is the plant's (its shifts and local days; None: the simulator's default)
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
        return {name: value for system in self.servers for name, value in self.env_of(system).items()}

    def env_of(self, system: str) -> dict[str, str]:
        """`env`, for one system's simulator."""
        entry = self.entries[system]
        env = dict(entry.env(self.servers[system].url))
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
    history_days: int | Mapping[str, int] | None = None,
    timezone: str | None = None,
) -> RunningSimulators:
    """Serve each source's simulator in a background thread (port 0: any free port). `rate_limits` (system ->
    requests a minute) replaces a vendor's documented limit; `env` then gives the client the same budget.
    `history_days` is one number, or one per system (default: each simulator's own); `timezone` is the plant's
    (default: each simulator's own)."""
    entries = {source.name: simulator_of(source) for source in sources}
    limits = {system: limit for system, limit in (rate_limits or {}).items() if system in entries}
    servers = {}
    for index, (system, entry) in enumerate(entries.items()):
        history = history_days.get(system) if isinstance(history_days, Mapping) else history_days
        app = entry.build(now, seed, scale, limits.get(system), history, timezone)
        port = first_port + index if first_port else 0
        servers[system] = SimulatorServer(app, host=host, port=port).start()
    return RunningSimulators(servers, entries, limits)


# Simulated plants of a group: each its own company at every vendor, in its own zone.
PLANT_SITES = (
    ("berlin", "Europe/Berlin"),
    ("chicago", "America/Chicago"),
    ("shanghai", "Asia/Shanghai"),
    ("sao_paulo", "America/Sao_Paulo"),
    ("pune", "Asia/Kolkata"),
    ("monterrey", "America/Monterrey"),
)


@dataclass
class SimulatedPlant:
    name: str
    timezone: str
    running: RunningSimulators


def start_plants(
    sources: Sequence[SourceSystem],
    count: int,
    *,
    now: datetime,
    seed: int = 42,
    rate_limits: dict[str, int] | None = None,
    history_days: int | Mapping[str, int] | None = None,
) -> list[SimulatedPlant]:
    """`count` simulated plants, each with every source's simulator in its own zone and with its own seed (so
    their records differ while their ids overlap, as separate companies' do). Named after `PLANT_SITES`, then
    `<site>_<n>` once they run out."""
    plants = []
    for index in range(count):
        site, zone = PLANT_SITES[index % len(PLANT_SITES)]
        name = site if index < len(PLANT_SITES) else f"{site}_{index // len(PLANT_SITES) + 1}"
        running = start_simulators(
            sources,
            now=now,
            seed=seed + 101 * index,
            rate_limits=rate_limits,
            history_days=history_days,
            timezone=zone,
        )
        plants.append(SimulatedPlant(name, zone, running))
    return plants


def plants_file(plants: Sequence[SimulatedPlant], sources: Sequence[SourceSystem]) -> tuple[str, dict[str, str]]:
    """A plants file (YAML) listing the simulated plants, and the environment holding their secrets: each secret
    is written as `${<PLANT>_<VARIABLE>}`, as a data engineer's file names the variable that holds it."""
    secret_of = {s.name: set(s.secret_variables) for s in sources}
    document: dict[str, Any] = {"plants": []}
    secrets: dict[str, str] = {}
    for plant in plants:
        settings: dict[str, dict[str, str]] = {}
        for system in plant.running.servers:
            values = plant.running.env_of(system)
            for variable in secret_of.get(system, set()) & set(values):
                holder = f"{plant.name.upper()}_{variable}"
                secrets[holder] = values[variable]
                values[variable] = f"${{{holder}}}"
            settings[system] = values
        document["plants"].append({"name": plant.name, "timezone": plant.timezone, "sources": settings})
    return yaml.safe_dump(document, sort_keys=False), secrets
