"""The dbt project is laid out as dbt's project-structure guide lays one out, and the lineage follows from that
layout alone: every staging model lives in its source's folder (`models/staging/<source>/`) beside exactly one
`_<source>__sources.yml` and one `_<source>__models.yml`; every dbt source's asset key is the load asset's key for
that table, derived by the translator with no `meta.dagster.asset_key` in the YAML; and the manifest is parsed
again whenever the project's files change, moved or removed ones included."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from dagster import AssetKey

from mfg_pipeline.analytics import layout, project
from mfg_pipeline.orchestration.factory import table_key
from mfg_pipeline.sources.registry import source_by_name

STAGING = Path("models") / "staging"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return json.loads(project.prepared_project().manifest_path.read_text())


def staging_models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["schema"] == "staging"
    }


def test_every_dbt_source_is_keyed_as_the_load_asset_of_its_table_with_no_asset_key_in_the_yaml(manifest):
    from mfg_pipeline.analytics.definitions import AnalyticsTranslator, build_analytics_definitions
    from mfg_pipeline.definitions import build_definitions

    for path in sorted((layout.PROJECT_DIR / "models").rglob("*.yml")):
        assert "asset_key" not in path.read_text(), path  # no hand-written key, on a source or anywhere else
    loads = build_definitions().resolve_asset_graph().get_all_asset_keys()
    translator = AnalyticsTranslator()
    keys = {}
    for uid, source in manifest["sources"].items():
        assert "dagster" not in source["meta"] and "dagster" not in source["config"].get("meta", {}), uid
        system = source_by_name(source["source_name"])
        (table,) = [t for stream in system.streams for t in stream.tables if t.name == source["name"]]
        keys[uid] = translator.get_asset_key(source)
        assert keys[uid] == table_key(system, table) == AssetKey([source["source_name"], source["name"]])
        assert keys[uid] in loads, uid
    assert len(keys) >= 20

    # The assets dagster-dbt builds read exactly those keys: each staging model's one parent is its source's load.
    graph = build_analytics_definitions().resolve_asset_graph()
    for uid, model in staging_models(manifest).items():
        (source_id,) = [parent for parent in model["depends_on"]["nodes"] if parent.startswith("source.")]
        key = AssetKey(["staging", model["name"]])
        assert set(graph.get(key).parent_keys) == {keys[source_id]}, uid


def test_every_staging_model_lives_in_its_sources_folder_with_one_sources_and_one_models_yml(manifest):
    sources = {source["source_name"] for source in manifest["sources"].values()}
    root = layout.PROJECT_DIR / STAGING
    assert [p.name for p in root.iterdir() if p.is_file()] == []  # no shared staging YAML or model
    assert sorted(p.name for p in root.iterdir()) == sorted(sources)
    assert [p for p in (layout.PROJECT_DIR / "models").glob("*.yml")] == []  # no models/sources.yml
    assert layout.source_systems() == sources
    assert layout.sources_files() == sorted(root / s / f"_{s}__sources.yml" for s in sources)

    for source in manifest["sources"].values():
        name = source["source_name"]
        assert source["original_file_path"] == str(STAGING / name / f"_{name}__sources.yml")
    models = staging_models(manifest)
    for uid, model in models.items():
        (source_id,) = [parent for parent in model["depends_on"]["nodes"] if parent.startswith("source.")]
        source = manifest["sources"][source_id]
        name, table = source["source_name"], source["name"]
        assert model["name"] == f"stg_{name}__{table}", uid
        assert model["original_file_path"] == str(STAGING / name / f"stg_{name}__{table}.sql")
        assert model["patch_path"] == f"mfg_analytics://{STAGING / name / f'_{name}__models.yml'}"
    for name in sources:
        files = sorted(p.name for p in (root / name).iterdir())
        ymls = [f for f in files if f.endswith(".yml")]
        assert ymls == [f"_{name}__models.yml", f"_{name}__sources.yml"], name
        in_folder = {f.removesuffix(".sql") for f in files if f.endswith(".sql")}
        assert in_folder == {m["name"] for m in models.values() if m["name"].startswith(f"stg_{name}__")}
        assert len(files) == len(ymls) + len(in_folder), files  # nothing else in the folder


def test_the_manifest_is_parsed_again_when_a_project_file_is_moved_removed_or_edited_but_not_when_touched(
    tmp_path, monkeypatch
):
    copy = tmp_path / "dbt_project"
    shutil.copytree(layout.PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs", ".*"))
    monkeypatch.setattr(project, "PROJECT_DIR", copy)
    parsed = project.project_fingerprint()
    model = copy / "models" / "marts" / "dim_product.sql"

    os.utime(model)  # newer, same content: nothing to parse
    assert project.project_fingerprint() == parsed
    moved = copy / "models" / "intermediate" / model.name
    os.rename(model, moved)  # a rename keeps the file's mtime: a newest-mtime test sees no change
    assert project.project_fingerprint() != parsed
    os.rename(moved, model)
    assert project.project_fingerprint() == parsed
    (copy / "models" / "intermediate" / "int_product_key_map.sql").unlink()
    assert project.project_fingerprint() != parsed


def test_a_manifest_is_stale_unless_it_records_the_fingerprint_of_the_files_it_was_parsed_from(tmp_path):
    parsed: Any = SimpleNamespace(manifest_path=tmp_path / "target" / "manifest.json")
    parsed.manifest_path.parent.mkdir()
    parsed.manifest_path.write_text("{}")
    recorded = parsed.manifest_path.with_name(project.FINGERPRINT_FILE)
    assert project.manifest_is_stale(parsed)  # a manifest parsed before fingerprints were recorded
    recorded.write_text(project.project_fingerprint() + "\n")
    assert not project.manifest_is_stale(parsed)
    recorded.write_text("0" * 64 + "\n")
    assert project.manifest_is_stale(parsed)
