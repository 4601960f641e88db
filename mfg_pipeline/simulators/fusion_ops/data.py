"""A deterministic shop for the Fusion Operations simulator: workers on three shifts, machines, production
orders, punch clock pairs, productions with waste, and downtimes of typed causes.

The same (seed, scale, now, history_days) always gives the same records, so tests know exactly what must land.
Records are kept in the API's own JSON shape (`body`) plus parsed instants for filtering.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from mfg_pipeline.simulators.catalog import build_catalog, lot_number

UTC = timezone.utc
DOWNTIME_TYPES = ["Maintenance", "Malfunction", "Setup", "Material shortage", "Tool change", "Cleaning"]
WASTE_TYPES = [
    {"id": 331, "code": "W-SCRATCH", "description": "Surface scratches", "flaw": "Cosmetic",
     "recoverable": True, "billable": False},
    {"id": 332, "code": "W-DIM", "description": "Out of tolerance", "flaw": "Dimensional",
     "recoverable": False, "billable": False},
    {"id": 333, "code": "W-BURR", "description": "Burr left on edge", "flaw": "Finishing",
     "recoverable": True, "billable": False},
    {"id": 334, "code": "W-MAT", "description": "Material defect", "flaw": "Material",
     "recoverable": False, "billable": True},
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

    id: int
    body: dict
    start: datetime  # start-time / date / start-date, UTC-aware
    end: datetime | None = None  # end-time / due-date
    deleted: bool = False


@dataclass
class FusionDataset:
    seed: int = 42
    scale: int = 1
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    history_days: int = 42
    company_timezone: str = "Europe/Berlin"

    def __post_init__(self) -> None:
        self.tz = ZoneInfo(self.company_timezone)
        self.rng = random.Random(self.seed)
        self.catalog = build_catalog()
        self.workers = [{"number": n, "name": f"Worker {n:03d}"} for n in range(1, 9 * self.scale + 1)]
        self.machines = [{"code": f"M{n:02d}", "name": f"Machine {n:02d}"} for n in range(1, 4 * self.scale + 1)]
        self.productions: list[SimRecord] = []
        self.downtimes: list[SimRecord] = []
        self.punchclocks: list[SimRecord] = []
        self.production_orders: list[SimRecord] = []
        self._next_id = {"production": 5_000_001, "downtime": 20_001, "punch": 370_001, "order": 8_700_001}
        first_day = (self.now.astimezone(self.tz).date() - timedelta(days=self.history_days))
        last_day = self.now.astimezone(self.tz).date()
        day = first_day
        while day <= last_day:
            self._make_orders(day)
            self._make_day(day)
            day += timedelta(days=1)
        self._settle_orders()
        for records in (self.productions, self.downtimes, self.punchclocks, self.production_orders):
            records.sort(key=lambda r: r.id)

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
                "products": [{"product": p.code, "quantity-ordered": self.rng.randrange(100, 2000, 50),
                              "observations": "", "quantity-produced": 0} for p in products],
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
        return [o for o in self.production_orders if o.start <= moment <= o.end] or self.production_orders[-3:]

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
        body = {"id": punch_id, "date": format_instant(moment, self.tz), "worker": {"number": worker["number"]},
                "type": kind}
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

    def _settle_orders(self) -> None:
        """Statuses as the doc defines them, relative to `now`."""
        for order in self.production_orders:
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
            elif self.now < order.start and not started:
                body["status"] = "scheduled"
            elif self.now <= order.end:
                body["status"] = "onschedule"
            else:
                body["status"] = "delayed"
