"""Living with the lake: the daily maintenance merges small files and expires old snapshots without changing a row
or republishing a file; `mfg-pipeline migrate` copies a single-file warehouse into the lake with equal row counts
and keys and leaves the old file alone; `mfg-pipeline sql` answers from a read-only session."""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mfg_pipeline.cli import main
from mfg_pipeline.records.schema import INT, STRING, Column, Table
from mfg_pipeline.warehouse.layout import PARTITION_COLUMN
from mfg_pipeline.warehouse.maintenance import data_files, maintain, snapshot_count
from mfg_pipeline.warehouse.migrate import MigrationError, migrate
from mfg_pipeline.warehouse.store import TableLoad, Warehouse

TABLE = Table("events", (Column("id", INT, required=True), Column("label", STRING)), primary_key=("id",))
DAY = date(2026, 11, 1)


def commit_rows(warehouse: Warehouse, rows: list[tuple[int, str]], day: date = DAY) -> None:
    stage = warehouse.new_stage("demo")
    path = stage.file_for("events")
    schema = TABLE.arrow_schema([pa.field(PARTITION_COLUMN, pa.date32(), nullable=False)])
    columns = {"id": [r[0] for r in rows], "label": [r[1] for r in rows], PARTITION_COLUMN: [day] * len(rows)}
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path)
    try:
        warehouse.commit([TableLoad("demo", TABLE, path, partitioned=True)])
    finally:
        stage.discard()


def test_maintenance_merges_small_files_and_expires_old_snapshots_without_changing_a_row_or_a_published_file(
    data_dir,
):
    warehouse = Warehouse(data_dir)
    commit_rows(warehouse, [(i, "first") for i in range(500)])  # a file of its own
    for n in range(30):  # a feed's worth of small commits: inlined, and a few files
        commit_rows(warehouse, [(1000 + n * 20 + i, f"small {n}") for i in range(12 if n % 3 else 3)])
    before = warehouse.query("SELECT id, label FROM demo.events_current ORDER BY id")
    published = warehouse.parquet_file("demo", "events", DAY)
    published_bytes = published.read_bytes()
    files_before, snapshots_before = data_files(warehouse), snapshot_count(warehouse)

    report = maintain(warehouse, now=datetime.now(timezone.utc) + timedelta(days=31))

    assert warehouse.query("SELECT id, label FROM demo.events_current ORDER BY id") == before
    assert published.read_bytes() == published_bytes  # rewriting files changes no row: nothing republished
    assert report.data_files_before == files_before and report.data_files_after < files_before
    assert report.snapshots_before == snapshots_before and report.snapshots_after < snapshots_before
    assert "demo" in report.groups and report.files_removed > 0
    commit_rows(warehouse, [(9999, "after")])  # and the lake takes new commits as before
    assert warehouse.query("SELECT count(*) FROM demo.events_current")[0][0] == len(before) + 1


OLD_LAYOUT = """
CREATE SCHEMA fusion_ops;
CREATE TABLE fusion_ops.productions (id BIGINT PRIMARY KEY, quantity DOUBLE, partition_date DATE,
    deleted_at TIMESTAMPTZ, _loaded_at TIMESTAMPTZ);
COMMENT ON TABLE fusion_ops.productions IS 'Every production record.';
COMMENT ON COLUMN fusion_ops.productions.quantity IS 'Good units.';
INSERT INTO fusion_ops.productions SELECT i, i * 1.5, DATE '2026-11-01' + (i % 3)::INT,
    CASE WHEN i = 7 THEN TIMESTAMPTZ '2026-11-02 10:00:00+00' END, now() FROM range(50) r(i);
CREATE TABLE fusion_ops.production_waste (production_id BIGINT, position BIGINT, quantity DOUBLE,
    partition_date DATE, deleted_at TIMESTAMPTZ, _loaded_at TIMESTAMPTZ, PRIMARY KEY (production_id, position));
INSERT INTO fusion_ops.production_waste SELECT i, 0, 1.0, DATE '2026-11-01', NULL, now() FROM range(20) r(i);
CREATE TABLE main._mfg_view_definitions (schema_name VARCHAR, view_name VARCHAR, sql VARCHAR);
INSERT INTO main._mfg_view_definitions VALUES ('fusion_ops', 'productions_current', 'SELECT t."id", t."quantity",
    t."partition_date", t."_loaded_at" FROM "fusion_ops"."productions" t WHERE t.deleted_at IS NULL');
CREATE VIEW fusion_ops.productions_current AS SELECT t."id", t."quantity", t."partition_date", t."_loaded_at"
    FROM "fusion_ops"."productions" t WHERE t.deleted_at IS NULL;
CREATE TABLE main._mfg_stream_state (schema_name VARCHAR, stream VARCHAR, passed_at TIMESTAMPTZ);
INSERT INTO main._mfg_stream_state VALUES ('fusion_ops', 'products', TIMESTAMPTZ '2026-11-12 13:00:00+00');
CREATE TABLE main._mfg_pending_exports (schema_name VARCHAR, table_name VARCHAR, partition_date DATE);
INSERT INTO main._mfg_pending_exports VALUES ('fusion_ops', 'productions', DATE '2026-11-02');
"""


@pytest.fixture
def old_warehouse(data_dir: Path) -> Path:
    """A warehouse in the single-file layout of before DuckLake, with a pending feed page in the file journal."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "warehouse.duckdb"
    connection = duckdb.connect(str(path))
    connection.execute(OLD_LAYOUT)
    connection.close()
    pending = data_dir / "changes" / "fusion_ops" / "pending"
    pending.mkdir(parents=True)
    page = {
        "batch_id": "20261112T140000000000Z-production-1a2b3c4d",
        "channel": "production",
        "type": "PRODUCTION",
        "read_at": "2026-11-12T14:00:00+00:00",
        "records": [{"id": 3, "quantity": 9}],
    }
    (pending / f"{page['batch_id']}.json").write_text(json.dumps(page))
    return path


def test_migrate_copies_every_table_with_equal_rows_and_keys_and_leaves_the_old_file_alone(old_warehouse, data_dir):
    fingerprint = hashlib.sha256(old_warehouse.read_bytes()).hexdigest()
    warehouse = Warehouse(data_dir)
    report = migrate(warehouse, reader=sys.executable)

    assert report.tables == {"fusion_ops.productions": 50, "fusion_ops.production_waste": 20}
    assert report.views == 1 and report.journal_pages == 1
    assert hashlib.sha256(old_warehouse.read_bytes()).hexdigest() == fingerprint
    assert warehouse.query("SELECT count(*) FROM fusion_ops.productions_current")[0][0] == 49
    comments = dict(
        warehouse.query(
            "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = 'warehouse' "
            "AND schema_name = 'fusion_ops' AND table_name = 'productions'"
        )
    )
    assert comments["quantity"] == "Good units."
    assert warehouse.stream_state("fusion_ops", "products", "modified_pass") == datetime(
        2026, 11, 12, 13, tzinfo=timezone.utc
    )
    from mfg_pipeline.sources.fusion_ops.changes import FEED

    assert FEED.journal(warehouse).pending_ids() == ["20261112T140000000000Z-production-1a2b3c4d"]
    unpublished = warehouse.query('SELECT table_name, partition_date FROM main."_mfg_unpublished_fusion_ops"')
    assert unpublished == [("productions", date(2026, 11, 2))]  # the export the old file still owed
    with pytest.raises(MigrationError, match="already holds rows"):
        migrate(warehouse, reader=sys.executable)


def test_the_sql_command_answers_a_query_from_a_read_only_session(data_dir):
    commit_rows(Warehouse(data_dir), [(1, "a"), (2, "b")])
    result = CliRunner().invoke(main, ["sql", "-c", "SELECT count(*) AS events FROM demo.events_current"])
    assert result.exit_code == 0, result.output
    assert "events" in result.output and "2" in result.output
    refused = CliRunner().invoke(main, ["sql", "-c", "DELETE FROM demo.events"])
    assert "read-only" in refused.output.lower() or "read only" in refused.output.lower()


def test_the_sql_command_without_a_warehouse_says_how_to_make_one(data_dir):
    result = CliRunner().invoke(main, ["sql", "-c", "SELECT 1"])
    assert result.exit_code != 0 and "mfg-pipeline demo" in result.output
