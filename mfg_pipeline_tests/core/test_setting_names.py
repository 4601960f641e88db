"""Each source's settings class owns its environment variable names: its `from_env` reads only names it declares,
the simulator's environment sets only those names, and the client's errors name the settings' base-URL and
credential variables (for Lagerkoll, those of the credential style in use); the source names the ones that hold
secrets."""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.http.client import Vendor
from mfg_pipeline.plants import PLANTS_FILE_VARIABLE
from mfg_pipeline.simulators.serving import simulator_of
from mfg_pipeline.sources.lagerkoll.settings import LagerkollSettings
from mfg_pipeline.sources.registry import SOURCE_MODULES, all_sources

SOURCES = all_sources()
SIMULATOR_URL = "http://127.0.0.1:9"  # building a client sends no request, so nothing needs to listen here


def settings_class(source: SourceSystem) -> Any:
    """The class with `from_env` in the source package's `settings.py` (README: one folder per vendor)."""
    (package,) = [name for name in SOURCE_MODULES if importlib.import_module(name).SOURCE is source]
    module = importlib.import_module(f"{package}.settings")
    (found,) = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and value.__module__ == module.__name__ and hasattr(value, "from_env")
    ]
    return found


def declared_variables(settings: Any) -> set[str]:
    """The names a settings class declares: its `*_VARIABLE` constants and the variables of its path settings."""
    names = {value for name, value in vars(settings).items() if name.endswith("_VARIABLE") and isinstance(value, str)}
    return names | {path.variable for path in getattr(settings, "PATH_SETTINGS", {}).values()}


def declared_credential_variables(settings: Any) -> list[tuple[str, ...]]:
    """The settings class's `*CREDENTIAL_VARIABLES` tuples (Lagerkoll has one per credential style)."""
    return [value for name, value in vars(settings).items() if name.endswith("CREDENTIAL_VARIABLES")]


class RecordingEnviron(dict):
    """An environment that remembers every name looked up in it."""

    def __init__(self, values: Mapping[str, str]):
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: Any, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


@pytest.fixture
def vendor_of(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Vendor]]:
    """The `Vendor` of the client a source builds from its simulator's environment (plus `extra`), with none of
    its settings' variables left over from the caller's environment."""
    built: list[Any] = []

    def build(source: SourceSystem, extra: Mapping[str, str] | None = None) -> Vendor:
        for name in declared_variables(settings_class(source)):
            monkeypatch.delenv(name, raising=False)
        for name, value in {**simulator_of(source).env(SIMULATOR_URL), **(extra or {})}.items():
            monkeypatch.setenv(name, value)
        client = source.make_client(data_dir, None)
        built.append(client)
        return client.api.vendor

    yield build
    for client in built:
        client.close()


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_the_simulator_environment_sets_only_variables_the_settings_declare(source: SourceSystem) -> None:
    settings = settings_class(source)
    env = simulator_of(source).env(SIMULATOR_URL)
    assert set(env) <= declared_variables(settings), f"{source.name}: {sorted(set(env) - declared_variables(settings))}"
    assert env[settings.BASE_URL_VARIABLE] == SIMULATOR_URL
    assert simulator_of(source).rate_limit_variable == settings.RATE_LIMIT_VARIABLE  # a lifted limit lifts the budget


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_from_env_reads_only_variables_the_settings_declare(
    source: SourceSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_class(source)
    environ = RecordingEnviron(simulator_of(source).env(SIMULATOR_URL))
    with monkeypatch.context() as patched:
        patched.setattr(os, "environ", environ)
        settings.from_env()
    settings_read = environ.read - {PLANTS_FILE_VARIABLE}  # every setting is first looked up in a plants file
    assert settings_read, f"{source.name}: from_env read no environment variable"
    assert settings_read <= declared_variables(settings), (
        f"{source.name}: {sorted(settings_read - declared_variables(settings))}"
    )


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_the_client_names_the_settings_base_url_and_credential_variables(source: SourceSystem, vendor_of) -> None:
    settings = settings_class(source)
    vendor = vendor_of(source)
    assert vendor.base_url == SIMULATOR_URL
    assert vendor.base_url_variable == settings.BASE_URL_VARIABLE
    assert vendor.credential_variables in declared_credential_variables(settings)
    assert set(vendor.credential_variables) <= declared_variables(settings)


def test_a_lagerkoll_client_on_a_user_token_names_the_user_pair_variables(vendor_of) -> None:
    (lagerkoll,) = [source for source in SOURCES if settings_class(source) is LagerkollSettings]
    on_api_key = vendor_of(lagerkoll)
    assert on_api_key.credential_variables == LagerkollSettings.API_KEY_CREDENTIAL_VARIABLES
    on_user_token = vendor_of(
        lagerkoll,
        extra={LagerkollSettings.USER_ID_VARIABLE: "demo-user", LagerkollSettings.USER_TOKEN_VARIABLE: "demo-token"},
    )
    assert on_user_token.credential_variables == LagerkollSettings.USER_TOKEN_CREDENTIAL_VARIABLES
    assert on_user_token.base_url_variable == LagerkollSettings.BASE_URL_VARIABLE


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_the_settings_repr_shows_no_credential(source: SourceSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in simulator_of(source).env("http://127.0.0.1:9").items():
        monkeypatch.setenv(name, value)
    settings = settings_class(source).from_env()
    hidden = [getattr(settings, f.name) for f in dataclasses.fields(settings) if not f.repr]
    secrets = [value for value in hidden if value]
    assert secrets and not [value for value in secrets if str(value) in repr(settings)]


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_the_source_names_its_settings_secret_variables_which_the_plants_file_may_only_reference(
    source: SourceSystem,
) -> None:
    settings = settings_class(source)
    assert source.secret_variables and source.secret_variables == settings.SECRET_VARIABLES
    assert set(source.secret_variables) <= declared_variables(settings)
