"""A deterministic Lagerkoll store for the production orders simulator: production orders in every state
(NEW, DEVELOPING, FINISHED, CANCELLED) with their articles, the parts reserved for them (single articles) and
the batches and serial numbers their output was booked under.

The same (seed, scale, now, history_days) always gives the same records, so tests know exactly what must land.
Records are kept in the API's own JSON shape (ProductionOrderDto, ProductionOrderBatchResponseDto) with dates as
epoch milliseconds, exactly as the simulator sends them.

Where the doc gives a field but not its meaning, this dataset fills it like this:
- article `time` is the planned hours for the line; the order's `workHours` is the hours reported so far.
- article `status` reuses the order state codes for the line's own progress: 0 nothing produced, 1 producing,
  2 finished, 3 cancelled.
- `accuracy` is (finished - amount) / amount * 100 once the order is FINISHED, so overproduction is positive and
  waste negative, as the doc describes; null while there is no result yet.
- `storeState`: 0 nothing booked into stock, 1 some finished goods booked, 2 all booked (order finished).
- `finishDate` is null unless the order is FINISHED.
- `singleArticles` holds one group per article: the parts one unit needs (`partAmount`), the whole line needs
  (`totalAmount`) and what is still reserved in stock for it (`totalReserved`; nothing once finished or cancelled).
- a batch is the plant's lot (`catalog.lot_number`: one per product per production day, so it joins with the
  other systems). `orderedAmount` is what was started in the lot (finished + waste), `deliveredAmount` what was
  finished. Serial-tracked products (unit price >= 300) list one entry per finished unit with its `serialNr`,
  scrapped units get no serial. `bestBefore` (epoch ms) is set only for painted products (coating shelf life).
- stock orders (no customer order) have null `customerOrderId` and `customerOrderExternalId`.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from mfg_pipeline.simulators.catalog import Product, build_catalog, lot_number

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STORE_TIMEZONE = "Europe/Stockholm"

NEW, DEVELOPING, FINISHED, CANCELLED = 0, 1, 2, 3
STATE_NAMES = {NEW: "NEW", DEVELOPING: "DEVELOPING", FINISHED: "FINISHED", CANCELLED: "CANCELLED"}

ORDERS_PER_WORKDAY = 7  # times `scale`; 42 days of history plus the planning horizon give ~280 orders
PLANNING_DAYS = 14  # orders are planned this far ahead of `now`, and stay NEW until they start
SERIAL_TRACKED_FROM_PRICE = 300.0
COATING_SHELF_LIFE = timedelta(days=365)
FIRST_ORDER_ID = 41_001
FIRST_CUSTOMER_ORDER_ID = 7_001
FIRST_PR_NUMBER = 10_001
STOCK_ONLY_CUSTOMER_ORDERS = 3  # times `scale`: customer orders served from stock, with no production order

# Comments in Swedish on purpose: the doc insists on UTF-8, so some text must leave ASCII.
COMMENTS = [
    "",
    "",
    "",
    "",
    "Brådskande – kund väntar",
    "Materialcertifikat 3.1 krävs",
    "Delleverans tillåten",
    "Kunden hämtar själv",
    "Kontrollera gängor före målning",
]


@dataclass(frozen=True)
class Component:
    """A part (single article) products are built from."""

    code: str
    name: str
    unit: str
    purchase_price: float
    has_stock_value: bool  # consumables and outsourced services are expensed, not valued in stock
    per_unit: tuple[float, float]  # range of what one finished unit needs
    whole: bool  # counted in whole pieces

    def part_amount(self, rng: random.Random) -> float:
        low, high = self.per_unit
        return float(rng.randint(int(low), int(high))) if self.whole else round(rng.uniform(low, high), 3)


RAW_MATERIALS = [
    Component("RM-STEEL-R40", "Steel round bar Ø40 S355", "m", 14.80, True, (0.15, 0.9), False),
    Component("RM-STEEL-P10", "Steel plate 10 mm S235", "kg", 1.95, True, (0.8, 6.0), False),
    Component("RM-ALU-6082", "Aluminium bar 6082-T6 Ø60", "m", 22.40, True, (0.1, 0.6), False),
    Component("RM-CAST-GJL", "Grey iron casting blank EN-GJL-250", "pcs", 38.00, True, (1, 1), True),
]
HARDWARE = [
    Component("HW-BOLT-M8", "Hex bolt M8x30 8.8 zinc", "pcs", 0.18, True, (2, 8), True),
    Component("HW-NUT-M8", "Hex nut M8 8 zinc", "pcs", 0.06, True, (2, 8), True),
    Component("HW-ORING-32", "O-ring 32x3 NBR70", "pcs", 0.42, True, (1, 4), True),
    Component("HW-BUSH-20", "Polyamide bushing 20 mm", "pcs", 1.10, True, (1, 2), True),
]
CONSUMABLES = [
    Component("CN-CUTFLUID", "Cutting fluid concentrate", "l", 6.90, False, (0.01, 0.05), False),
    Component("SV-DEBURR", "Vibratory deburring (outsourced)", "pcs", 0.85, False, (1, 1), True),
]
POWDER_COAT = Component("CN-POWDER-5010", "Powder coating RAL 5010", "kg", 11.50, True, (0.05, 0.4), False)


def bill_of_materials(product: Product) -> tuple[tuple[Component, float], ...]:
    """The parts one unit of `product` needs, with amounts: plant master data, so independent of the seed."""
    rng = random.Random(f"lagerkoll-bom:{product.code}")
    parts = [rng.choice(RAW_MATERIALS)] + rng.sample(HARDWARE, k=rng.randint(1, 2)) + [rng.choice(CONSUMABLES)]
    if "PAINT" in product.operations:
        parts.append(POWDER_COAT)
    return tuple((part, part.part_amount(rng)) for part in parts)


def minutes_per_unit(product: Product) -> float:
    """Planned production minutes per unit: dearer parts take longer."""
    return round(2 + product.unit_price / 40, 2)


def is_serial_tracked(product: Product) -> bool:
    return product.unit_price >= SERIAL_TRACKED_FROM_PRICE


def epoch_ms(moment: datetime) -> int:
    """The API's date shape: integer milliseconds since the epoch (computed exactly, no float rounding)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(value: int) -> datetime:
    return EPOCH + timedelta(milliseconds=value)


@dataclass
class LagerkollDataset:
    seed: int = 42
    scale: int = 1
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    history_days: int = 42
    store_timezone: str = STORE_TIMEZONE

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.tz = ZoneInfo(self.store_timezone)
        self.rng = random.Random(f"lagerkoll:{self.seed}")
        self.catalog = build_catalog()
        self.boms = {p.code: bill_of_materials(p) for p in self.catalog.products}
        # Ground truth, in the API's JSON shape. `orders` is sorted by orderId; `orders_by_id` holds the same dicts.
        self.orders: list[dict] = []
        self.orders_by_id: dict[int, dict] = {}
        self.batches: dict[int, list[dict]] = {}  # orderId -> one ProductionOrderBatchResponseDto per article
        # Customer orders live in another Lagerkoll API; kept here so /customer_order/{id} knows which exist.
        self.customer_orders: dict[int, dict] = {}
        self._next_order_id = FIRST_ORDER_ID
        self._next_customer_order_id = FIRST_CUSTOMER_ORDER_ID
        self.next_pr_number = FIRST_PR_NUMBER
        self._serials: dict[str, int] = defaultdict(int)  # product code -> last serial number issued
        self._open_customer_order: dict | None = None

        today = self.now.astimezone(self.tz).date()
        day = today - timedelta(days=self.history_days)
        while day <= today + timedelta(days=PLANNING_DAYS):
            if day.weekday() < 5:
                for _ in range(ORDERS_PER_WORKDAY * self.scale):
                    self._make_order(day)
            day += timedelta(days=1)
        for _ in range(STOCK_ONLY_CUSTOMER_ORDERS * self.scale):
            self._new_customer_order()

    # --- lookups for tests and the app -------------------------------------------------------------------
    @property
    def now_ms(self) -> int:
        return epoch_ms(self.now)

    def order(self, order_id: int) -> dict | None:
        return self.orders_by_id.get(order_id)

    def orders_in_states(self, *states: int) -> list[dict]:
        return [o for o in self.orders if o["state"] in states]

    def orders_for_customer_order(self, customer_order_id: int) -> list[dict]:
        return [o for o in self.orders if o["customerOrderId"] == customer_order_id]

    def next_pr_reference(self) -> str:
        """The next unused prReference (what `GET /pr_ref/next_id` answers); does not reserve it."""
        return f"PR-{self.next_pr_number}"

    def take_pr_reference(self) -> str:
        reference = self.next_pr_reference()
        self.next_pr_number += 1
        return reference

    def new_order_id(self) -> int:
        order_id = self._next_order_id
        self._next_order_id += 1
        return order_id

    def add(self, order: dict, batches: list[dict]) -> None:
        self.orders.append(order)
        self.orders_by_id[order["orderId"]] = order
        self.batches[order["orderId"]] = batches

    # --- changes after generation (the simulator's writes and live mode) -----------------------------------
    def change_state(self, order: dict, new_state: int, at_ms: int) -> None:
        """Finish or cancel an order (or start one: NEW -> DEVELOPING), as Lagerkoll does on its writes."""
        order["state"] = new_state
        if new_state == DEVELOPING and order["startDate"] is None:
            order["startDate"] = at_ms
        if new_state == FINISHED:
            order["finishDate"] = at_ms
            order["storeState"] = 2
        for article in order["articles"]:
            article["status"] = new_state
            if new_state == FINISHED and article["amount"]:
                article["accuracy"] = round((article["finished"] - article["amount"]) / article["amount"] * 100, 2)
        if new_state in (FINISHED, CANCELLED):
            for group in order["singleArticles"]:
                for part in group["singleArticles"]:
                    part["totalReserved"] = 0.0  # reservations are released when the order closes

    def book_output(self, order: dict, good: int, waste: int, at: datetime, touch_order: bool = True) -> None:
        """Output of the order's first article booked into today's lot: a batch entry (or a serial per unit),
        and - unless `touch_order` is off, for a change only the batch list shows - the article's and the
        order's finished amounts."""
        if not order["articles"]:
            return
        article = order["articles"][0]
        product = self.catalog.product(article["articleId"])
        lot = lot_number(product.code, at.astimezone(self.tz).date())
        groups = self.batches.setdefault(order["orderId"], [])
        group = next((g for g in groups if g["articleId"] == product.code), None)
        if group is None:
            group = {"articleId": product.code, "countBatch": 0, "countSerial": 0, "batches": []}
            groups.append(group)
        if is_serial_tracked(product):
            for _ in range(good):
                self._serials[product.code] += 1
                serial = f"SN{product.code.removeprefix('P-')}-{self._serials[product.code]:05d}"
                group["batches"].append(
                    {
                        "batchId": lot,
                        "serialNr": serial,
                        "orderedAmount": 1.0,
                        "deliveredAmount": 1.0,
                        "bestBefore": None,
                    }
                )
        else:
            group["batches"].append(
                {
                    "batchId": lot,
                    "serialNr": None,
                    "orderedAmount": float(good + waste),
                    "deliveredAmount": float(good),
                    "bestBefore": None,
                }
            )
        group["countBatch"] = len({b["batchId"] for b in group["batches"]})
        group["countSerial"] = sum(1 for b in group["batches"] if b["serialNr"] is not None)
        if touch_order:
            article["finished"] = float(article["finished"] + good)
            article["waste"] = float(article["waste"] + waste)
            order["finishedAmount"] = float(sum(a["finished"] for a in order["articles"]))
            order["storeState"] = max(order["storeState"], 1)

    def new_order(self, day: date) -> dict:
        """A new order planned on `day` (drawn like the generated ones)."""
        self._make_order(day)
        return self.orders[-1]

    def remove(self, order_id: int) -> None:
        """The order is deleted in Lagerkoll: gone from every list and lookup."""
        order = self.orders_by_id.pop(order_id)
        self.orders.remove(order)
        self.batches.pop(order_id, None)

    # --- generation --------------------------------------------------------------------------------------
    def local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.tz).astimezone(UTC)

    def _new_customer_order(self) -> dict:
        customer = self.rng.choice(self.catalog.customers)
        customer_order: dict[str, Any] = {
            "customerOrderId": self._next_customer_order_id,
            "customerOrderExternalId": f"{customer.code}/{self.rng.randint(4_500_000, 4_599_999)}",
            "customerCode": customer.code,
            "customerName": customer.name,
        }
        self._next_customer_order_id += 1
        self.customer_orders[customer_order["customerOrderId"]] = customer_order
        return customer_order

    def _customer_order_for_next(self) -> dict | None:
        roll = self.rng.random()
        if roll < 0.25:
            return None  # stock replenishment
        if self._open_customer_order is not None and roll < 0.45:
            return self._open_customer_order  # several production orders for one customer order
        self._open_customer_order = self._new_customer_order()
        return self._open_customer_order

    def _state_and_stop(self, start: datetime, end: datetime) -> tuple[int, datetime | None]:
        """The order's state at `now` and when its production stopped (None if it never started)."""
        roll = self.rng.random()
        if roll < 0.07:
            if start >= self.now:
                return CANCELLED, None
            return CANCELLED, start + (min(self.now, end) - start) * self.rng.uniform(0.0, 0.8)
        if start > self.now or roll < 0.11:  # planned ahead, or released but waiting for material
            return NEW, None
        finish = max(end + timedelta(hours=self.rng.randint(-24, 48)), start + timedelta(hours=4))
        if finish <= self.now:
            return FINISHED, finish
        return DEVELOPING, self.now

    def _production_days(self, start: datetime, stop: datetime) -> list[date]:
        first, last = start.astimezone(self.tz).date(), stop.astimezone(self.tz).date()
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return [d for d in days if d.weekday() < 5] or [first]

    def _split(self, total: int, parts: int) -> list[int]:
        """`total` whole units spread over `parts` days, unevenly; sums exactly to `total`."""
        weights = [self.rng.random() + 0.2 for _ in range(parts)]
        shares = [int(total * w / sum(weights)) for w in weights]
        for i in range(total - sum(shares)):
            shares[i % parts] += 1
        return shares

    def _make_order(self, day: date) -> None:
        start = self.local(day, time(6, 0)) + timedelta(minutes=self.rng.randrange(0, 9 * 60, 5))
        end = start + timedelta(days=self.rng.randint(2, 9), hours=self.rng.choice([0, 4, 8]))
        products = self.rng.sample(self.catalog.products, k=self.rng.choice([1, 1, 1, 2, 2, 3]))
        customer_order = self._customer_order_for_next()
        state, stop = self._state_and_stop(start, end)
        order_id = self.new_order_id()
        reserved_share = self.rng.choice([0.0, 0.5, 1.0])  # NEW orders reserve parts all at once, or partly
        production_days = self._production_days(start, stop) if stop is not None else []

        articles: list[dict[str, Any]] = []
        single_articles: list[dict[str, Any]] = []
        batches: list[dict[str, Any]] = []
        work_hours = 0.0
        for product in products:
            amount = self.rng.randint(2, 16) if is_serial_tracked(product) else self.rng.randrange(40, 800, 10)
            planned_hours = round(amount * minutes_per_unit(product) / 60, 2)
            produced = 0
            if stop is not None:
                if state == FINISHED:
                    produced = round(amount * self.rng.uniform(0.98, 1.05))
                else:
                    progress = min(0.95, max(0.0, (stop - start) / (end - start)))
                    produced = round(amount * progress)
            waste = round(produced * self.rng.uniform(0.0, 0.04))
            finished = produced - waste
            work_hours += planned_hours * produced / amount * self.rng.uniform(0.9, 1.25)
            if state == CANCELLED:
                status = CANCELLED
            elif state == FINISHED:
                status = FINISHED
            else:
                status = DEVELOPING if produced else NEW
            articles.append(
                {
                    "productionOrderId": order_id,
                    "articleId": product.code,
                    "articleName": product.name,
                    "time": planned_hours,
                    "amount": float(amount),
                    "finished": float(finished),
                    "waste": float(waste),
                    "status": status,
                    "accuracy": round((finished - amount) / amount * 100, 2) if state == FINISHED else None,
                }
            )
            single_articles.append(
                {
                    "articleId": product.code,
                    "singleArticles": [
                        self._reserved_part(product, part, per_unit, amount, produced, state, reserved_share)
                        for part, per_unit in self.boms[product.code]
                    ],
                }
            )
            batches.append(self._batches(product, production_days, finished, waste))

        finished_total = sum(a["finished"] for a in articles)
        order: dict[str, Any] = {
            "orderId": order_id,
            "prReference": self.take_pr_reference(),
            "customerOrderId": customer_order["customerOrderId"] if customer_order else None,
            "customerOrderExternalId": customer_order["customerOrderExternalId"] if customer_order else None,
            "internalReference": f"V{day.isocalendar().week:02d}/{self.rng.choice('ABC')}",  # planning week/cell
            "name": " + ".join(p.name for p in products)
            + (f" – {customer_order['customerName']}" if customer_order else " – lager"),
            "comment": self.rng.choice(COMMENTS),
            "startDate": epoch_ms(start),
            "endDate": epoch_ms(end),
            "finishDate": epoch_ms(stop) if state == FINISHED and stop is not None else None,
            "workHours": round(work_hours, 2),
            "state": state,
            "reserveInDepth": self.rng.random() < 0.2,
            "storeState": 2 if state == FINISHED else (1 if finished_total > 0 else 0),
            "totalAmount": sum(a["amount"] for a in articles),
            "finishedAmount": finished_total,
            "articles": articles,
            "singleArticles": single_articles,
        }
        self.add(order, batches)

    def _reserved_part(
        self,
        product: Product,
        part: Component,
        per_unit: float,
        amount: int,
        produced: int,
        state: int,
        reserved_share: float,
    ) -> dict:
        total = round(per_unit * amount, 3)
        if state == NEW:
            reserved = round(total * reserved_share, 3)
        elif state == DEVELOPING:
            reserved = round(max(0.0, total - per_unit * produced), 3)  # consumed parts leave the reservation
        else:
            reserved = 0.0
        return {
            "articleId": product.code,
            "singleArticleId": part.code,
            "singleArticleName": part.name,
            "unit": part.unit,
            "totalReserved": reserved,
            "totalAmount": total,
            "partAmount": per_unit,
            "purchasePrice": part.purchase_price,
            "hasStockValue": part.has_stock_value,
        }

    def _batches(self, product: Product, days: list[date], finished: int, waste: int) -> dict:
        entries = []
        if days:
            for day, good, scrapped in zip(
                days, self._split(finished, len(days)), self._split(waste, len(days)), strict=True
            ):
                if good + scrapped == 0:
                    continue
                lot = lot_number(product.code, day)
                best_before = (
                    epoch_ms(self.local(day, time(0, 0)) + COATING_SHELF_LIFE)
                    if "PAINT" in product.operations
                    else None
                )
                if is_serial_tracked(product):
                    for _ in range(good):
                        self._serials[product.code] += 1
                        serial = f"SN{product.code.removeprefix('P-')}-{self._serials[product.code]:05d}"
                        entries.append(
                            {
                                "batchId": lot,
                                "serialNr": serial,
                                "orderedAmount": 1.0,
                                "deliveredAmount": 1.0,
                                "bestBefore": best_before,
                            }
                        )
                else:
                    entries.append(
                        {
                            "batchId": lot,
                            "serialNr": None,
                            "orderedAmount": float(good + scrapped),
                            "deliveredAmount": float(good),
                            "bestBefore": best_before,
                        }
                    )
        return {
            "articleId": product.code,
            "countBatch": len({e["batchId"] for e in entries}),
            "countSerial": sum(1 for e in entries if e["serialNr"] is not None),
            "batches": entries,
        }
