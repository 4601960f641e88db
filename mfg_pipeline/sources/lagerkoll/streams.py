"""Lagerkoll streams: every production order in every state, pulled whole each run (snapshot), with its articles,
its single articles (reserved parts) and its batches as child tables. Field names follow
`lagerkoll-production-orders.txt` (ProductionOrderDto and the classes it nests).

Why `GET /production_orders_state?state_from=0&state_to=3` and not `GET /state/{state}` four times:
- it is the doc's one list spanning states, so one paged walk covers every order, with no stitching;
- it is sorted by start date, so an order whose state changes during the run keeps its place in the list; across
  four per-state lists the same order can leave a list already read for one not yet read (landing it twice, the
  stale copy first) or the reverse (missing it);
- `/state/{state}` also carries `from`/`to` date filters whose default (0) the doc does not explain.
The doc's example answer there is a bare order, but FACTS.md says it is the `{page, pages, pageSize, ordersCount,
orders}` wrapper like every other list; the client checks that shape and fails clearly if it is not.

Nested lists are flattened one level (see `shapes.py`), so the child tables stay one level deep:
- single articles come as groups `{articleId, singleArticles: [...]}`, one per article; the stream's
  `post_process` lists the parts of all groups under `SINGLE_ARTICLES_KEY`, each with its group's `articleId`;
- batches are not in the order at all: a child endpoint calls `/{order_id}/batch` (one
  ProductionOrderBatchResponseDto per article) for every new or changed order and lists every batch entry under
  `BATCHES_KEY`, each with its article's `articleId`.

Freshness: hourly, the open orders (NEW and DEVELOPING: `state_from=0&state_to=1`), then each order the
warehouse holds as open that the list no longer returns, by id (`GET /{order_id}`; 404 means deleted); daily,
every order (`state_from=0&state_to=3`), soft-deleting the ones no longer listed, with every order's batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfg_pipeline.declarations import ById, ChildEndpoint, OpenRecords, Stream
from mfg_pipeline.records.schema import BOOL, FLOAT, INT, STRING, TIMESTAMP, Column, Table, child_table, first_of
from mfg_pipeline.sources.lagerkoll.shapes import (
    BATCHES_KEY,
    GROUP_ARTICLE_ID,
    SINGLE_ARTICLES_KEY,
    batch_rows,
    with_single_article_rows,
)

BASE_PATH = "/v1/production_orders"  # FACTS: the doc's URLs are relative to it

STATE_NAMES = {0: "NEW", 1: "DEVELOPING", 2: "FINISHED", 3: "CANCELLED"}  # the doc's ProductionOrderDto.state


def state_name(record: Mapping[str, Any]) -> str | None:
    """The doc's name of the order's state; the examples send the code as "0", the class table as an integer.
    None for a code the doc does not name (a malformed one is reported by the `state` column itself)."""
    raw = record.get("state")
    try:
        return STATE_NAMES.get(INT.coerce(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


def state_ranges(states: tuple[Any, ...]) -> list[dict[str, Any]]:
    """`state_from`/`state_to` filters covering exactly `states`: one range per run of consecutive codes."""
    ordered, ranges = sorted(set(states)), list[dict[str, Any]]()
    for state in ordered:
        if ranges and state == ranges[-1]["state_to"] + 1:
            ranges[-1]["state_to"] = state
        else:
            ranges.append({"state_from": state, "state_to": state})
    return ranges


PRODUCTION_ORDERS = Stream(
    name="production_orders",
    path=f"{BASE_PATH}/production_orders_state",
    params={"state_from": 0, "state_to": 3},  # the doc gives no defaults for these: ask for every state
    description="Production orders in every state (NEW, DEVELOPING, FINISHED, CANCELLED) with their articles, "
    "reserved single articles and batches. Hourly: the open ones (NEW, DEVELOPING) and those that "
    "left that set; daily: every order.",
    post_process=with_single_article_rows,
    child_endpoints=(ChildEndpoint(BATCHES_KEY, f"{BASE_PATH}/{{orderId}}/batch", select=batch_rows),),
    # LAGERKOLL_OPEN_STATES (default 0,1) overrides which states count as open; "" turns the open pass off.
    open_records=OpenRecords(
        column="state",
        values=(0, 1),
        requests=state_ranges,
        refetch=ById(f"{BASE_PATH}/{{order_id}}"),
        setting="LAGERKOLL_OPEN_STATES",
        value_type=INT,
    ),
    table=Table(
        name="production_orders",
        primary_key=("order_id",),
        description="Lagerkoll production orders (GET /v1/production_orders/production_orders_state, "
        "states 0-3), one row per order.",
        columns=(
            Column("order_id", INT, "orderId", required=True),
            Column("pr_reference", STRING, "prReference", description="The store's own unique order reference."),
            Column("customer_order_id", INT, "customerOrderId"),
            Column("customer_order_external_id", STRING, "customerOrderExternalId"),
            Column("internal_reference", STRING, "internalReference"),
            Column("name", STRING, "name"),
            Column("comment", STRING, "comment"),
            Column("start_date", TIMESTAMP, "startDate", description="Start (UTC; sent as epoch milliseconds)."),
            Column("end_date", TIMESTAMP, "endDate", description="Planned end (UTC)."),
            Column("finish_date", TIMESTAMP, "finishDate", description="When it was finished (UTC)."),
            Column("work_hours", FLOAT, "workHours"),
            Column("state", INT, "state", description="0 NEW, 1 DEVELOPING, 2 FINISHED, 3 CANCELLED."),
            Column("state_name", STRING, state_name, description="NEW, DEVELOPING, FINISHED or CANCELLED."),
            Column(
                "reserve_in_depth",
                BOOL,
                "reserveInDepth",
                description="Reserve parts in every layer of bundled articles, not just the first.",
            ),
            Column("store_state", INT, "storeState"),
            Column("total_amount", FLOAT, "totalAmount"),
            Column("finished_amount", FLOAT, "finishedAmount"),
        ),
    ),
    children=(
        child_table(
            "production_order_articles",
            "articles",
            [("order_id", "order_id", INT)],
            description="Articles a production order makes (its articles array, ProductionOrderArticleDto).",
            columns=[
                Column("article_id", STRING, "articleId"),
                Column("article_name", STRING, "articleName"),
                Column("time", FLOAT, "time", description="The API's `time` (the doc gives no unit)."),
                Column("amount", FLOAT, "amount"),
                Column("finished", FLOAT, "finished"),
                Column("waste", FLOAT, "waste", description="Produced = finished + waste."),
                Column("status", INT, "status"),
                Column(
                    "accuracy", FLOAT, "accuracy", description="Percent; positive is overproduction, negative is waste."
                ),
            ],
        ),
        child_table(
            "production_order_single_articles",
            SINGLE_ARTICLES_KEY,
            [("order_id", "order_id", INT)],
            description="Parts (single articles) reserved for a production order, one row per part of each "
            "article (its singleArticles groups, flattened).",
            columns=[
                Column(
                    "article_id",
                    STRING,
                    first_of(GROUP_ARTICLE_ID, "articleId"),
                    description="The bundled article the part is for.",
                ),
                Column("single_article_id", STRING, "singleArticleId"),
                Column("single_article_name", STRING, "singleArticleName"),
                Column("unit", STRING, "unit"),
                Column("total_reserved", FLOAT, "totalReserved"),
                Column("total_amount", FLOAT, "totalAmount"),
                Column("part_amount", FLOAT, "partAmount"),
                Column("purchase_price", FLOAT, "purchasePrice"),
                Column("has_stock_value", BOOL, "hasStockValue"),
            ],
        ),
        child_table(
            "production_order_batches",
            BATCHES_KEY,
            [("order_id", "order_id", INT)],
            description="Batches and serial numbers a production order's output was booked under "
            "(GET /v1/production_orders/{order_id}/batch, every article's batches, flattened).",
            columns=[
                Column("article_id", STRING, GROUP_ARTICLE_ID),
                Column("batch_id", STRING, "batchId"),
                Column("serial_nr", STRING, "serialNr"),
                Column("ordered_amount", FLOAT, "orderedAmount"),
                Column("delivered_amount", FLOAT, "deliveredAmount"),
                Column(
                    "best_before",
                    INT,
                    "bestBefore",
                    description="As sent: the doc types it Long (not Date) and gives no unit.",
                ),
            ],
        ),
    ),
)

STREAMS = (PRODUCTION_ORDERS,)
