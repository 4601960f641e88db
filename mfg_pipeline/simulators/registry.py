"""The five simulators with demo credentials, and the environment that points the pipeline at them.

Used by `mfg-pipeline demo`, `mfg-pipeline simulators`, `mfg-pipeline dev`, the tests and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from mfg_pipeline.simulators.base import SimulatorApp, SimulatorServer


@dataclass(frozen=True)
class SimulatorEntry:
    system: str
    build: Callable[..., SimulatorApp]  # (now, seed, scale, rate_limit_per_minute | None) -> app
    env: Callable[[str], dict[str, str]]  # base URL -> environment for the pipeline


def _fusion_ops(now: datetime, seed: int, scale: int, rate_limit: int | None) -> SimulatorApp:
    from mfg_pipeline.simulators.fusion_ops.app import FusionOpsSimulator
    from mfg_pipeline.simulators.fusion_ops.data import FusionDataset

    return FusionOpsSimulator(FusionDataset(seed=seed, scale=scale, now=now), rate_limit_per_minute=rate_limit or 120)


def _lagerkoll(now: datetime, seed: int, scale: int, rate_limit: int | None) -> SimulatorApp:
    from mfg_pipeline.simulators.lagerkoll.app import LagerkollSimulator
    from mfg_pipeline.simulators.lagerkoll.data import LagerkollDataset

    return LagerkollSimulator(LagerkollDataset(seed=seed, scale=scale, now=now), rate_limit_per_minute=rate_limit or 200)


def _fulcrum(now: datetime, seed: int, scale: int, rate_limit: int | None) -> SimulatorApp:
    from mfg_pipeline.simulators.fulcrum.app import FulcrumSimulator
    from mfg_pipeline.simulators.fulcrum.data import FulcrumDataset

    return FulcrumSimulator(FulcrumDataset(seed=seed, scale=scale, now=now), rate_limit_per_minute=rate_limit or 300)


def _isolocity(now: datetime, seed: int, scale: int, rate_limit: int | None) -> SimulatorApp:
    from mfg_pipeline.simulators.isolocity.app import IsolocitySimulator
    from mfg_pipeline.simulators.isolocity.data import IsolocityDataset

    return IsolocitySimulator(IsolocityDataset(seed=seed, scale=scale, now=now),
                              rate_limit_per_minute=rate_limit or 300)


def _traede(now: datetime, seed: int, scale: int, rate_limit: int | None) -> SimulatorApp:
    from mfg_pipeline.simulators.traede.app import TraedeSimulator
    from mfg_pipeline.simulators.traede.data import TraedeDataset

    return TraedeSimulator(TraedeDataset(seed=seed, scale=scale, now=now), rate_limit_per_minute=rate_limit or 300)


SIMULATORS: dict[str, SimulatorEntry] = {
    "fusion_ops": SimulatorEntry("fusion_ops", _fusion_ops, lambda url: {
        "FUSION_OPS_BASE_URL": url, "FUSION_OPS_API_KEY": "demo-key", "FUSION_OPS_API_SECRET": "demo-secret"}),
    "lagerkoll": SimulatorEntry("lagerkoll", _lagerkoll, lambda url: {
        "LAGERKOLL_BASE_URL": url, "LAGERKOLL_STORE": "demo-store", "LAGERKOLL_API_KEY": "demo-api-key"}),
    "fulcrum": SimulatorEntry("fulcrum", _fulcrum, lambda url: {
        "FULCRUM_BASE_URL": url, "FULCRUM_API_TOKEN": "demo-fulcrum-token"}),
    "isolocity": SimulatorEntry("isolocity", _isolocity, lambda url: {
        "ISOLOCITY_BASE_URL": url, "ISOLOCITY_API_TOKEN": "demo-isolocity-token"}),
    "traede": SimulatorEntry("traede", _traede, lambda url: {
        "TRAEDE_BASE_URL": url, "TRAEDE_ACCESS_TOKEN": "demo-traede-token", "TRAEDE_APP_KEY": "demo-traede-app-key",
        "TRAEDE_SYSTEM_ID": "mfg-pipeline-demo"}),
}


@dataclass
class RunningSimulators:
    servers: dict[str, SimulatorServer]

    @property
    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for system, server in self.servers.items():
            env.update(SIMULATORS[system].env(server.url))
        return env

    def total_requests(self) -> int:
        return sum(len(s.app.requests()) for s in self.servers.values())

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def start_simulators(systems: list[str], *, now: datetime, seed: int = 42, scale: int = 1,
                     host: str = "127.0.0.1", first_port: int = 0,
                     rate_limits: dict[str, int] | None = None) -> RunningSimulators:
    """Serve each system's simulator in a background thread (port 0: any free port)."""
    servers = {}
    for index, system in enumerate(systems):
        app = SIMULATORS[system].build(now, seed, scale, (rate_limits or {}).get(system))
        port = first_port + index if first_port else 0
        servers[system] = SimulatorServer(app, host=host, port=port).start()
    return RunningSimulators(servers)
