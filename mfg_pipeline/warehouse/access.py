"""The analysts' way in: a read-only session on the warehouse that never blocks a run, nor is blocked by one.

- `MFG_DATA_DIR/attach.sql` (written by the pipeline): the statements a plain DuckDB client runs to attach the
  warehouse read-only and make it the default database:
  `duckdb.connect().execute(open("data/attach.sql").read())`, then `SELECT … FROM fusion_ops.productions_current`.
- `connect()` here, for notebooks: the same session from the environment's settings.
- `mfg-pipeline sql` (the CLI): a shell or one query (`-c`) on it.
No secret is in the file: a Postgres password comes from PGPASSWORD (or ~/.pgpass), S3 keys from AWS_ACCESS_KEY_ID
and AWS_SECRET_ACCESS_KEY.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from mfg_pipeline.warehouse.extensions import ensure_installed
from mfg_pipeline.warehouse.lake import extensions_for, session_statements
from mfg_pipeline.warehouse.layout import literal
from mfg_pipeline.warehouse.settings import Catalog, WarehouseSettings

HEADER = """-- The mfg_pipeline warehouse, read-only, as this session's default database (written by the pipeline).
-- Python: duckdb.connect().execute(open("{path}").read())
-- Then e.g.: SELECT * FROM fusion_ops.productions_current LIMIT 10;
-- The past: SELECT * FROM marts.mart_order_board AT (TIMESTAMP => now() - INTERVAL 1 DAY);
"""


def attach_statements(settings: WarehouseSettings) -> list[str]:
    """Load the extensions (from the project's copies), attach the lake read-only, make it the default."""
    readable = WarehouseSettings(
        settings.data_dir,
        Catalog(settings.catalog.kind, settings.catalog.redacted()),  # a password comes from PGPASSWORD
        settings.data_path,
        settings.parquet_path,
        settings.s3,
    )
    return [
        f"SET extension_directory = {literal(str(settings.extension_dir))}",
        *session_statements(readable, read_only=True),
    ]


def write_attach_file(settings: WarehouseSettings) -> Path:
    """(Re)write attach.sql when its statements changed (a temporary file and a rename: never half-written)."""
    path = settings.attach_file
    text = HEADER.format(path=path) + "".join(f"{statement};\n" for statement in attach_statements(settings))
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def connect(data_dir: Path | str | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB session on the warehouse (MFG_DATA_DIR and MFG_WAREHOUSE_* from the environment), e.g.
    in a notebook: `from mfg_pipeline.warehouse.access import connect; connect().sql("FROM marts.dim_plant")`."""
    from mfg_pipeline.config import data_dir as configured_data_dir

    settings = WarehouseSettings.from_env(data_dir or configured_data_dir())
    connection = duckdb.connect(config={"extension_directory": str(settings.extension_dir)})
    try:
        ensure_installed(connection, extensions_for(settings))
        for statement in session_statements(settings, read_only=True):
            connection.execute(statement)
    except BaseException:
        connection.close()
        raise
    return connection


class SqlSession:
    """`mfg-pipeline sql`: statements run on a read-only session, results printed as DuckDB's tables."""

    def __init__(self, connection: duckdb.DuckDBPyConnection):
        self.connection = connection

    @classmethod
    def open(cls, data_dir: Path | str | None = None) -> SqlSession:
        from mfg_pipeline.config import data_dir as configured_data_dir

        settings = WarehouseSettings.from_env(data_dir or configured_data_dir())
        if settings.catalog.kind == "sqlite" and not Path(settings.catalog.target).exists():
            raise FileNotFoundError(
                f"no warehouse under {settings.data_dir} yet: load one first (.venv/bin/mfg-pipeline demo)"
            )
        return cls(connect(settings.data_dir))

    def run(self, text: str, echo: Callable[[str], Any]) -> None:
        for statement in duckdb.extract_statements(text):
            try:
                relation = self.connection.sql(statement.query)
            except duckdb.Error as exc:
                echo(str(exc))
                continue
            if relation is not None:
                echo(str(relation))

    def shell(self, echo: Callable[[str], Any]) -> None:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
        echo("Read-only session on the warehouse; statements end with ';', .quit leaves.")
        pending: list[str] = []
        while True:
            try:
                line = input("...> " if pending else "mfg> ")
            except EOFError:
                echo("")
                return
            if not pending and line.strip() in (".quit", ".exit"):
                return
            pending.append(line)
            if line.rstrip().endswith(";"):
                self.run("\n".join(pending), echo)
                pending = []
