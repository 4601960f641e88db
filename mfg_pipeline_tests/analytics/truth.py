"""The marts' figures recomputed in Python from the simulators' own records (never by running the models' SQL),
with the definitions the marts document: plant-local dates, waste summed per production, punch pairs, merged
downtime inside planned shifts, invoiced statuses, the order states' shared set."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from mfg_pipeline.analytics.layout import PROJECT_DIR
from mfg_pipeline.records.schema import parse_instant
from mfg_pipeline.simulators.catalog import PLANT_TIMEZONE
from mfg_pipeline.simulators.fusion_ops.data import parse_duration

UTC = timezone.utc
# The zone of the plant whose records are recomputed: the one simulated plant's, or another inside `plant_zone`.
_zone: ContextVar[str] = ContextVar("plant_zone", default=PLANT_TIMEZONE)
REVENUE_STATUSES = {"issued", "paid"}
TRAEDE_EXPORTED = {"open", "closed"}  # the pipeline's default export leaves drafts out


@contextmanager
def plant_zone(zone: str) -> Iterator[None]:
    """Recompute inside the block for a plant in `zone` (its local days, its shifts)."""
    token = _zone.set(zone)
    try:
        yield
    finally:
        _zone.reset(token)


def plant_date(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(_zone.get())).date()


def month_of(day: date) -> date:
    return day.replace(day=1)


def live(records: Iterable[Any]) -> list[Any]:
    return [r for r in records if not getattr(r, "deleted", False)]


# --- Fusion Operations ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Production:
    id: int
    start: datetime
    machine: str
    worker: int
    product: str
    operation: str
    good: float
    waste: float


def productions(fusion: Any) -> list[Production]:
    out = []
    for record in live(fusion.data.productions):
        body = record.body
        out.append(
            Production(
                id=record.id,
                start=record.start,
                machine=body["machine"]["code"],
                worker=body["worker"]["number"],
                product=body["operation"]["product"],
                operation=body["operation"]["code"],
                good=float(body["quantity"]),
                waste=float(sum(w["quantity"] for w in body.get("produced-waste") or [])),
            )
        )
    return out


def downtime_minutes_by_machine_day(fusion: Any) -> dict[tuple[str, date], float]:
    minutes: dict[tuple[str, date], float] = defaultdict(float)
    for record in live(fusion.data.downtimes):
        for machine in record.body["machines"]:
            minutes[(machine["code"], plant_date(record.start))] += parse_duration(record.body["time-spent"]) / 60
    return dict(minutes)


def good_and_waste_by_product_day(fusion: Any) -> dict[tuple[str, date], tuple[float, float]]:
    totals: dict[tuple[str, date], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for p in productions(fusion):
        entry = totals[(p.product, plant_date(p.start))]
        entry[0] += p.good
        entry[1] += p.waste
    return {key: (good, waste) for key, (good, waste) in totals.items()}


@dataclass(frozen=True)
class Shift:
    worker: int
    clock_in: datetime | None
    clock_out: datetime | None
    status: str


def labor_shifts(fusion: Any) -> list[Shift]:
    """Punches paired per worker in time order: an in with the next punch if it is an out."""
    by_worker: dict[int, list[tuple[datetime, int, int]]] = defaultdict(list)
    for record in live(fusion.data.punchclocks):
        by_worker[record.body["worker"]["number"]].append((record.start, record.id, record.body["type"]))
    shifts = []
    for worker, punches in by_worker.items():
        punches.sort()
        for index, (moment, _, kind) in enumerate(punches):
            following = punches[index + 1] if index + 1 < len(punches) else None
            before = punches[index - 1] if index > 0 else None
            if kind == 1:
                if following is None:
                    shifts.append(Shift(worker, moment, None, "open"))
                elif following[2] == 0:
                    shifts.append(Shift(worker, moment, following[0], "closed"))
                else:
                    shifts.append(Shift(worker, moment, None, "missing_out"))
            elif before is None or before[2] == 0:
                shifts.append(Shift(worker, None, moment, "missing_in"))
    return shifts


def hours_by_worker_day(fusion: Any) -> dict[tuple[int, date], float]:
    hours: dict[tuple[int, date], float] = defaultdict(float)
    for shift in labor_shifts(fusion):
        day = plant_date(shift.clock_in or shift.clock_out)  # type: ignore[arg-type]
        hours[(shift.worker, day)] += (
            (shift.clock_out - shift.clock_in).total_seconds() / 3600 if shift.status == "closed" else 0.0  # type: ignore[operator]
        )
    return dict(hours)


def shift_windows(days: Iterable[date]) -> list[tuple[date, datetime, datetime, float]]:
    """(shift date, start, end, planned seconds) from the dbt project's shift calendar file."""
    with open(PROJECT_DIR / "seeds" / "shift_calendar.csv", newline="") as handle:
        calendar = list(csv.DictReader(handle))
    windows = []
    for day in days:
        for row in calendar:
            if row["plant"] == "*" and int(row["iso_weekday"]) == day.isoweekday():  # the seed's every-plant rows
                start = datetime.combine(day, time.fromisoformat(row["start_time"]), tzinfo=ZoneInfo(_zone.get()))
                start = start.astimezone(UTC)
                seconds = float(row["hours"]) * 3600
                windows.append((day, start, start + timedelta(seconds=seconds), seconds))
    return windows


def merged_downtime(fusion: Any) -> dict[str, list[tuple[datetime, datetime]]]:
    spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for record in live(fusion.data.downtimes):
        for machine in record.body["machines"]:
            spans[machine["code"]].append((record.start, record.end))
    merged: dict[str, list[tuple[datetime, datetime]]] = {}
    for machine, intervals in spans.items():
        out: list[list[datetime]] = []
        for start, end in sorted(intervals):
            if out and start <= out[-1][1]:
                out[-1][1] = max(out[-1][1], end)
            else:
                out.append([start, end])
        merged[machine] = [(s, e) for s, e in out]
    return merged


def ideal_seconds_per_unit(fusion: Any) -> dict[tuple[str, str], float]:
    ideal: dict[tuple[str, str], float] = {}
    for record in live(fusion.data.products.values()):
        for operation in record.body["operations"]:
            durations = operation.get("task-durations") or []
            if not durations or operation.get("disabled"):
                continue
            seconds = parse_duration(durations[0]["duration"]) * operation.get("times-per-product", 1)
            per_unit = seconds / durations[0].get("ratio-quantity", 1)
            key = (record.id, operation["code"])
            ideal[key] = min(per_unit, ideal.get(key, per_unit))
    return ideal


@dataclass
class OeeDay:
    planned: float = 0.0
    downtime: float = 0.0
    good: float = 0.0
    waste: float = 0.0
    ideal: float = 0.0
    without_cycle: int = 0

    @property
    def run(self) -> float:
        return max(self.planned - self.downtime, 0.0)

    @property
    def availability(self) -> float | None:
        return self.run / self.planned if self.planned else None

    @property
    def performance(self) -> float | None:
        return self.ideal / self.run if self.run > 0 and not self.without_cycle else None

    @property
    def quality(self) -> float | None:
        total = self.good + self.waste
        return self.good / total if total else None


def oee_by_machine_day(fusion: Any) -> dict[tuple[str, date], OeeDay]:
    made = productions(fusion)
    first = min(plant_date(p.start) for p in made) - timedelta(days=2)
    last = max(plant_date(p.start) for p in made) + timedelta(days=2)
    windows = shift_windows(first + timedelta(days=n) for n in range((last - first).days + 1))
    planned: dict[date, float] = defaultdict(float)
    for day, _, _, seconds in windows:
        planned[day] += seconds
    days: dict[tuple[str, date], OeeDay] = {}
    for machine, intervals in merged_downtime(fusion).items():
        for day, window_start, window_end, _ in windows:
            overlap = sum(
                (min(end, window_end) - max(start, window_start)).total_seconds()
                for start, end in intervals
                if start < window_end and end > window_start
            )
            if any(start < window_end and end > window_start for start, end in intervals):
                days.setdefault((machine, day), OeeDay()).downtime += overlap
    cycle = ideal_seconds_per_unit(fusion)
    for p in made:
        shift_day = next((d for d, s, e, _ in windows if s <= p.start < e), plant_date(p.start))
        entry = days.setdefault((p.machine, shift_day), OeeDay())
        entry.good += p.good
        entry.waste += p.waste
        per_unit = cycle.get((p.product, p.operation))
        if per_unit is None:
            entry.without_cycle += 1
        else:
            entry.ideal += per_unit * (p.good + p.waste)
    for (_, day), entry in days.items():
        entry.planned = planned.get(day, 0.0)
    return days


def units_by_product_month(fusion: Any) -> dict[tuple[str, date], float]:
    units: dict[tuple[str, date], float] = defaultdict(float)
    for p in productions(fusion):
        units[(p.product, month_of(plant_date(p.start)))] += p.good + p.waste
    return dict(units)


# --- ISOlocity ---------------------------------------------------------------------------------------------
def ncrs_by_product_month(isolocity: Any) -> dict[tuple[str | None, date], int]:
    identification = {part["id"]: part.get("identification") or None for part in isolocity.data.parts}
    counts: dict[tuple[str | None, date], int] = defaultdict(int)
    for ncr in isolocity.data.ncrs:
        created = parse_instant(ncr["created_at"], UTC)
        counts[(identification.get(ncr.get("part_id")), month_of(plant_date(created)))] += 1
    return dict(counts)


# --- Fulcrum -----------------------------------------------------------------------------------------------
def cents(value: float) -> Decimal:
    return Decimal(str(round(value, 2))).quantize(Decimal("0.01"))


def revenue_by_customer_month(fulcrum: Any) -> dict[tuple[str, date, str], tuple[int, Decimal, Decimal]]:
    currency = {c.id: c.body["currencyCode"] for c in fulcrum.data.customers}
    totals: dict[tuple[str, date, str], list] = defaultdict(lambda: [0, Decimal("0.00"), Decimal("0.00")])
    for invoice in fulcrum.data.invoices:
        body = invoice.body
        if body["deleted"] or body["status"] not in REVENUE_STATUSES:
            continue
        issued = parse_instant(body["issueDate"], UTC)
        key = (body["customerId"], month_of(plant_date(issued)), currency[body["customerId"]])
        totals[key][0] += 1
        totals[key][1] += cents(body["subtotal"])
        totals[key][2] += cents(body["total"])
    return {key: (count, net, gross) for key, (count, net, gross) in totals.items()}


# --- the order board ---------------------------------------------------------------------------------------
FUSION_STATES = {"notstarted": "planned", "started": "in_progress", "closed": "completed", "archived": "completed"}
LAGERKOLL_STATES = {0: "planned", 1: "in_progress", 2: "completed", 3: "cancelled"}
FULCRUM_STATES = {
    "draft": "planned",
    "needsReview": "planned",
    "approved": "planned",
    "engineering": "planned",
    "scheduled": "planned",
    "inProgress": "in_progress",
    "hold": "on_hold",
    "complete": "completed",
    "cancelled": "cancelled",
}
TRAEDE_STATES = {"draft": "planned", "open": "in_progress", "closed": "completed"}


def order_board(apps: dict[str, Any]) -> dict[str, tuple[str, float, float]]:
    """order key -> (state, quantity ordered, quantity done)."""
    board: dict[str, tuple[str, float, float]] = {}
    for order in live(apps["fusion_ops"].data.production_orders):
        body = order.body
        board[f"fusion_ops:{order.id}"] = (
            FUSION_STATES[body["running-status"]],
            float(sum(p["quantity-ordered"] for p in body["products"])),
            float(sum(p["quantity-produced"] for p in body["products"])),
        )
    for order in apps["lagerkoll"].data.orders:
        board[f"lagerkoll:{order['orderId']}"] = (
            LAGERKOLL_STATES[int(order["state"])],
            float(order["totalAmount"]),
            float(order["finishedAmount"]),
        )
    fulcrum = apps["fulcrum"].data
    for job in fulcrum.jobs:
        made = sum(item.body["quantityMade"] for item in fulcrum.items_to_make[job.id])
        board[f"fulcrum:{job.id}"] = (FULCRUM_STATES[job.body["status"]], float(job.body["quantityToMake"]), made)
    for order in apps["traede"].data.orders:
        if order.status in TRAEDE_EXPORTED:
            received = sum(line["received_quantity"] for line in order.lines)
            board[f"traede:{order.id}"] = (
                TRAEDE_STATES[order.status],
                float(order.body["total_quantity"]),
                float(received),
            )
    return board


# --- plant against plant -------------------------------------------------------------------------------------
def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass
class PlantWeek:
    good: float = 0.0
    waste: float = 0.0
    planned: float = 0.0
    run: float = 0.0
    ideal: float = 0.0
    timed_run: float = 0.0
    downtime_hours: float = 0.0
    ncrs: int = 0


def plant_weeks(apps: dict[str, Any]) -> dict[date, PlantWeek]:
    """The one simulated plant's weeks: units from its productions, machine time from its OEE machine-days,
    downtime hours from its downtimes (per machine stopped), NCRs by the week they were created."""
    weeks: dict[date, PlantWeek] = defaultdict(PlantWeek)
    for p in productions(apps["fusion_ops"]):
        week = weeks[week_of(plant_date(p.start))]
        week.good += p.good
        week.waste += p.waste
    for (_, day), entry in oee_by_machine_day(apps["fusion_ops"]).items():
        week = weeks[week_of(day)]
        week.planned += entry.planned
        week.run += entry.run
        if not entry.without_cycle:
            week.ideal += entry.ideal
            week.timed_run += entry.run
    for (_, day), minutes in downtime_minutes_by_machine_day(apps["fusion_ops"]).items():
        weeks[week_of(day)].downtime_hours += minutes / 60
    for ncr in apps["isolocity"].data.ncrs:
        weeks[week_of(plant_date(parse_instant(ncr["created_at"], UTC)))].ncrs += 1
    return dict(weeks)
