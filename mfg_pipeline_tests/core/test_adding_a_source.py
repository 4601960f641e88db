"""Adding a vendor is one folder (settings, declarations), its simulator and one line in the registry: a toy REST
source registered that way is picked up by the Dagster definitions, the demo and the pools, with no other edit;
and a source registered without a simulator fails the demo with a sentence, not a traceback."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from mfg_pipeline.cli import main
from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.sources import registry
from mfg_pipeline.warehouse.store import Warehouse

TOY_SOURCE = '''
"""A toy vendor: widgets behind a bearer token, page-numbered bare arrays."""

from datetime import timezone

from mfg_pipeline.config import env_int, env_str, require_env
from mfg_pipeline.declarations import SourceSystem, Stream
from mfg_pipeline.http.auth import BearerAuth
from mfg_pipeline.http.client import ApiClient, Vendor
from mfg_pipeline.http.pagination import PageNumberPaginator
from mfg_pipeline.records.schema import FLOAT, INT, STRING, Column, Table
from mfg_pipeline.rest import ListShape, RestClient


def make_client(data_dir, logger=None):
    token = require_env("TOY_TOKEN", "toy API token")
    vendor = Vendor("toy", env_str("TOY_BASE_URL", "https://toy.example"), "TOY_BASE_URL", ("TOY_TOKEN",))
    api = ApiClient.for_company(vendor, auth=BearerAuth(token), rate_limit_per_minute=env_int("TOY_RATE_LIMIT", 600),
                                budget_identity=token, data_dir=data_dir, logger=logger)
    return RestClient(api, ListShape(paginator=lambda: PageNumberPaginator(page_size=10)), timezone.utc)


WIDGETS = Stream(
    name="widgets", path="/widgets", description="Widgets.",
    table=Table("widgets", (Column("id", INT, required=True, description="Widget id."),
                            Column("name", STRING, description="Name."),
                            Column("weight", FLOAT, description="Weight in kg.")), primary_key=("id",),
                description="Toy widgets."))

SOURCE = SourceSystem(name="toy", title="Toy", streams=(WIDGETS,), make_client=make_client,
                      simulator_module="toy_simulator", concurrency_limit=3)
'''

TOY_SIMULATOR = '''
"""The toy vendor's simulator: 23 widgets, 10 per page."""

import json

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from mfg_pipeline.simulators.base import Reject, SimulatorApp, json_response
from mfg_pipeline.simulators.serving import SimulatorEntry

WIDGETS = [{"id": n, "name": f"widget {n}", "weight": n / 10} for n in range(1, 24)]


class ToySimulator(SimulatorApp):
    system = "toy"

    def rules(self):
        return [Rule("/widgets", endpoint="widgets", methods=["GET"])]

    def authenticate(self, request, endpoint):
        if request.headers.get("Authorization") != "Bearer toy-token":
            raise Reject(json_response({"message": "no"}, status=401))
        return "toy"

    def on_widgets(self, request, company):
        page = int(request.args.get("page", "1"))
        return Response(json.dumps(WIDGETS[(page - 1) * 10: page * 10]), content_type="application/json")


SIMULATOR = SimulatorEntry("toy", lambda now, seed, scale, limit, days: ToySimulator(limit or 600),
                           lambda url: {"TOY_BASE_URL": url, "TOY_TOKEN": "toy-token"})
'''


@pytest.fixture
def toy_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Path:
    """The toy source and its simulator on the import path, and one line added to the registry."""
    packages = tmp_path / "packages"
    for name, text in (("toy_source", TOY_SOURCE), ("toy_simulator", TOY_SIMULATOR)):
        (packages / name).mkdir(parents=True)
        (packages / name / "__init__.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(packages))
    monkeypatch.setattr(registry, "SOURCE_MODULES", (*registry.SOURCE_MODULES, "toy_source"))
    monkeypatch.setenv("DAGSTER_HOME", str(data_dir / "dagster_home"))
    yield packages
    for name in ("toy_source", "toy_simulator"):
        sys.modules.pop(name, None)


def test_a_registered_toy_source_is_in_the_definitions_the_demo_and_the_pools(toy_registered, data_dir):
    keys = {key.to_user_string() for key in build_definitions().resolve_asset_graph().get_all_asset_keys()}
    assert "toy/widgets" in keys
    result = CliRunner().invoke(main, ["demo", "--sources", "toy", "--days", "1"])
    assert result.exit_code == 0, result.output
    assert "toy_refresh" in result.output and "widgets 23 rows" in result.output
    warehouse = Warehouse(data_dir)
    assert warehouse.query("SELECT count(*), sum(weight) FROM toy.widgets")[0] == (23, pytest.approx(27.6))
    pools = CliRunner().invoke(main, ["pools"])
    assert "toy_api: 3" in pools.output


def test_a_source_registered_without_a_simulator_fails_the_demo_with_a_sentence(toy_registered, data_dir):
    (toy_registered / "toy_simulator" / "__init__.py").write_text("")  # the simulator exports nothing
    result = CliRunner().invoke(main, ["demo", "--sources", "toy", "--days", "1"])
    assert result.exit_code != 0
    assert "source 'toy' has no simulator: add toy_simulator exporting SIMULATOR" in result.output
    assert "Traceback" not in result.output
