"""Where the warehouse lives: the DuckLake catalog, its data files and the published Parquet, from MFG_WAREHOUSE_*.

Two shapes, chosen by settings alone (the code path is the same):
- **embedded** (default): a SQLite catalog and the data files under MFG_DATA_DIR; several processes on one machine
  share it, nothing to start;
- **many machines**: `MFG_WAREHOUSE_CATALOG=postgresql://…` and `MFG_WAREHOUSE_DATA_PATH=s3://…` (any
  S3-compatible store, `MFG_S3_ENDPOINT`), with the published Parquet in the bucket too (`MFG_PARQUET_PATH`).

Secrets (a catalog password, S3 keys) are read here and never printed: `redacted()` is what logs, errors and
Dagster metadata may show.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mfg_pipeline.http.errors import ConfigurationError

CATALOG_VARIABLE = "MFG_WAREHOUSE_CATALOG"
DATA_PATH_VARIABLE = "MFG_WAREHOUSE_DATA_PATH"
PARQUET_PATH_VARIABLE = "MFG_PARQUET_PATH"
S3_ENDPOINT_VARIABLE = "MFG_S3_ENDPOINT"
S3_REGION_VARIABLE = "MFG_S3_REGION"
S3_USE_SSL_VARIABLE = "MFG_S3_USE_SSL"
S3_URL_STYLE_VARIABLE = "MFG_S3_URL_STYLE"
LAKE_FOLDER = "lake"
CATALOG_FILE = "catalog.sqlite"
ATTACH_FILE = "attach.sql"
EXTENSION_DIR_VARIABLE = "MFG_DUCKDB_EXTENSION_DIR"
LAKE_ALIAS = "warehouse"  # the attached lake's name in every session, and its default database


class WarehouseSettingError(ConfigurationError):
    """A warehouse setting cannot be used; `variable` names it."""

    def __init__(self, variable: str, message: str):
        self.variable = variable
        super().__init__(f"{variable}: {message}")


@dataclass(frozen=True)
class S3Settings:
    """An S3-compatible object store (AWS, or a server of one's own such as SeaweedFS or MinIO). The keys stay in
    the standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables: DuckDB (credential_chain) and pyarrow read
    them from the environment, so no statement or file of ours ever holds them."""

    endpoint: str | None  # host[:port] of a non-AWS server; None: AWS itself
    region: str
    use_ssl: bool
    url_style: str  # "path" (most self-hosted servers) or "vhost" (AWS)

    @classmethod
    def from_env(cls) -> S3Settings:
        endpoint = os.environ.get(S3_ENDPOINT_VARIABLE) or None
        use_ssl = (os.environ.get(S3_USE_SSL_VARIABLE) or "true").strip().lower()
        if use_ssl not in ("true", "false"):
            raise WarehouseSettingError(S3_USE_SSL_VARIABLE, f"must be true or false, got {use_ssl!r}")
        style = (os.environ.get(S3_URL_STYLE_VARIABLE) or ("path" if endpoint else "vhost")).strip().lower()
        if style not in ("path", "vhost"):
            raise WarehouseSettingError(S3_URL_STYLE_VARIABLE, f"must be path or vhost, got {style!r}")
        return cls(
            endpoint=endpoint,
            region=os.environ.get(S3_REGION_VARIABLE) or "us-east-1",
            use_ssl=use_ssl == "true",
            url_style=style,
        )


@dataclass(frozen=True)
class Catalog:
    """The DuckLake catalog database: a SQLite file (one machine) or a Postgres database (many)."""

    kind: str  # "sqlite" or "postgres"
    target: str = field(repr=False)  # the file path, or the libpq connection URI (it may carry a password)

    @property
    def attach_target(self) -> str:
        return f"ducklake:{self.kind}:{self.target}"

    @property
    def password(self) -> str | None:
        return urlsplit(self.target).password if self.kind == "postgres" else None

    def redacted(self) -> str:
        """The catalog as logs and metadata may show it: a Postgres URI without its password."""
        if self.kind != "postgres":
            return self.target
        parts = urlsplit(self.target)
        host = parts.hostname or ""
        netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class WarehouseSettings:
    data_dir: Path  # local, per machine: staging, locks (embedded), attach.sql
    catalog: Catalog
    data_path: str  # where DuckLake writes the tables' Parquet: a folder, or s3://bucket/prefix/
    parquet_path: str  # the published current-state and mart Parquet (Power BI): a folder, or s3://…
    s3: S3Settings | None = None

    @classmethod
    def from_env(cls, data_dir: Path | str) -> WarehouseSettings:
        data_dir = Path(data_dir).resolve()
        lake = data_dir / LAKE_FOLDER
        catalog = _catalog(os.environ.get(CATALOG_VARIABLE) or "", lake / CATALOG_FILE)
        data_path = _folder(os.environ.get(DATA_PATH_VARIABLE) or str(lake / "data"), DATA_PATH_VARIABLE)
        parquet_path = _folder(
            os.environ.get(PARQUET_PATH_VARIABLE) or str(data_dir / "parquet"), PARQUET_PATH_VARIABLE
        )
        uses_s3 = any(p.startswith("s3://") for p in (data_path, parquet_path))
        return cls(data_dir, catalog, data_path, parquet_path, S3Settings.from_env() if uses_s3 else None)

    @property
    def shared(self) -> bool:
        """Many machines: the catalog is a server every host reaches (so are the locks)."""
        return self.catalog.kind == "postgres"

    @property
    def extension_dir(self) -> Path:
        """Where the DuckDB extensions are installed from their wheels (MFG_DUCKDB_EXTENSION_DIR; by default beside
        this Python environment, once for every warehouse it serves)."""
        configured = os.environ.get(EXTENSION_DIR_VARIABLE)
        if configured:
            return Path(configured).resolve()
        beside = Path(sys.prefix) / "share" / "mfg_pipeline" / "duckdb_extensions"
        writable = beside.exists() and os.access(beside, os.W_OK) or os.access(Path(sys.prefix), os.W_OK)
        return beside if writable else Path.home() / ".cache" / "mfg_pipeline" / "duckdb_extensions"

    @property
    def attach_file(self) -> Path:
        return self.data_dir / ATTACH_FILE

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.catalog.password,) if s)

    def describe(self) -> dict[str, str]:
        """For logs and Dagster metadata: no secret in it."""
        return {"catalog": self.catalog.redacted(), "data_path": self.data_path, "parquet_path": self.parquet_path}


def _catalog(raw: str, default_file: Path) -> Catalog:
    raw = raw.strip()
    if not raw:
        return Catalog("sqlite", str(default_file))
    if raw.startswith(("postgresql://", "postgres://")):
        return Catalog("postgres", raw)
    if raw.startswith("sqlite:"):
        return Catalog("sqlite", str(Path(raw.removeprefix("sqlite:").removeprefix("//")).resolve()))
    raise WarehouseSettingError(
        CATALOG_VARIABLE,
        "expected a postgresql://user@host:port/database URI, or sqlite:<file> (default: a SQLite file under "
        "MFG_DATA_DIR/lake)",
    )


def _folder(raw: str, variable: str) -> str:
    raw = raw.strip()
    if raw.startswith("s3://"):
        if len(raw) <= len("s3://") or raw == "s3:///":
            raise WarehouseSettingError(variable, f"s3:// needs a bucket, got {raw!r}")
        return raw.rstrip("/") + "/"
    if "://" in raw:
        raise WarehouseSettingError(variable, f"expected a local folder or s3://bucket/prefix, got {raw!r}")
    return str(Path(raw).resolve()) + "/"
