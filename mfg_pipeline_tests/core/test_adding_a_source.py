"""Adding a vendor is one folder (settings, declarations), its simulator and one line in the registry: a toy REST
source registered that way is picked up by the Dagster definitions, the demo and the pools, with no other edit; a
toy source that declares a changes feed gets its sensor and apply job, and each change it feeds lands once; and a
source registered without a simulator fails the demo with a sentence, not a traceback."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from dagster import AssetKey, DagsterInstance, RunRequest, SkipReason, build_sensor_context

from mfg_pipeline.cli import main
from mfg_pipeline.definitions import build_definitions
from mfg_pipeline.orchestration.resources import SourcesResource, WarehouseResource
from mfg_pipeline.simulators.base import SimulatorServer
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


SIMULATOR = SimulatorEntry("toy", lambda now, seed, scale, limit, days, zone: ToySimulator(limit or 600),
                           lambda url: {"TOY_BASE_URL": url, "TOY_TOKEN": "toy-token"})
'''


TOY_FEED_SOURCE = '''
"""A toy vendor with a changes feed: gadgets listed whole, and `GET /feed/{channel}` handing out (and forgetting)
up to 10 changed gadgets a call."""

from datetime import timezone

from mfg_pipeline.config import env_str, require_env
from mfg_pipeline.declarations import SourceSystem, Stream
from mfg_pipeline.engine.feed import ChangesFeed, ChangeType
from mfg_pipeline.http.auth import BearerAuth
from mfg_pipeline.http.client import ApiClient, Vendor
from mfg_pipeline.http.pagination import PageNumberPaginator
from mfg_pipeline.records.schema import INT, STRING, Column, Table
from mfg_pipeline.rest import ListShape, RestClient


class FeedingClient(RestClient):
    def read_changes(self, channel, deadline=None):
        return self.api.get_json("GET", f"/feed/{channel}", endpoint=f"GET /feed/{channel}", deadline=deadline)


def make_client(data_dir, logger=None):
    token = require_env("TOYFEED_TOKEN", "toy API token")
    vendor = Vendor("toyfeed", env_str("TOYFEED_BASE_URL", "https://toy.example"), "TOYFEED_BASE_URL",
                    ("TOYFEED_TOKEN",))
    api = ApiClient.for_company(vendor, auth=BearerAuth(token), rate_limit_per_minute=600, budget_identity=token,
                                data_dir=data_dir, logger=logger)
    return FeedingClient(api, ListShape(paginator=lambda: PageNumberPaginator(page_size=10)), timezone.utc)


GADGETS = Stream(
    name="gadgets", path="/gadgets", description="Gadgets.",
    table=Table("gadgets", (Column("id", INT, required=True, description="Gadget id."),
                            Column("name", STRING, description="Name.")), primary_key=("id",),
                description="Toy gadgets."))

FEED = ChangesFeed(
    system="toyfeed", title="Toy", change_types=(ChangeType("GADGET", GADGETS, lambda r: bool(r.get("gone"))),),
    default_channels="gadgets=GADGET", endpoint="GET /feed/{channel}", naive_timezone_variable="TOYFEED_TIMEZONE",
    page_size=10)

SOURCE = SourceSystem(name="toyfeed", title="Toy with a feed", streams=(GADGETS,), make_client=make_client,
                      simulator_module="toyfeed_simulator", changes_feed=FEED)
'''

TOY_FEED_SIMULATOR = '''
"""The toy feed's simulator: no gadget listed yet, and 23 changes waiting on the `gadgets` channel (gadgets 1 to
22 made, then gadget 5 deleted); each call hands out the oldest 10 and forgets them."""

import json

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from mfg_pipeline.simulators.base import Reject, SimulatorApp, json_response
from mfg_pipeline.simulators.serving import SimulatorEntry


class ToyFeedSimulator(SimulatorApp):
    system = "toyfeed"

    def __init__(self, limit=600):
        super().__init__(limit)
        made = [{"id": n, "name": f"gadget {n}"} for n in range(1, 23)]
        self.stack = {"gadgets": [*made, {"id": 5, "name": "gadget 5", "gone": True}]}

    def rules(self):
        return [Rule("/gadgets", endpoint="gadgets", methods=["GET"]),
                Rule("/feed/<channel>", endpoint="feed", methods=["GET"])]

    def authenticate(self, request, endpoint):
        if request.headers.get("Authorization") != "Bearer toy-token":
            raise Reject(json_response({"message": "no"}, status=401))
        return "toyfeed"

    def on_gadgets(self, request, company):
        return Response("[]", content_type="application/json")

    def on_feed(self, request, company, channel):
        stack = self.stack.setdefault(channel, [])
        page, self.stack[channel] = stack[:10], stack[10:]
        return Response(json.dumps(page), content_type="application/json")


SIMULATOR = SimulatorEntry("toyfeed", lambda now, seed, scale, limit, days, zone: ToyFeedSimulator(limit or 600),
                           lambda url: {"TOYFEED_BASE_URL": url, "TOYFEED_TOKEN": "toy-token"})
'''


def register(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, modules: dict[str, str], source_module: str) -> Path:
    """The modules on the import path, and one line added to the registry."""
    packages = tmp_path / "packages"
    for name, text in modules.items():
        (packages / name).mkdir(parents=True)
        (packages / name / "__init__.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(packages))
    monkeypatch.setattr(registry, "SOURCE_MODULES", (*registry.SOURCE_MODULES, source_module))
    return packages


@pytest.fixture
def toy_feed_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[Any]:
    """The toy feed source registered, its simulator serving, its variables set; yields the simulator module."""
    register(
        tmp_path,
        monkeypatch,
        {"toyfeed_source": TOY_FEED_SOURCE, "toyfeed_simulator": TOY_FEED_SIMULATOR},
        "toyfeed_source",
    )
    simulator = importlib.import_module("toyfeed_simulator")
    with SimulatorServer(simulator.ToyFeedSimulator()) as server:
        for name, value in simulator.SIMULATOR.env(server.url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("TOYFEED_APPLY_LINGER_SECONDS", "0")
        yield simulator
    for name in ("toyfeed_source", "toyfeed_simulator"):
        sys.modules.pop(name, None)


@pytest.fixture
def toy_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Path:
    """The toy source and its simulator on the import path, and one line added to the registry."""
    packages = register(tmp_path, monkeypatch, {"toy_source": TOY_SOURCE, "toy_simulator": TOY_SIMULATOR}, "toy_source")
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


def test_a_toy_source_with_a_changes_feed_gets_a_sensor_and_an_apply_job_that_land_each_change_once(
    toy_feed_registered, data_dir
):
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    change_log = AssetKey(["toyfeed", "change_log"])
    assert change_log in graph.get(AssetKey(["toyfeed", "gadgets"])).parent_keys
    sensor = defs.resolve_sensor_def("toyfeed_changes_sensor")
    instance = DagsterInstance.ephemeral()
    resources = {"sources": SourcesResource(), "warehouse": WarehouseResource()}
    request = sensor(build_sensor_context(instance=instance, resources=resources))
    assert isinstance(request, RunRequest)
    result = defs.resolve_job_def("toyfeed_apply_changes").execute_in_process(instance=instance, tags=request.tags)
    assert result.success
    warehouse = Warehouse(data_dir)
    assert warehouse.query("SELECT id, name FROM toyfeed.gadgets_current ORDER BY id") == [
        (n, f"gadget {n}") for n in range(1, 23) if n != 5
    ]
    assert warehouse.query("SELECT count(*) FROM toyfeed.gadgets WHERE deleted_at IS NOT NULL") == [(1,)]
    # 23 changes in three reads of at most 10, each applied once, the deletion among them
    assert warehouse.query(
        "SELECT count(*), count(DISTINCT batch_id), count(*) FILTER (WHERE deleted), min(entity_id), max(entity_id) "
        "FROM toyfeed.change_log"
    ) == [(23, 3, 1, 1, 22)]
    assert isinstance(sensor(build_sensor_context(instance=instance, resources=resources)), SkipReason)
