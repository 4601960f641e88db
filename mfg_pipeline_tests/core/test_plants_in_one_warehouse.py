"""Plants side by side in one warehouse: every row carries its plant and the plant leads every key, so two plants'
records with the same id both land; what one plant's load soft-deletes, reads, records and publishes is that
plant's only; and a lake written before plants gets the column (its rows the first run's plant) on opening."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mfg_pipeline.plants import for_plant
from mfg_pipeline.records.schema import INT, STRING, Column, Table
from mfg_pipeline.warehouse.built_with import SettingChangedError
from mfg_pipeline.warehouse.checks import primary_key_check, row_count_check
from mfg_pipeline.warehouse.lake import Lake
from mfg_pipeline.warehouse.layout import FINGERPRINT_COLUMN
from mfg_pipeline.warehouse.store import PARTITION_COLUMN, Scope, TableLoad, Warehouse

ORDERS = Table("orders", (Column("id", INT, required=True), Column("label", STRING)), primary_key=("id",))
LINES = Table(
    "order_lines",
    (Column("order_id", INT, required=True), Column("position", INT, required=True), Column("sku", STRING)),
    primary_key=("order_id", "position"),
)
DAY = date(2026, 11, 1)
ZONE = "MFG_PARTITION_TIMEZONE"


_STAGES = []  # a stage is owned while its object lives


def stage(warehouse: Warehouse, table: Table, columns: dict[str, list]) -> Path:
    _STAGES.append(warehouse.new_stage("demo"))
    path = _STAGES[-1].file_for(table.name)
    schema = table.arrow_schema(
        [pa.field(PARTITION_COLUMN, pa.date32(), nullable=False), pa.field(FINGERPRINT_COLUMN, pa.string())]
    )
    rows = len(next(iter(columns.values())))
    written = {**columns, PARTITION_COLUMN: [DAY] * rows, FINGERPRINT_COLUMN: ["f"] * rows}
    pq.write_table(pa.Table.from_pydict(written, schema=schema), path)
    return path


def load_day(warehouse: Warehouse, orders: dict[int, str], zone: str = "UTC") -> None:
    """One plant's day listed whole: its orders, each with one line."""
    ids = sorted(orders)
    parent = TableLoad(
        "demo",
        ORDERS,
        stage(warehouse, ORDERS, {"id": ids, "label": [orders[i] for i in ids]}),
        partitioned=True,
        scope=Scope.day(DAY),
        built_with=((ZONE, zone),),
    )
    child = TableLoad(
        "demo",
        LINES,
        stage(warehouse, LINES, {"order_id": ids, "position": [0] * len(ids), "sku": [orders[i] for i in ids]}),
        partitioned=True,
        parent=parent,
        parent_link=(("order_id", "id"),),
    )
    warehouse.commit([parent, child])


def live(warehouse: Warehouse, table: str = "orders") -> list[tuple]:
    return warehouse.query(f"SELECT plant, * EXCLUDE (plant, _loaded_at) FROM demo.{table}_current ORDER BY ALL")


def test_two_plants_with_the_same_ids_each_keep_their_own_rows_files_and_deletions(tmp_path):
    berlin, chicago = Warehouse(tmp_path, plant="berlin"), Warehouse(tmp_path, plant="chicago")
    load_day(berlin, {1: "b1", 2: "b2"}, zone="Europe/Berlin")
    load_day(chicago, {1: "c1", 2: "c2", 3: "c3"}, zone="America/Chicago")
    assert [row[:3] for row in live(berlin)] == [
        ("berlin", 1, "b1"),
        ("berlin", 2, "b2"),
        ("chicago", 1, "c1"),
        ("chicago", 2, "c2"),
        ("chicago", 3, "c3"),
    ]
    load_day(berlin, {2: "b2 again"}, zone="Europe/Berlin")  # berlin's order 1 is gone at the vendor
    assert [row[:3] for row in live(berlin)] == [
        ("berlin", 2, "b2 again"),
        ("chicago", 1, "c1"),
        ("chicago", 2, "c2"),
        ("chicago", 3, "c3"),
    ]
    assert [row[:3] for row in live(berlin, "order_lines")] == [
        ("berlin", 2, 0),
        ("chicago", 1, 0),
        ("chicago", 2, 0),
        ("chicago", 3, 0),
    ]
    assert berlin.live_row_count("demo", "orders", DAY) == 1 and chicago.live_row_count("demo", "orders", DAY) == 3
    assert set(berlin.live_fingerprints_in("demo", ORDERS, DAY)) == {(2,)}
    for warehouse, ids in ((berlin, [2]), (chicago, [1, 2, 3])):
        published = warehouse.parquet_file("demo", "orders", DAY)
        assert f"plant={warehouse.plant}" in published.parts
        assert pq.read_table(published).column("id").to_pylist() == ids
        assert set(pq.read_table(published).column("plant").to_pylist()) == {warehouse.plant}
        assert primary_key_check(warehouse, "demo", ORDERS, True, DAY).passed
        assert row_count_check(warehouse, "demo", ORDERS, DAY, len(ids), partitioned=True).passed
    everything = berlin.query(
        "SELECT plant, count(*) FROM read_parquet(?, hive_partitioning = true) GROUP BY ALL ORDER BY ALL",
        [str(tmp_path / "parquet" / "demo" / "orders" / "*" / "*" / "data.parquet")],
    )
    assert everything == [("berlin", 1), ("chicago", 3)]


def test_settings_and_stream_state_are_recorded_per_plant(tmp_path):
    berlin, chicago = Warehouse(tmp_path, plant="berlin"), Warehouse(tmp_path, plant="chicago")
    load_day(berlin, {1: "b1"}, zone="Europe/Berlin")
    load_day(chicago, {1: "c1"}, zone="America/Chicago")  # another plant, another zone: accepted
    assert berlin.recorded_settings() == {ZONE: "Europe/Berlin"}
    assert chicago.recorded_settings() == {ZONE: "America/Chicago"}
    with pytest.raises(SettingChangedError, match="plant berlin's rows were built with 'Europe/Berlin'"):
        load_day(Warehouse(tmp_path, plant="berlin"), {1: "b1"}, zone="America/Chicago")
    at = datetime(2026, 11, 1, 6, tzinfo=timezone.utc)
    berlin.set_stream_state("demo", "orders", "modified_pass", at)
    assert berlin.stream_state("demo", "orders", "modified_pass") == at
    assert chicago.stream_state("demo", "orders", "modified_pass") is None


def test_a_warehouse_without_a_plant_given_works_for_the_plant_in_force(tmp_path, monkeypatch):
    monkeypatch.delenv("MFG_PLANTS_FILE", raising=False)
    monkeypatch.delenv("MFG_PLANT", raising=False)
    warehouse = Warehouse(tmp_path)
    assert warehouse.plant == "default"
    with for_plant("chicago"):
        assert warehouse.plant == "chicago"
    monkeypatch.setenv("MFG_PLANT", "munich")
    assert warehouse.plant == "munich"


def test_a_lake_from_before_plants_gets_the_column_and_its_files_move_under_the_plant_folder(tmp_path):
    old = Warehouse(tmp_path, plant="berlin")  # only for its settings: opening it through Lake skips the upgrade
    lake = Lake.of(old.settings)
    with lake.cursor() as cursor:
        cursor.execute("CREATE SCHEMA demo")
        cursor.execute(
            "CREATE TABLE demo.orders (id BIGINT, label VARCHAR, partition_date DATE, _fingerprint VARCHAR, "
            "deleted_at TIMESTAMPTZ, _loaded_at TIMESTAMPTZ)"
        )
        cursor.execute("INSERT INTO demo.orders VALUES (1, 'old', DATE '2026-11-01', 'f', NULL, now())")
        cursor.execute(
            "CREATE TABLE main._mfg_stream_state (schema_name VARCHAR, stream VARCHAR, name VARCHAR, "
            "happened_at TIMESTAMPTZ)"
        )
        cursor.execute("INSERT INTO main._mfg_stream_state VALUES ('demo', 'orders', 'modified_pass', now())")
        cursor.execute("CREATE VIEW demo.orders_current AS SELECT * FROM demo.orders")
    legacy = tmp_path / "parquet" / "demo" / "orders" / "date=2026-11-01" / "data.parquet"
    legacy.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": [1]}), legacy)

    warehouse = Warehouse(tmp_path, plant="berlin")
    assert warehouse.query("SELECT plant, id, label FROM demo.orders") == [("berlin", 1, "old")]
    assert warehouse.stream_state("demo", "orders", "modified_pass") is not None
    assert not legacy.exists() and not legacy.parent.exists()
    published = warehouse.parquet_file("demo", "orders", DAY)
    assert pq.read_table(published).column("id").to_pylist() == [1]
    load_day(warehouse, {1: "new", 2: "two"})  # the upgraded table takes the new layout's loads
    assert [row[:3] for row in live(warehouse)] == [("berlin", 1, "new"), ("berlin", 2, "two")]
