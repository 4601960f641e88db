"""Where the dbt project lives and which loaded systems it reads, without importing dbt (the demo and the load
code location use this)."""

from __future__ import annotations

from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parent / "dbt_project"
SOURCES_FILE = PROJECT_DIR / "models" / "sources.yml"


def source_systems() -> frozenset[str]:
    """The loaded systems (DuckDB schemas) the models read: the dbt sources' names."""
    declared = yaml.safe_load(SOURCES_FILE.read_text())
    return frozenset(source["name"] for source in declared["sources"])
