"""A deterministic Traede account for the export API simulator: production orders placed with the plant's
suppliers (draft, open and closed), their lines with product and variant, the sales orders they were made for,
the delivery notes that received them, and each export system's record of what it has marked exported.

The same (seed, scale, now, history_days) always gives the same records, so tests know exactly what must land.
Records are kept in the API's own JSON shape (`body`, relations as ids) plus parsed instants; `render_order`
builds the response object with the requested includes.

Shapes where the doc is silent (it only names the relations), chosen as a plausible Laravel/Traede shape:
- timestamps are UTC `Y-m-d H:i:s` strings, dates `Y-m-d`; money is a float with 2 decimals, currency EUR;
- an order has `status` "draft" | "open" | "closed" (the doc's include_open means drafts, include_closed closed);
- a product's `item_number` is the catalog product code (the join key to the other systems); a variant is the
  product in one surface finish: `sku` is `<item_number>-<finish code>`, `attributes` is `{"finish": ...}`;
- embedded relations use Laravel's snake_case keys: `lines`, `supplier`, `sales_orders`, `delivery_notes`;
- a delivery note is a receipt of produced goods against the production order, with its own lines.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from mfg_pipeline.simulators.catalog import Product, build_catalog

UTC = timezone.utc
STATUSES = ("draft", "open", "closed")
# A system that already used the export API before the simulator started: some of its orders are exported,
# some were updated since (so they are due again), the newest were never exported.
LEGACY_SYSTEM_ID = "legacy-erp"
FINISHES = [("RAW", "Raw"), ("ZN", "Zinc plated"), ("AN", "Anodised"), ("PC", "Powder coated")]
SHOPS: list[dict[str, Any]] = [
    {"id": 1, "name": "B2B portal"},
    {"id": 2, "name": "Sales reps"},
    {"id": 3, "name": "EDI"},
]
CUSTOMER_CITIES = ["Bergen", "Innsbruck", "Bilbao", "Klaipeda", "Duisburg", "Plymouth", "Stavanger", "Gyor"]
CUSTOMER_COUNTRIES = ["NO", "AT", "ES", "LT", "DE", "GB", "NO", "HU"]
# The includes the doc lists for this endpoint; a nested one implies its parent, as Laravel's `with()` does.
AVAILABLE_INCLUDES = frozenset(
    {
        "deliveryNotes",
        "lines",
        "lines.product",
        "lines.variant",
        "salesOrders",
        "salesOrders.delivery",
        "salesOrders.lines",
        "salesOrders.lines.product",
        "salesOrders.lines.variant",
        "salesOrders.shop",
        "supplier",
    }
)


def format_timestamp(moment: datetime) -> str:
    """The API's timestamp shape: UTC, second precision, `2024-01-01 12:00:00`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def ean13(number: int) -> str:
    """A valid EAN-13 (check digit included) from a 12-digit number."""
    digits = f"{number:012d}"
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return digits + str((10 - weighted % 10) % 10)


@dataclass
class ProductionOrderRecord:
    """A production order as the API returns it (`body`, without relations), its relations, and its instants."""

    id: int
    body: dict
    lines: list[dict]  # line bodies, with product_id / variant_id
    sales_order_ids: list[int]
    delivery_notes: list[dict]
    created_at: datetime
    updated_at: datetime

    @property
    def status(self) -> str:
        return self.body["status"]


@dataclass
class SalesOrderRecord:
    id: int
    body: dict
    lines: list[dict]
    delivery: dict


@dataclass
class TraedeDataset:
    seed: int = 42
    scale: int = 1
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    history_days: int = 42

    def __post_init__(self) -> None:
        self.now = self.now.astimezone(UTC)
        self.rng = random.Random(self.seed)
        self.catalog = build_catalog()
        self._next_id = {
            "order": 40_001,
            "line": 900_001,
            "sales_order": 60_001,
            "sales_line": 700_001,
            "delivery_note": 80_001,
            "delivery_line": 810_001,
        }
        self._next_number = {"order": 1001, "sales_order": 10_001, "delivery_note": 5001}
        self.history_start = self.now - timedelta(days=self.history_days)
        self.suppliers: dict[int, dict] = {
            int(s.code.removeprefix("S-")): {
                "id": int(s.code.removeprefix("S-")),
                "supplier_number": s.code,
                "name": s.name,
            }
            for s in self.catalog.suppliers
        }
        self.customers = [
            {"customer_number": c.code, "name": c.name, "city": CUSTOMER_CITIES[i], "country": CUSTOMER_COUNTRIES[i]}
            for i, c in enumerate(self.catalog.customers)
        ]
        self.shops: dict[int, dict] = {s["id"]: dict(s) for s in SHOPS}
        self.products: dict[int, dict] = {}
        self.variants: dict[int, dict] = {}
        self._variants_of: dict[int, list[int]] = {}
        self._make_products()
        self.orders: list[ProductionOrderRecord] = []
        self.sales_orders: dict[int, SalesOrderRecord] = {}
        day = self.history_start.date()
        while day <= self.now.date():
            self._make_orders(day)
            day += timedelta(days=1)
        self._orders_by_id = {o.id: o for o in self.orders}
        # system_id -> production order id -> when it was last marked exported to that system
        self.export_state: dict[str, dict[int, datetime]] = {}
        # every mark, oldest first: {production_order_id, system_id, note, exported_at}
        self.export_log: list[dict] = []
        self._seed_legacy_exports()

    # --- ids -------------------------------------------------------------------------------------------
    def new_id(self, kind: str) -> int:
        value = self._next_id[kind]
        self._next_id[kind] += 1
        return value

    def new_number(self, kind: str) -> int:
        value = self._next_number[kind]
        self._next_number[kind] += 1
        return value

    # --- generation ------------------------------------------------------------------------------------
    def _make_products(self) -> None:
        created = format_timestamp(self.history_start - timedelta(days=365))
        variant_id = 7001
        for index, part in enumerate(self.catalog.products):
            product_id = 5001 + index
            self.products[product_id] = {
                "id": product_id,
                "item_number": part.code,
                "name": part.name,
                "description": f"{part.name}, routing {' > '.join(part.operations)}",
                "created_at": created,
                "updated_at": created,
            }
            finishes = sorted(self.rng.sample(range(len(FINISHES)), k=self.rng.choice([2, 3])))
            self._variants_of[product_id] = []
            for finish in finishes:
                code, name = FINISHES[finish]
                self.variants[variant_id] = {
                    "id": variant_id,
                    "product_id": product_id,
                    "sku": f"{part.code}-{code}",
                    "ean": ean13(570_000_000_000 + variant_id),
                    "name": name,
                    "attributes": {"finish": name},
                    "created_at": created,
                    "updated_at": created,
                }
                self._variants_of[product_id].append(variant_id)
                variant_id += 1

    def _catalog_part(self, product_id: int) -> Product:
        return self.catalog.product(self.products[product_id]["item_number"])

    def _make_orders(self, day: date) -> None:
        if day.weekday() >= 5:
            return
        for _ in range(self.rng.randint(3, 6) * self.scale):
            created_at = datetime.combine(day, time(7, 0), tzinfo=UTC) + timedelta(
                minutes=self.rng.randrange(0, 10 * 60), seconds=self.rng.randrange(60)
            )
            if created_at > self.now or created_at < self.history_start:
                continue
            self.orders.append(self._make_order(created_at))

    def _make_order(self, created_at: datetime) -> ProductionOrderRecord:
        order_id = self.new_id("order")
        age = self.now - created_at
        roll = self.rng.random()
        if age > timedelta(days=21) and roll < 0.7:
            status = "closed"
        elif (age < timedelta(days=10) and roll < 0.45) or roll > 0.95:
            status = "draft"
        else:
            status = "open"
        supplier_id = self.rng.choice(sorted(self.suppliers))
        lines = []
        for product_id in self.rng.sample(sorted(self.products), k=self.rng.randint(1, 4)):
            part = self._catalog_part(product_id)
            quantity = self.rng.randrange(50, 1000, 10)
            unit_price = round(part.unit_price * self.rng.uniform(0.45, 0.7), 2)
            discount = self.rng.choice([0, 0, 0, 5, 10])
            lines.append(
                {
                    "id": self.new_id("line"),
                    "production_order_id": order_id,
                    "product_id": product_id,
                    "variant_id": self.rng.choice(self._variants_of[product_id]),
                    "quantity": quantity,
                    "received_quantity": 0,
                    "unit_price": unit_price,
                    "discount_percent": discount,
                    "total_price": round(quantity * unit_price * (1 - discount / 100), 2),
                }
            )
        # Timeline: created, confirmed (drafts never), goods received, closed; updated_at is the latest step.
        updated_at = created_at + self._up_to(self.now - created_at, timedelta(hours=36))
        closed_at = None
        delivery_notes: list[dict] = []
        if status == "closed":
            closed_at = created_at + timedelta(
                days=self.rng.randint(14, max(14, age.days - 1)), minutes=self.rng.randrange(0, 600)
            )
            closed_at = min(closed_at, self.now)
            if self.rng.random() < 0.3:  # a partial delivery before the rest arrived
                first = created_at + (closed_at - created_at) * self.rng.uniform(0.5, 0.9)
                delivery_notes.append(self._receive(order_id, lines, first, share=self.rng.uniform(0.3, 0.7)))
            delivery_notes.append(self._receive(order_id, lines, closed_at, share=1.0))
            updated_at = closed_at
        elif status == "open" and age > timedelta(days=14) and self.rng.random() < 0.5:
            received = created_at + timedelta(days=self.rng.randint(10, age.days), minutes=self.rng.randrange(600))
            received = min(received, self.now)
            delivery_notes.append(self._receive(order_id, lines, received, share=self.rng.uniform(0.3, 0.7)))
            updated_at = received
        sales_order_ids = []
        if status != "draft" and self.rng.random() < 0.4:
            for _ in range(self.rng.choice([1, 1, 2])):
                sales_order_ids.append(self._make_sales_order(lines, created_at))
        body = {
            "id": order_id,
            "production_order_number": self.new_number("order"),
            "supplier_id": supplier_id,
            "status": status,
            "currency": "EUR",
            "delivery_date": (created_at.date() + timedelta(days=self.rng.randint(14, 60))).isoformat(),
            "notes": self.rng.choice(["", "", "Rush order", "Ship on pallets", "Certificates required"]),
            "total_quantity": sum(line["quantity"] for line in lines),
            "total_price": round(sum(line["total_price"] for line in lines), 2),
            "created_at": format_timestamp(created_at),
            "updated_at": format_timestamp(updated_at),
            "closed_at": format_timestamp(closed_at) if closed_at else None,
        }
        return ProductionOrderRecord(order_id, body, lines, sales_order_ids, delivery_notes, created_at, updated_at)

    def _up_to(self, available: timedelta, most: timedelta) -> timedelta:
        """A random span no longer than `most` and never past `now`."""
        span = min(available, most)
        return timedelta(seconds=self.rng.randrange(0, max(1, int(span.total_seconds()))))

    def _receive(self, order_id: int, lines: list[dict], at: datetime, share: float) -> dict:
        """A delivery note receiving `share` of what is still outstanding on each line (1.0: all of it)."""
        note_lines = []
        for line in lines:
            outstanding = line["quantity"] - line["received_quantity"]
            quantity = outstanding if share >= 1.0 else int(outstanding * share)
            line["received_quantity"] += quantity
            note_lines.append(
                {
                    "id": self.new_id("delivery_line"),
                    "production_order_line_id": line["id"],
                    "variant_id": line["variant_id"],
                    "quantity": quantity,
                }
            )
        return {
            "id": self.new_id("delivery_note"),
            "production_order_id": order_id,
            "delivery_note_number": self.new_number("delivery_note"),
            "received_at": format_timestamp(at),
            "quantity": sum(n["quantity"] for n in note_lines),
            "lines": note_lines,
            "created_at": format_timestamp(at),
            "updated_at": format_timestamp(at),
        }

    def _make_sales_order(self, production_lines: list[dict], before: datetime) -> int:
        """A customer's order the production order was placed for: it reserves part of some production lines."""
        sales_order_id = self.new_id("sales_order")
        created_at = before - timedelta(days=self.rng.randint(1, 5), minutes=self.rng.randrange(600))
        customer = self.rng.choice(self.customers)
        lines = []
        for production_line in self.rng.sample(production_lines, k=self.rng.randint(1, len(production_lines))):
            part = self._catalog_part(production_line["product_id"])
            quantity = max(10, int(production_line["quantity"] * self.rng.uniform(0.2, 0.6)) // 10 * 10)
            lines.append(
                {
                    "id": self.new_id("sales_line"),
                    "order_id": sales_order_id,
                    "product_id": production_line["product_id"],
                    "variant_id": production_line["variant_id"],
                    "quantity": quantity,
                    "unit_price": part.unit_price,
                    "total_price": round(quantity * part.unit_price, 2),
                }
            )
        body = {
            "id": sales_order_id,
            "order_number": self.new_number("sales_order"),
            "customer_number": customer["customer_number"],
            "customer_name": customer["name"],
            "shop_id": self.rng.choice(sorted(self.shops)),
            "currency": "EUR",
            "delivery_date": (before.date() + timedelta(days=self.rng.randint(30, 75))).isoformat(),
            "total_quantity": sum(line["quantity"] for line in lines),
            "total_price": round(sum(line["total_price"] for line in lines), 2),
            "created_at": format_timestamp(created_at),
            "updated_at": format_timestamp(before),
        }
        delivery = {
            "name": customer["name"],
            "address": f"Industriveien {self.rng.randint(1, 120)}",
            "zip": f"{self.rng.randint(1000, 9999)}",
            "city": customer["city"],
            "country": customer["country"],
        }
        self.sales_orders[sales_order_id] = SalesOrderRecord(sales_order_id, body, lines, delivery)
        return sales_order_id

    def _seed_legacy_exports(self) -> None:
        for order in self.orders:
            if order.status == "draft" or self.now - order.created_at < timedelta(days=3):
                continue
            roll = self.rng.random()
            if roll < 0.55:  # synced after its latest change: not due
                exported_at = order.updated_at + self._up_to(self.now - order.updated_at, timedelta(days=1))
            elif roll < 0.85:  # synced early, changed since (if it was): due again
                exported_at = order.created_at + self._up_to(self.now - order.created_at, timedelta(days=3))
            else:
                continue
            self.mark_exported(order.id, LEGACY_SYSTEM_ID, "Imported by legacy ERP sync", exported_at)

    # --- lookups ---------------------------------------------------------------------------------------
    def order(self, order_id: int) -> ProductionOrderRecord:
        return self._orders_by_id[order_id]

    def has_order(self, order_id: int) -> bool:
        return order_id in self._orders_by_id

    def orders_with_status(self, *statuses: str) -> list[ProductionOrderRecord]:
        return [o for o in self.orders if o.status in statuses]

    # --- export state ----------------------------------------------------------------------------------
    def last_exported_at(self, order_id: int, system_id: str) -> datetime | None:
        return self.export_state.get(system_id, {}).get(order_id)

    def is_due(self, order: ProductionOrderRecord, system_id: str, not_exported_since: datetime) -> bool:
        """Due for export to `system_id`: never marked, updated after its last mark, or last marked at or after
        `not_exported_since` (the doc's re-export: marks since that instant are treated as not having happened;
        its default, the current time, ignores none)."""
        exported_at = self.last_exported_at(order.id, system_id)
        return exported_at is None or order.updated_at > exported_at or exported_at >= not_exported_since

    def due_orders(
        self, system_id: str, statuses: tuple[str, ...], not_exported_since: datetime
    ) -> list[ProductionOrderRecord]:
        """What the export endpoint returns for `system_id` before filters and paging, ordered by id."""
        return [o for o in self.orders if o.status in statuses and self.is_due(o, system_id, not_exported_since)]

    def mark_exported(self, order_id: int, system_id: str, note: str, at: datetime) -> None:
        """Record an export; marking again moves the order's export instant forward (idempotent for dueness)."""
        self.export_state.setdefault(system_id, {})[order_id] = at
        self.export_log.append(
            {"production_order_id": order_id, "system_id": system_id, "note": note, "exported_at": format_timestamp(at)}
        )

    def touch(self, order_id: int, at: datetime) -> None:
        """An edit in Traede: the order's updated_at moves to `at`, so every system it was exported to gets it again."""
        order = self.order(order_id)
        if at <= order.updated_at:
            raise ValueError(f"touch time {at} is not after updated_at {order.updated_at} of order {order_id}")
        order.updated_at = at
        order.body["updated_at"] = format_timestamp(at)

    # --- changes after generation (live mode, tests); each bumps updated_at, so the order is due again -----
    def receive_goods(self, order_id: int, at: datetime, share: float = 1.0) -> None:
        """Goods received on an open order (a line's `received_quantity` changes); all of them closes it."""
        order = self.order(order_id)
        order.delivery_notes.append(self._receive(order.id, order.lines, at, share))
        if share >= 1.0:
            order.body.update(status="closed", closed_at=format_timestamp(at))
        self.touch(order_id, at)

    def edit_notes(self, order_id: int, notes: str, at: datetime) -> None:
        self.order(order_id).body["notes"] = notes
        self.touch(order_id, at)

    def confirm(self, order_id: int, at: datetime) -> None:
        """A draft is confirmed: it becomes an open order."""
        self.order(order_id).body["status"] = "open"
        self.touch(order_id, at)

    def new_order(self, at: datetime) -> ProductionOrderRecord:
        order = self._make_order(at)
        order.body.update(status="open", closed_at=None)
        self.orders.append(order)
        self._orders_by_id[order.id] = order
        return order

    # --- response shape --------------------------------------------------------------------------------
    def render_order(self, order: ProductionOrderRecord, includes: frozenset[str] = frozenset()) -> dict:
        """The order as the export endpoint returns it with `includes[]` (already validated and expanded)."""
        body = dict(order.body)
        if "lines" in includes:
            body["lines"] = [self._render_line(line, includes, "lines") for line in order.lines]
        if "supplier" in includes:
            body["supplier"] = dict(self.suppliers[order.body["supplier_id"]])
        if "deliveryNotes" in includes:
            body["delivery_notes"] = [
                {**note, "lines": [dict(n) for n in note["lines"]]} for note in order.delivery_notes
            ]
        if "salesOrders" in includes:
            body["sales_orders"] = [
                self._render_sales_order(self.sales_orders[i], includes) for i in order.sales_order_ids
            ]
        return body

    def _render_line(self, line: dict, includes: frozenset[str], prefix: str) -> dict:
        body = dict(line)
        if f"{prefix}.product" in includes:
            body["product"] = dict(self.products[line["product_id"]])
        if f"{prefix}.variant" in includes:
            variant = self.variants[line["variant_id"]]
            body["variant"] = {**variant, "attributes": dict(variant["attributes"])}
        return body

    def _render_sales_order(self, sales_order: SalesOrderRecord, includes: frozenset[str]) -> dict:
        body = dict(sales_order.body)
        if "salesOrders.lines" in includes:
            body["lines"] = [self._render_line(line, includes, "salesOrders.lines") for line in sales_order.lines]
        if "salesOrders.delivery" in includes:
            body["delivery"] = dict(sales_order.delivery)
        if "salesOrders.shop" in includes:
            body["shop"] = dict(self.shops[sales_order.body["shop_id"]])
        return body
