"""One plant, seen by all five simulators: products, customers, suppliers and lot numbers they share.

The vendors' systems describe the same factory, so an analyst can join a Fusion production's lot number to an
ISOlocity NCR, or a Fulcrum job's part to a Traede order line. Every simulator draws its master data from here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

# The simulated plant's time zone: its shifts, production days and lot numbers follow this calendar. The demo and
# `dev` set MFG_PARTITION_TIMEZONE to it (unless set), so partitions and the marts' dates are the plant's days.
PLANT_TIMEZONE = "Europe/Berlin"


@dataclass(frozen=True)
class Product:
    code: str  # the part number every system uses
    name: str
    unit_price: float
    operations: tuple[str, ...]  # routing, in order


@dataclass(frozen=True)
class Party:
    code: str
    name: str


_PART_NAMES = [
    "Hydraulic manifold",
    "Pump housing",
    "Drive shaft",
    "Bearing cap",
    "Mounting bracket",
    "Gear blank",
    "Valve body",
    "Flange adapter",
    "Motor end plate",
    "Coupling hub",
    "Spindle sleeve",
    "Guide rail",
    "Piston rod",
    "Cylinder head",
    "Bushing",
    "Heat sink",
    "Cable gland",
    "Pulley",
    "Base plate",
    "Cover lid",
]
_OPERATIONS = ["CUT", "TURN", "MILL", "DRILL", "DEBURR", "WELD", "PAINT", "ASSY", "INSPECT", "PACK"]
_CUSTOMER_NAMES = [
    "Nordic Hydraulics AS",
    "Alpen Antriebe GmbH",
    "Iberia Motion SA",
    "Baltic Pumps UAB",
    "Rhein Fluidtechnik AG",
    "Atlantic Marine Ltd",
    "Fjord Energy AS",
    "Danube Machines Kft",
]
_SUPPLIER_NAMES = [
    "SteelCo Metals",
    "Alu Profiles BV",
    "Precision Castings",
    "Bolt & Nut Supply",
    "Coatings Direct",
    "Polymer Parts",
]


@dataclass(frozen=True)
class Catalog:
    products: tuple[Product, ...]
    customers: tuple[Party, ...]
    suppliers: tuple[Party, ...]

    def product(self, code: str) -> Product:
        return next(p for p in self.products if p.code == code)


def build_catalog(seed: int = 7, product_count: int = 12) -> Catalog:
    rng = random.Random(f"catalog:{seed}")
    products = []
    for i in range(product_count):
        ops = sorted(rng.sample(range(len(_OPERATIONS) - 2), k=3)) + [len(_OPERATIONS) - 2]
        products.append(
            Product(
                code=f"P-{1001 + i}",
                name=f"{_PART_NAMES[i % len(_PART_NAMES)]} {chr(65 + i // len(_PART_NAMES))}",
                unit_price=round(rng.uniform(8, 450), 2),
                operations=tuple(_OPERATIONS[o] for o in ops),
            )
        )
    customers = tuple(Party(f"C-{101 + i}", n) for i, n in enumerate(_CUSTOMER_NAMES))
    suppliers = tuple(Party(f"S-{201 + i}", n) for i, n in enumerate(_SUPPLIER_NAMES))
    return Catalog(tuple(products), customers, suppliers)


def lot_number(product_code: str, day: date) -> str:
    """The lot a product's output belongs to on a given production day (one lot per product per day)."""
    return f"L{day:%y%m%d}-{product_code.removeprefix('P-')}"
