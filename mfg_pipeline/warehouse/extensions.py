"""The DuckDB extensions the lake needs, from their PyPI wheels: no download at run time.

DuckDB's own `INSTALL ducklake` fetches from extensions.duckdb.org, which air-gapped plants (and these machines)
cannot reach. The signed builds ship as wheels (`duckdb-extension-<name>`, one per DuckDB release), so each
process installs them once from the wheel into the project's extension folder (`INSTALL '<file>'`, signatures
checked as usual) and loads them by name.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb
from filelock import FileLock

from mfg_pipeline.http.errors import ConfigurationError

# Extension name -> (wheel module, name DuckDB installs it under).
WHEELS = {
    "ducklake": ("duckdb_extension_ducklake", "ducklake"),
    "sqlite": ("duckdb_extension_sqlite", "sqlite_scanner"),
    "postgres": ("duckdb_extension_postgres", "postgres_scanner"),
    "httpfs": ("duckdb_extension_httpfs", "httpfs"),
    "aws": ("duckdb_extension_aws", "aws"),  # S3 credentials from the environment (credential_chain)
}
EXTRA_FOR = {"postgres": "cluster", "httpfs": "cluster", "aws": "cluster"}  # the pip extra that installs the wheel


class MissingExtensionError(ConfigurationError):
    def __init__(self, name: str):
        extra = EXTRA_FOR.get(name)
        how = f"pip install -c constraints.txt -e '.[{extra}]'" if extra else "pip install -c constraints.txt -e ."
        super().__init__(
            f"the DuckDB extension '{name}' is not installed (wheel duckdb-extension-{name}=={duckdb.__version__}); "
            f"install it with: {how}"
        )


def wheel_file(name: str) -> Path:
    module_name, _ = WHEELS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise MissingExtensionError(name) from None
    found = sorted(Path(module.__file__ or "").parent.glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension"))
    if not found:
        raise MissingExtensionError(name)
    return found[0]


def platform_dir(connection: duckdb.DuckDBPyConnection) -> Path:
    """Where the connection keeps installed extensions: its extension directory's version and platform folder."""
    directory = connection.execute("SELECT current_setting('extension_directory')").fetchone()[0]  # type: ignore[index]
    platform = connection.execute("PRAGMA platform").fetchone()[0]  # type: ignore[index]
    return Path(directory) / f"v{duckdb.__version__}" / str(platform)


def ensure_installed(connection: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
    """Install each extension from its wheel into the connection's extension directory, once (processes starting
    together wait for one install instead of writing the same file at once). Through the caller's connection: a
    second in-process DuckDB database would hold its own memory for the process's life."""
    target = platform_dir(connection)
    missing = [n for n in names if not (target / f"{WHEELS[n][1]}.duckdb_extension").exists()]
    if not missing:
        return
    extension_dir = target.parents[1]
    extension_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(extension_dir / ".install.lock"), timeout=300):
        for name in missing:
            if not (target / f"{WHEELS[name][1]}.duckdb_extension").exists():
                connection.execute(f"INSTALL '{wheel_file(name)}'")
