"""The dbt project and its manifest. A fresh clone has no manifest: the first load of the analytics definitions
parses the project (`dbt parse`, a few seconds), and parses again whenever the project's files differ from the ones
the manifest was parsed from (a model, macro, seed, test or YAML file added, changed, moved or removed, the project
or profiles file, or another dbt). No Dagster asset code here."""

from __future__ import annotations

import hashlib
import sys
from importlib.metadata import version
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from filelock import FileLock

from mfg_pipeline.analytics.layout import PROJECT_DIR, dbt_vars

SOURCE_FOLDERS = ("models", "macros", "seeds", "tests")
PROJECT_FILES = ("dbt_project.yml", "profiles.yml")
FINGERPRINT_FILE = "mfg_project_fingerprint.txt"  # beside the manifest: what it was parsed from


def dbt_executable() -> str:
    """The `dbt` beside this Python (the venv's), so it is found without an activated venv."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def dbt_project() -> DbtProject:
    """The project, its manifest parsed with the dbt vars in force: `target/` without any (every stream loaded,
    the environment's one plant), `target/vars-<hash>/` otherwise (processes with different settings never share
    a manifest)."""
    selection = dbt_vars()
    if not selection:
        return DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR)
    digest = hashlib.sha256(selection[1].encode()).hexdigest()[:12]
    return DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR, target_path=Path("target") / f"vars-{digest}")


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project(), dbt_executable=dbt_executable())


def project_fingerprint() -> str:
    """A digest of every file the manifest is parsed from (paths and contents) and of the dbt that parses them:
    moving or removing a file changes it as surely as editing one (a newest-mtime test misses both)."""
    digest = hashlib.sha256(f"dbt-core {version('dbt-core')}, dbt-duckdb {version('dbt-duckdb')}\n".encode())
    files = [PROJECT_DIR / name for name in PROJECT_FILES]
    for folder in SOURCE_FOLDERS:
        files += [p for p in (PROJECT_DIR / folder).rglob("*") if p.is_file()]
    for path in sorted(files):
        digest.update(f"{path.relative_to(PROJECT_DIR).as_posix()}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _fingerprint_path(project: DbtProject) -> Path:
    return project.manifest_path.with_name(FINGERPRINT_FILE)


def manifest_is_stale(project: DbtProject) -> bool:
    """No manifest, or one parsed from other files than the project holds now."""
    recorded = _fingerprint_path(project)
    if not project.manifest_path.exists() or not recorded.exists():
        return True
    return recorded.read_text().strip() != project_fingerprint()


def prepared_project() -> DbtProject:
    """The project with a current manifest: parsed now if missing or stale; processes loading at once (tests,
    a code server and its runs) wait for one parse."""
    project = dbt_project()
    if not manifest_is_stale(project):
        return project
    lock = FileLock(str(PROJECT_DIR / ".parse.lock"), timeout=600)
    with lock:
        if manifest_is_stale(project):
            fingerprint = project_fingerprint()  # of the files this parse reads
            resource = DbtCliResource(project_dir=project, dbt_executable=dbt_executable())
            resource.cli(["parse", "--quiet", *dbt_vars()], target_path=project.target_path).wait()
            _fingerprint_path(project).write_text(fingerprint + "\n")
    return project
