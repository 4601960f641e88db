"""The analytics layer as analysts, Power BI and the Dagster UI see it: every relation outside `main` has a
comment and every column its documentation; the marts' Parquet opens flat with the stated types, the same schema
in every file and a hive folder read equal to the table; dbt tests are asset checks; the asset graph runs from the
loaded tables through staging to the marts; a rebuild with nothing changed rewrites no Parquet; the product key
map matches each system's ids; vendor-deleted invoices stay out of the marts."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey

from mfg_pipeline.analytics.layout import PROJECT_DIR
from mfg_pipeline_tests.conftest import workspace_definitions

pytestmark = pytest.mark.xdist_group("analytics_plant")

MONEY_COLUMNS = {
    ("fct_invoice", "subtotal"),
    ("fct_invoice", "total"),
    ("fct_invoice", "tax"),
    ("mart_revenue_monthly", "net_revenue"),
    ("mart_revenue_monthly", "tax"),
    ("mart_revenue_monthly", "gross_revenue"),
    ("dim_product", "unit_cost"),
    ("dim_product", "unit_price"),
    ("dim_customer", "credit_limit"),
}


def test_every_relation_has_a_comment_and_every_column_is_documented(plant):
    """Tables carry a comment on every column; views (DuckLake keeps no comments on a view's columns) carry one
    on the view, and each of their columns is documented: a `_current` view's on its table's column of that
    name, a dbt view's in its model YAML."""
    lake = "database_name = 'warehouse' AND schema_name NOT IN ('main', 'information_schema', 'pg_catalog')"
    missing = plant.rows(
        f"SELECT schema_name, table_name, column_name FROM duckdb_columns() c WHERE {lake} AND comment IS NULL "
        "AND EXISTS (SELECT 1 FROM duckdb_tables() t WHERE t.database_name = c.database_name "
        "AND t.schema_name = c.schema_name AND t.table_name = c.table_name)"
    )
    assert missing == []
    uncommented = plant.rows(
        f"SELECT schema_name, table_name FROM duckdb_tables() WHERE {lake} AND comment IS NULL "
        f"UNION ALL SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal AND {lake} "
        "AND comment IS NULL"
    )
    assert uncommented == []
    view_columns = plant.rows(
        "SELECT c.schema_name, c.table_name, c.column_name FROM duckdb_columns() c JOIN duckdb_views() v "
        "ON v.database_name = c.database_name AND v.schema_name = c.schema_name AND v.view_name = c.table_name "
        "WHERE c.database_name = 'warehouse' AND c.schema_name <> 'main'"
    )
    documented_in_yaml = {
        (node["schema"], node["name"], column)
        for node in plant.manifest["nodes"].values()
        for column, spec in node.get("columns", {}).items()
        if spec.get("description")
    }
    table_comments = {
        (schema, table, column): comment
        for schema, table, column, comment in plant.rows(
            f"SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() WHERE {lake}"
        )
    }
    undocumented = [
        (schema, view, column)
        for schema, view, column in view_columns
        if (schema, view, column) not in documented_in_yaml
        and not (view.endswith("_current") and table_comments.get((schema, view.removesuffix("_current"), column)))
    ]
    assert view_columns and undocumented == []
    schemas = {row[0] for row in plant.rows(f"SELECT DISTINCT schema_name FROM duckdb_tables() WHERE {lake}")}
    assert {"marts", "reference", "fusion_ops", "fulcrum"} <= schemas


def test_the_marts_parquet_is_flat_typed_and_reads_back_equal_to_the_tables(plant):
    root = plant.data_dir / "parquet" / "marts"
    tables = [r[0] for r in plant.rows("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'")]
    assert sorted(p.name for p in root.iterdir()) == sorted(tables)
    connection = duckdb.connect()
    for table in tables:
        files = sorted((root / table).rglob("*.parquet"))
        assert files, table
        schemas = {str(pq.read_schema(f).remove_metadata()) for f in files}
        assert len(schemas) == 1, f"{table}: files disagree on the schema (types or nullability)"
        schema = pq.read_schema(files[0])
        for field in schema:
            assert not pa.types.is_nested(field.type), (table, field.name)
            assert field.nullable, (table, field.name)
            if field.name.endswith("_utc"):
                assert pa.types.is_timestamp(field.type) and field.type.tz is None, (table, field.name)
            if field.name.endswith(("_date", "month_start", "date_day")):
                assert pa.types.is_date32(field.type), (table, field.name)
            if (table, field.name) in MONEY_COLUMNS:
                assert field.type == pa.decimal128(18, 2), (table, field.name)
        hive = "/*/*.parquet" if files[0].parent != root / table else "/*.parquet"
        folder = connection.sql(
            f"SELECT * FROM read_parquet('{root / table}{hive}', hive_partitioning=true)"
        ).to_arrow_table()
        stored = plant.warehouse.query(f"SELECT count(*) FROM marts.{table}")[0][0]
        assert folder.num_rows == stored, table
        columns = ", ".join(
            f'"{name}"'
            for (name,) in plant.rows(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'marts' AND table_name = ? "
                "ORDER BY column_index",
                [table],
            )
        )
        difference = plant.rows(
            f"SELECT * FROM marts.{table} EXCEPT ALL "
            f"SELECT {columns} FROM read_parquet('{root / table}{hive}', hive_partitioning=true)"
        )
        assert difference == [], table  # with equal row counts: the folder holds exactly the table's rows
    partitioned = root / "fct_production"
    folders = [p.name for p in partitioned.iterdir()]
    assert folders and all(name.startswith("month_start=") for name in folders)
    described = dict(
        (name, kind)
        for name, kind, *_ in connection.sql(
            f"DESCRIBE SELECT * FROM read_parquet('{partitioned}/*/*.parquet', hive_partitioning=true)"
        ).fetchall()
    )
    assert described["month_start"] == "DATE"


def test_dbt_tests_run_as_asset_checks_and_pass(plant):
    checks = plant.build.get_asset_check_evaluations()
    assert len(checks) >= 50
    assert [(c.asset_key, c.check_name) for c in checks if not c.passed] == []
    keys = {c.asset_key for c in checks}
    assert AssetKey(["marts", "fct_production"]) in keys and AssetKey(["marts", "mart_order_board"]) in keys


def test_every_check_of_the_analytics_layer_says_what_it_guards(plant):
    specs = [spec for assets in plant.analytics_defs.assets for spec in assets.check_specs]
    specs += [spec for checks in plant.analytics_defs.asset_checks for spec in checks.check_specs]
    assert len(specs) >= 50
    assert [spec.name for spec in specs if not spec.description] == []
    by_name = {spec.name: spec.description for spec in specs}
    assert by_name["unique_combination_stg_fulcrum__items_plant__item_id"].startswith(
        "plant + item_id identify one row of stg_fulcrum__items"
    )
    assert (
        "identify one row of mart_scrap_daily"
        in by_name["unique_combination_mart_scrap_daily_plant__product_code__production_date"]
    )
    assert (
        "in the same plant"
        in by_name["relationships_in_plant_fct_production_product_code__product_code__ref_dim_product_"]
    )


def test_the_asset_graph_runs_from_the_loaded_tables_through_staging_to_the_marts(plant):
    graph = workspace_definitions().resolve_asset_graph()  # as the UI's global lineage shows them

    def upstream(*path: str) -> set[AssetKey]:
        return set(graph.get(AssetKey(list(path))).parent_keys)

    assert AssetKey(["fusion_ops", "productions"]) in upstream("staging", "stg_fusion_ops__productions")
    assert AssetKey(["staging", "stg_fusion_ops__productions"]) in upstream("marts", "fct_production")
    assert AssetKey(["marts", "fct_production"]) in upstream("marts", "mart_oee_daily")
    assert AssetKey(["reference", "shift_calendar"]) in upstream("marts", "dim_date")
    raw = {key for key in graph.get_all_asset_keys() if key.path[0] in plant.apps}
    read = {parent for key in graph.get_all_asset_keys() if key.path[0] == "staging" for parent in upstream(*key.path)}
    assert read <= raw and len(read) >= 20


def test_a_rebuild_with_nothing_changed_rewrites_no_parquet_and_parses_the_project_no_more_than_it_changed(plant):
    root = plant.data_dir / "parquet" / "marts"
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.parquet")}
    again = plant.rebuild()
    assert again.success
    # dbt started from the parse state the plant's first build left, not from a whole parse
    (invocation,) = (PROJECT_DIR / "target").glob(f"analytics_models-{again.run_id[:7]}-*")
    log = (invocation / "dbt.log").read_text()
    assert "FoundStats" in log  # it is dbt's log of that build
    assert "UnableToPartialParse" not in log, [line for line in log.splitlines() if "UnableToPartialParse" in line]
    written = [
        e.materialization.metadata["parquet_files_written"].value
        for e in again.get_asset_materialization_events()
        if "parquet_files_written" in e.materialization.metadata
    ]
    assert written and sum(written) == 0
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.parquet")} == before


def test_the_product_key_map_matches_every_systems_ids_to_one_part_number(plant):
    apps = plant.apps
    catalog = {code for (code,) in plant.rows("SELECT product_code FROM marts.dim_product")}
    expected = {
        "fulcrum": {(i.id, i.body["number"]) for i in apps["fulcrum"].data.items},
        "isolocity": {(str(p["id"]), p["identification"]) for p in apps["isolocity"].data.parts},
        "fusion_ops": {(code, code) for code in apps["fusion_ops"].data.products},
    }
    for system, pairs in expected.items():
        landed = set(
            plant.rows(
                "SELECT source_id, product_code FROM intermediate.int_product_key_map WHERE source_system = ? "
                "AND is_matched AND source_table IN ('items', 'parts', 'products')",
                [system],
            )
        )
        assert landed == pairs, system
    systems = dict(plant.rows("SELECT product_code, source_system_count FROM marts.dim_product"))
    assert catalog and all(count == 5 for count in systems.values())


def test_invoices_fulcrum_flags_deleted_stay_out_of_the_marts(plant):
    deleted = [i.id for i in plant.apps["fulcrum"].data.invoices if i.body["deleted"]]
    assert deleted
    assert plant.rows("SELECT count(*) FROM marts.fct_invoice WHERE list_contains(?, invoice_id)", [deleted]) == [(0,)]
    assert plant.rows("SELECT count(*) FROM fulcrum.invoices WHERE list_contains(?, id)", [deleted]) == [
        (len(deleted),)
    ]


def test_a_failed_build_says_which_node_failed_and_why_in_one_line():
    from mfg_pipeline.analytics.build import failure_line

    failed = {
        "test.mfg_analytics.relationships_fct_labor_shift_worker_number": (
            "\n  Catalog Error: Table with name fct_labor_shift does not exist!\n  LINE 17: from ..."
        ),
        "model.mfg_analytics.mart_oee_daily": "Database Error",
    }
    dbt_error = RuntimeError("The dbt CLI process with command\n\n`dbt build`\n\nfailed with exit code 1")
    assert failure_line(failed, dbt_error) == (
        "relationships_fct_labor_shift_worker_number and 1 more failed: Catalog Error: Table with name "
        "fct_labor_shift does not exist!"
    )
    assert failure_line({}, dbt_error) == "The dbt CLI process with command `dbt build` failed with exit code 1"
