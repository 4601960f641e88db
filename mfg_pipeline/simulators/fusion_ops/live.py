"""Live mode for the Fusion Operations simulator: a shop floor that keeps changing while the simulator serves.

`LiveShop(simulator, interval_seconds, seed)` makes one random mutation every interval on a daemon thread
(`start()`/`stop()`, or `with LiveShop(...):`), or one at a time with `step()`. Mostly it creates records at the
wall clock's "now" (productions, punch clocks, downtimes, now and then a production order); sometimes it updates
or deletes one of the records it made itself; now and then it reprices a catalog product (`update_product`) or
moves one's stock (`set_stock`, up into today's lot or down from the oldest lots). Every mutation goes through the
simulator's public methods, so it lands in the lists, in `change_log` and on the changes-feed channels like any
other change.

The sequence of choices (what to do, to which of its records, with which worker/machine/quantity) depends only on
`seed` and the dataset it starts from; the timestamps are the wall clock's.
"""

from __future__ import annotations

import random
from typing import Any

from mfg_pipeline.simulators.fusion_ops.app import Change, FusionOpsSimulator
from mfg_pipeline.simulators.fusion_ops.data import DOWNTIME_TYPES
from mfg_pipeline.simulators.live import LiveMutator, Mutations

# (action, weight): mostly creates, some updates, a few deletes.
ACTIONS = [
    ("create_production", 30),
    ("create_punch_clock", 20),
    ("create_downtime", 12),
    ("create_production_order", 3),
    ("update_production", 12),
    ("update_downtime", 6),
    ("update_punch_clock", 4),
    ("update_production_order", 3),
    ("delete_production", 4),
    ("delete_downtime", 3),
    ("delete_punch_clock", 3),
    ("update_product", 2),
    ("set_stock", 2),  # on the dataset's live catalog products
]
DATA_KIND = {"production": "production", "downtime": "downtime", "punch_clock": "punch", "production_order": "order"}
RECENT = 10  # updates and deletes pick among the last this many live records of a kind the shop made


class FusionMutations(Mutations):
    """Changes to existing records for the refresh tests and benchmarks (the live shop mostly creates)."""

    app: FusionOpsSimulator

    def _orders(self, active: bool) -> list[Any]:
        return [o for o in self.app.data.production_orders if not o.deleted and o.body["active"] == active]

    def edit_old(self) -> Any:
        """An active order makes progress (it may complete), or an old production's quantity is corrected."""
        data = self.app.data
        with self.app.lock:
            orders = self._orders(active=True)
            if orders and self.rng.random() < 0.6:
                order = self.rng.choice(orders[: max(1, len(orders) // 2)])
                line = order.body["products"][0]
                produced = line["quantity-produced"] + self.rng.randint(20, max(21, int(line["quantity-ordered"])))
                self.app.update_production_order(int(order.id), quantity_produced={line["product"]: produced})
                return order.id
            live = [p for p in data.productions if not p.deleted]
            production = self.rng.choice(live[: max(1, len(live) // 2)])
            self.app.update_production(int(production.id), quantity=self.rng.randint(1, 120))
            return production.id

    def change_child(self) -> Any:
        """An order gets another machine (its machines list, a child table, changes)."""
        with self.app.lock:
            orders = self._orders(active=True)
            if not orders:
                return None
            order = self.rng.choice(orders)
            machine = self.rng.choice(self.app.data.machines)["code"]
            order.body["machines"] = [*order.body["machines"], {"code": machine}]
            self.app._changed("PRODUCTION_ORDER", order, "update")
            return order.id

    def create(self) -> Any:
        product = self.rng.choice(self.app.data.catalog.products).code
        return self.app.create_production_order(products={product: self.rng.randrange(50, 500, 50)})

    def delete(self) -> Any:
        orders = self._orders(active=True)
        if not orders:
            return None
        order = self.rng.choice(orders)
        self.app.delete_production_order(int(order.id))
        return order.id


class LiveShop(LiveMutator):
    """The Fusion live shop: mostly new records at the wall clock's now (productions, punches, downtimes), some
    updates and deletes of its own records, product repricing and stock moves (see the module docstring)."""

    def __init__(self, simulator: FusionOpsSimulator, interval_seconds: float = 2.0, seed: int = 0):
        super().__init__(FusionMutations(simulator, seed), interval_seconds)
        self.simulator = simulator
        self.rng = random.Random(seed)
        # ids this shop created and has not deleted, per kind, oldest first
        self.made: dict[str, list[int]] = {"production": [], "downtime": [], "punch_clock": [], "production_order": []}

    # --- one mutation ------------------------------------------------------------------------------------
    def step(self) -> Change:
        """Make one random mutation now and return its `Change`."""
        names, weights = zip(*ACTIONS, strict=True)
        action = self.rng.choices(names, weights=weights)[0]
        verb, kind = action.split("_", 1)
        sim = self.simulator
        with sim.lock:
            if kind in self.made:
                self.made[kind] = [i for i in self.made[kind] if self._alive(kind, i)]  # others may have deleted some
                if verb != "create" and not self.made[kind]:
                    verb, action = "create", "create_" + kind  # nothing of ours to touch yet: make one instead
            elif not self._products():
                action = "create_production"  # every catalog product deleted (by others): nothing to touch
            getattr(self, "_" + action)()
            return sim.change_log[-1]

    def _alive(self, kind: str, record_id: int) -> bool:
        try:
            self.simulator.data.find(DATA_KIND[kind], record_id)
        except KeyError:
            return False
        return True

    def _recent(self, kind: str) -> int:
        return self.rng.choice(self.made[kind][-RECENT:])

    def _products(self) -> list[str]:
        """Codes of the catalog products still live in the dataset, in catalog order."""
        data = self.simulator.data
        return [p.code for p in data.catalog.products if p.code in data.products and not data.products[p.code].deleted]

    def _worker(self) -> int:
        return int(self.rng.choice(self.simulator.data.workers)["number"])

    def _machine(self) -> str:
        return self.rng.choice(self.simulator.data.machines)["code"]

    def _create_production(self) -> None:
        worker, machine = self._worker(), self._machine()
        quantity = self.rng.randint(1, 60)
        duration = self.rng.randint(5, 90) * 60
        self.made["production"].append(
            self.simulator.create_production(
                worker=worker, machine=machine, quantity=quantity, duration_seconds=duration
            )
        )

    def _create_punch_clock(self) -> None:
        worker, kind = self._worker(), self.rng.choice([0, 1])
        self.made["punch_clock"].append(self.simulator.create_punch_clock(worker=worker, kind=kind))

    def _create_downtime(self) -> None:
        machine, cause = self._machine(), self.rng.choice(DOWNTIME_TYPES)
        worker, duration = self._worker(), self.rng.randint(1, 45) * 60
        self.made["downtime"].append(
            self.simulator.create_downtime(
                machine=machine, downtime_type=cause, worker=worker, duration_seconds=duration
            )
        )

    def _create_production_order(self) -> None:
        products = self.simulator.data.catalog.products
        product = self.rng.choice(products).code
        quantity = self.rng.randrange(50, 500, 50)
        self.made["production_order"].append(self.simulator.create_production_order(products={product: quantity}))

    def _update_production(self) -> None:
        target, quantity = self._recent("production"), self.rng.randint(1, 80)
        self.simulator.update_production(target, quantity=quantity)

    def _update_downtime(self) -> None:
        target, cause = self._recent("downtime"), self.rng.choice(DOWNTIME_TYPES)
        self.simulator.update_downtime(target, downtime_type=cause)

    def _update_punch_clock(self) -> None:
        target = self._recent("punch_clock")
        current = self.simulator.data.find("punch", target).body["type"]
        self.simulator.update_punch_clock(target, kind=1 - current)

    def _update_production_order(self) -> None:
        target = self._recent("production_order")
        line = self.simulator.data.find("order", target).body["products"][0]
        produced = line["quantity-produced"] + self.rng.randint(5, 50)
        self.simulator.update_production_order(target, quantity_produced={line["product"]: produced})

    def _update_product(self) -> None:
        code = self.rng.choice(self._products())
        price = self.simulator.data.products[code].body["unit-price"] or 10.0
        self.simulator.update_product(code, unit_price=round(price * self.rng.uniform(0.95, 1.08), 2))

    def _set_stock(self) -> None:
        code = self.rng.choice(self._products())
        current = self.simulator.data.stock[code].body["stock"]
        self.simulator.set_stock(code, max(0.0, current + self.rng.randint(-60, 120)))

    def _delete(self, kind: str) -> None:
        target = self._recent(kind)
        self.made[kind].remove(target)
        getattr(self.simulator, "delete_" + kind)(target)

    def _delete_production(self) -> None:
        self._delete("production")

    def _delete_downtime(self) -> None:
        self._delete("downtime")

    def _delete_punch_clock(self) -> None:
        self._delete("punch_clock")
