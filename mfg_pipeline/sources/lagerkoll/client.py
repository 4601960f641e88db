"""Lagerkoll client: `store` + `api_key` (or `user_id` + `user_token`) headers, the `{page, pages, pageSize,
ordersCount, orders}` list wrapper, and one `/{order_id}/batch` call per order to attach its batches. No Dagster
inside.
"""

from __future__ import annotations

import itertools
from datetime import timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from mfg_pipeline.http.auth import HeaderAuth
from mfg_pipeline.http.client import ApiClient, Logger, Page
from mfg_pipeline.http.errors import SourceHttpError, SourcePayloadError
from mfg_pipeline.http.pagination import TotalPagesPaginator
from mfg_pipeline.http.ratelimit import bucket_name, shared_limiter
from mfg_pipeline.sources.lagerkoll.settings import LagerkollSettings
from mfg_pipeline.sources.lagerkoll.streams import BASE_PATH, BATCHES_KEY, GROUP_ARTICLE_ID, SINGLE_ARTICLES_KEY
from mfg_pipeline.streams import Stream

SYSTEM = "lagerkoll"
FIRST_PAGE = 0  # the doc's default `page`; FACTS: whether the server counts from 0 or 1 is unconfirmed
# How a server counting pages from 1 may refuse page 0 (the doc is silent); on these we start again at 1.
PAGE_REFUSED_STATUSES = (400, 404)
WRAPPER = "{page, pages, pageSize, ordersCount, orders}"


def credential_auth(settings: LagerkollSettings) -> HeaderAuth:
    """The doc's headers: `store` plus either `user_id` + `user_token` or `api_key`."""
    if settings.uses_user_token:
        return HeaderAuth({"store": settings.store, "user_id": settings.user_id, "user_token": settings.user_token},
                          secret_headers=("user_token",))
    return HeaderAuth({"store": settings.store, "api_key": settings.api_key}, secret_headers=("api_key",))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def orders_of(payload: Any) -> list:
    """The orders of one list page, after checking the wrapper the paging depends on."""
    if not isinstance(payload, Mapping):
        raise TypeError(f"expected the {WRAPPER} object, got a JSON {_kind(payload)}")
    orders = payload.get("orders")
    if not isinstance(orders, list):
        raise TypeError(f"'orders' must be an array, got {_kind(orders)}")
    if not _is_int(payload.get("pages")):
        raise TypeError(f"'pages' must be an integer, got {payload.get('pages')!r}")
    if payload.get("ordersCount") is not None and not _is_int(payload["ordersCount"]):
        raise TypeError(f"'ordersCount' must be an integer, got {payload['ordersCount']!r}")
    return orders


def orders_count(payload: Mapping[str, Any]) -> int | None:
    return payload.get("ordersCount")


def single_article_rows(order: Mapping[str, Any]) -> list[dict] | None:
    """The parts of every `singleArticles` group, each with its group's `articleId` (one level, for a child
    table). Raises ValueError naming the field when the nesting is not the doc's."""
    groups = order.get("singleArticles")
    if groups is None:
        return None
    if not isinstance(groups, list):
        raise ValueError(f"'singleArticles' must be an array, got {_kind(groups)}")
    return _rows_of_groups(groups, "singleArticles", group_name=lambda g: f"'singleArticles[{g}]'",
                           items_name=lambda g, at: f"'singleArticles[{g}].singleArticles{at}'")


def batch_rows(payload: Any) -> list[dict]:
    """Every batch entry of a `/{order_id}/batch` answer, each with its article's `articleId`.

    The doc says the call covers "all the articles" and its DTO carries one `articleId`, so the answer is one
    ProductionOrderBatchResponseDto per article; its example shows a single object, which is accepted as one
    article. Raises ValueError naming the field when the shape is neither.
    """
    articles = [payload] if isinstance(payload, Mapping) else payload
    if not isinstance(articles, list):
        raise ValueError(f"expected an array of {{articleId, countBatch, countSerial, batches}} objects, "
                         f"got a JSON {_kind(payload)}")
    return _rows_of_groups(articles, "batches", group_name=lambda a: f"element {a}",
                           items_name=lambda a, at: f"element {a}: 'batches{at}'")


def _rows_of_groups(groups: list, items_field: str, group_name: Callable[[int], str],
                    items_name: Callable[[int, str], str]) -> list[dict]:
    """One level of nesting flattened for a child table: every item of each group's `items_field` array, with
    the group's `articleId`. Raises ValueError naming the field (by `group_name(g)` / `items_name(g, "[i]")`)
    when a group or an item is not an object or the array is not an array."""
    rows = []
    for group_index, group in enumerate(groups):
        if not isinstance(group, Mapping):
            raise ValueError(f"{group_name(group_index)} must be an object, got {_kind(group)}")
        items = group.get(items_field)
        if items is None:
            continue
        if not isinstance(items, list):
            raise ValueError(f"{items_name(group_index, '')} must be an array, got {_kind(items)}")
        for item_index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ValueError(f"{items_name(group_index, f'[{item_index}]')} must be an object, "
                                 f"got {_kind(item)}")
            rows.append({**item, GROUP_ARTICLE_ID: group.get("articleId")})
    return rows


class LagerkollClient:
    system = SYSTEM
    naive_timezone = timezone.utc  # every date is epoch milliseconds: nothing is in a local zone

    def __init__(self, settings: LagerkollSettings, data_dir: Path, logger: Logger | None = None):
        self.settings = settings
        auth = credential_auth(settings)
        # The limit belongs to the store, whichever credential style a run uses.
        limiter_name = bucket_name(SYSTEM, settings.base_url, settings.store)
        self.api = ApiClient(system=SYSTEM, base_url=settings.base_url, auth=auth, logger=logger,
                             limiter=shared_limiter(limiter_name, settings.rate_limit_per_minute, data_dir),
                             limiter_name=limiter_name)
        self.api.masker.add(*auth.secrets())
        self.stats = self.api.stats

    def close(self) -> None:
        self.api.close()

    def pages(self, stream: Stream, params: Mapping[str, Any]) -> Iterator[Page]:
        """Every page of the order list; each order carries its flattened single articles and its batches."""
        for page in self._order_pages(stream, params):
            orders = [self._with_children(order, stream, page.number) for order in page.records]
            yield Page(page.number, orders, page.payload)

    # --- the order list ----------------------------------------------------------------------------------
    def _order_pages(self, stream: Stream, params: Mapping[str, Any]) -> Iterator[Page]:
        """Pages from 0 (the doc's default), or from 1 when the server refuses page 0 or answers it empty while
        counting orders. Each walk ends after `pages` pages or on an empty page. Then, since a snapshot replaces
        the whole table, fewer orders than the last page's `ordersCount` fail the load instead of landing it."""
        walk = self._walk(stream, params, FIRST_PAGE)
        first: Page | None
        try:
            first = next(walk)
        except SourceHttpError as exc:
            if exc.status not in PAGE_REFUSED_STATUSES:
                raise
            self.api.log.warning(f"{SYSTEM} {stream.endpoint}: page {FIRST_PAGE} refused (HTTP {exc.status}); "
                                 f"the server's pages must start at {FIRST_PAGE + 1}")
            first = None
        else:
            if not first.records and (orders_count(first.payload) or 0) > 0:
                self.api.log.warning(f"{SYSTEM} {stream.endpoint}: page {FIRST_PAGE} is empty but ordersCount is "
                                     f"{orders_count(first.payload)}; the server's pages must start at "
                                     f"{FIRST_PAGE + 1}")
                walk.close()
                first = None
        if first is None:
            walk = self._walk(stream, params, FIRST_PAGE + 1)
            first = next(walk)
        received, counted, last_label = 0, None, first.number
        for page in itertools.chain([first], walk):
            received += len(page.records)
            counted, last_label = orders_count(page.payload), page.number
            yield page
        if counted is not None and received < counted:
            raise SourcePayloadError(f"the list ended after {received} orders but ordersCount says {counted}: "
                                     "pages were skipped, so nothing is landed", system=SYSTEM,
                                     endpoint=stream.endpoint, page=last_label)

    def _walk(self, stream: Stream, params: Mapping[str, Any], first_page: int) -> Iterator[Page]:
        paginator = TotalPagesPaginator(page_size=self.settings.page_size, pages_of=lambda payload: payload["pages"],
                                        start=first_page)
        return self.api.pages(stream.method, stream.path, paginator, params=params, select=orders_of,
                              endpoint=stream.endpoint)

    # --- children of one order ---------------------------------------------------------------------------
    def _with_children(self, order: Any, stream: Stream, page_number: int | str) -> Any:
        order_id = order.get("orderId") if isinstance(order, Mapping) else None
        if not (_is_int(order_id) or (isinstance(order_id, str) and order_id.isdigit())):
            return order  # the row parser reports it, naming the record, the field and the page
        try:
            single_articles = single_article_rows(order)
        except ValueError as exc:
            raise SourcePayloadError(f"order {order_id}: {exc}", system=SYSTEM, endpoint=stream.endpoint,
                                     page=page_number) from None
        return {**order, SINGLE_ARTICLES_KEY: single_articles, BATCHES_KEY: self._batches(int(order_id))}

    def _batches(self, order_id: int) -> list[dict]:
        path = f"{BASE_PATH}/{order_id}/batch"
        endpoint = f"GET {path}"
        payload = self.api.get_json("GET", path, endpoint=endpoint)
        try:
            return batch_rows(payload)
        except ValueError as exc:
            raise SourcePayloadError(str(exc), system=SYSTEM, endpoint=endpoint) from None
