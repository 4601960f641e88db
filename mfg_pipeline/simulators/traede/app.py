"""Traede export API simulator (production orders), written from `traede-export-production-orders.txt` and
the Traede section of FACTS.md.

What the doc says, and the simulator enforces:
- Every call needs `Authorization: Bearer <token>` (or the `access_token` query parameter) AND the header
  `X-Traede-App-Key`; either one missing or wrong is 401.
- `GET /v10/production-orders/export?system_id=…` returns `{"production_orders": [...]}`: the orders not yet
  marked exported to that `system_id` (400 without it). Export state is per system_id. An order updated after
  its last mark is due again. Orders not marked keep coming back on every call.
- `include_open` (0/1, default 0) adds draft orders; `include_closed` (0/1, default 0) adds closed ones;
  by default only open (non-draft, non-closed) orders are exported.
- `not_exported_since` (UTC datetime, default the current time) re-exports: marks made at or after it are
  treated as not having happened, so with the default nothing already exported comes back.
- `filter_groups` in the bruno syntax on `created_at` / `updated_at`, operators ct sw ew eq gt gte lt lte in,
  optional `not`; filters in a group are ANDed (ORed with `or=true`/`1`), groups are ANDed.
- `includes[]` from the doc's list (deliveryNotes, lines, lines.product, lines.variant, salesOrders,
  salesOrders.delivery, salesOrders.lines, salesOrders.lines.product, salesOrders.lines.variant,
  salesOrders.shop, supplier); relations are absent unless asked for.
- `POST /v10/production-orders/mark-as-exported` with `{"production_orders": [{production_order_id, system_id,
  note}, ...]}` (JSON, or the same as PHP-style form fields): at most 10 per call.

Choices where the doc is silent:
- Paging: the export doc shows no paging; FACTS gives `page` from 0 and `limit` (default 20, max 60) where
  paging is used. `export_paging="paged"` (default) honours them over the current due set ordered by id; a
  `limit` above 60 is served as 60; a page past the end is empty. `export_paging="unpaged"` ignores both and
  returns every due order on every call, so a client that loops "until an empty page" without marking in
  between must notice the repeat. Marking between pages shifts later pages in paged mode, as in a database.
- Query errors (missing system_id, bad 0/1 flag, bad page/limit/date, unknown include/filter key/operator) are
  400 `{"status": "error", "message": ...}`. Mark-body errors are 422 in the Laravel validation shape
  `{"errors": [{"status": "422", "code": 0, "title": "Validation error", "detail": ...}]}`: more than 10
  items, none, a missing field, or an unknown production_order_id (the whole call is refused, nothing is
  marked); a body that is not valid JSON is 400.
- Marking is idempotent: marking again moves the export instant forward and adds a note to the log.
  Success is 200 `{"production_orders": [{production_order_id, system_id, note, exported_at}, ...]}`.
- Embedded relations use Laravel's snake_case keys (`sales_orders`, `delivery_notes`); only the default
  "embed" include mode exists (`lines:ids` etc. are 400). `or`/`not` accept true/false/1/0.
- Rate limit undocumented: 300 requests/minute per account by default, then 429 with `Retry-After`.
- The simulator's clock starts at the dataset's `now` and runs in real time, so marks and touches always fall
  after every generated timestamp.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from mfg_pipeline.simulators.base import Reject, SimulatorApp, json_response
from mfg_pipeline.simulators.traede.data import (
    AVAILABLE_INCLUDES,
    UTC,
    ProductionOrderRecord,
    TraedeDataset,
    format_timestamp,
)

DEFAULT_LIMIT = 20
MAX_LIMIT = 60
MAX_MARKS_PER_CALL = 10
FILTERABLE_FIELDS = ("created_at", "updated_at")
FILTER_OPERATORS = frozenset({"ct", "sw", "ew", "eq", "gt", "gte", "lt", "lte", "in"})
_BRACKETED_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def bad_request(message: str) -> Reject:
    return Reject(json_response({"status": "error", "message": message}, status=400))


def validation_error(*details: str) -> Reject:
    return Reject(
        json_response(
            {"errors": [{"status": "422", "code": 0, "title": "Validation error", "detail": d} for d in details]},
            status=422,
        )
    )


def parse_php_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Query or form fields the way PHP reads them: `a[]=x&a[]=y` is a list, `g[0][k]=v` nests.

    Containers whose keys are all integers come back as lists in key order (PHP keeps them as arrays too).
    """
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _BRACKETED_KEY.match(raw_key)
        if not match:
            root[raw_key] = value
            continue
        path = [match.group(1)] + re.findall(r"\[([^\[\]]*)\]", match.group(2))
        node = root
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if part == "":  # `[]` appends
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
    return _lists_from_int_keys(root)


def _lists_from_int_keys(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _lists_from_int_keys(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


def parse_utc(raw: str, name: str) -> datetime:
    """`2024-01-01 12:00:00`, `2024-01-01T12:00:00Z`, `…+02:00` or `2024-01-01`; no offset means UTC."""
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"Invalid datetime for '{name}': {raw}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _flag(raw: Any) -> bool:
    return str(raw).strip().lower() in ("1", "true")


class TraedeSimulator(SimulatorApp):
    system = "traede"

    def __init__(
        self,
        dataset: TraedeDataset | None = None,
        *,
        access_token: str = "demo-traede-token",
        app_key: str = "demo-traede-app-key",
        rate_limit_per_minute: int = 300,
        export_paging: str = "paged",
        company: str = "demo-traede-account",
        clock: Callable[[], datetime] | None = None,
    ):
        super().__init__(rate_limit_per_minute)
        self.data = dataset or TraedeDataset()
        self.credentials = {(access_token, app_key): company}
        if export_paging not in ("paged", "unpaged"):
            raise ValueError("export_paging must be 'paged' or 'unpaged'")
        self.export_paging = export_paging
        started = time.monotonic()
        self.clock = clock or (lambda: self.data.now + timedelta(seconds=time.monotonic() - started))
        self._state_lock = threading.Lock()  # export state and touches change while other threads export

    def rules(self) -> list[Rule]:
        return [
            Rule("/v10/production-orders/export", endpoint="export", methods=["GET"]),
            Rule("/v10/production-orders/mark-as-exported", endpoint="mark_as_exported", methods=["POST"]),
        ]

    # --- auth ------------------------------------------------------------------------------------------
    def authenticate(self, request: Request, endpoint: str) -> str:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else request.args.get("access_token", "")
        company = self.credentials.get((token, request.headers.get("X-Traede-App-Key", "")))
        if not token or company is None:
            raise Reject(json_response({"status": "error", "message": "Unauthenticated."}, status=401))
        return company

    # --- test hooks ------------------------------------------------------------------------------------
    def touch(self, order_id: int) -> datetime:
        """An edit in Traede: bump the order's updated_at to now, so it is due for export again everywhere."""
        with self._state_lock:
            at = self.clock()
            self.data.touch(order_id, at)
        return at

    # --- export ----------------------------------------------------------------------------------------
    def on_export(self, request: Request, company: str) -> Response:
        params = parse_php_params(list(request.args.items(multi=True)))
        system_id = params.get("system_id")
        if not isinstance(system_id, str) or not system_id.strip():
            raise bad_request("The system_id query parameter is required")
        statuses = ["open"]  # the doc's "open" flag means drafts
        if self._zero_one(params, "include_open"):
            statuses.append("draft")
        if self._zero_one(params, "include_closed"):
            statuses.append("closed")
        since_raw = params.get("not_exported_since")
        if since_raw is not None and not isinstance(since_raw, str):
            raise bad_request("not_exported_since must be a single datetime")
        filters = self._filter_groups(params.get("filter_groups"))
        includes = self._includes(params.get("includes"))
        page, limit = self._paging(params)
        with self._state_lock:
            since = parse_utc(since_raw, "not_exported_since") if since_raw else self.clock()
            due = [o for o in self.data.due_orders(system_id, tuple(statuses), since) if filters(o)]
            if self.export_paging == "paged":
                due = due[page * limit : (page + 1) * limit]
            rendered = [self.data.render_order(o, includes) for o in due]
        return json_response({"production_orders": rendered})

    def _zero_one(self, params: dict, name: str) -> bool:
        raw = params.get(name, "0")
        if raw not in ("0", "1"):
            raise bad_request(f"{name} must be 0 or 1, got {raw!r}")
        return raw == "1"

    def _paging(self, params: dict) -> tuple[int, int]:
        values = {}
        for name, default in (("page", 0), ("limit", DEFAULT_LIMIT)):
            raw = params.get(name)
            if raw is None:
                values[name] = default
                continue
            if not isinstance(raw, str) or not raw.isdigit():
                raise bad_request(f"{name} must be a non-negative integer, got {raw!r}")
            values[name] = int(raw)
        if values["limit"] < 1:
            raise bad_request("limit must be at least 1")
        return values["page"], min(values["limit"], MAX_LIMIT)

    def _includes(self, raw: Any) -> frozenset[str]:
        if raw is None:
            return frozenset()
        if not isinstance(raw, list) or not all(isinstance(i, str) for i in raw):
            raise bad_request("includes must be an array, e.g. includes[]=lines&includes[]=lines.product")
        wanted: set[str] = set()
        for include in raw:
            name, _, mode = include.partition(":")
            if mode not in ("", "embed"):
                raise bad_request(f"Include mode '{mode}' is not supported for '{name}'")
            if name not in AVAILABLE_INCLUDES:
                raise bad_request(f"Unknown include '{name}'; available: {', '.join(sorted(AVAILABLE_INCLUDES))}")
            parts = name.split(".")  # a nested relation loads its parents, as Laravel's with() does
            wanted.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        return frozenset(wanted)

    # --- filter groups (bruno) -------------------------------------------------------------------------
    def _filter_groups(self, raw: Any) -> Callable[[ProductionOrderRecord], bool]:
        if raw is None:
            return lambda order: True
        if not isinstance(raw, list):
            raise bad_request("filter_groups must be an array of filter groups")
        groups = []
        for group in raw:
            if not isinstance(group, dict) or not isinstance(group.get("filters"), list):
                raise bad_request("Filter group does not have the 'filters' key")
            predicates = [self._filter(f) for f in group["filters"]]
            groups.append((_flag(group.get("or", "false")), predicates))

        def matches(order: ProductionOrderRecord) -> bool:
            return all((any if use_or else all)(p(order) for p in predicates) for use_or, predicates in groups)

        return matches

    def _filter(self, raw: Any) -> Callable[[ProductionOrderRecord], bool]:
        if not isinstance(raw, dict) or not {"key", "operator", "value"} <= raw.keys():
            raise bad_request("A filter needs key, operator and value")
        key, operator, value, negate = raw["key"], raw["operator"], raw["value"], _flag(raw.get("not", "false"))
        if key not in FILTERABLE_FIELDS:
            raise bad_request(f"Cannot filter on '{key}'; available: {', '.join(FILTERABLE_FIELDS)}")
        if operator not in FILTER_OPERATORS:
            raise bad_request(f"Unknown filter operator '{operator}'; available: {' '.join(sorted(FILTER_OPERATORS))}")

        def field(order: ProductionOrderRecord) -> datetime:
            return getattr(order, key).replace(microsecond=0)  # the column has second precision

        if value in ("", "null"):  # bruno: a NULL check; these columns are never NULL
            return lambda order: negate
        if operator in ("ct", "sw", "ew"):  # LIKE on the column cast to text
            if not isinstance(value, str):
                raise bad_request(f"Operator '{operator}' takes a single value")
            needle = value.lower()
            tests: dict[str, Callable[[str, str], bool]] = {
                "ct": lambda text, part: part in text,
                "sw": lambda text, part: text.startswith(part),
                "ew": lambda text, part: text.endswith(part),
            }
            test = tests[operator]
            return lambda order: test(format_timestamp(field(order)).lower(), needle) != negate
        if operator == "in":
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                raise bad_request("Operator 'in' takes a list of values, e.g. value[]=a&value[]=b")
            wanted = {parse_utc(v, f"filter {key}") for v in values}
            return lambda order: (field(order) in wanted) != negate
        if not isinstance(value, str):
            raise bad_request(f"Operator '{operator}' takes a single value")
        target = parse_utc(value, f"filter {key}")
        # bruno's clauses, negations included as it writes them (not gt is <, not lt is >).
        compare: dict[str, Callable[[datetime, datetime], bool]] = {
            "eq": (lambda a, b: a != b) if negate else (lambda a, b: a == b),
            "gt": (lambda a, b: a < b) if negate else (lambda a, b: a > b),
            "gte": (lambda a, b: a < b) if negate else (lambda a, b: a >= b),
            "lt": (lambda a, b: a > b) if negate else (lambda a, b: a < b),
            "lte": (lambda a, b: a > b) if negate else (lambda a, b: a <= b),
        }
        clause = compare[operator]
        return lambda order: clause(field(order), target)

    # --- mark as exported ------------------------------------------------------------------------------
    def _mark_item(self, index: int, item: Any, problems: list[str]) -> tuple[int, str, str] | None:
        """One `{production_order_id, system_id, note}` checked as Laravel would; problems are appended."""
        if not isinstance(item, dict):
            problems.append(f"production_orders.{index} must be an object.")
            return None
        order_id, system_id, note = item.get("production_order_id"), item.get("system_id"), item.get("note")
        if isinstance(order_id, str) and order_id.isdigit():
            order_id = int(order_id)  # form fields arrive as text
        before = len(problems)
        if not isinstance(order_id, int) or isinstance(order_id, bool):
            problems.append(f"production_orders.{index}.production_order_id must be an integer.")
        elif not self.data.has_order(order_id):
            problems.append(f"production_orders.{index}.production_order_id {order_id} does not exist.")
        if not isinstance(system_id, str) or not system_id.strip():
            problems.append(f"production_orders.{index}.system_id is required.")
        if note is not None and not isinstance(note, str):
            problems.append(f"production_orders.{index}.note must be a string.")
        if len(problems) > before or not isinstance(order_id, int) or not isinstance(system_id, str):
            return None
        return order_id, system_id, note or ""

    def on_mark_as_exported(self, request: Request, company: str) -> Response:
        items = self._mark_items(request)
        if not items:
            raise validation_error("The production orders field is required.")
        if len(items) > MAX_MARKS_PER_CALL:
            raise validation_error(
                f"You can at a max mark {MAX_MARKS_PER_CALL} production orders at a time; got {len(items)}."
            )
        problems: list[str] = []
        parsed: list[tuple[int, str, str]] = []
        for index, item in enumerate(items):
            mark = self._mark_item(index, item, problems)
            if mark is not None:
                parsed.append(mark)
        if problems:
            raise validation_error(*problems)
        marked = []
        with self._state_lock:
            at = self.clock()
            for order_id, system_id, note in parsed:
                self.data.mark_exported(order_id, system_id, note, at)
                marked.append(
                    {
                        "production_order_id": order_id,
                        "system_id": system_id,
                        "note": note,
                        "exported_at": format_timestamp(at),
                    }
                )
        return json_response({"production_orders": marked})

    def _mark_items(self, request: Request) -> list:
        if request.is_json:
            try:
                payload = json.loads(request.get_data(as_text=True) or "null")
            except ValueError:
                raise bad_request("Request body is not valid JSON") from None
        else:
            payload = parse_php_params(list(request.form.items(multi=True)))
        items = payload.get("production_orders") if isinstance(payload, dict) else None
        if items is None:
            return []
        if not isinstance(items, list):
            raise validation_error("The production orders must be an array.")
        return items
