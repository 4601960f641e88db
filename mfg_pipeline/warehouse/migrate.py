"""`mfg-pipeline migrate`: copy an existing single-file warehouse (`data/warehouse.duckdb`, the pipeline's
storage before DuckLake) into the lake, and prove the copy: every table's row count and key set are equal.

The old file is only read, and left in place. It may have been written by a newer DuckDB than this one (DuckDB
2.x writes a storage format 1.5 cannot open), so the old file is read by a Python of its own (`--reader-python`;
by default this one when it can open the file, else a private virtualenv with DuckDB 2.x, made once with pip),
which exports each table to Parquet with a manifest (keys, comments, row counts). This side then:
- creates each table in the lake from its Parquet, with its comments, and verifies its rows and keys;
- recreates the `_current` views from the definitions the old file recorded;
- carries the pipeline's state over: each stream's last modified-since pass, the marts' published fingerprints;
- takes the published Parquet as current (the old files under MFG_PARQUET_PATH are the same tables), except for
  the partitions the old file still listed as owing an export, which the next commit of their group publishes;
- moves the feed journal's pending pages (`data/changes/<system>/pending/*.json`) into the lake's journal.
A table that already holds rows in the lake is never overwritten: the migration stops, naming it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from mfg_pipeline.warehouse.journal import FeedJournal
from mfg_pipeline.warehouse.layout import (
    PARTITION_COLUMN,
    PLANT_COLUMN,
    STREAM_STATE,
    VIEW_DEFINITIONS,
    literal,
    qualified,
    quote,
)
from mfg_pipeline.warehouse.marts import PUBLISHED as PUBLISHED_MARTS
from mfg_pipeline.warehouse.publish import PublishedTable, record_unpublished
from mfg_pipeline.warehouse.state import MODIFIED_PASS
from mfg_pipeline.warehouse.store import Warehouse

OLD_FILE = "warehouse.duckdb"
READER_DUCKDB = "duckdb>=2.0.1,<3"  # the release that wrote the old files
# Run by the reader Python: the old file's tables to Parquet, and what the lake side needs to know of them.
EXPORT_SCRIPT = r"""
import json, sys, duckdb
old, folder = sys.argv[1], sys.argv[2]
con = duckdb.connect(old, read_only=True)
q = lambda sql, p=(): con.execute(sql, list(p)).fetchall()
keys = {(s, t): list(c) for s, t, c in q("SELECT schema_name, table_name, constraint_column_names FROM "
        "duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'")}
manifest = {"tables": [], "views": [], "stream_state": [], "published_marts": [], "pending_exports": []}
for schema, table, comment in q("SELECT schema_name, table_name, comment FROM duckdb_tables() ORDER BY ALL"):
    name = f'"{schema}"."{table}"'
    target = f"{folder}/{schema}.{table}.parquet"
    con.execute(f"COPY (SELECT * FROM {name}) TO '{target}' (FORMAT parquet)")
    rows = q(f"SELECT count(*) FROM {name}")[0][0]
    key = keys.get((schema, table), [])
    if key:
        cols = ", ".join(f'"{c}"' for c in key)
        missing = q(f"SELECT count(*) FROM (SELECT {cols} FROM {name} EXCEPT SELECT {cols} FROM '{target}')")[0][0]
        extra = q(f"SELECT count(*) FROM (SELECT {cols} FROM '{target}' EXCEPT SELECT {cols} FROM {name})")[0][0]
        assert missing == extra == 0, f"{name}: the export's keys differ from the table's"
    assert q(f"SELECT count(*) FROM '{target}'")[0][0] == rows, f"{name}: the export's rows differ"
    columns = dict(q("SELECT column_name, comment FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
                     [schema, table]))
    manifest["tables"].append({"schema": schema, "table": table, "comment": comment, "columns": columns,
                               "key": key, "rows": rows, "file": target})
def rows_of(name, columns):
    s, t = name.split(".")
    if not q("SELECT 1 FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [s, t]):
        return []
    return [list(map(str, r)) for r in q(f"SELECT {columns} FROM {name}")]
manifest["views"] = rows_of("main._mfg_view_definitions", "schema_name, view_name, sql")
manifest["stream_state"] = rows_of("main._mfg_stream_state", "schema_name, stream, passed_at")
manifest["published_marts"] = rows_of(
    "main._mfg_published_marts", "schema_name, table_name, partition_value, fingerprint")
manifest["pending_exports"] = rows_of("main._mfg_pending_exports", "schema_name, table_name, partition_date")
json.dump(manifest, open(f"{folder}/manifest.json", "w"))
"""


class MigrationError(RuntimeError):
    pass


@dataclass
class MigrationReport:
    tables: dict[str, int] = field(default_factory=dict)  # schema.table -> rows, verified equal
    views: int = 0
    journal_pages: int = 0


def reader_python(data_dir: Path, old_file: Path) -> str:
    """A Python whose DuckDB opens the old file: this one if it can, else a private virtualenv with DuckDB 2.x."""
    try:
        duckdb.connect(str(old_file), read_only=True).close()
        return sys.executable
    except duckdb.IOException as exc:
        if "newer version" not in str(exc):
            raise
    venv = data_dir / ".migrate" / "reader-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", READER_DUCKDB], check=True)
    return str(python)


def migrate(warehouse: Warehouse, old_file: Path | None = None, reader: str | None = None) -> MigrationReport:
    data_dir = warehouse.data_dir
    old_file = Path(old_file or data_dir / OLD_FILE)
    if not old_file.exists():
        raise MigrationError(f"{old_file} does not exist: nothing to migrate")
    folder = data_dir / ".migrate" / f"export-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    try:
        done = subprocess.run(
            [reader or reader_python(data_dir, old_file), "-c", EXPORT_SCRIPT, str(old_file), str(folder)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise MigrationError(f"reading {old_file} failed: {done.stderr.strip().splitlines()[-1:]}")
        manifest = json.loads((folder / "manifest.json").read_text())
        report = _import(warehouse, manifest)
        report.journal_pages = _import_journals(warehouse, data_dir / "changes")
        return report
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _import(warehouse: Warehouse, manifest: dict) -> MigrationReport:
    report = MigrationReport()
    data_tables = [t for t in manifest["tables"] if t["schema"] != "main"]
    for spec in data_tables:
        name = qualified(spec["schema"], spec["table"])
        if warehouse.has_table(spec["schema"], spec["table"]) and warehouse.query(f"SELECT count(*) FROM {name}")[0][0]:
            raise MigrationError(f"{spec['schema']}.{spec['table']} already holds rows in the lake: not overwritten")
    for spec in data_tables:
        report.tables[f"{spec['schema']}.{spec['table']}"] = _import_table(warehouse, spec)
    report.views = _import_state(warehouse, manifest)
    specs = {(t["schema"], t["table"]): t for t in data_tables}
    owed = [(specs[(s, t)], None if p == "None" else date.fromisoformat(p)) for s, t, p in manifest["pending_exports"]]
    if owed:

        def record(cursor: duckdb.DuckDBPyConnection) -> None:
            for spec, partition in owed:
                partitioned = PARTITION_COLUMN in spec["columns"]
                table = PublishedTable(spec["schema"], spec["table"], partitioned, tuple(spec["key"]))
                record_unpublished(cursor, table, warehouse.plant, [partition])

        warehouse.lake.write("migrating the exports the old file owed", record)
    return report


def _import_table(warehouse: Warehouse, spec: dict) -> int:
    name = qualified(spec["schema"], spec["table"])
    source = f"read_parquet({literal(spec['file'])})"

    def create(cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(spec['schema'])}")
        # The old file held one plant: its rows become the warehouse's plant's.
        cursor.execute(
            f"CREATE OR REPLACE TABLE {name} AS SELECT {literal(warehouse.plant)} AS {PLANT_COLUMN}, * FROM {source}"
        )
        if spec["comment"]:
            cursor.execute(f"COMMENT ON TABLE {name} IS {literal(spec['comment'])}")
        for column, comment in spec["columns"].items():
            if comment:
                cursor.execute(f"COMMENT ON COLUMN {name}.{quote(column)} IS {literal(comment)}")

    warehouse.lake.write(f"migrating {spec['schema']}.{spec['table']}", create)
    rows = warehouse.query(f"SELECT count(*) FROM {name}")[0][0]
    if rows != spec["rows"]:
        raise MigrationError(f"{name}: {rows} rows in the lake, {spec['rows']} in the old file")
    if spec["key"]:
        key = ", ".join(quote(c) for c in spec["key"])
        differ = warehouse.query(
            f"SELECT (SELECT count(*) FROM (SELECT {key} FROM {name} EXCEPT SELECT {key} FROM {source})) + "
            f"(SELECT count(*) FROM (SELECT {key} FROM {source} EXCEPT SELECT {key} FROM {name}))"
        )[0][0]
        if differ:
            raise MigrationError(f"{name}: {differ} keys differ between the lake and the old file")
    return int(rows)


def _import_state(warehouse: Warehouse, manifest: dict) -> int:
    """The `_current` views (from the old file's recorded definitions), stream state, published mart fingerprints."""

    def write(cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {VIEW_DEFINITIONS} (schema_name VARCHAR, view_name VARCHAR, sql VARCHAR)"
        )
        for schema, view, sql in manifest["views"]:
            cursor.execute(f"CREATE OR REPLACE VIEW {qualified(schema, view)} AS {sql}")
            cursor.execute(f"DELETE FROM {VIEW_DEFINITIONS} WHERE schema_name = ? AND view_name = ?", [schema, view])
            cursor.execute(f"INSERT INTO {VIEW_DEFINITIONS} VALUES (?, ?, ?)", [schema, view, sql])
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {STREAM_STATE} "
            f"(schema_name VARCHAR, stream VARCHAR, name VARCHAR, happened_at TIMESTAMPTZ, {PLANT_COLUMN} VARCHAR)"
        )
        for schema, stream, passed_at in manifest["stream_state"]:
            cursor.execute(
                f"INSERT INTO {STREAM_STATE} VALUES (?, ?, ?, ?, ?)",
                [schema, stream, MODIFIED_PASS, datetime.fromisoformat(passed_at), warehouse.plant],
            )
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {PUBLISHED_MARTS} (schema_name VARCHAR, table_name VARCHAR, "
            "partition_value DATE, fingerprint VARCHAR)"
        )
        for schema, table, partition, fingerprint in manifest["published_marts"]:
            cursor.execute(
                f"INSERT INTO {PUBLISHED_MARTS} VALUES (?, ?, ?, ?)",
                [schema, table, None if partition == "None" else partition, fingerprint],
            )

    warehouse.lake.write("migrating the pipeline's state", write)
    return len(manifest["views"])


def _import_journals(warehouse: Warehouse, root: Path) -> int:
    """Pending feed pages of the file journal (`<root>/<system>/pending/*.json`) into the lake's journal."""
    moved = 0
    for system_folder in sorted(root.iterdir()) if root.exists() else ():
        journal = FeedJournal(warehouse, system_folder.name, (system_folder.name, "change_log"))
        known = set(journal.pending_ids())
        for page in sorted((system_folder / "pending").glob("*.json")):
            payload = json.loads(page.read_text(encoding="utf-8"))
            if payload["batch_id"] in known:
                continue
            journal.save(
                payload["batch_id"],
                payload["channel"],
                payload["type"],
                datetime.fromisoformat(payload["read_at"]),
                payload["records"],
            )
            moved += 1
    return moved
