"""The analytics code location: every dbt model and seed as a Dagster asset downstream of the loaded tables it
reads (sources map to the load assets' keys), dbt tests as asset checks, one job that builds the layer and
publishes it as Parquet, and the schedule that rebuilds it after the hourly loads.

A code location of its own (see workspace.yaml) so the load runs never import dbt, and a model that fails to
parse never takes the loads down with it.
"""

import os
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetSpec,
    DefaultScheduleStatus,
    Definitions,
    Failure,
    MetadataValue,
    Output,
    ScheduleDefinition,
    define_asset_job,
    in_process_executor,
)
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from mfg_pipeline.analytics.build import dbt_environment, run_build
from mfg_pipeline.analytics.checks import inputs_loaded_checks, order_states_mapped
from mfg_pipeline.analytics.project import dbt_resource, prepared_project
from mfg_pipeline.orchestration.factory import CYCLE_TAG, SOURCE_TAG
from mfg_pipeline.orchestration.resources import WarehouseResource
from mfg_pipeline.warehouse.marts import MartTable, PublishReport, publish

ANALYTICS = "analytics"
PUBLISHED_SCHEMA = "marts"  # the schema Power BI reads, as Parquet
BUILD_JOB = "analytics_build"
# After the hourly loads (minute 15) have landed; the layer is at most an hour and a build behind the raw tables.
BUILD_CRON = "40 * * * *"


class AnalyticsTranslator(DagsterDbtTranslator):
    """A dbt source `<source>.<table>` is the load asset of that table (`fusion_ops/productions`, the key
    orchestration/factory.py's `table_key` gives it), so the lineage runs from the loads with no asset key in the
    YAML; models and seeds are keyed `<schema>/<name>` the same way (`staging/stg_fusion_ops__productions`) and
    grouped by layer."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        # dagster-dbt asks this for every key it names (specs, their deps, observations of unselected tests).
        resource_type = dbt_resource_props["resource_type"]
        if resource_type == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        if resource_type in ("model", "seed"):
            return AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] not in ("model", "seed"):
            return spec
        return spec.replace_attributes(
            group_name=f"{ANALYTICS}_{props['schema']}", tags={**spec.tags, SOURCE_TAG: ANALYTICS}
        )

    def get_asset_check_spec(
        self, asset_spec: AssetSpec, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        return spec._replace(description=test_description(self.get_resource_props(manifest, unique_id)))


def test_description(test: Mapping[str, Any]) -> str:
    """What a dbt test guards, in a sentence the UI shows beside its result: the test's own `meta.description` if
    it has one, else one made from the generic test and its arguments."""
    metadata = test.get("test_metadata") or {}
    kwargs, column = metadata.get("kwargs", {}), test.get("column_name")
    model = test.get("attached_node", "").rsplit(".", 1)[-1] or "the model"
    target = kwargs.get("to", "").removeprefix("ref('").removeprefix("source('").rstrip("')")
    sentences = {
        "not_null": f"Every row of {model} has a value in {column}.",
        "unique": f"No two rows of {model} share a {column} (a repeat would count twice in every sum).",
        "unique_combination": f"{' + '.join(kwargs.get('columns', []))} identify one row of {model} (its grain).",
        "relationships": f"Every {column} of {model} is a {kwargs.get('field')} of {target} (no orphan keys).",
        "relationships_in_plant": f"Every {column} of {model} is a {kwargs.get('field')} of {target} in the same "
        "plant (no orphan keys).",
        "accepted_values": f"{column} of {model} is one of {', '.join(map(str, kwargs.get('values', [])))}.",
    }
    return sentences.get(metadata.get("name", ""), test.get("description") or f"dbt test {test.get('name')}.")


def published_tables(manifest: Mapping[str, Any]) -> dict[str, MartTable]:
    """The models Power BI reads (schema `marts`), by dbt unique id, with their Parquet partition column."""
    tables = {}
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] == "model" and node["schema"] == PUBLISHED_SCHEMA:
            partition = node["config"].get("meta", {}).get("parquet_partition_by")
            tables[unique_id] = MartTable(node["schema"], node["name"], partition)
    return tables


def build_analytics_definitions() -> Definitions:
    project = prepared_project()
    translator = AnalyticsTranslator()
    manifest = _manifest(project)
    manifest_tables = published_tables(manifest)
    inputs_loaded = inputs_loaded_checks(
        manifest, {uid: AssetKey([table.schema, table.name]) for uid, table in manifest_tables.items()}
    )

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=translator,
        name="analytics_models",
        op_tags={SOURCE_TAG: ANALYTICS},
    )
    def analytics_models(
        context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
    ) -> Iterator[Any]:
        """`dbt build` of the selected models (their tests run as asset checks) under the analytics layer's writer
        lock, then the changed Parquet of the marts it built. The loads and the feed keep committing meanwhile."""
        store = warehouse.warehouse()
        with store.writer(ANALYTICS, "dbt build"):
            os.environ.update(dbt_environment(store.settings))  # profiles.yml reads them
            events, failure = run_build(context, dbt)
            built = {uid: manifest_tables[uid] for uid in map(_unique_id, events) if uid in manifest_tables}
            reports = store.lake.write(
                "publishing the marts' Parquet",
                lambda cursor: {
                    uid: publish(cursor, store.parquet, store.parquet_path, table) for uid, table in built.items()
                },
            )
        for event in events:
            uid = _unique_id(event)
            report = reports.get(uid) if uid is not None else None
            yield event.with_metadata({**event.metadata, **_publish_metadata(report)}) if report else event
        if failure is not None:
            raise Failure(
                description=f"dbt build failed: {failure} (see the step's dbt log for the model and the SQL error)"
            )

    build_job = define_asset_job(
        BUILD_JOB,
        selection=AssetSelection.assets(analytics_models) | AssetSelection.checks(order_states_mapped, inputs_loaded),
        description="Builds the analytics layer (dbt build: models, seeds, tests) and publishes the marts as Parquet.",
        tags={CYCLE_TAG: ANALYTICS, SOURCE_TAG: ANALYTICS},
    )
    schedule = ScheduleDefinition(
        name="analytics_hourly_build",
        job=build_job,
        cron_schedule=BUILD_CRON,
        default_status=DefaultScheduleStatus.RUNNING,
        description="Rebuilds the analytics layer every hour at minute 40, after the hourly loads (minute 15).",
    )
    return Definitions(
        assets=[analytics_models],
        asset_checks=[order_states_mapped, inputs_loaded],
        jobs=[build_job],
        schedules=[schedule],
        resources={"dbt": dbt_resource(), "warehouse": WarehouseResource()},
        executor=in_process_executor,
    )


def _manifest(project: DbtProject) -> Mapping[str, Any]:
    import json

    return json.loads(project.manifest_path.read_text())


def _unique_id(event: Any) -> str | None:
    """The dbt node an Output is for (dagster-dbt records it in the Output's metadata)."""
    if not isinstance(event, Output) or "unique_id" not in event.metadata:
        return None
    value = event.metadata["unique_id"]
    return str(getattr(value, "value", value))


def _publish_metadata(report: PublishReport) -> dict[str, Any]:
    return {
        "parquet_folder": MetadataValue.path(str(report.folder)),
        "parquet_partitions": MetadataValue.int(report.partitions),
        "parquet_files_written": MetadataValue.int(len(report.written)),
    }


defs = build_analytics_definitions()
