"""Dagster resources: thin wrappers that build the Dagster-free warehouse and vendor clients.

Credentials are never Dagster config: clients read them from the environment when a run builds them, so they
cannot show up in run config, the UI or event logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import ConfigurableResource

from mfg_pipeline import config
from mfg_pipeline.declarations import SourceClient
from mfg_pipeline.sources.registry import source_by_name
from mfg_pipeline.warehouse.store import Warehouse


def _data_dir(configured: str | None) -> Path:
    return Path(configured).resolve() if configured else config.data_dir()


class WarehouseResource(ConfigurableResource):
    """The warehouse (MFG_WAREHOUSE_*: by default a DuckLake under MFG_DATA_DIR, default `data/`)."""

    data_dir: str | None = None

    def path(self) -> Path:
        return _data_dir(self.data_dir)

    def warehouse(self) -> Warehouse:
        return Warehouse(self.path())


class SourcesResource(ConfigurableResource):
    """The vendor APIs, each configured from its environment variables (see the README's table)."""

    data_dir: str | None = None

    def client(self, source: str, logger: Any = None) -> SourceClient:
        return source_by_name(source).make_client(_data_dir(self.data_dir), logger)
