"""ISOlocity API simulator (NCRs, CARs, parts, suppliers), written from `isolocity.txt` and FACTS.md.

What the doc says, and this simulator enforces:
- Every call needs `Authorization: Bearer <token>`, else 401.
- Every answer is an envelope: lists `{status: "success", message, meta, data: [...]}`, a single record
  `{status: "success", message, data: {...}}` (the doc's view samples carry no `meta`).
- List `meta` is `{current_page, from, to, total, per_page}`, with no `last_page`.
- Lists take `page` and `per_page` (default 50). The NCR list documents `page`, `keyword`, `status` and `source`.
- Records carry the fields of the doc's request schemas, plus `id`, `created_at` and `updated_at` shaped
  `YYYY-MM-DD HH:MM:SS`.

Where the doc is silent, this simulator chooses (and the client must not depend on the choice):
- Paths: `/api/ncrs`, `/api/ncrs/{id}`, `/api/cars`, `/api/parts`, `/api/suppliers` (+ `/{id}`), overridable
  with `paths`, since FACTS marks them unconfirmed.
- Error answers use the same envelope with `status: "error"` and a `message`: 401 bad or missing token,
  404 unknown route or id, 422 a `page`/`per_page` that is not a positive integer, 429 over the rate limit (with
  `Retry-After`). Methods other than GET get the base app's 405.
- `per_page` above `max_per_page` is capped, and `meta.per_page` reports the size used. Whether the NCR list
  honours `per_page` at all is undocumented: `honour_ncr_per_page=False` makes it always use the server's page
  size, so a client that follows `meta` can be tested against both.
- A page past the end answers `data: []` with `from`/`to` null and the real `total`, as Laravel paginators do.
- `status` and `source` filters match case-insensitively (the doc spells sources both "internal" and
  "Internal"); `keyword` is a case-insensitive substring of `ncr_number`, `lot_number`, `description` or
  `immediate_action`. Filters are ANDed. Records come in id order.
- CARs carry `ncr_id` (null when raised from an audit), a link the doc's collapsed samples do not show.
- Rate limit is unpublished: 300 requests/minute per organization by default (sliding window).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from mfg_pipeline.simulators.base import Reject, SimulatorApp, json_response
from mfg_pipeline.simulators.isolocity.data import IsolocityDataset

SUCCESS_MESSAGE = "The request was successful"
DEFAULT_PATHS = {"ncrs": "/api/ncrs", "cars": "/api/cars", "parts": "/api/parts", "suppliers": "/api/suppliers"}
NCR_KEYWORD_FIELDS = ("ncr_number", "lot_number", "description", "immediate_action")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"status": "error", "message": message}, status=status, headers=headers)


class IsolocitySimulator(SimulatorApp):
    system = "isolocity"

    def __init__(
        self,
        dataset: IsolocityDataset | None = None,
        *,
        api_token: str = "demo-isolocity-token",
        rate_limit_per_minute: int = 300,
        default_per_page: int = 50,
        max_per_page: int = 100,
        honour_ncr_per_page: bool = True,
        paths: Mapping[str, str] | None = None,
        company: str = "demo-organization",
    ):
        unknown = set(paths or {}) - set(DEFAULT_PATHS)
        if unknown:
            raise ValueError(f"unknown resources in paths: {sorted(unknown)}; known: {sorted(DEFAULT_PATHS)}")
        # rules() runs inside the base constructor, so the paths must be known before it.
        self.paths = {**DEFAULT_PATHS, **(paths or {})}
        super().__init__(rate_limit_per_minute)
        self.data = dataset or IsolocityDataset()
        self.api_token = api_token
        self.company = company
        self.default_per_page = default_per_page
        self.max_per_page = max_per_page
        self.honour_ncr_per_page = honour_ncr_per_page

    def rules(self) -> list[Rule]:
        rules = []
        for resource, path in self.paths.items():
            path = "/" + path.strip("/")
            rules.append(Rule(path, endpoint=resource, methods=["GET"], strict_slashes=False))
            rules.append(Rule(f"{path}/<int:record_id>", endpoint=f"{resource}_detail", methods=["GET"]))
        return rules

    # --- auth and error envelopes ------------------------------------------------------------------------
    def authenticate(self, request: Request, endpoint: str) -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), self.api_token.encode()):
            return self.company
        raise Reject(error_response(401, "Unauthenticated.", headers={"WWW-Authenticate": "Bearer"}))

    def rate_limited_response(self, retry_after: int) -> Response:
        return error_response(429, "Too Many Attempts.", headers={"Retry-After": str(retry_after)})

    def not_found_response(self, request: Request) -> Response:
        return error_response(404, f"No route for {request.method} {request.path}")

    # --- paging ------------------------------------------------------------------------------------------
    def _positive_int(self, request: Request, name: str, default: int) -> int:
        raw = request.args.get(name, "").strip()
        if raw == "":
            return default
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise Reject(error_response(422, f"The {name} must be a positive integer, got '{raw}'."))
        return int(raw)

    def _page(self, request: Request, records: list[dict], honour_per_page: bool = True) -> Response:
        page = self._positive_int(request, "page", 1)
        per_page = self.default_per_page
        if honour_per_page:
            per_page = min(self._positive_int(request, "per_page", self.default_per_page), self.max_per_page)
        offset = (page - 1) * per_page
        chunk = records[offset : offset + per_page]
        meta = {
            "current_page": page,
            "from": offset + 1 if chunk else None,
            "to": offset + len(chunk) if chunk else None,
            "total": len(records),
            "per_page": per_page,
        }
        return json_response({"status": "success", "message": SUCCESS_MESSAGE, "meta": meta, "data": chunk})

    def _detail(self, resource: str, record_id: int, label: str) -> Response:
        record = next((r for r in getattr(self.data, resource) if r["id"] == record_id), None)
        if record is None:
            return error_response(404, f"{label} {record_id} not found.")
        return json_response({"status": "success", "message": SUCCESS_MESSAGE, "data": record})

    # --- NCRs --------------------------------------------------------------------------------------------
    def on_ncrs(self, request: Request, company: str) -> Response:
        records = self.data.ncrs
        if status := request.args.get("status", "").strip():
            records = [r for r in records if r["status"].lower() == status.lower()]
        if source := request.args.get("source", "").strip():
            records = [r for r in records if r["source"].lower() == source.lower()]
        if keyword := request.args.get("keyword", "").strip().lower():
            records = [r for r in records if any(keyword in str(r[f]).lower() for f in NCR_KEYWORD_FIELDS)]
        return self._page(request, records, honour_per_page=self.honour_ncr_per_page)

    def on_ncrs_detail(self, request: Request, company: str, record_id: int) -> Response:
        return self._detail("ncrs", record_id, "NCR")

    # --- CARs, parts, suppliers ----------------------------------------------------------------------------
    def on_cars(self, request: Request, company: str) -> Response:
        return self._page(request, self.data.cars)

    def on_cars_detail(self, request: Request, company: str, record_id: int) -> Response:
        return self._detail("cars", record_id, "CAR")

    def on_parts(self, request: Request, company: str) -> Response:
        return self._page(request, self.data.parts)

    def on_parts_detail(self, request: Request, company: str, record_id: int) -> Response:
        return self._detail("parts", record_id, "Part")

    def on_suppliers(self, request: Request, company: str) -> Response:
        return self._page(request, self.data.suppliers)

    def on_suppliers_detail(self, request: Request, company: str, record_id: int) -> Response:
        return self._detail("suppliers", record_id, "Supplier")
