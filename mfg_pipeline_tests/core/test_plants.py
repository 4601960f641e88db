"""The plants file: each plant's name, zone and vendor settings under the vendors' own variable names, secrets only
as the environment variables that hold them; anything it cannot use is refused naming the file, the plant and the
entry (and never echoing a secret); MFG_PLANT picks an installation's plant from a group's file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mfg_pipeline import config
from mfg_pipeline.cli import main as cli
from mfg_pipeline.http.errors import MissingCredentialError, SettingError
from mfg_pipeline.plants import (
    PlantsFileError,
    active_plant,
    current_plant_name,
    for_plant,
    load_plants,
    plants_side_by_side,
)
from mfg_pipeline.sources.registry import all_sources
from mfg_pipeline_tests import readme

SOURCES = all_sources()
SECRET = "s3cr3t-value-never-shown"
GROUP = """
plants:
  - name: berlin
    timezone: Europe/Berlin
    sources:
      fusion_ops:
        FUSION_OPS_BASE_URL: https://berlin.example
        FUSION_OPS_API_KEY: ${BERLIN_FUSION_KEY}
        FUSION_OPS_API_SECRET: ${BERLIN_FUSION_SECRET}
        FUSION_OPS_RATE_LIMIT_PER_MINUTE: 60
      fulcrum:
        FULCRUM_OPEN_JOB_STATUSES: inProgress
  - name: chicago
    timezone: America/Chicago
    sources:
      fusion_ops:
        FUSION_OPS_BASE_URL: https://chicago.example
        FUSION_OPS_API_KEY: ${CHICAGO_FUSION_KEY}
        FUSION_OPS_API_SECRET: ${CHICAGO_FUSION_SECRET}
"""


@pytest.fixture
def plants_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def write(text: str) -> Path:
        path = tmp_path / "plants.yaml"
        path.write_text(text)
        monkeypatch.setenv("MFG_PLANTS_FILE", str(path))
        return path

    monkeypatch.delenv("MFG_PLANT", raising=False)
    monkeypatch.delenv("MFG_PARTITION_TIMEZONE", raising=False)
    return write


def test_without_a_file_the_environment_is_the_plant(monkeypatch):
    monkeypatch.delenv("MFG_PLANTS_FILE", raising=False)
    monkeypatch.setenv("FUSION_OPS_BASE_URL", "https://from.env")
    assert active_plant() is None
    assert config.env_str("FUSION_OPS_BASE_URL", "") == "https://from.env"


def test_the_chosen_plant_sets_its_vendors_settings_its_zone_and_its_secrets_from_the_variables_it_names(
    plants_file, monkeypatch
):
    plants_file(GROUP)
    monkeypatch.setenv("MFG_PLANT", "chicago")
    monkeypatch.setenv("CHICAGO_FUSION_KEY", SECRET)
    monkeypatch.setenv("FUSION_OPS_BASE_URL", "https://from.env")  # the plant's value wins
    monkeypatch.setenv("FULCRUM_OPEN_JOB_STATUSES", "fromEnv")  # a vendor chicago does not name: the environment's
    assert config.env_str("FUSION_OPS_BASE_URL", "") == "https://chicago.example"
    assert config.require_env("FUSION_OPS_API_KEY", "key") == SECRET
    assert config.env_get("FULCRUM_OPEN_JOB_STATUSES") == "fromEnv"
    assert config.partition_timezone().key == "America/Chicago"
    monkeypatch.setenv("MFG_PLANT", "berlin")  # read again when the choice changes
    assert config.env_int("FUSION_OPS_RATE_LIMIT_PER_MINUTE", 120) == 60
    assert config.env_get("FULCRUM_OPEN_JOB_STATUSES") == "inProgress"
    with pytest.raises(MissingCredentialError, match="BERLIN_FUSION_KEY is not set.*plant berlin's FUSION_OPS_API_KEY"):
        config.require_env("FUSION_OPS_API_KEY", "key")


def test_a_zone_set_twice_for_one_plant_is_refused_naming_both(plants_file, monkeypatch):
    plants_file(GROUP)
    monkeypatch.setenv("MFG_PLANT", "berlin")
    monkeypatch.setenv("MFG_PARTITION_TIMEZONE", "UTC")
    with pytest.raises(SettingError, match="MFG_PARTITION_TIMEZONE=UTC disagrees with plant berlin's timezone Eu"):
        config.partition_timezone()


def test_a_group_file_without_a_chosen_plant_loads_them_side_by_side_and_code_outside_a_plant_is_named(
    plants_file, monkeypatch
):
    plants_file(GROUP)
    assert active_plant() is None  # the deployment's own settings: the environment's
    assert [plant.name for plant in plants_side_by_side()] == ["berlin", "chicago"]
    with for_plant("chicago"):
        assert active_plant().name == "chicago" and current_plant_name() == "chicago"
    with pytest.raises(SettingError, match=r"lists 2 plants \(berlin, chicago\) and this runs for none") as raised:
        current_plant_name()
    assert raised.value.variable == "MFG_PLANT"
    monkeypatch.setenv("MFG_PLANT", "berlin")
    assert plants_side_by_side() == () and current_plant_name() == "berlin"
    monkeypatch.setenv("MFG_PLANT", "munich")
    with pytest.raises(SettingError, match="MFG_PLANT='munich' is not a plant of .*; its plants: berlin, chicago"):
        active_plant()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plants: berlin", "must hold `plants:`, a list of plants"),
        ("plants: [{name: Berlin, timezone: UTC}]", "plant #1's name 'Berlin' must be lower-case"),
        ("plants: [{name: b, timezone: Mars/Olympus}]", "plant b's timezone 'Mars/Olympus' is not an IANA zone"),
        ("plants: [{name: b, timezone: UTC, zone: UTC}]", "plant b has zone; a plant has name, sources, timezone"),
        ("plants: [{name: b, timezone: UTC}, {name: b, timezone: UTC}]", "lists plant b more than once"),
        ("plants: [{name: b, timezone: UTC, sources: {sap: {}}}]", "plant b names source 'sap'; the registered"),
        (
            "plants: [{name: b, timezone: UTC, sources: {fulcrum: {MFG_DATA_DIR: /x}}}]",
            r"plant b's fulcrum sets 'MFG_DATA_DIR': only Fulcrum Pro's own settings \(FULCRUM_\*\)",
        ),
        ("plants: [{name: b, timezone: UTC, sources: {fulcrum: {FULCRUM_PAGE_SIZE: [1]}}}]", "must be one value"),
        ("plants: [a: b: c]", "is not YAML"),
    ],
)
def test_a_file_it_cannot_use_is_refused_naming_the_file_the_plant_and_the_entry(plants_file, text, message):
    path = plants_file(text)
    with pytest.raises(PlantsFileError, match=message) as raised:
        load_plants(path, SOURCES)
    assert str(raised.value).startswith(f"MFG_PLANTS_FILE ({path}): ")


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_a_secret_written_in_the_file_is_refused_without_echoing_it(plants_file, source):
    (variable, *_) = source.secret_variables
    path = plants_file(f"plants: [{{name: b, timezone: UTC, sources: {{{source.name}: {{{variable}: {SECRET}}}}}}}]")
    with pytest.raises(PlantsFileError, match=f"{variable} holds a secret in the file") as raised:
        load_plants(path, SOURCES)
    assert SECRET not in str(raised.value) and f"${{B_{variable}}}" in str(raised.value)


def test_the_plants_command_shows_each_plant_with_secrets_only_by_their_variables(plants_file, monkeypatch):
    plants_file(GROUP)
    monkeypatch.setenv("MFG_PLANT", "berlin")
    monkeypatch.setenv("BERLIN_FUSION_KEY", SECRET)
    result = CliRunner().invoke(cli, ["plants"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    lines = result.output.splitlines()
    assert "berlin  Europe/Berlin  <- this installation loads it" in lines
    assert "chicago  America/Chicago" in lines
    assert any("FUSION_OPS_API_KEY=${BERLIN_FUSION_KEY} (set)" in line for line in lines)
    assert any("FUSION_OPS_API_SECRET=${BERLIN_FUSION_SECRET} (NOT SET)" in line for line in lines)
    assert "  lagerkoll: from the environment" in lines
    monkeypatch.delenv("MFG_PLANT")
    assert "No plant chosen: set MFG_PLANT" in CliRunner().invoke(cli, ["plants"]).output
    plants_file("plants: []")
    refused = CliRunner().invoke(cli, ["plants"])
    assert refused.exit_code == 1 and "must hold `plants:`" in refused.output


def test_the_readmes_plants_file_is_the_shipped_example_and_one_the_pipeline_accepts():
    (example,) = readme.blocks("yaml")
    path = readme.README.parent / "deploy" / "plants.example.yaml"
    assert example in path.read_text()
    assert [(plant.name, plant.timezone.key) for plant in load_plants(path, SOURCES)] == [
        ("berlin", "Europe/Berlin"),
        ("chicago", "America/Chicago"),
    ]
