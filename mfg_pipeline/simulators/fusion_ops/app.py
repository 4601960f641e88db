"""Autodesk Fusion Operations API simulator, written from `fusion-operations.txt` and FACTS.md.

- `GET`/`POST`/`DELETE /api/v1/authorization` with HTTP Basic (API key : secret); tokens expire (`token_ttl`).
- Every other call needs a valid `access_token` query parameter, else 401.
- Lists (`productions`, `downtimes`, `punchclocks`, `production-orders`, `products`) take `page` from 1, 25 per
  page, and return bare JSON arrays; their documented filters are ANDed. `GET /api/v1/products/{code}` and
  `GET /api/v1/stock/{code}` (optional `lot`) answer one live product (the feed's fields without `notification`) or
  its inventory; 404 for an unknown or deleted code.
- 120 requests/minute per company by default (sliding window), then 429 with `Retry-After`
  (`rate_window_seconds` shrinks the window so tests can hit the limit quickly).
- `boundary` chooses how `-after`/`-before` treat an exact match ("exclusive" or "inclusive"): the doc is silent,
  so the client must be right under both.
- Changes feed (doc "Changes Feed Channels"): `GET /api/v1/changes/{channel}` for the channels given as
  `channels` (name -> type, at most 3, as the doc allows per organization). It answers the *current* state of the
  entities changed since they were last read, oldest change first, at most 25 per call, and removes what it
  returns; an entity changed again while waiting moves to the newest place (never twice in the stack); changes
  older than `feed_retention_seconds` (24 h) are dropped; `[]` when nothing is waiting; unknown channel -> 404.
  Only changes made through the mutation methods (`create_*`/`update_*`/`delete_*`, or a `LiveShop` from
  `live.py`) feed it; the generated history does not. Record shapes follow the doc's per-type examples (see
  `data.feed_record`): PRODUCTION as the list items (plus the example's extra fields) with `"status": "deleted"`
  on deletion; DOWN_TIME with `time-spent` as `HH:MM:SS` and `"event-type": "downtime_deleted"`; PUNCH_CLOCK
  `{id, date, worker, entry}` with `"notification": "punch_clock_deleted"`; PRODUCTION_ORDER with `is-active` and
  `"running-status": "deleted"`; PRODUCT in the doc's Products shape with `"notification": null`, or
  `"product_deleted"` on deletion; STOCK as the doc's Inventory `{product-code, stock, lot: [{code, stock}]}` (lots
  named by `catalog.lot_number`, summing to `stock`; never deleted). Products and stock are keyed by product code:
  their `Change.entity_id` and `pending_changes` entries are that string (channels are per type, so string and int
  keys never share a stack). Stock moves only through `set_stock` (a production does not cascade onto it).
- Mutations take `lock` (shared with request handling), update the lists at once (a deleted record vanishes from
  them), append a `Change` to `change_log` and push the entity onto every channel of its type.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, ParamSpec

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from mfg_pipeline.simulators.base import Reject, SimulatorApp, json_response
from mfg_pipeline.simulators.fusion_ops.data import FEED_KIND, FEED_TYPES, FusionDataset, SimRecord, feed_record

PAGE_SIZE = 25
FEED_BATCH = 25  # at most this many entities per changes-feed call
MAX_CHANNELS = 3  # per organization, as the doc says
DEFAULT_CHANNELS = {"production": "PRODUCTION", "downtime": "DOWN_TIME", "punch_clock": "PUNCH_CLOCK"}


@dataclass(frozen=True)
class Change:
    """One mutation made after the simulator started."""

    time: float  # time.time() when it happened
    type: str  # the channel type it feeds: PRODUCTION, DOWN_TIME, PUNCH_CLOCK, PRODUCTION_ORDER, PRODUCT or STOCK
    entity_id: int | str  # the record id; for PRODUCT and STOCK the product code
    op: str  # "create", "update" or "delete"


P = ParamSpec("P")


def _creates(
    channel_type: str, add: Callable[Concatenate[FusionDataset, P], SimRecord]
) -> Callable[Concatenate[FusionOpsSimulator, P], Any]:
    """A mutation that makes a record with the dataset's `add` and feeds it; returns its id (a product's code)."""

    def create(self: FusionOpsSimulator, *args: P.args, **kwargs: P.kwargs) -> Any:
        with self.lock:
            record = add(self.data, *args, **kwargs)
            self._changed(channel_type, record, "create")
            return record.id

    create.__doc__ = add.__doc__
    return create


def _updates(
    channel_type: str, edit: Callable[Concatenate[FusionDataset, SimRecord, P], None]
) -> Callable[Concatenate[FusionOpsSimulator, int | str, P], None]:
    """A mutation that changes a live record (KeyError if unknown or deleted) with the dataset's `edit` and feeds
    it."""

    def update(self: FusionOpsSimulator, record_id: int | str, *args: P.args, **kwargs: P.kwargs) -> None:
        with self.lock:
            record = self.data.find(FEED_KIND[channel_type], record_id)
            edit(self.data, record, *args, **kwargs)
            self._changed(channel_type, record, "update")

    update.__doc__ = edit.__doc__
    return update


def _deletes(channel_type: str) -> Callable[[FusionOpsSimulator, int | str], None]:
    """A mutation that deletes a live record: it leaves the lists, and its channels show it deleted."""

    def delete(self: FusionOpsSimulator, record_id: int | str) -> None:
        with self.lock:
            record = self.data.find(FEED_KIND[channel_type], record_id)
            record.deleted = True
            self._changed(channel_type, record, "delete")

    return delete


class FusionOpsSimulator(SimulatorApp):
    system = "fusion_ops"
    public_endpoints = frozenset({"authorization"})

    def __init__(
        self,
        dataset: FusionDataset | None = None,
        *,
        api_key: str = "demo-key",
        api_secret: str = "demo-secret",
        rate_limit_per_minute: int = 120,
        token_ttl: float = 7200.0,
        boundary: str = "exclusive",
        company: str = "demo-company",
        rate_window_seconds: float = 60.0,
        channels: Mapping[str, str] | None = None,
        feed_retention_seconds: float = 86400.0,
    ):
        channels = dict(DEFAULT_CHANNELS if channels is None else channels)
        if len(channels) > MAX_CHANNELS:
            raise ValueError(f"at most {MAX_CHANNELS} changes channels per organization, got {len(channels)}")
        for name, channel_type in channels.items():
            if channel_type not in FEED_TYPES:
                raise ValueError(f"channel {name!r}: unknown type {channel_type!r} (one of {', '.join(FEED_TYPES)})")
        super().__init__(rate_limit_per_minute, rate_window_seconds)
        self.data = dataset or FusionDataset()
        self.credentials = {(api_key, api_secret): company}
        self.token_ttl = token_ttl
        if boundary not in ("exclusive", "inclusive"):
            raise ValueError("boundary must be 'exclusive' or 'inclusive'")
        self.boundary = boundary
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (company, monotonic expiry)
        self._current_token: dict[str, str] = {}  # company -> newest token
        self._token_lock = threading.Lock()
        # Data and feed state: list requests, feed reads and mutations all hold it (re-entrant for LiveShop.step).
        self.lock = self.data_lock
        self.channels: dict[str, str] = channels
        self.feed_retention_seconds = feed_retention_seconds
        self.change_log: list[Change] = []
        # channel -> entity id (product code for PRODUCT/STOCK) -> (time of its latest change, record); oldest first.
        self._stacks: dict[str, OrderedDict[int | str, tuple[float, SimRecord]]] = {
            name: OrderedDict() for name in channels
        }

    def rules(self) -> list[Rule]:
        return [
            Rule("/api/v1/authorization", endpoint="authorization", methods=["GET", "POST", "DELETE"]),
            Rule("/api/v1/productions", endpoint="productions", methods=["GET"], strict_slashes=False),
            Rule("/api/v1/downtimes", endpoint="downtimes", methods=["GET"], strict_slashes=False),
            Rule("/api/v1/punchclocks", endpoint="punchclocks", methods=["GET"], strict_slashes=False),
            Rule("/api/v1/production-orders", endpoint="production_orders", methods=["GET"], strict_slashes=False),
            Rule("/api/v1/production-orders/<int:order_id>", endpoint="production_order", methods=["GET"]),
            Rule("/api/v1/products/", endpoint="products", methods=["GET"], strict_slashes=False),
            Rule("/api/v1/products/<code>", endpoint="product", methods=["GET"], strict_slashes=False),
            Rule("/api/v1/stock/<code>", endpoint="stock", methods=["GET"], strict_slashes=False),
            Rule("/api/v1/changes/<channel>", endpoint="changes", methods=["GET"], strict_slashes=False),
        ]

    # --- auth ------------------------------------------------------------------------------------------
    def _basic_company(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                key, secret = "", ""
            company = self.credentials.get((key, secret))
            if company:
                return company
        raise Reject(
            json_response(
                {"message": "Invalid API credentials"}, status=401, headers={"WWW-Authenticate": 'Basic realm="api"'}
            )
        )

    def authenticate(self, request: Request, endpoint: str) -> str:
        token = request.args.get("access_token", "")
        with self._token_lock:
            entry = self._tokens.get(token)
        if entry is None or entry[1] <= time.monotonic():
            raise Reject(json_response({"message": "Invalid or expired access token"}, status=401))
        return entry[0]

    def expire_tokens(self) -> None:
        """Test hook: every issued token stops working, as after two hours."""
        with self._token_lock:
            self._tokens = {t: (c, 0.0) for t, (c, _) in self._tokens.items()}

    def on_authorization(self, request: Request, company: str | None) -> Response:
        company = self._basic_company(request)
        wait = self.limit.admit(company)
        if wait is not None:
            return self.rate_limited_response(max(1, int(wait) + 1))
        links = {"self": {"href": "/api/v1/authorization"}}
        with self._token_lock:
            current = self._current_token.get(company)
            valid = current is not None and self._tokens[current][1] > time.monotonic()
            if request.method == "DELETE":
                if current:
                    self._tokens.pop(current, None)
                    self._current_token.pop(company, None)
                return Response(status=200)
            if request.method == "GET":
                if not valid:
                    return json_response({"message": "No access token exists; use POST to create one"}, status=404)
                return json_response(
                    {"_links": links, "scopes": ["productions_write"], "token": current},
                    content_type="application/hal+json",
                )
            token = secrets.token_hex(16)
            self._tokens[token] = (company, time.monotonic() + self.token_ttl)
            self._current_token[company] = token
        return json_response(
            {"_links": links, "scopes": ["productions_write"], "token": token},
            status=201,
            content_type="application/hal+json",
        )

    # --- lists -----------------------------------------------------------------------------------------
    def _page(
        self,
        request: Request,
        records: list[SimRecord],
        filters: list[Callable[[SimRecord], bool]],
        shape: Callable[[dict], dict] = lambda body: body,
    ) -> Response:
        raw_page = request.args.get("page", "1")
        if not raw_page.isdigit() or int(raw_page) < 1:
            return json_response({"message": f"Invalid page '{raw_page}': pages start at 1"}, status=400)
        page = int(raw_page)
        with self.lock:
            matching = [r for r in records if not r.deleted and all(f(r) for f in filters)]
            chunk = matching[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
            return json_response([shape(r.body) for r in chunk])

    def _instant(self, request: Request, name: str) -> datetime | None:
        raw = request.args.get(name)
        if raw is None or raw == "":
            return None
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise Reject(json_response({"message": f"Invalid date for '{name}': {raw}"}, status=400)) from None
        if moment.tzinfo is None:  # no designator: the company's timezone, as the doc says
            moment = moment.replace(tzinfo=self.data.tz)
        return moment

    def _window_filters(
        self, request: Request, prefix: str, field: Callable[[SimRecord], datetime | None]
    ) -> list[Callable[[SimRecord], bool]]:
        inclusive = self.boundary == "inclusive"
        filters = []
        after = self._instant(request, f"{prefix}-after")
        before = self._instant(request, f"{prefix}-before")
        if after is not None:
            filters.append(lambda r: (v := field(r)) is not None and (v >= after if inclusive else v > after))
        if before is not None:
            filters.append(lambda r: (v := field(r)) is not None and (v <= before if inclusive else v < before))
        return filters

    def _int_arg(self, request: Request, name: str) -> int | None:
        raw = request.args.get(name)
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            raise Reject(json_response({"message": f"Invalid number for '{name}': {raw}"}, status=400)) from None

    def _bool_arg(self, request: Request, name: str) -> bool | None:
        raw = request.args.get(name)
        return None if raw is None else raw.lower() in ("true", "1")

    def on_productions(self, request: Request, company: str) -> Response:
        filters = self._window_filters(request, "start-time", lambda r: r.start) + self._window_filters(
            request, "end-time", lambda r: r.end
        )
        if (worker := self._int_arg(request, "worker")) is not None:
            filters.append(lambda r: r.body["worker"]["number"] == worker)
        if (order_id := self._int_arg(request, "production-order-id")) is not None:
            filters.append(lambda r: r.body["production-order"]["id"] == order_id)
        if codes := request.args.get("production-order-code"):
            wanted = set(codes.split(","))
            filters.append(lambda r: r.body["production-order"]["code"] in wanted)
        if (running := self._instant(request, "start-time")) is not None:
            filters.append(lambda r: r.end is None or r.end > running)
        if (checked_out := self._bool_arg(request, "checked-out")) is not None:
            filters.append(lambda r: r.body["checked-out"] == checked_out)
        with_names = self._bool_arg(request, "worker-name")
        names = {w["number"]: w["name"] for w in self.data.workers}

        def shape(body: dict) -> dict:
            if not with_names:
                return body
            number = body["worker"]["number"]
            return {**body, "worker": {"number": number, "name": names.get(number, "")}}

        return self._page(request, self.data.productions, filters, shape)

    def on_downtimes(self, request: Request, company: str) -> Response:
        filters = self._window_filters(request, "start-time", lambda r: r.start) + self._window_filters(
            request, "end-time", lambda r: r.end
        )
        if machine := request.args.get("machine"):
            filters.append(lambda r: any(m["code"] == machine for m in r.body["machines"]))
        return self._page(request, self.data.downtimes, filters)

    def on_punchclocks(self, request: Request, company: str) -> Response:
        filters = self._window_filters(request, "date", lambda r: r.start)
        if (worker := self._int_arg(request, "worker")) is not None:
            filters.append(lambda r: r.body["worker"]["number"] == worker)
        return self._page(request, self.data.punchclocks, filters)

    def on_production_orders(self, request: Request, company: str) -> Response:
        filters = self._window_filters(request, "start-date", lambda r: r.start) + self._window_filters(
            request, "due-date", lambda r: r.end
        )
        if status := request.args.get("running-status"):
            filters.append(lambda r: r.body["running-status"] == status)
        if (active := self._bool_arg(request, "active")) is not None:
            filters.append(lambda r: r.body["active"] == active)
        if product := request.args.get("product"):
            filters.append(lambda r: any(p["product"] == product for p in r.body["products"]))
        if machine := request.args.get("machine"):
            filters.append(lambda r: any(m["code"] == machine for m in r.body["machines"]))
        with_workers = self._bool_arg(request, "workers")

        def shape(body: dict) -> dict:
            return body if with_workers else {k: v for k, v in body.items() if k != "workers-assigned"}

        return self._page(request, self.data.production_orders, filters, shape)

    def on_production_order(self, request: Request, company: str, order_id: int) -> Response:
        """One live order; like the doc's example, without `active` (and without `workers-assigned` unless asked
        for with `workers=true`)."""
        with self.lock:
            try:
                body = self.data.find("order", order_id).body
            except KeyError:
                return json_response({"message": f"Production order {order_id} not found"}, status=404)
        with_workers = self._bool_arg(request, "workers")
        return json_response(
            {k: v for k, v in body.items() if k != "active" and (with_workers or k != "workers-assigned")}
        )

    @staticmethod
    def _product_shape(body: dict) -> dict:
        return {k: v for k, v in body.items() if k != "notification"}

    def on_products(self, request: Request, company: str) -> Response:
        filters: list[Callable[[SimRecord], bool]] = []
        if family := request.args.get("product-family-code"):
            filters.append(lambda r: any(f.get("code") == family for f in r.body["families"]))
        if (modified := self._instant(request, "modification-date")) is not None:
            inclusive = self.boundary == "inclusive"
            filters.append(lambda r: r.start >= modified if inclusive else r.start > modified)
        with self.lock:
            return self._page(request, self.data.records("product"), filters, self._product_shape)

    def on_product(self, request: Request, company: str, code: str) -> Response:
        with self.lock:
            try:
                return json_response(self._product_shape(self.data.find("product", code).body))
            except KeyError:
                return json_response({"message": f"Product '{code}' not found"}, status=404)

    def on_stock(self, request: Request, company: str, code: str) -> Response:
        lot = request.args.get("lot")
        with self.lock:
            try:
                self.data.find("product", code)
            except KeyError:
                return json_response({"message": f"Product '{code}' not found"}, status=404)
            body = feed_record("STOCK", self.data.stock[code])
        if lot:
            body["lot"] = [entry for entry in body["lot"] if entry["code"] == lot]
            body["stock"] = float(sum(entry["stock"] for entry in body["lot"]))
        return json_response(body)

    # --- changes feed ----------------------------------------------------------------------------------
    def on_changes(self, request: Request, company: str, channel: str) -> Response:
        channel_type = self.channels.get(channel)
        if channel_type is None:
            return json_response({"message": f"Unknown changes channel '{channel}'"}, status=404)
        workers = bool(self._bool_arg(request, "workers"))
        with self.lock:
            stack = self._stacks[channel]
            self._drop_expired(stack, time.time())
            batch: list[dict] = []
            while stack and len(batch) < FEED_BATCH:
                _, (_, record) = stack.popitem(last=False)
                batch.append(feed_record(channel_type, record, workers=workers))
            return json_response(batch)

    def _drop_expired(self, stack: OrderedDict[int | str, tuple[float, SimRecord]], now: float) -> None:
        while stack and next(iter(stack.values()))[0] < now - self.feed_retention_seconds:
            stack.popitem(last=False)

    def pending_changes(self, channel: str) -> list[int | str]:
        """Test hook: the entity ids (product codes on PRODUCT/STOCK) waiting on a channel, oldest change first
        (expired ones dropped)."""
        with self.lock:
            stack = self._stacks[channel]
            self._drop_expired(stack, time.time())
            return list(stack)

    def _changed(self, channel_type: str, record: SimRecord, op: str) -> Change:
        """Log a mutation and put the entity at the newest place of every channel of its type."""
        change = Change(time=time.time(), type=channel_type, entity_id=record.id, op=op)
        self.change_log.append(change)
        for name, stack in self._stacks.items():
            if self.channels[name] == channel_type:
                stack.pop(record.id, None)
                stack[record.id] = (change.time, record)
                self._drop_expired(stack, change.time)
        return change

    # --- mutations: each a dataset method (same arguments) whose record then feeds its channels --------------
    create_production = _creates("PRODUCTION", FusionDataset.add_production)
    update_production = _updates("PRODUCTION", FusionDataset.edit_production)
    delete_production = _deletes("PRODUCTION")
    create_downtime = _creates("DOWN_TIME", FusionDataset.add_downtime)
    update_downtime = _updates("DOWN_TIME", FusionDataset.edit_downtime)
    delete_downtime = _deletes("DOWN_TIME")
    create_punch_clock = _creates("PUNCH_CLOCK", FusionDataset.add_punch_clock)
    update_punch_clock = _updates("PUNCH_CLOCK", FusionDataset.edit_punch_clock)
    delete_punch_clock = _deletes("PUNCH_CLOCK")
    create_production_order = _creates("PRODUCTION_ORDER", FusionDataset.add_production_order)
    update_production_order = _updates("PRODUCTION_ORDER", FusionDataset.edit_production_order)
    delete_production_order = _deletes("PRODUCTION_ORDER")
    # Keyed by code. A deleted product leaves the products endpoints and shows on the PRODUCT feed with
    # `"notification": "product_deleted"`; its stock record stays (and cannot be set any more).
    create_product = _creates("PRODUCT", FusionDataset.add_product)
    update_product = _updates("PRODUCT", FusionDataset.edit_product)
    delete_product = _deletes("PRODUCT")

    # --- mutations: stock ---------------------------------------------------------------------------------
    def set_stock(self, product_code: str, stock: float, lots: Mapping[str, float] | None = None) -> None:
        """Set a live product's stock (KeyError if the product is unknown or deleted; ValueError if negative).

        `lots` (lot code -> stock) replaces the lots and must sum to `stock`; without it a rise goes to today's lot
        (`catalog.lot_number`, company time) and a fall takes from the oldest lots first. Logged as an "update"
        (stock entities are never created or deleted on the feed)."""
        with self.lock:
            record = self.data.edit_stock(product_code, stock, dict(lots) if lots is not None else None)
            self._changed("STOCK", record, "update")
