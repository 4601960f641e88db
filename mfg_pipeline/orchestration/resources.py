"""Dagster resources: thin wrappers that build the Dagster-free warehouse and vendor clients.

Credentials are never Dagster config: clients read them from the environment when a run builds them, so they
cannot show up in run config, the UI or event logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from dagster import ConfigurableResource

from mfg_pipeline import config
from mfg_pipeline.streams import SourceClient
from mfg_pipeline.warehouse.store import Warehouse


class WarehouseResource(ConfigurableResource):
    """The DuckDB file and Parquet tree under MFG_DATA_DIR (default `data/`)."""

    data_dir: Optional[str] = None

    def path(self) -> Path:
        return Path(self.data_dir).resolve() if self.data_dir else config.data_dir()

    def warehouse(self) -> Warehouse:
        return Warehouse(self.path())


class SourceApiResource(ConfigurableResource):
    """A vendor API, configured from its environment variables (see the README's table)."""

    source: str
    data_dir: Optional[str] = None

    def client(self, logger: Any = None) -> SourceClient:
        from mfg_pipeline.sources.registry import source_by_name

        data_dir = Path(self.data_dir).resolve() if self.data_dir else config.data_dir()
        return source_by_name(self.source).make_client(data_dir, logger)


def api_resource_key(source_name: str) -> str:
    return f"{source_name}_api"
