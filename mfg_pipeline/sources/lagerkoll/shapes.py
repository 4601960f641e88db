"""The shapes of Lagerkoll's answers: the list wrapper, an order's single-article groups and the batch answer,
checked and flattened one level for the child tables. Errors name the field (ValueError/TypeError)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

WRAPPER = "{page, pages, pageSize, ordersCount, orders}"
SINGLE_ARTICLES_KEY = "_singleArticleRows"  # added to each order: the parts of every single-article group
BATCHES_KEY = "_batchRows"  # attached to each order: the entries of `/{order_id}/batch`
GROUP_ARTICLE_ID = "_groupArticleId"  # added to each flattened part or batch entry


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


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


def page_echo(payload: Mapping[str, Any]) -> int | None:
    """The page the server says it served (the wrapper's `page`), when it is an integer."""
    page = payload.get("page")
    return page if _is_int(page) else None


def with_single_article_rows(order: Mapping[str, Any]) -> Mapping[str, Any]:
    """The order with the parts of every `singleArticles` group listed under `SINGLE_ARTICLES_KEY`, each with its
    group's `articleId` (one level, for a child table). Raises ValueError naming the field when the nesting is
    not the doc's."""
    groups = order.get("singleArticles")
    if groups is None:
        return order
    if not isinstance(groups, list):
        raise ValueError(f"'singleArticles' must be an array, got {_kind(groups)}")
    rows = _rows_of_groups(
        groups,
        "singleArticles",
        group_name=lambda g: f"'singleArticles[{g}]'",
        items_name=lambda g, at: f"'singleArticles[{g}].singleArticles{at}'",
    )
    return {**order, SINGLE_ARTICLES_KEY: rows}


def batch_rows(payload: Any) -> list[dict]:
    """Every batch entry of a `/{order_id}/batch` answer, each with its article's `articleId`.

    The doc says the call covers "all the articles" and its DTO carries one `articleId`, so the answer is one
    ProductionOrderBatchResponseDto per article; its example shows a single object, which is accepted as one
    article. Raises ValueError naming the field when the shape is neither.
    """
    articles = [payload] if isinstance(payload, Mapping) else payload
    if not isinstance(articles, list):
        raise ValueError(
            f"expected an array of {{articleId, countBatch, countSerial, batches}} objects, got a JSON {_kind(payload)}"
        )
    return _rows_of_groups(
        articles, "batches", group_name=lambda a: f"element {a}", items_name=lambda a, at: f"element {a}: 'batches{at}'"
    )


def _rows_of_groups(
    groups: list, items_field: str, group_name: Callable[[int], str], items_name: Callable[[int, str], str]
) -> list[dict]:
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
                raise ValueError(f"{items_name(group_index, f'[{item_index}]')} must be an object, got {_kind(item)}")
            rows.append({**item, GROUP_ARTICLE_ID: group.get("articleId")})
    return rows
