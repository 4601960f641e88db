"""Live mode for the Lagerkoll simulator: orders start, produce into batches and finish; old orders get edited;
new orders are planned; now and then one is deleted."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from mfg_pipeline.simulators.lagerkoll.app import LagerkollSimulator
from mfg_pipeline.simulators.lagerkoll.data import DEVELOPING, FINISHED, NEW, epoch_ms
from mfg_pipeline.simulators.live import Mutations


class LagerkollMutations(Mutations):
    app: LagerkollSimulator

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.app._clock(), tz=timezone.utc)

    def _pick(self, *states: int, oldest_share: float = 1.0) -> dict | None:
        orders = [o for o in self.app.data.orders if o["state"] in states]
        if not orders:
            return None
        return self.rng.choice(orders[: max(1, int(len(orders) * oldest_share))])

    def edit_old(self) -> Any:
        """An open order moves on (starts, or finishes), or an old closed one gets its comment edited."""
        with self.app.data_lock:
            order = self._pick(NEW, DEVELOPING)
            if order is None or self.rng.random() < 0.3:
                order = self._pick(FINISHED, oldest_share=0.5)
                if order is None:
                    return None
                order["comment"] = f"Reviewed {self._now():%Y-%m-%d %H:%M}"
                return order["orderId"]
            at = epoch_ms(self._now())
            self.app.data.change_state(order, DEVELOPING if order["state"] == NEW else FINISHED, at)
            return order["orderId"]

    def change_child(self) -> Any:
        """Output booked on a running order: a batch entry, and the order's finished amounts with it."""
        with self.app.data_lock:
            order = self._pick(DEVELOPING) or self._pick(NEW)
            if order is None:
                return None
            self.app.data.book_output(order, good=self.rng.randint(5, 40), waste=self.rng.randint(0, 2), at=self._now())
            return order["orderId"]

    def create(self) -> Any:
        with self.app.data_lock:
            return self.app.data.new_order(self._now().astimezone(self.app.data.tz).date())["orderId"]

    def delete(self) -> Any:
        with self.app.data_lock:
            order = self._pick(NEW)
            if order is None:
                return None
            self.app.data.remove(order["orderId"])
            return order["orderId"]
