"""Fusion Operations streams: productions, downtimes and punch clocks (daily partitions), production orders and
products (snapshots kept fresh by the vendor's own filters), and stock (changes feed only). Field names follow
`fusion-operations.txt`; the changes feed spells a few differently (`entry` for a punch's `type`, `is-active` for
`active`, `09:13:00` durations), and the getters accept both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfg_pipeline.declarations import ById, ModifiedSince, OpenRecords, Stream, TimeWindowFilter
from mfg_pipeline.records.schema import (
    BOOL,
    DURATION_SECONDS,
    FLOAT,
    INT,
    JSON,
    STRING,
    TIMESTAMP,
    Column,
    Table,
    child_table,
    code_of,
    first_of,
)

PUNCH_DIRECTIONS = {0: "out", 1: "in"}


def punch_direction(record: Mapping[str, Any]) -> Any:
    kind = first_of("type", "entry")(record)
    return PUNCH_DIRECTIONS.get(kind) if isinstance(kind, int) and not isinstance(kind, bool) else None


PRODUCTIONS = Stream(
    name="productions",
    path="/api/v1/productions",
    description="Production records: one worker's labour on an operation over a period, with quantity and waste. "
    "Daily partitions by start time.",
    window=TimeWindowFilter("start-time-after", "start-time-before", time_column="start_time"),
    params={"worker-name": "true"},  # the worker's name beside the number (the doc's `worker-name` flag)
    table=Table(
        name="productions",
        primary_key=("id",),
        description="Fusion Operations production records (GET /api/v1/productions), one row per production.",
        columns=(
            Column("id", INT, required=True),
            Column("start_time", TIMESTAMP, "start-time", required=True, description="Start (UTC)."),
            Column("end_time", TIMESTAMP, "end-time", description="End (UTC)."),
            Column(
                "work_time_seconds",
                DURATION_SECONDS,
                "work-time",
                description="Work time within schedule, excluding downtimes, in seconds.",
            ),
            Column("production_order_id", INT, "production-order.id"),
            Column("production_order_code", STRING, "production-order.code"),
            Column("operation_code", STRING, "operation.code"),
            Column("product_code", STRING, first_of("operation.product", "operation.product-code")),
            Column("worker_number", INT, "worker.number"),
            Column("worker_name", STRING, "worker.name"),
            Column("machine_code", STRING, "machine.code"),
            Column("quantity", FLOAT, "quantity"),
            Column("checked_out", BOOL, "checked-out"),
            Column("finished", BOOL, "finished"),
            Column("rework", BOOL, "rework"),
            Column("lot_number", STRING, "lot-number"),
            Column("shipping_code", STRING, code_of("shipping")),
            Column("location_code", STRING, code_of("location")),
            Column("parameters", JSON, "parameters", description="Process parameters as JSON."),
        ),
    ),
    children=(
        child_table(
            "production_waste",
            "produced-waste",
            [("production_id", "id", INT)],
            description="Defective output of a production (its produced-waste array).",
            columns=[
                Column("quantity", FLOAT, "quantity"),
                Column("waste_id", INT, "waste.id"),
                Column("waste_code", STRING, "waste.code"),
                Column("waste_description", STRING, "waste.description"),
                Column("flaw", STRING, "waste.flaw"),
                Column("recoverable", BOOL, "waste.recoverable"),
                Column("billable", BOOL, "waste.billable"),
            ],
        ),
    ),
)

DOWNTIMES = Stream(
    name="downtimes",
    path="/api/v1/downtimes",
    description="Machine downtimes with their type and duration. Daily partitions by start time.",
    window=TimeWindowFilter("start-time-after", "start-time-before", time_column="start_time"),
    table=Table(
        name="downtimes",
        primary_key=("id",),
        description="Fusion Operations downtimes (GET /api/v1/downtimes), one row per downtime.",
        columns=(
            Column("id", INT, required=True),
            Column("start_time", TIMESTAMP, "start-time", required=True),
            Column("end_time", TIMESTAMP, "end-time"),
            Column("time_spent_seconds", DURATION_SECONDS, "time-spent"),
            Column("downtime_type", STRING, "downtime-type"),
            Column("started_by_worker_number", INT, "started-by.number"),
            Column("closed_by_worker_number", INT, "closed-by.number"),
            Column("product_code", STRING, code_of("product")),
            Column("production_order_code", STRING, code_of("production-order")),
            Column("checked_out", BOOL, "checked-out"),
            Column("workers", JSON, "workers", description="Workers involved, as JSON."),
        ),
    ),
    children=(
        child_table(
            "downtime_machines",
            "machines",
            [("downtime_id", "id", INT)],
            description="Machines stopped by a downtime (its machines array).",
            columns=[Column("machine_code", STRING, "code"), Column("machine_name", STRING, "name")],
        ),
    ),
)

PUNCH_CLOCKS = Stream(
    name="punch_clocks",
    path="/api/v1/punchclocks",
    description="Punch clock entries (in/out) of workers. Daily partitions by punch time.",
    window=TimeWindowFilter("date-after", "date-before", time_column="punched_at"),
    table=Table(
        name="punch_clocks",
        primary_key=("id",),
        description="Fusion Operations punch clock entries (GET /api/v1/punchclocks).",
        columns=(
            Column("id", INT, required=True),
            Column("punched_at", TIMESTAMP, "date", required=True),
            Column("worker_number", INT, "worker.number"),
            Column("punch_type", INT, first_of("type", "entry"), description="1 = in, 0 = out (as the API)."),
            Column("direction", STRING, punch_direction, description="'in' or 'out'."),
        ),
    ),
)


def _active_filter(values: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [{"active": "true" if value else "false"} for value in values]


PRODUCTION_ORDERS = Stream(
    name="production_orders",
    path="/api/v1/production-orders",
    description="Production orders with their products, machines and assigned workers. Hourly: the active ones "
    "(`active=true`), then each order the warehouse holds as active that the list no longer returns, "
    "by id; daily: the whole list.",
    params={"workers": "true"},
    # Active orders are the ones still produced against; an order leaves the list once completed, and is then
    # fetched by id (404: deleted). FUSION_OPS_OPEN_ORDERS_ACTIVE="" turns this off (hourly full list).
    open_records=OpenRecords(
        column="active",
        values=(True,),
        requests=_active_filter,
        refetch=ById("/api/v1/production-orders/{id}", params={"workers": "true"}),
        setting="FUSION_OPS_OPEN_ORDERS_ACTIVE",
        value_type=BOOL,
    ),
    table=Table(
        name="production_orders",
        primary_key=("id",),
        description="Fusion Operations production orders (GET /api/v1/production-orders).",
        columns=(
            Column("id", INT, required=True),
            Column("code", STRING, "code"),
            Column("description", STRING, "description"),
            Column("start_date", TIMESTAMP, "start-date"),
            Column("due_date", TIMESTAMP, "due-date"),
            Column("status", STRING, "status", description="scheduled, onschedule, delayed or completed."),
            Column("running_status", STRING, "running-status", description="notstarted, started, closed or archived."),
            Column("active", BOOL, first_of("active", "is-active")),
            Column("ended", BOOL, "ended"),
            Column("shipping_code", STRING, code_of("shipping")),
            Column("serial_number", STRING, "serial-number"),
            Column("notes", STRING, "notes"),
            Column("pieces_by_box", INT, "pieces-by-box"),
            Column("location_code", STRING, code_of("location")),
            Column("material_staging_complete", BOOL, "material-staging-complete"),
        ),
    ),
    children=(
        child_table(
            "production_order_products",
            "products",
            [("production_order_id", "id", INT)],
            description="Products and quantities of a production order.",
            columns=[
                Column("product_code", STRING, "product"),
                Column("quantity_ordered", FLOAT, "quantity-ordered"),
                Column("quantity_produced", FLOAT, "quantity-produced"),
                Column("observations", STRING, "observations"),
            ],
        ),
        child_table(
            "production_order_machines",
            "machines",
            [("production_order_id", "id", INT)],
            description="Machines a production order is planned on.",
            columns=[Column("machine_code", STRING, "code")],
        ),
        child_table(
            "production_order_workers",
            "workers-assigned",
            [("production_order_id", "id", INT)],
            description="Workers assigned to a production order.",
            columns=[Column("worker_number", INT, "number")],
        ),
    ),
)


def _first_task(field: str):
    """A field of an operation's first (current) task duration, as the doc's product list sends them
    (`task-durations`); None when there is none."""

    def get(operation: Mapping[str, Any]) -> Any:
        durations = operation.get("task-durations")
        if not isinstance(durations, list) or not durations or not isinstance(durations[0], Mapping):
            return None
        return durations[0].get(field)

    get.label = f"task-durations[0].{field}"  # type: ignore[attr-defined]
    return get


PRODUCTS = Stream(
    name="products",
    path="/api/v1/products",
    description="Products and their operations (GET /api/v1/products). Hourly: those modified since the previous "
    "pass (`modification-date`); daily: the whole list. The PRODUCT changes channel, when configured, "
    "updates them within a minute.",
    # "Modified through the backoffice after the provided date": edits made through the API may not count, so the
    # daily full pass is what bounds freshness for those.
    modified_since=ModifiedSince("modification-date"),
    table=Table(
        name="products",
        primary_key=("code",),
        description="Fusion Operations products (GET /api/v1/products, and the PRODUCT changes channel), one row "
        "per product code; deleted products are marked (deleted_at) and hidden from products_current.",
        columns=(
            Column(
                "code", STRING, "code", required=True, description="Product code (the part number every system shares)."
            ),
            Column("name", STRING, "name"),
            Column("observations", STRING, "observations"),
            Column("section", STRING, code_of("section")),
            Column("standard_uom_code", STRING, "standard-uom.code", description="Unit of measure code."),
            Column("label_code", STRING, "label.code"),
            Column("unit_cost", FLOAT, "unit-cost", description="As the PRODUCT changes channel sends it."),
            Column("unit_price", FLOAT, "unit-price", description="As the PRODUCT changes channel sends it."),
            Column("serializable", BOOL, "serializable"),
            Column("external_stock", FLOAT, "external-stock"),
            Column("stock_max", FLOAT, "stock-max"),
            Column("min_quantity_reorder", FLOAT, "min-quantity-reorder"),
            Column("quantity_multiple", FLOAT, "quantity-multiple"),
            Column("scrap_allowance", FLOAT, "scrap-allowance"),
            Column("shelf_life", FLOAT, "shelf-life"),
            Column("families", JSON, "families"),
            Column("operations", JSON, "operations"),
            Column("components", JSON, "components"),
            Column("custom_fields", JSON, "custom-fields"),
            Column("parameters", JSON, "parameters"),
        ),
    ),
    children=(
        child_table(
            "product_operations",
            "operations",
            [("product_code", "code", STRING)],
            description="Operations of a product's routing, with the planned time per unit (its operations array).",
            columns=[
                Column("operation_code", STRING, "code"),
                Column("operation_name", STRING, "name"),
                Column("operation_id", INT, "id"),
                Column("disabled", BOOL, "disabled"),
                Column(
                    "task_duration_seconds",
                    DURATION_SECONDS,
                    _first_task("duration"),
                    description="Planned time for `task_ratio_quantity` units (the first task duration), seconds.",
                ),
                Column(
                    "task_ratio_quantity",
                    FLOAT,
                    _first_task("ratio-quantity"),
                    description="Units the planned task duration is for (the doc's default: 1).",
                ),
                Column(
                    "times_per_product",
                    INT,
                    "times-per-product",
                    description="Times the operation runs to complete one unit (the doc's default: 1).",
                ),
            ],
        ),
    ),
)

STREAMS = (PRODUCTIONS, DOWNTIMES, PUNCH_CLOCKS, PRODUCTION_ORDERS, PRODUCTS)

STOCK = Stream(
    name="stock",
    path="/api/v1/changes/{channel}",
    description="Inventory per product as the STOCK changes channel last showed it (only when such a channel is "
    "configured).",
    table=Table(
        name="stock",
        primary_key=("product_code",),
        description="Fusion Operations inventory per product, from the STOCK changes channel.",
        columns=(
            Column("product_code", STRING, "product-code", required=True),
            Column("stock", FLOAT, "stock"),
        ),
    ),
    children=(
        child_table(
            "stock_lots",
            "lot",
            [("product_code", "product_code", STRING)],
            description="Stock per lot of a product (its lot array).",
            columns=[Column("lot_code", STRING, "code"), Column("stock", FLOAT, "stock")],
        ),
    ),
)
