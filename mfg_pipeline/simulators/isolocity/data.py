"""A deterministic quality system for the ISOlocity simulator: NCRs of every source and status, CARs (some
raised from an NCR), the plant's parts and its suppliers.

The same (seed, scale, now, history_days) always gives the same records, so tests know exactly what must land.
Records are kept in the API's own JSON shape, ordered by id as the lists return them.

Joins an analyst relies on: an NCR's `part_id` is a part whose `identification` is a catalog product code, and
its `lot_number` is `catalog.lot_number(code, production_day)` for a plant-local production day (Monday to
Saturday, the days the Fusion Operations shop produces), so NCRs join to Fusion productions by lot.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from mfg_pipeline.simulators.catalog import PLANT_TIMEZONE, Party, Product, build_catalog, lot_number

UTC = timezone.utc
# The create schema's enum; the update schema and the list example spell them capitalised ("Internal").
NCR_SOURCES = ("internal", "customer", "supplier")
# "Open" is the doc's filter example; "Closed" is our assumption for a resolved NCR (the doc lists no others).
NCR_STATUSES = ("Open", "Closed")
SOURCE_WEIGHTS = (0.6, 0.25, 0.15)

DEFECTS = {
    "internal": [
        "Bore diameter out of tolerance",
        "Surface scratches on sealing face",
        "Burr left on edge",
        "Wrong thread pitch",
        "Missing chamfer",
        "Weld porosity",
        "Paint runs on visible face",
    ],
    "customer": [
        "Parts received with dented flange",
        "Assembly does not fit mating part",
        "Corrosion found on arrival",
        "Wrong quantity in box",
        "Leak at pressure test",
    ],
    "supplier": [
        "Raw material certificate missing",
        "Bar stock hardness below spec",
        "Casting porosity",
        "Coating thickness below spec",
        "Incoming dimensions out of tolerance",
    ],
}
IMMEDIATE_ACTIONS = {
    "internal": ["Lot quarantined", "100% inspection of lot", "Parts reworked", "Affected parts scrapped"],
    "customer": ["Replacement shipped to customer", "Customer stock sorted on site", "Lot recalled"],
    "supplier": ["Material returned to supplier", "Incoming lot quarantined", "Supplier notified, sorting"],
}


def format_timestamp(moment: datetime) -> str:
    """The API's timestamp shape, in UTC: 2020-01-01 12:00:00."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class IsolocityDataset:
    seed: int = 42
    scale: int = 1
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    history_days: int = 42
    plant_timezone: str = PLANT_TIMEZONE  # the plant's calendar, which lot numbers are dated by

    def __post_init__(self) -> None:
        self.now = self.now.replace(microsecond=0)
        self.tz = ZoneInfo(self.plant_timezone)
        self.rng = random.Random(f"isolocity:{self.seed}")
        self.catalog = build_catalog()
        # Master data predates the history window, so every NCR's part already exists when it is raised.
        self._master_created = self.now - timedelta(days=self.history_days + 400)
        self.suppliers: list[dict] = [self._supplier(1021 + i, party) for i, party in enumerate(self.catalog.suppliers)]
        self.parts: list[dict] = [self._part(10901 + i, product) for i, product in enumerate(self.catalog.products)]
        self.part_by_code = {part["identification"]: part for part in self.parts}
        self.ncrs: list[dict] = []
        self.cars: list[dict] = []
        self._make_ncrs()
        self._make_cars()

    # --- master data -----------------------------------------------------------------------------------
    def _supplier(self, supplier_id: int, party: Party) -> dict:
        slug = "".join(ch for ch in party.name.lower() if ch.isalnum())[:12]
        created = self._master_created + timedelta(days=self.rng.randint(0, 60), seconds=self.rng.randint(0, 86399))
        return {
            "id": supplier_id,
            "name": party.name,
            "primary_name": f"Account manager {party.code}",
            "primary_email": f"sales@{slug}.example",
            "primary_phone": f"1-649-555-{supplier_id % 10000:04d}",
            "primary_position": "Account Manager",
            "secondary_name": f"Quality contact {party.code}",
            "secondary_email": f"quality@{slug}.example",
            "secondary_phone": f"1-649-556-{supplier_id % 10000:04d}",
            "secondary_position": "Quality Engineer",
            "notes": f"Catalog supplier code {party.code}",
            "created_at": format_timestamp(created),
            "updated_at": format_timestamp(created + timedelta(days=self.rng.randint(0, 90))),
        }

    def _part(self, part_id: int, product: Product) -> dict:
        created = self._master_created + timedelta(days=self.rng.randint(60, 120), seconds=self.rng.randint(0, 86399))
        return {
            "id": part_id,
            "name": product.name,
            "company_id": None,  # the doc's parts may belong to a customer company; the plant's own parts do not
            "is_activity": False,
            "identification": product.code,
            "is_finished_product": True,
            "batch_ids": self._recent_lots(product.code),
            "supplier_id": self.rng.choice(self.suppliers)["id"],  # the raw material's supplier
            "parent_part_id": None,
            "unit_type": None,  # the doc's unit types are Volume/Mass/Length; machined parts are counted
            "unit_of_measure": "units",
            "density": None,
            "density_mass_unit": None,
            "density_volume_unit": None,
            "created_at": format_timestamp(created),
            "updated_at": format_timestamp(created + timedelta(days=self.rng.randint(0, 200))),
        }

    # --- NCRs ------------------------------------------------------------------------------------------
    def _recent_lots(self, product_code: str, count: int = 3) -> list[str]:
        """The part's batches: its lots from the plant's last `count` production days before now, numbered as in
        the other systems (no random draw, so the rest of the data is as before)."""
        day, lots = self.now.astimezone(self.tz).date(), list[str]()
        while len(lots) < count:
            day = self._production_day(day, 1)
            lots.append(lot_number(product_code, day))
        return lots

    def _production_day(self, found_on: date, days_back: int) -> date:
        """A day the plant produced on (Monday to Saturday), `days_back` days or more before `found_on`."""
        day = found_on - timedelta(days=days_back)
        while day.weekday() == 6:
            day -= timedelta(days=1)
        return day

    def _make_ncrs(self) -> None:
        first_day = self.now.astimezone(self.tz).date() - timedelta(days=self.history_days)
        last_day = self.now.astimezone(self.tz).date()
        raised: list[tuple[datetime, str, Product, date]] = []
        day = first_day
        while day <= last_day:
            for _ in range(self.rng.randint(3, 9) * self.scale):
                local_start = datetime.combine(day, time(6, 0), tzinfo=self.tz)
                created = (local_start + timedelta(seconds=self.rng.randint(0, 16 * 3600))).astimezone(UTC)
                source = self.rng.choices(NCR_SOURCES, weights=SOURCE_WEIGHTS)[0]
                product = self.rng.choice(self.catalog.products)
                # Internal NCRs are found in the shop within a day; customers find defects after delivery;
                # supplier material problems show up in the lots made from it.
                days_back = {
                    "internal": self.rng.randint(0, 1),
                    "customer": self.rng.randint(5, 20),
                    "supplier": self.rng.randint(0, 3),
                }[source]
                if created <= self.now:
                    raised.append((created, source, product, self._production_day(day, days_back)))
            day += timedelta(days=1)
        raised.sort(key=lambda item: item[0])
        for sequence, (created, source, product, produced_on) in enumerate(raised, start=1):
            self.ncrs.append(self._ncr(4101 + sequence - 1, sequence, created, source, product, produced_on))

    def _ncr(
        self, ncr_id: int, sequence: int, created: datetime, source: str, product: Product, produced_on: date
    ) -> dict:
        age_days = (self.now - created).total_seconds() / 86400
        closed_at = created + timedelta(days=self.rng.uniform(1, 14))
        # Older NCRs are mostly resolved; a few stay open for a long time.
        closed = closed_at <= self.now and self.rng.random() < min(0.9, age_days / 15)
        description = self.rng.choice(DEFECTS[source])
        if source == "supplier":
            description += f" (supplier: {self.rng.choice(self.catalog.suppliers).name})"
        updated = (
            closed_at
            if closed
            else created + timedelta(seconds=(self.now - created).total_seconds() * self.rng.random())
        )
        return {
            "id": ncr_id,
            "ncr_number": f"NCR-{created:%Y}-{sequence:04d}",
            "source": source,
            "status": "Closed" if closed else "Open",
            "lot_number": lot_number(product.code, produced_on),
            "quantity": self.rng.randint(1, 60),
            "description": f"{description} on {product.name} ({product.code})",
            "immediate_action": self.rng.choice(IMMEDIATE_ACTIONS[source]),
            "is_root_cause_determined": closed or self.rng.random() < 0.4,
            "has_incomplete_action_items": (not closed) and self.rng.random() < 0.7,
            "has_unread_notes": self.rng.random() < 0.2,
            "part_id": self.part_by_code[product.code]["id"],
            "created_at": format_timestamp(created),
            "updated_at": format_timestamp(updated),
        }

    # --- changes after generation (live mode, tests) -----------------------------------------------------
    def touch(self, record: dict, at: datetime) -> None:
        record["updated_at"] = format_timestamp(
            max(at, datetime.fromisoformat(record["updated_at"]).replace(tzinfo=UTC) + timedelta(seconds=1))
        )

    def set_ncr_status(self, ncr: dict, status: str, at: datetime) -> None:
        ncr["status"] = status
        if status == "Closed":
            ncr.update(is_root_cause_determined=True, has_incomplete_action_items=False)
        self.touch(ncr, at)

    def new_ncr(self, at: datetime) -> dict:
        """An NCR raised now, on one of the plant's parts, about a lot of a recent production day."""
        product = self.rng.choice(self.catalog.products)
        source = self.rng.choices(NCR_SOURCES, weights=SOURCE_WEIGHTS)[0]
        sequence = len(self.ncrs) + 1
        ncr_id = max((n["id"] for n in self.ncrs), default=4100) + 1
        ncr = self._ncr(ncr_id, sequence, at, source, product, self._production_day(at.astimezone(self.tz).date(), 1))
        ncr.update(status="Open", updated_at=ncr["created_at"])
        self.ncrs.append(ncr)
        return ncr

    def remove_ncr(self, ncr: dict) -> None:
        self.ncrs.remove(ncr)

    def add_part_batch(self, part: dict, batch_id: str, at: datetime) -> None:
        """A new lot of the part: its batch ids change (rows of the part_batch_ids child table)."""
        part["batch_ids"] = [*part["batch_ids"], batch_id]
        self.touch(part, at)

    # --- CARs ------------------------------------------------------------------------------------------
    def _make_cars(self) -> None:
        raised: list[tuple[datetime, int | None]] = []
        for ncr in self.ncrs:
            # Corrective action is raised for the NCRs worth a root-cause investigation.
            if self.rng.random() < 0.3:
                opened = datetime.fromisoformat(ncr["created_at"]).replace(tzinfo=UTC) + timedelta(
                    hours=self.rng.randint(1, 72)
                )
                if opened <= self.now:
                    raised.append((opened, ncr["id"]))
        # CARs from audits and reviews, with no NCR behind them.
        for week in range(self.history_days // 7 + 1):
            opened = self.now - timedelta(days=min(self.history_days, 7 * week + self.rng.uniform(0, 7)))
            raised.append((opened.replace(microsecond=0), None))
        raised.sort(key=lambda item: (item[0], item[1] or 0))
        for sequence, (opened, ncr_id) in enumerate(raised, start=1):
            updated = min(self.now, opened + timedelta(days=self.rng.uniform(0, 20)))
            self.cars.append(
                {
                    "id": 701 + sequence - 1,
                    "car_number": f"CAR-{sequence:04d}",
                    "ncr_id": ncr_id,
                    "created_at": format_timestamp(opened),
                    "updated_at": format_timestamp(updated),
                }
            )
