"""Dagster resources: thin wrappers that build the Dagster-free warehouse and vendor clients.

Credentials are never Dagster config: clients read them from the environment when a run builds them, so they
cannot show up in run config, the UI or event logs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

from mfg_pipeline import config
from mfg_pipeline.declarations import SourceClient
from mfg_pipeline.sources.registry import source_by_name
from mfg_pipeline.warehouse.store import BusyBudget, Warehouse, busy_timeout_from_env

_budgets: dict[str, BusyBudget] = {}
_budgets_lock = threading.Lock()


def _data_dir(configured: str | None) -> Path:
    return Path(configured).resolve() if configured else config.data_dir()


class WarehouseResource(ConfigurableResource):
    """The DuckDB file and Parquet tree under MFG_DATA_DIR (default `data/`)."""

    data_dir: str | None = None

    def path(self) -> Path:
        return _data_dir(self.data_dir)

    def warehouse(self, run_id: str | None = None) -> Warehouse:
        """The warehouse; with `run_id`, every step of the run shares one wait for a DuckDB file held open
        elsewhere (MFG_WAREHOUSE_BUSY_TIMEOUT), instead of each waiting its own."""
        if run_id is None:
            return Warehouse(self.path())
        with _budgets_lock:
            budget = _budgets.setdefault(run_id, BusyBudget(busy_timeout_from_env()))
        return Warehouse(self.path(), busy_budget=budget)


class SourcesResource(ConfigurableResource):
    """The vendor APIs, each configured from its environment variables (see the README's table)."""

    data_dir: str | None = None

    def client(self, source: str, logger: Any = None) -> SourceClient:
        return source_by_name(source).make_client(_data_dir(self.data_dir), logger)
