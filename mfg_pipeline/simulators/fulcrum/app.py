"""Fulcrum Pro public API simulator, written from `fulcrum.txt` and FACTS.md.

What the doc says, and this simulator enforces:
- Every call needs `Authorization: Bearer <token>`, else 401.
- "Find … based on search parameters" is `POST /api/<entities>/list`: query `Skip` (>= 0), `Take` (0..1000, so
  `max_take`; above is 400), `Sort.Field`, `Sort.Dir` (`ascending`/`descending`), filters as a JSON body; the
  answer is a bare JSON array, and a page shorter than `Take` is the end.
- Job filters: `jobIds`, `numbers`, `jobNames` (each 1..500 items), `status`, `statuses` (JobStatusEnum),
  `parentItemId`, `hasIncompleteOperations`, `salesOrderId` (24 chars), `createdBeforeUtc`/`createdAfterUtc`
  (exclusive; a date without a time means midnight UTC). Filters are ANDed.
- Invoice filters: `numbers`, `status` (InvoiceStatusEnum), `externalReference` (no date filter exists).
- Sales order filters: `numbers`, `status` (SalesOrderStatus), `externalReference`, `externalQuoteUrls`,
  `createdFromQuoteId`. Customer filters: `name` (contains), `customerCode`, `externalReference`. Item filters
  (`POST /api/items/list`, a path FACTS.md does not list): `number` (contains), `itemIds`, `descriptionFilter`
  (contains, case-insensitive), `isArchived`; `latestRevision` is accepted (every item has one revision).
- Path ids are 24 characters (items to make 36); a wrong length is 400, an unknown id 404.
- Child lists: `POST /api/jobs/{jobId}/items-to-make/list`, `…/items-to-make/{itemToMakeId}/operations/list`,
  `POST /api/invoices/{invoiceId}/line-items/list` (all line types, generic shape).

Where the doc is silent, this simulator chooses (and says so):
- No rate limit is documented: `rate_limit_per_minute` (default 300, sliding window per token) is a knob; over
  it, 429 with `Retry-After`.
- Without `Take`, `default_take` (100) records come back; a client must always send `Take`.
- Without `Sort.Field`, lists come in creation order: jobs by `createdUtc`, sales orders by `orderedDate`,
  invoices by `issueDate` (ties in the order they were made, which is also ascending `number`); customers,
  items to make, operations and line items in the order Fulcrum holds them. A sort keeps that order among
  ties; nulls sort first ascending. `Sort.Field` is any top-level scalar field of the response, matched
  case-insensitively; anything else is 400. Query names are matched case-insensitively, as ASP.NET binds them.
- The child lists document no query parameters. With `page_child_lists=True` (default) they honour Skip/Take/
  Sort like the others; with False they ignore them and always return the whole list, so a client that pages
  them must stop on a repeated page rather than loop. Their request bodies are ignored.
- Unknown filter fields are ignored (ASP.NET's default), an empty body is no filter, a non-object body is 400.
- `externalReference` (collapsed in the doc) is matched as an object of `type`/`externalId`/`displayId`/
  `status`: a record matches when one of its `externalReferences` values has every given field equal.
- Deleted invoices stay in the list with `"deleted": true` (the field exists for that reason).
- No sales order here was created from a quote, so any `createdFromQuoteId` matches nothing.
- Error bodies are `{"message": ...}`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import date, datetime, time, timezone

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from mfg_pipeline.simulators.base import Reject, SimulatorApp, json_response
from mfg_pipeline.simulators.fulcrum.data import (
    INVOICE_STATUSES,
    JOB_STATUSES,
    SALES_ORDER_STATUSES,
    FulcrumDataset,
    FulcrumRecord,
)

UTC = timezone.utc
ID_LENGTH = 24
CHILD_ID_LENGTH = 36
MAX_FILTER_ITEMS = 500  # "[ 1 .. 500 ] items" on the list filters
SORT_DIRECTIONS = ("ascending", "descending")
EXTERNAL_REFERENCE_FIELDS = ("type", "externalId", "displayId", "status")

Filter = Callable[[FulcrumRecord], bool]


def _bad_request(message: str) -> Reject:
    return Reject(json_response({"message": message}, status=400))


def _not_found(message: str) -> Reject:
    return Reject(json_response({"message": message}, status=404))


class FulcrumSimulator(SimulatorApp):
    system = "fulcrum"

    def __init__(
        self,
        dataset: FulcrumDataset | None = None,
        *,
        api_token: str = "demo-fulcrum-token",
        rate_limit_per_minute: int = 300,
        max_take: int = 1000,
        default_take: int = 100,
        page_child_lists: bool = True,
        tenant: str = "demo-tenant",
    ):
        super().__init__(rate_limit_per_minute)
        self.data = dataset or FulcrumDataset()
        self.tokens = {api_token: tenant}
        self.max_take = max_take
        self.default_take = default_take
        self.page_child_lists = page_child_lists

    def rules(self) -> list[Rule]:
        return [
            Rule("/api/jobs/list", endpoint="jobs_list", methods=["POST"]),
            Rule("/api/jobs/<job_id>", endpoint="job", methods=["GET"]),
            Rule("/api/jobs/<job_id>/items-to-make/list", endpoint="items_to_make_list", methods=["POST"]),
            Rule(
                "/api/jobs/<job_id>/items-to-make/<item_to_make_id>/operations/list",
                endpoint="operations_list",
                methods=["POST"],
            ),
            Rule("/api/invoices/list", endpoint="invoices_list", methods=["POST"]),
            Rule("/api/invoices/<invoice_id>", endpoint="invoice", methods=["GET"]),
            Rule("/api/invoices/<invoice_id>/line-items/list", endpoint="invoice_line_items_list", methods=["POST"]),
            Rule("/api/sales-orders/list", endpoint="sales_orders_list", methods=["POST"]),
            Rule("/api/customers/list", endpoint="customers_list", methods=["POST"]),
            Rule("/api/items/list", endpoint="items_list", methods=["POST"]),
        ]

    # --- auth ------------------------------------------------------------------------------------------
    def authenticate(self, request: Request, endpoint: str) -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            for known, tenant in self.tokens.items():
                if secrets.compare_digest(token.strip().encode(), known.encode()):
                    return tenant
        raise Reject(
            json_response(
                {"message": "Missing or invalid bearer token"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        )

    # --- query parameters ------------------------------------------------------------------------------
    @staticmethod
    def _query(request: Request, name: str) -> str | None:
        """A query parameter by name, case-insensitively (ASP.NET model binding)."""
        wanted = name.lower()
        return next((value for key, value in request.args.items(multi=True) if key.lower() == wanted), None)

    def _int_query(self, request: Request, name: str, default: int, low: int, high: int | None) -> int:
        raw = self._query(request, name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _bad_request(f"The value '{raw}' is not valid for {name}.") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise _bad_request(f"{name} must be {bounds}.")
        return value

    def _page(self, request: Request, records: list[FulcrumRecord]) -> list[dict]:
        """Sort, then Skip/Take, over records already filtered and in default order."""
        skip = self._int_query(request, "Skip", 0, 0, None)
        take = self._int_query(request, "Take", self.default_take, 0, self.max_take)
        bodies = [r.body for r in records]
        sort_field = self._query(request, "Sort.Field")
        raw_direction = self._query(request, "Sort.Dir")
        direction = (raw_direction or "ascending").lower()
        if direction not in SORT_DIRECTIONS:
            raise _bad_request(f"Sort.Dir must be one of {', '.join(SORT_DIRECTIONS)}.")
        if sort_field:
            bodies = self._sorted(bodies, sort_field, descending=direction == "descending")
        return bodies[skip : skip + take]

    @staticmethod
    def _sorted(bodies: list[dict], sort_field: str, descending: bool) -> list[dict]:
        if not bodies:
            return bodies
        key = next((k for k in bodies[0] if k.lower() == sort_field.lower()), None)
        if key is None or any(isinstance(b[key], (dict, list)) for b in bodies):
            raise _bad_request(f"Cannot sort by '{sort_field}'.")
        # Python's sort is stable under reverse=True too, so ties keep the default order either way.
        return sorted(
            bodies, key=lambda b: (b[key] is not None, b[key] if b[key] is not None else 0), reverse=descending
        )

    # --- filter bodies ---------------------------------------------------------------------------------
    @staticmethod
    def _body(request: Request) -> dict:
        raw = request.get_data(cache=True)
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _bad_request("The request body is not valid JSON.") from None
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise _bad_request("The request body must be a JSON object.")
        return body

    @staticmethod
    def _list_filter(body: dict, name: str, item_type: type, item_length: int | None = None) -> set | None:
        values = body.get(name)
        if values is None:
            return None
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_FILTER_ITEMS:
            raise _bad_request(f"'{name}' must be a list of 1 to {MAX_FILTER_ITEMS} items.")
        for value in values:
            if not isinstance(value, item_type) or isinstance(value, bool):
                raise _bad_request(f"'{name}' holds a value of the wrong type: {value!r}.")
            if item_length is not None and isinstance(value, str) and len(value) != item_length:
                raise _bad_request(f"'{name}' values must be {item_length} characters.")
        return set(values)

    @staticmethod
    def _enum_filter(body: dict, name: str, allowed: tuple[str, ...]) -> str | None:
        value = body.get(name)
        if value is None:
            return None
        if value not in allowed:
            raise _bad_request(f"'{name}' must be one of {', '.join(allowed)}.")
        return value

    @staticmethod
    def _string_filter(
        body: dict, name: str, exact_length: int | None = None, max_length: int | None = None
    ) -> str | None:
        value = body.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or value == "":
            raise _bad_request(f"'{name}' must be a non-empty string.")
        if exact_length is not None and len(value) != exact_length:
            raise _bad_request(f"'{name}' must be {exact_length} characters.")
        if max_length is not None and len(value) > max_length:
            raise _bad_request(f"'{name}' must be at most {max_length} characters.")
        return value

    @staticmethod
    def _bool_filter(body: dict, name: str) -> bool | None:
        value = body.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise _bad_request(f"'{name}' must be true or false.")
        return value

    @staticmethod
    def _instant_filter(body: dict, name: str) -> datetime | None:
        """A `date-time`; a bare date means midnight UTC, and a time without an offset is UTC."""
        raw = body.get(name)
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise _bad_request(f"'{name}' must be a date-time string.")
        try:
            if len(raw) == 10:
                return datetime.combine(date.fromisoformat(raw), time(0, 0), tzinfo=UTC)
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise _bad_request(f"'{name}' is not a valid date-time: {raw}") from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    @staticmethod
    def _external_reference_filter(body: dict) -> Filter | None:
        wanted = body.get("externalReference")
        if wanted is None:
            return None
        if not isinstance(wanted, dict):
            raise _bad_request("'externalReference' must be an object.")
        criteria = {k: v for k, v in wanted.items() if k in EXTERNAL_REFERENCE_FIELDS and v is not None}
        return lambda r: any(
            all(ref.get(k) == v for k, v in criteria.items()) for ref in r.body["externalReferences"].values()
        )

    def _numbers_filter(self, body: dict, filters: list[Filter]) -> None:
        if (numbers := self._list_filter(body, "numbers", int)) is not None:
            filters.append(lambda r: r.body["number"] in numbers)

    @staticmethod
    def _matching(records: list[FulcrumRecord], filters: list[Filter]) -> list[FulcrumRecord]:
        return [r for r in records if all(f(r) for f in filters)]

    # --- path ids --------------------------------------------------------------------------------------
    @staticmethod
    def _check_id(value: str, name: str, length: int) -> None:
        if len(value) != length:
            raise _bad_request(f"{name} must be {length} characters.")

    def _job(self, job_id: str) -> FulcrumRecord:
        self._check_id(job_id, "jobId", ID_LENGTH)
        job = self.data.job_index.get(job_id)
        if job is None:
            raise _not_found(f"Job {job_id} not found.")
        return job

    def _invoice(self, invoice_id: str) -> FulcrumRecord:
        self._check_id(invoice_id, "invoiceId", ID_LENGTH)
        invoice = self.data.invoice_index.get(invoice_id)
        if invoice is None:
            raise _not_found(f"Invoice {invoice_id} not found.")
        return invoice

    def _child_list(self, request: Request, records: list[FulcrumRecord]) -> Response:
        if not self.page_child_lists:
            return json_response([r.body for r in records])
        return json_response(self._page(request, records))

    # --- jobs ------------------------------------------------------------------------------------------
    def on_jobs_list(self, request: Request, company: str) -> Response:
        body = self._body(request)
        filters: list[Filter] = []
        if (job_ids := self._list_filter(body, "jobIds", str)) is not None:
            filters.append(lambda r: r.id in job_ids)
        self._numbers_filter(body, filters)
        if (names := self._list_filter(body, "jobNames", str)) is not None:
            filters.append(lambda r: r.body["name"] in names)
        if (status := self._enum_filter(body, "status", JOB_STATUSES)) is not None:
            filters.append(lambda r: r.body["status"] == status)
        if (statuses := self._list_filter(body, "statuses", str)) is not None:
            if unknown := statuses - set(JOB_STATUSES):
                raise _bad_request(f"'statuses' holds unknown values: {', '.join(sorted(unknown))}.")
            filters.append(lambda r: r.body["status"] in statuses)
        if (parent_item := self._string_filter(body, "parentItemId")) is not None:
            filters.append(lambda r: r.body["parentItemId"] == parent_item)
        if (incomplete := self._bool_filter(body, "hasIncompleteOperations")) is not None:
            filters.append(lambda r: self.data.job_has_incomplete_operations(r.id) == incomplete)
        if (sales_order := self._string_filter(body, "salesOrderId", exact_length=ID_LENGTH)) is not None:
            filters.append(lambda r: r.body["salesOrderId"] == sales_order)
        if (before := self._instant_filter(body, "createdBeforeUtc")) is not None:
            filters.append(lambda r: r.created_at < before)  # exclusive, as documented
        if (after := self._instant_filter(body, "createdAfterUtc")) is not None:
            filters.append(lambda r: r.created_at > after)  # exclusive, as documented
        return json_response(self._page(request, self._matching(self.data.jobs, filters)))

    def on_job(self, request: Request, company: str, job_id: str) -> Response:
        return json_response(self._job(job_id).body)

    def on_items_to_make_list(self, request: Request, company: str, job_id: str) -> Response:
        job = self._job(job_id)
        return self._child_list(request, self.data.items_to_make[job.id])

    def on_operations_list(self, request: Request, company: str, job_id: str, item_to_make_id: str) -> Response:
        job = self._job(job_id)
        self._check_id(item_to_make_id, "itemToMakeId", CHILD_ID_LENGTH)
        if not any(item.id == item_to_make_id for item in self.data.items_to_make[job.id]):
            raise _not_found(f"Item to make {item_to_make_id} not found on job {job_id}.")
        return self._child_list(request, self.data.operations[item_to_make_id])

    # --- invoices --------------------------------------------------------------------------------------
    def on_invoices_list(self, request: Request, company: str) -> Response:
        body = self._body(request)
        filters: list[Filter] = []
        self._numbers_filter(body, filters)
        if (status := self._enum_filter(body, "status", INVOICE_STATUSES)) is not None:
            filters.append(lambda r: r.body["status"] == status)
        if (external := self._external_reference_filter(body)) is not None:
            filters.append(external)
        return json_response(self._page(request, self._matching(self.data.invoices, filters)))

    def on_invoice(self, request: Request, company: str, invoice_id: str) -> Response:
        return json_response(self._invoice(invoice_id).body)

    def on_invoice_line_items_list(self, request: Request, company: str, invoice_id: str) -> Response:
        invoice = self._invoice(invoice_id)
        return self._child_list(request, self.data.invoice_line_items[invoice.id])

    # --- sales orders and customers --------------------------------------------------------------------
    def on_sales_orders_list(self, request: Request, company: str) -> Response:
        body = self._body(request)
        filters: list[Filter] = []
        self._numbers_filter(body, filters)
        if (status := self._enum_filter(body, "status", SALES_ORDER_STATUSES)) is not None:
            filters.append(lambda r: r.body["status"] == status)
        if (external := self._external_reference_filter(body)) is not None:
            filters.append(external)
        if (quote_urls := body.get("externalQuoteUrls")) is not None:
            if not isinstance(quote_urls, list):
                raise _bad_request("'externalQuoteUrls' must be a list.")
            wanted_urls = set(quote_urls)
            filters.append(lambda r: r.body["externalQuoteUrl"] in wanted_urls)
        if self._string_filter(body, "createdFromQuoteId") is not None:
            filters.append(lambda r: False)  # no sales order in this shop came from a quote
        return json_response(self._page(request, self._matching(self.data.sales_orders, filters)))

    def on_customers_list(self, request: Request, company: str) -> Response:
        body = self._body(request)
        filters: list[Filter] = []
        if (name := self._string_filter(body, "name", max_length=200)) is not None:
            filters.append(lambda r: name.lower() in r.body["name"].lower())
        if (code := self._string_filter(body, "customerCode")) is not None:
            filters.append(lambda r: r.body["customerCode"] == code)
        if (external := self._external_reference_filter(body)) is not None:
            filters.append(external)
        return json_response(self._page(request, self._matching(self.data.customers, filters)))

    def on_items_list(self, request: Request, company: str) -> Response:
        body = self._body(request)
        filters: list[Filter] = []
        if (number := self._string_filter(body, "number", max_length=200)) is not None:
            filters.append(lambda r: number in r.body["number"])
        if (item_ids := self._list_filter(body, "itemIds", str, ID_LENGTH)) is not None:
            filters.append(lambda r: r.id in item_ids)
        if (description := self._string_filter(body, "descriptionFilter")) is not None:
            filters.append(lambda r: description.strip('"').lower() in r.body["description"].lower())
        if (archived := body.get("isArchived")) is not None:
            if not isinstance(archived, bool):
                raise _bad_request("'isArchived' must be a boolean.")
            filters.append(lambda r: r.body["isArchived"] == archived)
        return json_response(self._page(request, self._matching(self.data.items, filters)))
