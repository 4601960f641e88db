"""Autodesk Fusion Operations API simulator, written from `fusion-operations.txt` and FACTS.md.

- `GET`/`POST`/`DELETE /api/v1/authorization` with HTTP Basic (API key : secret); tokens expire (`token_ttl`).
- Every other call needs a valid `access_token` query parameter, else 401.
- Lists (`productions`, `downtimes`, `punchclocks`, `production-orders`) take `page` from 1, 25 per page, and
  return bare JSON arrays; their documented filters are ANDed.
- 120 requests/minute per company by default (sliding window), then 429 with `Retry-After`
  (`rate_window_seconds` shrinks the window so tests can hit the limit quickly).
- `boundary` chooses how `-after`/`-before` treat an exact match ("exclusive" or "inclusive"): the doc is silent,
  so the client must be right under both.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from datetime import datetime
from typing import Callable

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from mfg_pipeline.simulators.base import Reject, SimulatorApp, json_response
from mfg_pipeline.simulators.fusion_ops.data import FusionDataset, SimRecord

PAGE_SIZE = 25


class FusionOpsSimulator(SimulatorApp):
    system = "fusion_ops"
    public_endpoints = frozenset({"authorization"})

    def __init__(self, dataset: FusionDataset | None = None, *, api_key: str = "demo-key",
                 api_secret: str = "demo-secret", rate_limit_per_minute: int = 120, token_ttl: float = 7200.0,
                 boundary: str = "exclusive", company: str = "demo-company", rate_window_seconds: float = 60.0):
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

    def rules(self) -> list[Rule]:
        return [
            Rule("/api/v1/authorization", endpoint="authorization", methods=["GET", "POST", "DELETE"]),
            Rule("/api/v1/productions", endpoint="productions", methods=["GET"], strict_slashes=False),
            Rule("/api/v1/downtimes", endpoint="downtimes", methods=["GET"], strict_slashes=False),
            Rule("/api/v1/punchclocks", endpoint="punchclocks", methods=["GET"], strict_slashes=False),
            Rule("/api/v1/production-orders", endpoint="production_orders", methods=["GET"], strict_slashes=False),
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
        raise Reject(json_response({"message": "Invalid API credentials"}, status=401,
                                   headers={"WWW-Authenticate": 'Basic realm="api"'}))

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
                return json_response({"_links": links, "scopes": ["productions_write"], "token": current},
                                     content_type="application/hal+json")
            token = secrets.token_hex(16)
            self._tokens[token] = (company, time.monotonic() + self.token_ttl)
            self._current_token[company] = token
        return json_response({"_links": links, "scopes": ["productions_write"], "token": token}, status=201,
                             content_type="application/hal+json")

    # --- lists -----------------------------------------------------------------------------------------
    def _page(self, request: Request, records: list[SimRecord], filters: list[Callable[[SimRecord], bool]],
              shape: Callable[[dict], dict] = lambda body: body) -> Response:
        raw_page = request.args.get("page", "1")
        if not raw_page.isdigit() or int(raw_page) < 1:
            return json_response({"message": f"Invalid page '{raw_page}': pages start at 1"}, status=400)
        page = int(raw_page)
        matching = [r for r in records if not r.deleted and all(f(r) for f in filters)]
        chunk = matching[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
        return json_response([shape(r.body) for r in chunk])

    def _instant(self, request: Request, name: str) -> datetime | None:
        raw = request.args.get(name)
        if raw is None or raw == "":
            return None
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise Reject(json_response({"message": f"Invalid date for '{name}': {raw}"}, status=400))
        if moment.tzinfo is None:  # no designator: the company's timezone, as the doc says
            moment = moment.replace(tzinfo=self.data.tz)
        return moment

    def _window_filters(self, request: Request, prefix: str,
                        field: Callable[[SimRecord], datetime | None]) -> list[Callable[[SimRecord], bool]]:
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
            raise Reject(json_response({"message": f"Invalid number for '{name}': {raw}"}, status=400))

    def _bool_arg(self, request: Request, name: str) -> bool | None:
        raw = request.args.get(name)
        return None if raw is None else raw.lower() in ("true", "1")

    def on_productions(self, request: Request, company: str) -> Response:
        filters = (self._window_filters(request, "start-time", lambda r: r.start)
                   + self._window_filters(request, "end-time", lambda r: r.end))
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
        filters = (self._window_filters(request, "start-time", lambda r: r.start)
                   + self._window_filters(request, "end-time", lambda r: r.end))
        if machine := request.args.get("machine"):
            filters.append(lambda r: any(m["code"] == machine for m in r.body["machines"]))
        return self._page(request, self.data.downtimes, filters)

    def on_punchclocks(self, request: Request, company: str) -> Response:
        filters = self._window_filters(request, "date", lambda r: r.start)
        if (worker := self._int_arg(request, "worker")) is not None:
            filters.append(lambda r: r.body["worker"]["number"] == worker)
        return self._page(request, self.data.punchclocks, filters)

    def on_production_orders(self, request: Request, company: str) -> Response:
        filters = (self._window_filters(request, "start-date", lambda r: r.start)
                   + self._window_filters(request, "due-date", lambda r: r.end))
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
