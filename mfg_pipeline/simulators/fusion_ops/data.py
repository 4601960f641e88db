"""A deterministic shop for the Fusion Operations simulator: workers on three shifts, machines, production
orders, punch clock pairs, productions with waste, downtimes of typed causes, and the products (one per catalog
product) with their stock by lot.

The same (seed, scale, now, history_days) always gives the same records, so tests know exactly what must land.
Records are kept in the API's own JSON shape (`body`) plus parsed instants for filtering.

After generation, `add_*`/`edit_*` change the shop live (the simulator's `create_*`/`update_*`/`delete_*` call
them under its lock): new ids continue the id sequences, timestamps default to the wall clock, and `self.rng` is
never drawn from, so the generated records stay exactly as they were. `feed_record` gives a record in the changes
feed's per-type shape.

Products and stock are keyed by product code (a string), not an int id: `products` and `stock` are dicts code ->
`SimRecord` (in catalog order, then creation order) whose `id` is the code. A product's body is the doc's changes-feed
Products shape; its `start` is when it was last modified (the list's `modification-date` filter). A stock body is the
doc's Inventory shape `{"product-code", "stock", "lot": [{"code", "stock"}]}` with lots oldest first, named by
`catalog.lot_number` (so they join with the productions' `lot-number` and the other systems), summing to `stock`.
Both are made after everything else, from their own `random.Random(f"fusion-products:{seed}")`.
"""

from __future__ import annotations

import bisect
import copy
import math
import random
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from mfg_pipeline.simulators.catalog import PLANT_TIMEZONE, build_catalog, lot_number

UTC = timezone.utc
DOWNTIME_TYPES = ["Maintenance", "Malfunction", "Setup", "Material shortage", "Tool change", "Cleaning"]
WASTE_TYPES = [
    {
        "id": 331,
        "code": "W-SCRATCH",
        "description": "Surface scratches",
        "flaw": "Cosmetic",
        "recoverable": True,
        "billable": False,
    },
    {
        "id": 332,
        "code": "W-DIM",
        "description": "Out of tolerance",
        "flaw": "Dimensional",
        "recoverable": False,
        "billable": False,
    },
    {
        "id": 333,
        "code": "W-BURR",
        "description": "Burr left on edge",
        "flaw": "Finishing",
        "recoverable": True,
        "billable": False,
    },
    {
        "id": 334,
        "code": "W-MAT",
        "description": "Material defect",
        "flaw": "Material",
        "recoverable": False,
        "billable": True,
    },
]
# Local shift starts; the night shift runs past midnight, so its records straddle day partitions.
SHIFTS = [("early", time(6, 0)), ("late", time(14, 0)), ("night", time(22, 0))]
SHIFT_HOURS = 8


def format_instant(moment: datetime, tz: ZoneInfo) -> str:
    """The API's timestamp shape: local time with milliseconds and offset, e.g. 2016-09-20T17:55:32.000+01:00."""
    local = moment.astimezone(tz)
    text = local.isoformat(timespec="milliseconds")
    return text


def format_duration(seconds: int) -> str:
    """The API's duration shape: 00H02m00s."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}H{minutes:02d}m{secs:02d}s"


@dataclass
class SimRecord:
    """A record as the API returns it, with the instants its filters compare against."""

    id: int | str  # products and stock: the product code
    body: dict
    start: datetime  # start-time / date / start-date, UTC-aware
    end: datetime | None = None  # end-time / due-date
    deleted: bool = False

    @property
    def until(self) -> datetime:
        """`end`, for records that always have one (production orders: the due date)."""
        if self.end is None:
            raise ValueError(f"record {self.id} has no end")
        return self.end


@dataclass
class FusionDataset:
    seed: int = 42
    scale: int = 1
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    history_days: int = 42
    company_timezone: str = PLANT_TIMEZONE

    def __post_init__(self) -> None:
        self.tz = ZoneInfo(self.company_timezone)
        self.rng = random.Random(self.seed)
        self.catalog = build_catalog()
        self.workers: list[dict[str, Any]] = [
            {"number": n, "name": f"Worker {n:03d}"} for n in range(1, 9 * self.scale + 1)
        ]
        self.machines: list[dict[str, Any]] = [
            {"code": f"M{n:02d}", "name": f"Machine {n:02d}"} for n in range(1, 4 * self.scale + 1)
        ]
        self.productions: list[SimRecord] = []
        self.downtimes: list[SimRecord] = []
        self.punchclocks: list[SimRecord] = []
        self.production_orders: list[SimRecord] = []
        self._next_id = {"production": 5_000_001, "downtime": 20_001, "punch": 370_001, "order": 8_700_001}
        first_day = self.now.astimezone(self.tz).date() - timedelta(days=self.history_days)
        last_day = self.now.astimezone(self.tz).date()
        day = first_day
        while day <= last_day:
            self._make_orders(day)
            self._make_day(day)
            day += timedelta(days=1)
        self._settle_orders()
        for records in (self.productions, self.downtimes, self.punchclocks, self.production_orders):
            records.sort(key=lambda r: r.id)
        # After the rest, from their own generator: the records above stay exactly what they were before these.
        self.products: dict[str, SimRecord] = {}
        self.stock: dict[str, SimRecord] = {}
        self._make_products_and_stock(self.local(first_day, time(0, 0)))

    # --- ids and time ----------------------------------------------------------------------------------
    def new_id(self, kind: str) -> int:
        value = self._next_id[kind]
        self._next_id[kind] += 1
        return value

    def local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.tz).astimezone(UTC)

    def _in_past(self, moment: datetime) -> bool:
        return moment <= self.now

    # --- generation ------------------------------------------------------------------------------------
    def _make_orders(self, day: date) -> None:
        if day.weekday() >= 5:
            return
        for _ in range(2 + self.scale):
            start = self.local(day, time(6, 0))
            if not self._in_past(start):
                return
            due = start + timedelta(days=self.rng.randint(3, 12), hours=self.rng.choice([0, 4, 8]))
            products = self.rng.sample(self.catalog.products, k=self.rng.choice([1, 1, 2]))
            order_id = self.new_id("order")
            body = {
                "products": [
                    {
                        "product": p.code,
                        "quantity-ordered": self.rng.randrange(100, 2000, 50),
                        "observations": "",
                        "quantity-produced": 0,
                    }
                    for p in products
                ],
                "code": f"PO-{day:%y%m%d}-{order_id % 1000:03d}",
                "shipping": f"Shipping {self.rng.randint(1, 80)}",
                "serial-number": "",
                "description": f"Order for {products[0].name}",
                "start-date": format_instant(start, self.tz),
                "due-date": format_instant(due, self.tz),
                "workers-assigned": [{"number": w["number"]} for w in self.rng.sample(self.workers, k=2)],
                "ended": False,
                "machines": [{"code": m["code"]} for m in self.rng.sample(self.machines, k=2)],
                "pieces-by-box": self.rng.choice([10, 20, 25, 50]),
                "status": "scheduled",
                "running-status": "notstarted",
                "notes": "",
                "active": True,
                "location": {"id": "1", "code": "PLANT1", "name": "Main plant"},
                "id": order_id,
            }
            self.production_orders.append(SimRecord(order_id, body, start, due))

    def _open_orders(self, moment: datetime) -> list[SimRecord]:
        return [o for o in self.production_orders if o.start <= moment <= o.until] or self.production_orders[-3:]

    def _make_day(self, day: date) -> None:
        if day.weekday() == 6 or not self.production_orders:
            return
        crews = [self.workers[i::3] for i in range(3)]
        week = day.isocalendar().week
        for shift_index, (_, start_at) in enumerate(SHIFTS):
            crew = crews[(shift_index + week) % 3]
            shift_start = self.local(day, start_at)
            shift_end = shift_start + timedelta(hours=SHIFT_HOURS)
            for worker in crew:
                self._make_worker_shift(day, worker, shift_start, shift_end)
        for machine in self.machines:
            for _ in range(self.rng.choice([0, 1, 1, 2])):
                start = self.local(day, time(0, 0)) + timedelta(minutes=self.rng.randrange(0, 24 * 60))
                self._add_downtime(machine, start, self.rng.randint(2, 90) * 60)
        # Records exactly on the partition boundaries (local and UTC midnight), to prove each lands once.
        for boundary in {self.local(day, time(0, 0)), datetime.combine(day, time(0, 0), tzinfo=UTC)}:
            self._add_downtime(self.machines[0], boundary, 15 * 60)
            self._add_production(self.workers[0], boundary, 20 * 60, day)
            self._add_punch(self.workers[1], boundary, 1)

    def _make_worker_shift(self, day: date, worker: dict, shift_start: datetime, shift_end: datetime) -> None:
        punch_in = shift_start - timedelta(seconds=self.rng.randint(0, 600))
        punch_out = shift_end + timedelta(seconds=self.rng.randint(0, 600))
        self._add_punch(worker, punch_in, 1)
        cursor = shift_start + timedelta(minutes=self.rng.randint(2, 15))
        while True:
            duration = self.rng.randint(25, 150) * 60
            if cursor + timedelta(seconds=duration) > shift_end:
                break
            self._add_production(worker, cursor, duration, day)
            cursor += timedelta(seconds=duration + self.rng.randint(60, 900))
        self._add_punch(worker, punch_out, 0)

    def _add_punch(self, worker: dict, moment: datetime, kind: int) -> None:
        if not self._in_past(moment):
            return
        punch_id = self.new_id("punch")
        body = {
            "id": punch_id,
            "date": format_instant(moment, self.tz),
            "worker": {"number": worker["number"]},
            "type": kind,
        }
        self.punchclocks.append(SimRecord(punch_id, body, moment))

    def _add_production(self, worker: dict, start: datetime, duration: int, day: date) -> None:
        end = start + timedelta(seconds=duration)
        if not self._in_past(end):
            return
        order = self.rng.choice(self._open_orders(start))
        line = self.rng.choice(order.body["products"])
        product = self.catalog.product(line["product"])
        quantity = self.rng.randint(5, 120)
        wastes = []
        if self.rng.random() < 0.3:
            for waste_type in self.rng.sample(WASTE_TYPES, k=self.rng.choice([1, 1, 2])):
                wastes.append({"quantity": self.rng.randint(1, 6), "waste": dict(waste_type)})
        production_id = self.new_id("production")
        machine = self.rng.choice(self.machines)
        body = {
            "production-order": {"code": order.body["code"], "id": order.id},
            "operation": {"code": self.rng.choice(product.operations), "product": product.code},
            "worker": {"number": worker["number"]},
            "machine": {"code": machine["code"]},
            "produced-waste": wastes,
            "parameters": [{"spindle-rpm": self.rng.choice([800, 1200, 2400])}],
            "quantity": quantity,
            "checked-out": True,
            "work-time": format_duration(duration - self.rng.choice([0, 0, 60, 300])),
            "start-time": format_instant(start, self.tz),
            "end-time": format_instant(end, self.tz),
            "lot-number": lot_number(product.code, start.astimezone(self.tz).date()),
            "location": {"id": "1", "code": "PLANT1", "name": "Main plant"},
            "id": production_id,
        }
        line["quantity-produced"] += quantity
        self.productions.append(SimRecord(production_id, body, start, end))

    def _add_downtime(self, machine: dict, start: datetime, seconds: int) -> None:
        end = start + timedelta(seconds=seconds)
        if not self._in_past(end):
            return
        downtime_id = self.new_id("downtime")
        worker = self.rng.choice(self.workers)
        body = {
            "id": downtime_id,
            "start-time": format_instant(start, self.tz),
            "end-time": format_instant(end, self.tz),
            "started-by": {"number": worker["number"]},
            "closed-by": {"number": worker["number"]},
            "workers": [],
            "machines": [dict(machine)],
            "product": self.rng.choice(self.catalog.products).code,
            "production-order": "",
            "checked-out": True,
            "downtime-type": self.rng.choice(DOWNTIME_TYPES),
            "time-spent": format_duration(seconds),
        }
        self.downtimes.append(SimRecord(downtime_id, body, start, end))

    def _make_products_and_stock(self, modified: datetime) -> None:
        """One product per catalog product, and its stock: up to `STOCK_LOTS` lots of its latest production days,
        each holding part of what was produced in it (none if it was never produced)."""
        rng = random.Random(f"fusion-products:{self.seed}")
        produced: dict[str, dict[str, tuple[date, float]]] = {}  # product -> lot -> (day, quantity produced)
        for record in self.productions:
            body = record.body
            lots = produced.setdefault(body["operation"]["product"], {})
            day, quantity = lots.get(body["lot-number"], (record.start.astimezone(self.tz).date(), 0.0))
            lots[body["lot-number"]] = (day, quantity + body["quantity"])
        for product in self.catalog.products:
            unit_cost = round(product.unit_price * rng.uniform(0.45, 0.75), 2)
            body = product_body(
                product.code,
                product.name,
                unit_price=product.unit_price,
                unit_cost=unit_cost,
                operations=product.operations,
            )
            body["stock-max"] = float(rng.choice([500, 1000, 2000, 5000]))
            body["min-quantity-reorder"] = float(rng.choice([50, 100, 200]))
            body["quantity-multiple"] = float(rng.choice([1, 10, 25]))
            body["scrap-allowance"] = rng.choice([0.0, 0.01, 0.02, 0.05])
            self.products[product.code] = SimRecord(product.code, body, modified)
            recent = sorted(produced.get(product.code, {}).items(), key=lambda item: item[1][0])[-STOCK_LOTS:]
            stock_lots = [
                {"code": lot, "stock": float(max(1, round(quantity * rng.uniform(0.1, 0.9))))}
                for lot, (_, quantity) in recent
            ]
            self.stock[product.code] = SimRecord(product.code, stock_body(product.code, stock_lots), self.now)

    def _settle_orders(self) -> None:
        """Statuses as the doc defines them, relative to `now`."""
        for order in self.production_orders:
            self.settle_order(order, self.now)

    def settle_order(self, order: SimRecord, now: datetime) -> None:
        """One order's `running-status`, `ended`, `active` and `status` from its quantities, relative to `now`."""
        body = order.body
        ordered = sum(p["quantity-ordered"] for p in body["products"])
        produced = sum(p["quantity-produced"] for p in body["products"])
        started = produced > 0
        complete = produced >= ordered
        body["running-status"] = "closed" if complete else ("started" if started else "notstarted")
        body["ended"] = complete
        body["active"] = not complete
        if complete:
            body["status"] = "completed"
        elif now < order.start and not started:
            body["status"] = "scheduled"
        elif now <= order.until:
            body["status"] = "onschedule"
        else:
            body["status"] = "delayed"

    # --- live changes (after generation; these never draw from `self.rng`, so generation stays as it was) ---
    def records(self, kind: str) -> list[SimRecord]:
        """The records of a kind: "production", "downtime", "punch" or "order" (the lists themselves, by id), or
        "product" or "stock" (a new list of the dicts' records, deleted products included)."""
        if kind in ("product", "stock"):
            return list(self._keyed(kind).values())
        return {
            "production": self.productions,
            "downtime": self.downtimes,
            "punch": self.punchclocks,
            "order": self.production_orders,
        }[kind]

    def _keyed(self, kind: str) -> dict[str, SimRecord]:
        return {"product": self.products, "stock": self.stock}[kind]

    def find(self, kind: str, record_id: int | str) -> SimRecord:
        """The live (not deleted) record of that kind and id (products and stock: code), else KeyError.
        Lists stay sorted by id."""
        if kind in ("product", "stock"):
            record = self._keyed(kind).get(record_id)  # type: ignore[arg-type]
            if record is not None and not record.deleted:
                return record
            raise KeyError(f"no live {kind} with code {record_id!r}")
        records = self.records(kind)
        index = bisect.bisect_left(records, record_id, key=lambda r: r.id)
        if index < len(records) and records[index].id == record_id and not records[index].deleted:
            return records[index]
        raise KeyError(f"no live {kind} with id {record_id}")

    def machine(self, code: str | None) -> dict:
        if code is None:
            return dict(self.machines[0])
        return dict(next((m for m in self.machines if m["code"] == code), {"code": code, "name": code}))

    def _span(self, start: datetime | None, end: datetime | None, seconds: int) -> tuple[datetime, datetime]:
        """(start, end) of a new record: ending now unless told, `seconds` long unless both ends are given."""
        if end is None:
            end = start + timedelta(seconds=seconds) if start is not None else live_now()
        end = self.instant(end)
        start = self.instant(start) if start is not None else end - timedelta(seconds=seconds)
        if end < start:
            raise ValueError("end is before start")
        return start, end

    def instant(self, moment: datetime) -> datetime:
        """UTC, whole milliseconds (what the API's timestamps can say); naive means the company's timezone."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tz)
        moment = moment.astimezone(UTC)
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)

    def _live_order(self, moment: datetime, order_id: int | None) -> SimRecord:
        if order_id is not None:
            return self.find("order", order_id)
        live = [o for o in self.production_orders if not o.deleted]
        if not live:
            raise ValueError("no production order to book a production on")
        current = [o for o in live if o.start <= moment <= o.until]
        return (current or live)[-1]

    def add_production(
        self,
        *,
        worker: int | None = None,
        order_id: int | None = None,
        machine: str | None = None,
        quantity: float = 10,
        start: datetime | None = None,
        end: datetime | None = None,
        operation: str | None = None,
        duration_seconds: int = 1800,
    ) -> SimRecord:
        """A checked-out production (ending now and `duration_seconds` long unless told).

        Defaults: the first worker and machine, the newest production order running at `start`, that order's first
        product and its first operation. The order's quantities are left alone (no cascade onto PRODUCTION_ORDER).
        """
        start, end = self._span(start, end, duration_seconds)
        order = self._live_order(start, order_id)
        product_code = order.body["products"][0]["product"]
        product = self.catalog.product(product_code)
        production_id = self.new_id("production")
        body = {
            "production-order": {"code": order.body["code"], "id": order.id},
            "operation": {"code": operation or product.operations[0], "product": product_code},
            "worker": {"number": worker if worker is not None else self.workers[0]["number"]},
            "machine": {"code": self.machine(machine)["code"]},
            "produced-waste": [],
            "parameters": [],
            "quantity": quantity,
            "checked-out": True,
            "work-time": format_duration(int((end - start).total_seconds())),
            "start-time": format_instant(start, self.tz),
            "end-time": format_instant(end, self.tz),
            "lot-number": lot_number(product_code, start.astimezone(self.tz).date()),
            "location": {"id": "1", "code": "PLANT1", "name": "Main plant"},
            "id": production_id,
        }
        record = SimRecord(production_id, body, start, end)
        self.productions.append(record)
        return record

    def edit_production(
        self,
        record: SimRecord,
        *,
        quantity: float | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        worker: int | None = None,
        machine: str | None = None,
        checked_out: bool | None = None,
        operation: str | None = None,
    ) -> None:
        """Change fields of a live production; new start/end also move `work-time`."""
        body = record.body
        self._edit_span(record, start, end, "work-time")
        if quantity is not None:
            body["quantity"] = quantity
        if worker is not None:
            body["worker"] = {"number": worker}
        if machine is not None:
            body["machine"] = {"code": self.machine(machine)["code"]}
        if checked_out is not None:
            body["checked-out"] = checked_out
        if operation is not None:
            body["operation"] = {**body["operation"], "code": operation}

    def _edit_span(self, record: SimRecord, start: datetime | None, end: datetime | None, duration_field: str) -> None:
        """New start and/or end: the body's timestamps, the record's instants and its duration field move together."""
        if start is None and end is None:
            return
        new_start = self.instant(start) if start is not None else record.start
        new_end = self.instant(end) if end is not None else record.end
        if new_end is not None and new_end < new_start:
            raise ValueError("end is before start")
        record.start, record.end = new_start, new_end
        record.body["start-time"] = format_instant(new_start, self.tz)
        if new_end is not None:
            record.body["end-time"] = format_instant(new_end, self.tz)
            record.body[duration_field] = format_duration(int((new_end - new_start).total_seconds()))

    def add_downtime(
        self,
        *,
        machine: str | None = None,
        downtime_type: str = "Malfunction",
        start: datetime | None = None,
        end: datetime | None = None,
        worker: int | None = None,
        product: str = "",
        production_order: str = "",
        duration_seconds: int = 600,
    ) -> SimRecord:
        """A closed downtime on `machine` (default the first), ending now unless told."""
        start, end = self._span(start, end, duration_seconds)
        number = worker if worker is not None else self.workers[0]["number"]
        downtime_id = self.new_id("downtime")
        body = {
            "id": downtime_id,
            "start-time": format_instant(start, self.tz),
            "end-time": format_instant(end, self.tz),
            "started-by": {"number": number},
            "closed-by": {"number": number},
            "workers": [],
            "machines": [self.machine(machine)],
            "product": product,
            "production-order": production_order,
            "checked-out": True,
            "downtime-type": downtime_type,
            "time-spent": format_duration(int((end - start).total_seconds())),
        }
        record = SimRecord(downtime_id, body, start, end)
        self.downtimes.append(record)
        return record

    def edit_downtime(
        self,
        record: SimRecord,
        *,
        downtime_type: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        machine: str | None = None,
        closed_by: int | None = None,
    ) -> None:
        """Change fields of a live downtime; new start/end also move `time-spent`."""
        self._edit_span(record, start, end, "time-spent")
        if downtime_type is not None:
            record.body["downtime-type"] = downtime_type
        if machine is not None:
            record.body["machines"] = [self.machine(machine)]
        if closed_by is not None:
            record.body["closed-by"] = {"number": closed_by}

    def add_punch_clock(self, *, worker: int | None = None, kind: int = 1, at: datetime | None = None) -> SimRecord:
        """A punch (`kind` 1 = in, 0 = out: the list's `type`, the feed's `entry`) at `at` (default now)."""
        if kind not in (0, 1):
            raise ValueError("kind is 1 (in) or 0 (out)")
        moment = self.instant(at if at is not None else live_now())
        punch_id = self.new_id("punch")
        body = {
            "id": punch_id,
            "date": format_instant(moment, self.tz),
            "worker": {"number": worker if worker is not None else self.workers[0]["number"]},
            "type": kind,
        }
        record = SimRecord(punch_id, body, moment)
        self.punchclocks.append(record)
        return record

    def edit_punch_clock(
        self, record: SimRecord, *, kind: int | None = None, at: datetime | None = None, worker: int | None = None
    ) -> None:
        if kind is not None:
            if kind not in (0, 1):
                raise ValueError("kind is 1 (in) or 0 (out)")
            record.body["type"] = kind
        if at is not None:
            record.start = self.instant(at)
            record.body["date"] = format_instant(record.start, self.tz)
        if worker is not None:
            record.body["worker"] = {"number": worker}

    def add_production_order(
        self,
        *,
        products: Mapping[str, float] | None = None,
        start: datetime | None = None,
        due: datetime | None = None,
        code: str | None = None,
        notes: str = "",
        description: str | None = None,
        now: datetime | None = None,
    ) -> SimRecord:
        """An order for `products` (code -> quantity ordered; default 100 of the first catalog product), starting
        at `start` (default now) and due a week later unless told; statuses settled against the wall clock."""
        start = self.instant(start if start is not None else live_now())
        due = self.instant(due) if due is not None else start + timedelta(days=7)
        if due < start:
            raise ValueError("due is before start")
        products = products or {self.catalog.products[0].code: 100}
        first = self.catalog.product(next(iter(products)))
        order_id = self.new_id("order")
        body = {
            "products": [
                {"product": code_, "quantity-ordered": quantity, "observations": "", "quantity-produced": 0}
                for code_, quantity in products.items()
            ],
            "code": code or f"PO-{start.astimezone(self.tz):%y%m%d}-{order_id % 1000:03d}",
            "shipping": "",
            "serial-number": "",
            "description": description if description is not None else f"Order for {first.name}",
            "start-date": format_instant(start, self.tz),
            "due-date": format_instant(due, self.tz),
            "workers-assigned": [],
            "ended": False,
            "machines": [],
            "pieces-by-box": 10,
            "status": "scheduled",
            "running-status": "notstarted",
            "notes": notes,
            "active": True,
            "location": {"id": "1", "code": "PLANT1", "name": "Main plant"},
            "id": order_id,
        }
        record = SimRecord(order_id, body, start, due)
        self.settle_order(record, now or live_now())
        self.production_orders.append(record)
        return record

    def edit_production_order(
        self,
        record: SimRecord,
        *,
        quantity_produced: Mapping[str, float] | None = None,
        quantity_ordered: Mapping[str, float] | None = None,
        start: datetime | None = None,
        due: datetime | None = None,
        notes: str | None = None,
        description: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Change an order's lines (by product code), dates or texts; its statuses are settled again."""
        body = record.body
        lines = {line["product"]: line for line in body["products"]}
        edits = [
            (field_name, product, quantity)
            for field_name, changes in (
                ("quantity-produced", quantity_produced),
                ("quantity-ordered", quantity_ordered),
            )
            for product, quantity in (changes or {}).items()
        ]
        missing = sorted({product for _, product, _ in edits if product not in lines})
        if missing:
            raise KeyError(f"order {record.id} has no line for product(s) {', '.join(missing)}")
        new_start = self.instant(start) if start is not None else record.start
        new_due = self.instant(due) if due is not None else record.until
        if new_due < new_start:
            raise ValueError("due is before start")
        for field_name, product, quantity in edits:
            lines[product][field_name] = quantity
        record.start, record.end = new_start, new_due
        body["start-date"] = format_instant(new_start, self.tz)
        body["due-date"] = format_instant(new_due, self.tz)
        if notes is not None:
            body["notes"] = notes
        if description is not None:
            body["description"] = description
        self.settle_order(record, now or live_now())

    # --- products and stock (keyed by code) ---------------------------------------------------------------
    def add_product(
        self,
        code: str,
        name: str,
        *,
        unit_price: float | None = None,
        unit_cost: float | None = None,
        operations: tuple[str, ...] | list[str] = (),
        observations: str = "",
    ) -> SimRecord:
        """A new product (ValueError if a live one has the code; a deleted one's code may be reused), with an empty
        stock record if it had none (no STOCK change). It is not added to the shared catalog."""
        if code in self.products and not self.products[code].deleted:
            raise ValueError(f"product {code!r} exists")
        body = product_body(
            code,
            name,
            unit_price=unit_price,
            unit_cost=unit_cost,
            operations=tuple(operations),
            observations=observations,
        )
        record = SimRecord(code, body, live_now())
        self.products.pop(code, None)  # a re-created code goes to the end, like a new one
        self.products[code] = record
        self.stock.setdefault(code, SimRecord(code, stock_body(code, []), record.start))
        return record

    def edit_product(
        self,
        record: SimRecord,
        *,
        name: str | None = None,
        unit_price: float | None = None,
        unit_cost: float | None = None,
        observations: str | None = None,
    ) -> None:
        """Change fields of a live product; the others stay."""
        body = record.body
        if name is not None:
            body["name"] = name
        if unit_price is not None:
            body["unit-price"] = float(unit_price)
        if unit_cost is not None:
            body["unit-cost"] = float(unit_cost)
        if observations is not None:
            body["observations"] = observations
        record.start = live_now()

    def edit_stock(
        self, product_code: str, stock: float, lots: dict[str, float] | None = None, day: date | None = None
    ) -> SimRecord:
        """Set a live product's stock. With `lots` (lot code -> stock, summing to `stock`) they replace the lots;
        without, a rise goes to the lot of `day` (default today, company time; `catalog.lot_number`) and a fall
        takes from the oldest lots first (first in, first out), dropping emptied lots."""
        self.find("product", product_code)
        if stock < 0:
            raise ValueError("stock cannot be negative")
        record = self.stock.get(product_code)
        if record is None:
            record = self.stock[product_code] = SimRecord(product_code, stock_body(product_code, []), live_now())
        if lots is not None:
            if any(v < 0 for v in lots.values()):
                raise ValueError("lot stock cannot be negative")
            if not math.isclose(sum(lots.values()), stock, rel_tol=1e-9, abs_tol=1e-9):
                raise ValueError(f"lots sum to {sum(lots.values())}, not {stock}")
            new_lots: list[dict[str, Any]] = [{"code": code, "stock": float(value)} for code, value in lots.items()]
        else:
            new_lots = copy.deepcopy(record.body["lot"])
            change = stock - record.body["stock"]
            if change > 0:
                code = lot_number(product_code, day or live_now().astimezone(self.tz).date())
                lot = next((lot for lot in new_lots if lot["code"] == code), None)
                if lot is None:
                    new_lots.append(lot := {"code": code, "stock": 0.0})
                lot["stock"] = float(lot["stock"] + change)
            take = -change
            while take > 0 and new_lots:
                taken = min(take, new_lots[0]["stock"])
                new_lots[0]["stock"] = float(new_lots[0]["stock"] - taken)
                take -= taken
                if new_lots[0]["stock"] <= 0:
                    new_lots.pop(0)
        record.body = stock_body(product_code, new_lots)
        record.body["stock"] = float(stock)  # exactly what was asked, whatever float sums say
        record.start = live_now()
        return record


STOCK_LOTS = 3  # generated stock: lots of at most this many of a product's latest production days


# In the products endpoints' example (GET /api/v1/products/{code}) but not in the PRODUCT feed example.
PRODUCT_ENDPOINT_ONLY_FIELDS = ("standard-uom", "label")


def product_body(
    code: str,
    name: str,
    *,
    unit_price: float | None = None,
    unit_cost: float | None = None,
    operations: tuple[str, ...] = (),
    observations: str = "",
) -> dict:
    """A product in the doc's changes-feed Products shape (field order as the example; `notification` null)."""
    return {
        "code": code,
        "name": name,
        "observations": observations,
        "section": None,
        "unit-cost": None if unit_cost is None else float(unit_cost),
        "unit-price": None if unit_price is None else float(unit_price),
        "families": [],
        "standard-uom": {"code": "PCS", "name": "Pieces"},
        "label": {"code": f"LBL-{code}"},
        "operations": [operation_body(code, op) for op in operations],
        "components": [],
        "custom-fields": [],
        "notification": None,
        "serializable": False,
        "shipping-package-types": [],
        "external-stock": None,
        "stock-max": None,
        "min-quantity-reorder": None,
        "quantity-multiple": None,
        "scrap-allowance": None,
        "shelf-life": None,
        "parameters": [],
    }


def planned_seconds_per_unit(product_code: str, operation: str) -> int:
    """The routing's planned time for one unit of an operation: 20 to 79 s, fixed per (product, operation) so it
    never draws from a generator (the shop's records stay what they were)."""
    return 20 + zlib.crc32(f"{product_code}:{operation}".encode()) % 60


def operation_body(product_code: str, operation: str) -> dict:
    """One routing operation as the doc's product list shows it: its planned duration (`task-durations`, one
    entry, for `ratio-quantity` units), the times it runs per unit and its id."""
    ratio = 10
    return {
        "code": operation,
        "name": operation.capitalize(),
        "waste": None,
        "task-durations": [
            {
                "validSince": "2020-01-01T00:00:00Z",
                "validUntil": "2100-01-01T00:00:00Z",
                "duration": format_duration(planned_seconds_per_unit(product_code, operation) * ratio),
                "duration-customer": format_duration(planned_seconds_per_unit(product_code, operation) * ratio),
                "ratio-quantity": ratio,
            }
        ],
        "times-per-product": 1,
        "disabled": False,
        "id": 100 + zlib.crc32(operation.encode()) % 900,
    }


def stock_body(product_code: str, lots: list[dict]) -> dict:
    """A product's stock in the doc's Inventory shape: the lots' sum, and the lots oldest first."""
    return {
        "product-code": product_code,
        "stock": float(sum(lot["stock"] for lot in lots)),
        "lot": [{"code": lot["code"], "stock": float(lot["stock"])} for lot in lots],
    }


def live_now() -> datetime:
    """The wall clock, in whole seconds: when a live change happens."""
    return datetime.now(UTC).replace(microsecond=0)


# --- the changes feed ---------------------------------------------------------------------------------------
# Channel types the doc lists, and the record kind each one follows (PRODUCT and STOCK: keyed by product code).
FEED_TYPES = ("DOWN_TIME", "PRODUCT", "PRODUCTION", "PRODUCTION_ORDER", "PUNCH_CLOCK", "STOCK")
FEED_KIND = {
    "PRODUCTION": "production",
    "DOWN_TIME": "downtime",
    "PUNCH_CLOCK": "punch",
    "PRODUCTION_ORDER": "order",
    "PRODUCT": "product",
    "STOCK": "stock",
}
# Fields the doc's PRODUCTION feed example carries that the list items do not.
PRODUCTION_FEED_EXTRAS = {
    "consumptions": [],
    "total-time-factor": 1.0,
    "rework": False,
    "show-check-in-checklist-and-c-f": False,
}


def parse_duration(text: str) -> int:
    """Seconds from the list's `00H02m00s` (or the feed's `09:13:00`)."""
    match = re.fullmatch(r"(\d+)H(\d+)m(\d+)s", text) or re.fullmatch(r"(\d+):(\d+):(\d+)", text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    hours, minutes, seconds = (int(g) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def format_clock(seconds: int) -> str:
    """The changes feed's duration shape: HH:MM:SS (the doc's example `"time-spent": "09:13:00"`)."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def feed_record(channel_type: str, record: SimRecord, workers: bool = False) -> dict:
    """A record as the changes feed of that type shows its current state (the doc's per-type examples)."""
    body = copy.deepcopy(record.body)
    if channel_type == "PRODUCTION":
        for name, value in PRODUCTION_FEED_EXTRAS.items():
            body.setdefault(name, copy.deepcopy(value))
        if record.deleted:
            body["status"] = "deleted"
        return body
    if channel_type == "DOWN_TIME":
        body["time-spent"] = format_clock(parse_duration(body["time-spent"]))
        if record.deleted:
            body["event-type"] = "downtime_deleted"
        return body
    if channel_type == "PUNCH_CLOCK":
        shaped = {"id": body["id"], "date": body["date"]}
        if record.deleted:
            shaped["notification"] = "punch_clock_deleted"
        shaped["worker"] = {"number": body["worker"]["number"]}
        shaped["entry"] = body["type"]
        return shaped
    if channel_type == "PRODUCTION_ORDER":
        # `is-active` where the list says `active`, in the same place; workers only when asked for (`workers`).
        shaped = {
            ("is-active" if k == "active" else k): v for k, v in body.items() if workers or k != "workers-assigned"
        }
        if record.deleted:
            shaped["running-status"] = "deleted"
        return shaped
    if channel_type == "PRODUCT":
        # The feed example's fields only (no `standard-uom` or `label`, which the products endpoints carry);
        # `notification` is null, or `product_deleted` once the product is deleted (the doc's note).
        shaped = {k: v for k, v in body.items() if k not in PRODUCT_ENDPOINT_ONLY_FIELDS}
        shaped["notification"] = "product_deleted" if record.deleted else None
        return shaped
    if channel_type == "STOCK":
        return body  # {"product-code", "stock", "lot": [{"code", "stock"}]}; stock is never deleted
    raise ValueError(f"no feed shape for channel type {channel_type}")
