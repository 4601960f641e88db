"""The dbt project and its manifest. A fresh clone has no manifest: the first load of the analytics definitions
parses the project (`dbt parse`, a few seconds), and parses again whenever a model, macro, seed or the project
file is newer than the manifest. No Dagster asset code here."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from filelock import FileLock

from mfg_pipeline.analytics.layout import PROJECT_DIR, dbt_vars

SOURCE_FOLDERS = ("models", "macros", "seeds", "tests")


def dbt_executable() -> str:
    """The `dbt` beside this Python (the venv's), so it is found without an activated venv."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def dbt_project() -> DbtProject:
    """The project, its manifest parsed with the plant's stream selection: `target/` while every stream is
    loaded, `target/switched-off-<hash>/` for a selection that leaves some out (processes with different settings
    never share a manifest)."""
    selection = dbt_vars()
    if not selection:
        return DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR)
    digest = hashlib.sha256(selection[1].encode()).hexdigest()[:12]
    return DbtProject(
        project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR, target_path=Path("target") / f"switched-off-{digest}"
    )


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project(), dbt_executable=dbt_executable())


def manifest_is_stale(project: DbtProject) -> bool:
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    sources = [PROJECT_DIR / "dbt_project.yml"]
    for folder in SOURCE_FOLDERS:
        sources += [p for p in (PROJECT_DIR / folder).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in sources) > manifest.stat().st_mtime


def prepared_project() -> DbtProject:
    """The project with a current manifest: parsed now if missing or stale; processes loading at once (tests,
    a code server and its runs) wait for one parse."""
    project = dbt_project()
    if not manifest_is_stale(project):
        return project
    lock = FileLock(str(PROJECT_DIR / ".parse.lock"), timeout=600)
    with lock:
        if manifest_is_stale(project):
            resource = DbtCliResource(project_dir=project, dbt_executable=dbt_executable())
            resource.cli(["parse", "--quiet", *dbt_vars()], target_path=project.target_path).wait()
    return project
