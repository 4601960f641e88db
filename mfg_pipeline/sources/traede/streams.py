"""Traede streams: production orders from the export API, with their lines.

The doc lists no fields of a production order (only `created_at`/`updated_at` as filters and the relations one
can include), so the columns follow the usual Traede/Laravel shape and are all optional except the id; each
row also keeps the record as sent (`source_json`), so a field named differently by the real API is not lost.

Products and variants are columns of the line table, not tables of their own: the export embeds them as one
object per line (`includes[]=lines.product`, `lines.variant`), and a line's product as it was when the order
was exported is what the line means. A product dimension, deduplicated across orders, would come from Traede's
product API, not from copies embedded in orders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfg_pipeline.declarations import Stream
from mfg_pipeline.records.schema import DATE, FLOAT, INT, JSON, STRING, TIMESTAMP, Column, Table, child_table
from mfg_pipeline.sources.traede.export_flow import export_and_mark
from mfg_pipeline.sources.traede.shapes import EXPORT_PATH


def order_without_lines(record: Mapping[str, Any]) -> dict:
    """The order as sent, minus its lines (they are rows of the line table, with their own `source_json`)."""
    return {key: value for key, value in record.items() if key != "lines"}


PRODUCTION_ORDERS = Stream(
    name="production_orders",
    path=EXPORT_PATH,
    description="Production orders due for export to TRAEDE_SYSTEM_ID, with their lines (product and variant "
    "embedded); each batch is marked exported once it is committed. Upserted by order id.",
    params={"includes[]": ["lines", "lines.product", "lines.variant"]},
    loader=export_and_mark,
    table=Table(
        name="production_orders",
        primary_key=("id",),
        description="Traede production orders (GET /v10/production-orders/export), one row per order, "
        "the latest exported version.",
        columns=(
            Column("id", INT, required=True),
            Column("production_order_number", STRING, description="The order number shown in Traede."),
            Column("supplier_id", INT, description="The producer the order is placed with."),
            Column("status", STRING, description="draft, open or closed."),
            Column("currency", STRING),
            Column("delivery_date", DATE),
            Column("notes", STRING),
            Column("total_quantity", FLOAT),
            Column("total_price", FLOAT),
            Column("created_at", TIMESTAMP, description="UTC."),
            Column("updated_at", TIMESTAMP, description="UTC; a change after the last export exports it again."),
            Column("closed_at", TIMESTAMP, description="UTC."),
            Column(
                "source_json",
                JSON,
                order_without_lines,
                description="The order as the export sent it, without its lines.",
            ),
        ),
    ),
    children=(
        child_table(
            "production_order_lines",
            "lines",
            [("production_order_id", "id", INT)],
            description="Lines of a Traede production order (its `lines` include), with the product and variant.",
            columns=[
                Column("line_id", INT, "id"),
                Column("product_id", INT, "product_id"),
                Column("variant_id", INT, "variant_id"),
                Column("quantity", FLOAT, "quantity"),
                Column("received_quantity", FLOAT, "received_quantity"),
                Column("unit_price", FLOAT, "unit_price"),
                Column("discount_percent", FLOAT, "discount_percent"),
                Column("total_price", FLOAT, "total_price"),
                Column(
                    "product_item_number",
                    STRING,
                    "product.item_number",
                    description="The product's item number (the product code in the other systems).",
                ),
                Column("product_name", STRING, "product.name"),
                Column("variant_sku", STRING, "variant.sku"),
                Column("variant_ean", STRING, "variant.ean"),
                Column("variant_name", STRING, "variant.name"),
                Column("variant_attributes", JSON, "variant.attributes", description='e.g. {"finish": ...}.'),
                Column(
                    "source_json",
                    JSON,
                    lambda line: line,
                    description="The line as the export sent it, product and variant included.",
                ),
            ],
        ),
    ),
)

STREAMS = (PRODUCTION_ORDERS,)
