"""Every command in the README's bash blocks works as written from a fresh copy of the repository: each is run
here, in order, with the project's venv (or, for the ones that take minutes or run forever, named with the test
that runs them); a README command that is neither fails this test."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mfg_pipeline.cli import DEFAULT_SIM_PORT
from mfg_pipeline.simulators.catalog import PLANT_TIMEZONE
from mfg_pipeline.simulators.serving import start_simulators
from mfg_pipeline.sources.registry import all_sources
from mfg_pipeline_tests import readme

REPO = Path(__file__).resolve().parents[2]

# Commands another test runs (they take minutes, or serve until stopped): the command -> the test.
RUN_ELSEWHERE = {
    "python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e . && .venv/bin/mfg-pipeline demo": (
        "mfg_pipeline_tests/orchestration/test_definitions.py::test_dev_loads_what_the_demo_loads_on_its_first_start_"
        "then_serves_the_webserver_without_a_warning (dev's first start runs the demo; .ci/run, the install)"
    ),
    ".venv/bin/mfg-pipeline dev": "mfg_pipeline_tests/orchestration/test_definitions.py::"
    "test_dev_loads_what_the_demo_loads_on_its_first_start_then_serves_the_webserver_without_a_warning",
    ".venv/bin/mfg-pipeline demo --plants 3": "mfg_pipeline_tests/orchestration/test_demo.py::"
    "test_the_demo_of_several_plants_writes_their_plants_file_and_loads_each_plant_side_by_side (two plants, one "
    "source; all five and the marts: analytics/test_two_plants_end_to_end.py)",
    ".venv/bin/mfg-pipeline migrate": "mfg_pipeline_tests/core/test_lake_upkeep.py::"
    "test_migrate_copies_every_table_with_equal_rows_and_keys_and_leaves_the_old_file_alone",
}
BENCHMARK = re.compile(r"^\.venv/bin/python (benchmarks/\w+\.py)(.*)$")


def fresh_copy(target: Path) -> Path:
    """The repository's tracked files (what a clone holds), with the project's venv in place of a new install."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(Path(sys.prefix))
    return target


def shell(command: str, cwd: Path, env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def fresh_shell_environment(tmp_path: Path) -> dict[str, str]:
    """A new shell's environment: none of the pipeline's variables (the tests' own settings stay out)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MFG_", "DAGSTER_", *vendor_prefixes()))}
    # The venv's editable install points at this repository: the copy's own code comes first on the path, as a
    # clone's install would have it (paths such as dev's data/dev/ follow the package's folder).
    return {**env, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(tmp_path / "clone")}


def vendor_prefixes() -> tuple[str, ...]:
    return tuple(f"{s.name.upper()}_" for s in all_sources())


def test_the_test_command_is_what_ci_runs():
    test_command = next(c for c in readme.commands() if c.endswith("pytest -n 2"))
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == test_command


def test_every_readme_command_runs_as_written_in_a_fresh_copy(tmp_path):
    commands = readme.commands()
    copy = fresh_copy(tmp_path / "clone")
    env = fresh_shell_environment(tmp_path)
    ran: set[str] = set()

    def run(command: str, stdin: str | None = None, extra: dict[str, str] | None = None) -> str:
        assert command in commands, f"not in the README (any more): {command}"
        ran.add(command)
        return shell(command, copy, {**env, **(extra or {})}, stdin)

    yesterday = '"$(date -d yesterday +%F)"'
    out = run(f".venv/bin/mfg-pipeline run fusion_ops --partition {yesterday} --simulators")
    assert "checks 10/10 passed" in out, out
    count = run('.venv/bin/mfg-pipeline sql -c "SELECT count(*) FROM fusion_ops.productions_current"')
    assert int(re.findall(r"\d+", count)[-1]) > 0, count
    assert "1" in run(".venv/bin/mfg-pipeline sql", stdin="SELECT 1 AS one;\n")

    # "Against the vendors in the environment": the environment names them (here, simulators of today).
    vendors = start_simulators(all_sources(), now=datetime.now(timezone.utc))
    try:
        against = {**vendors.env, "MFG_PARTITION_TIMEZONE": PLANT_TIMEZONE}
        assert "checks 10/10 passed" in run(
            ".venv/bin/mfg-pipeline run fusion_ops --partition 2026-11-01", extra=against
        )
        run(
            "DAGSTER_HOME=$PWD/data/dagster_home .venv/bin/dagster asset materialize -m mfg_pipeline.definitions "
            "--select fusion_ops/production_waste --partition 2026-11-01",
            extra=against,
        )
    finally:
        vendors.stop()
    assert "Europe/Berlin -> UTC" in run("MFG_PARTITION_TIMEZONE=UTC .venv/bin/mfg-pipeline rezone")
    plants = run("MFG_PLANTS_FILE=deploy/plants.example.yaml MFG_PLANT=berlin .venv/bin/mfg-pipeline plants")
    assert "berlin  Europe/Berlin  <- this installation loads it" in plants, plants

    dev = start_simulators(all_sources(), now=datetime.now(timezone.utc), first_port=DEFAULT_SIM_PORT)
    try:  # what `mfg-pipeline dev` serves
        out = run(f".venv/bin/mfg-pipeline run fusion_ops --partition {yesterday} --dev")
    finally:
        dev.stop()
    assert "checks 10/10 passed" in out and str(copy / "data" / "dev") in out, out

    for command in commands:
        benchmark = BENCHMARK.match(command)
        if benchmark:  # minutes each, run by hand: here, that the script and its options are what it takes
            script, options = benchmark.groups()
            usage = shell(f".venv/bin/python {script} --help", copy, env)
            for option in re.findall(r"--[\w-]+", options):
                assert option in usage, f"{command}: {script} has no {option}"
            ran.add(command)
    not_run = [c for c in commands if c not in ran and not c.endswith("pytest -n 2") and c not in RUN_ELSEWHERE]
    assert not_run == [], "README commands no test runs: add them here or to RUN_ELSEWHERE"


@pytest.mark.parametrize("command", sorted(RUN_ELSEWHERE))
def test_the_commands_run_elsewhere_are_in_the_readme_and_their_tests_exist(command):
    assert command in readme.commands()
    path, _, name = RUN_ELSEWHERE[command].partition("::")
    assert f"def {name.split(' ')[0]}(" in (REPO / path).read_text()
