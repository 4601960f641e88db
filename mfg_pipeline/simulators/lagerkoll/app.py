"""Lagerkoll production orders API simulator, written from `lagerkoll-production-orders.txt` and FACTS.md.

What the doc (and FACTS.md) says, and this simulator enforces:
- Everything lives under `/v1/production_orders/`; the doc's URLs are relative to it. `GET /v1/system/ping` needs
  no credentials.
- Every other call needs the `store` header plus either `api_key`, or `user_id` and `user_token`; otherwise 401
  with errorCode 900001 ("Credentials don't match").
- Errors are `{errorCode, errorMessage, errorField, errorData}` with the doc's codes: 900001 credentials,
  900101 common error (bad parameters, unknown routes), 900429 too many requests, 903001 getting a production
  order, 903002 creating one, 903003 updating one, 903004 getting a customer order.
- 200 requests/minute per store (sliding window), then 429 (errorCode 900429) with `Retry-After` in seconds.
- Lists answer `{page, pages, pageSize, ordersCount, orders}`; `page` defaults to 0 and `limit` to 50 (20 on
  `/production_orders_state`). `/state/{state}` and `/article/{article_id}` sort by `sort_column`
  (start_date | end_date, default start_date) in `order` (asc | desc, default desc).
- Dates are epoch milliseconds; `state` is 0 NEW, 1 DEVELOPING, 2 FINISHED, 3 CANCELLED.

Endpoints: GET `/state/{state}` (from, to, page, limit, sort_column, order), `/production_orders_state` (state_from,
state_to, page, limit, query), `/article/{article_id}` (max_state, page, limit, sort_column, order),
`/customer_order/{id}`, `/{order_id}`, `/{order_id}/batch`, `/pr_ref/next_id`; POST `/` (add), PUT
`/{order_id}/cancel` and `/{order_id}/finish`.

Choices where the doc is silent (each one a client must not depend on unless noted):
- `page` is 0-based (`first_page=1` makes it 1-based, since FACTS calls the base unconfirmed). A page below the
  first is 400 (`below_first_page="first"` answers it with the first page instead, echoing that page's number);
  a page past the end is 200 with `orders: []`. The response's `page` echoes the page served, so a request
  without `page` reveals the base; `pages` is the page count either way.
- `limit` must be an integer >= 1; above MAX_LIMIT (100) it is capped, and `pageSize` reports the size used.
  `pageSize` is that page size, not the number of orders on the page.
- Ties in the sort column break on orderId in the same direction, so paging never repeats or skips an order.
- `from`/`to` (epoch ms; 0, the default, means unset) filter on the date `sort_column` names, both ends inclusive
  (`boundary="exclusive"` makes both exclusive, so a client must be right under either).
- `/production_orders_state`: `state_from` defaults to 0 and `state_to` to 3, both inclusive; `query` is a
  case-insensitive substring of prReference, name, internalReference, customerOrderExternalId or comment; sorted
  by startDate descending (then orderId). The doc's example there is a bare order: FACTS says it is the wrapper.
- `/article/{article_id}` matches an order that produces the article or uses it as a part (single article);
  `max_state` keeps orders whose state is at most that.
- `/customer_order/{id}` documents no paging: one page holding every production order of that customer order.
- `/{order_id}/batch` answers a JSON array, one ProductionOrderBatchResponseDto per article of the order: the
  doc says "for all the articles" and the DTO carries an articleId; its example shows one element only, as the
  doc's viewer collapsed other lists too.
- `state`, `reserveInDepth` and `waste` are sent as the class tables type them (number, boolean, number);
  `scalar_style="doc_example"` sends them as the examples print them ("0", "false", "0").
- HTTP statuses (the doc gives only error codes): 401 bad credentials, 400 bad parameters (errorField names the
  parameter), 404 unknown order (903001) or customer order (903004), 400 refused writes (903002, 903003).
- Cancel and finish are allowed from NEW or DEVELOPING only; finish stamps finishDate with the wall clock.
- Only JSON is served, whatever `Accept` says (the doc also offers XML). Not simulated: pickinglist print (PDF),
  flat products, create from customer order, and the article writes.
- The credential headers contain underscores, which werkzeug's development server drops before the app sees
  them; the server hosting this app must pass them through (see the tests).
"""

from __future__ import annotations

import hmac
import math
import re
import threading
import time
from collections.abc import Callable

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from mfg_pipeline.simulators.base import Reject, SimulatorApp, json_response
from mfg_pipeline.simulators.lagerkoll.data import CANCELLED, DEVELOPING, FINISHED, NEW, STATE_NAMES, LagerkollDataset

BASE = "/v1/production_orders"
DEFAULT_LIMIT = 50
DEFAULT_LIMIT_BETWEEN_STATES = 20
MAX_LIMIT = 100
SORT_FIELDS = {"start_date": "startDate", "end_date": "endDate"}
QUERY_FIELDS = ("prReference", "name", "internalReference", "customerOrderExternalId", "comment")
WRITABLE_FIELDS = (
    "prReference",
    "customerOrderId",
    "customerOrderExternalId",
    "internalReference",
    "name",
    "comment",
    "startDate",
    "endDate",
    "finishDate",
    "workHours",
    "state",
    "reserveInDepth",
    "storeState",
    "totalAmount",
    "finishedAmount",
)
INTEGER = re.compile(r"-?\d+")

# errorCode values from the doc's table.
CREDENTIALS_DONT_MATCH = 900001
COMMON_ERROR = 900101
TOO_MANY_REQUESTS = 900429
GET_ORDER_FAILED = 903001
CREATE_ORDER_FAILED = 903002
UPDATE_ORDER_FAILED = 903003
GET_CUSTOMER_ORDER_FAILED = 903004


def error_response(
    status: int,
    code: int,
    message: str,
    field: str | None = None,
    data: object = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The doc's error body."""
    return json_response(
        {"errorCode": code, "errorMessage": message, "errorField": field, "errorData": data},
        status=status,
        headers=headers,
    )


def bad_parameter(name: str, raw: str, expected: str) -> Reject:
    return Reject(error_response(400, COMMON_ERROR, f"Invalid value '{raw}' for '{name}': {expected}", name))


class LagerkollSimulator(SimulatorApp):
    system = "lagerkoll"
    public_endpoints = frozenset({"ping"})

    def __init__(
        self,
        dataset: LagerkollDataset | None = None,
        *,
        store: str = "demo-store",
        api_key: str = "demo-api-key",
        user_id: str = "demo-user",
        user_token: str = "demo-user-token",
        rate_limit_per_minute: int = 200,
        first_page: int = 0,
        below_first_page: str = "refuse",
        boundary: str = "inclusive",
        scalar_style: str = "typed",
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(rate_limit_per_minute)
        if first_page not in (0, 1):
            raise ValueError("first_page must be 0 or 1")
        if below_first_page not in ("refuse", "first"):
            raise ValueError("below_first_page must be 'refuse' or 'first'")
        self.below_first_page = below_first_page
        if boundary not in ("inclusive", "exclusive"):
            raise ValueError("boundary must be 'inclusive' or 'exclusive'")
        if scalar_style not in ("typed", "doc_example"):
            raise ValueError("scalar_style must be 'typed' or 'doc_example'")
        self.data = dataset or LagerkollDataset()
        self.store = store
        self.api_key = api_key
        self.user_id = user_id
        self.user_token = user_token
        self.first_page = first_page
        self.boundary = boundary
        self.scalar_style = scalar_style
        self._clock = clock
        self._data_lock = threading.Lock()  # writes change the dataset while other threads page through it

    def rules(self) -> list[Rule]:
        return [
            Rule("/v1/system/ping", endpoint="ping", methods=["GET"]),
            Rule(f"{BASE}/", endpoint="add_order", methods=["POST"], strict_slashes=False),
            Rule(f"{BASE}/state/<state>", endpoint="orders_for_state", methods=["GET"]),
            Rule(f"{BASE}/production_orders_state", endpoint="orders_between_states", methods=["GET"]),
            Rule(f"{BASE}/article/<path:article_id>", endpoint="orders_with_article", methods=["GET"]),
            Rule(f"{BASE}/customer_order/<customer_order_id>", endpoint="orders_for_customer_order", methods=["GET"]),
            Rule(f"{BASE}/pr_ref/next_id", endpoint="next_pr_reference", methods=["GET"]),
            Rule(f"{BASE}/<order_id>", endpoint="order", methods=["GET"]),
            Rule(f"{BASE}/<order_id>/batch", endpoint="order_batches", methods=["GET"]),
            Rule(f"{BASE}/<order_id>/cancel", endpoint="cancel_order", methods=["PUT"]),
            Rule(f"{BASE}/<order_id>/finish", endpoint="finish_order", methods=["PUT"]),
        ]

    # --- auth, limits, errors --------------------------------------------------------------------------
    def authenticate(self, request: Request, endpoint: str) -> str:
        headers = request.headers
        if _same(headers.get("store"), self.store):
            if _same(headers.get("api_key"), self.api_key):
                return self.store
            if _same(headers.get("user_id"), self.user_id) and _same(headers.get("user_token"), self.user_token):
                return self.store
        raise Reject(error_response(401, CREDENTIALS_DONT_MATCH, "Credentials don't match"))

    def rate_limited_response(self, retry_after: int) -> Response:
        return error_response(429, TOO_MANY_REQUESTS, "Too many requests", headers={"Retry-After": str(retry_after)})

    def not_found_response(self, request: Request) -> Response:
        return error_response(404, COMMON_ERROR, f"No route for {request.method} {request.path}")

    # --- parameters ------------------------------------------------------------------------------------
    def _int_arg(
        self, request: Request, name: str, default: int, low: int | None = None, high: int | None = None
    ) -> int:
        value = self._optional_int_arg(request, name, low, high)
        return default if value is None else value

    def _optional_int_arg(
        self, request: Request, name: str, low: int | None = None, high: int | None = None
    ) -> int | None:
        raw = request.args.get(name)
        if raw is None or raw == "":
            return None
        if not INTEGER.fullmatch(raw):
            raise bad_parameter(name, raw, "an integer")
        value = int(raw)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise bad_parameter(name, raw, bounds)
        return value

    def _choice_arg(self, request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
        raw = request.args.get(name) or default
        if raw not in allowed:
            raise bad_parameter(name, raw, "one of " + ",".join(allowed))
        return raw

    def _state_path_arg(self, raw: str) -> int:
        if not INTEGER.fullmatch(raw) or int(raw) not in STATE_NAMES:
            raise bad_parameter("state", raw, "0 (NEW), 1 (DEVELOPING), 2 (FINISHED) or 3 (CANCELLED)")
        return int(raw)

    def _order_or_404(self, raw_id: str) -> dict:
        if not INTEGER.fullmatch(raw_id):
            raise bad_parameter("order_id", raw_id, "an integer")
        order = self.data.order(int(raw_id))
        if order is None:
            raise Reject(error_response(404, GET_ORDER_FAILED, f"Production order {raw_id} not found", "order_id"))
        return order

    # --- shaping ---------------------------------------------------------------------------------------
    def _render(self, order: dict) -> dict:
        if self.scalar_style == "typed":
            return order
        # As the doc's examples print fields that have a default: "state": "0", "reserveInDepth": "false".
        return {
            **order,
            "state": str(order["state"]),
            "reserveInDepth": str(order["reserveInDepth"]).lower(),
            "articles": [{**a, "waste": f"{a['waste']:g}"} for a in order["articles"]],
        }

    def _sorted(self, request: Request, orders: list[dict]) -> list[dict]:
        column = SORT_FIELDS[self._choice_arg(request, "sort_column", tuple(SORT_FIELDS), "start_date")]
        descending = self._choice_arg(request, "order", ("asc", "desc"), "desc") == "desc"
        # Orders added without the date sort as the earliest; orderId breaks ties so pages stay disjoint.
        return sorted(
            orders, key=lambda o: (o[column] if o[column] is not None else -1, o["orderId"]), reverse=descending
        )

    def _paged(self, request: Request, orders: list[dict], default_limit: int) -> Response:
        low = None if self.below_first_page == "first" else self.first_page
        page = max(self._int_arg(request, "page", self.first_page, low=low), self.first_page)
        limit = min(self._int_arg(request, "limit", default_limit, low=1), MAX_LIMIT)
        start = (page - self.first_page) * limit
        chunk = orders[start : start + limit]
        return json_response(
            {
                "page": page,
                "pages": math.ceil(len(orders) / limit),
                "pageSize": limit,
                "ordersCount": len(orders),
                "orders": [self._render(o) for o in chunk],
            }
        )

    # --- reads -----------------------------------------------------------------------------------------
    def on_ping(self, request: Request, company: str | None) -> Response:
        return json_response({"status": "OK", "time": int(self._clock() * 1000)})

    def on_orders_for_state(self, request: Request, company: str, state: str) -> Response:
        wanted = self._state_path_arg(state)
        column = SORT_FIELDS[self._choice_arg(request, "sort_column", tuple(SORT_FIELDS), "start_date")]
        after = self._int_arg(request, "from", 0, low=0)
        before = self._int_arg(request, "to", 0, low=0)
        if after and before and after > before:
            raise bad_parameter("from", str(after), f"not after 'to' ({before})")
        inclusive = self.boundary == "inclusive"

        def in_window(order: dict) -> bool:
            value = order[column]
            if not (after or before):
                return True
            if value is None:
                return False
            if after and (value < after if inclusive else value <= after):
                return False
            return not (before and (value > before if inclusive else value >= before))

        with self._data_lock:
            matching = [o for o in self.data.orders if o["state"] == wanted and in_window(o)]
            return self._paged(request, self._sorted(request, matching), DEFAULT_LIMIT)

    def on_orders_between_states(self, request: Request, company: str) -> Response:
        state_from = self._int_arg(request, "state_from", NEW, low=NEW, high=CANCELLED)
        state_to = self._int_arg(request, "state_to", CANCELLED, low=NEW, high=CANCELLED)
        if state_from > state_to:
            raise bad_parameter("state_from", str(state_from), f"not above 'state_to' ({state_to})")
        query = (request.args.get("query") or "").casefold()

        def matches(order: dict) -> bool:
            return not query or any(query in (order[f] or "").casefold() for f in QUERY_FIELDS)

        with self._data_lock:
            matching = [o for o in self.data.orders if state_from <= o["state"] <= state_to and matches(o)]
            ordered = sorted(matching, key=lambda o: (o["startDate"] or -1, o["orderId"]), reverse=True)
            return self._paged(request, ordered, DEFAULT_LIMIT_BETWEEN_STATES)

    def on_orders_with_article(self, request: Request, company: str, article_id: str) -> Response:
        max_state = self._optional_int_arg(request, "max_state", low=NEW, high=CANCELLED)

        def contains(order: dict) -> bool:
            return any(a["articleId"] == article_id for a in order["articles"]) or any(
                part["singleArticleId"] == article_id
                for group in order["singleArticles"]
                for part in group["singleArticles"]
            )

        with self._data_lock:
            matching = [o for o in self.data.orders if (max_state is None or o["state"] <= max_state) and contains(o)]
            return self._paged(request, self._sorted(request, matching), DEFAULT_LIMIT)

    def on_orders_for_customer_order(self, request: Request, company: str, customer_order_id: str) -> Response:
        if not INTEGER.fullmatch(customer_order_id):
            raise bad_parameter("order_id", customer_order_id, "an integer")
        with self._data_lock:
            if int(customer_order_id) not in self.data.customer_orders:
                return error_response(
                    404, GET_CUSTOMER_ORDER_FAILED, f"Customer order {customer_order_id} not found", "order_id"
                )
            orders = sorted(
                self.data.orders_for_customer_order(int(customer_order_id)),
                key=lambda o: (o["startDate"] or -1, o["orderId"]),
                reverse=True,
            )
            return json_response(
                {
                    "page": self.first_page,
                    "pages": 1 if orders else 0,
                    "pageSize": len(orders),
                    "ordersCount": len(orders),
                    "orders": [self._render(o) for o in orders],
                }
            )

    def on_order(self, request: Request, company: str, order_id: str) -> Response:
        with self._data_lock:
            return json_response(self._render(self._order_or_404(order_id)))

    def on_order_batches(self, request: Request, company: str, order_id: str) -> Response:
        with self._data_lock:
            order = self._order_or_404(order_id)
            return json_response(self.data.batches[order["orderId"]])

    def on_next_pr_reference(self, request: Request, company: str) -> Response:
        with self._data_lock:
            return json_response({"prReference": self.data.next_pr_reference()})

    # --- writes ----------------------------------------------------------------------------------------
    def on_add_order(self, request: Request, company: str) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error_response(400, CREATE_ORDER_FAILED, "Body must be a JSON ProductionOrderDto", "body")
        fields = {name: body[name] for name in WRITABLE_FIELDS if name in body}
        state = fields.get("state", NEW)
        if isinstance(state, str) and INTEGER.fullmatch(state):
            state = int(state)  # the doc's own example sends "state": "0"
        if not isinstance(state, int) or isinstance(state, bool) or state not in STATE_NAMES:
            return error_response(400, CREATE_ORDER_FAILED, f"Invalid state {state!r}", "state")
        reserve = fields.get("reserveInDepth", False)
        if isinstance(reserve, str) and reserve.lower() in ("true", "false"):
            reserve = reserve.lower() == "true"
        if not isinstance(reserve, bool):
            return error_response(400, CREATE_ORDER_FAILED, f"Invalid reserveInDepth {reserve!r}", "reserveInDepth")
        with self._data_lock:
            customer_order_id = fields.get("customerOrderId")
            if customer_order_id is not None and (
                not isinstance(customer_order_id, int) or customer_order_id not in self.data.customer_orders
            ):
                return error_response(
                    400, CREATE_ORDER_FAILED, f"Customer order {customer_order_id} does not exist", "customerOrderId"
                )
            reference = fields.get("prReference") or self.data.take_pr_reference()
            if any(o["prReference"] == reference for o in self.data.orders):
                return error_response(400, CREATE_ORDER_FAILED, f"prReference {reference} is taken", "prReference")
            order_id = self.data.new_order_id()
            order = {
                "orderId": order_id,
                "prReference": reference,
                "customerOrderId": customer_order_id,
                "customerOrderExternalId": fields.get("customerOrderExternalId")
                or (
                    self.data.customer_orders[customer_order_id]["customerOrderExternalId"]
                    if customer_order_id is not None
                    else None
                ),
                "internalReference": fields.get("internalReference"),
                "name": fields.get("name"),
                "comment": fields.get("comment"),
                "startDate": fields.get("startDate"),
                "endDate": fields.get("endDate"),
                "finishDate": fields.get("finishDate"),
                "workHours": fields.get("workHours", 0.0),
                "state": state,
                "reserveInDepth": reserve,
                "storeState": fields.get("storeState", 0),
                "totalAmount": fields.get("totalAmount", 0.0),
                "finishedAmount": fields.get("finishedAmount", 0.0),
                "articles": [],
                "singleArticles": [],
            }
            self.data.add(order, [])
            return json_response(self._render(order))

    def _change_state(self, raw_id: str, new_state: int) -> Response:
        with self._data_lock:
            order = self._order_or_404(raw_id)
            if order["state"] not in (NEW, DEVELOPING):
                return error_response(
                    400,
                    UPDATE_ORDER_FAILED,
                    f"Production order {order['orderId']} is {STATE_NAMES[order['state']]}",
                    "state",
                    data={"state": order["state"]},
                )
            self.data.change_state(order, new_state, int(self._clock() * 1000))
            return json_response(self._render(order))

    def on_cancel_order(self, request: Request, company: str, order_id: str) -> Response:
        return self._change_state(order_id, CANCELLED)

    def on_finish_order(self, request: Request, company: str, order_id: str) -> Response:
        return self._change_state(order_id, FINISHED)


def _same(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so the simulator does not teach a timing shortcut."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
