"""Live mode for the Traede simulator: open orders receive goods (their lines change) and close, drafts are
confirmed, notes are edited, new orders are placed. Every change moves the order's `updated_at`, so the export
brings it back. (Traede's export reports no deletions, so none are made here.)"""

from __future__ import annotations

from typing import Any

from mfg_pipeline.simulators.live import Mutations
from mfg_pipeline.simulators.traede.app import TraedeSimulator


class TraedeMutations(Mutations):
    app: TraedeSimulator
    weights = {"edit_old": 50, "change_child": 25, "create": 25}

    def edit_old(self) -> Any:
        data = self.app.data
        with self.app.data_lock, self.app._state_lock:
            drafts = data.orders_with_status("draft")
            if drafts and self.rng.random() < 0.4:
                order = self.rng.choice(drafts)
                data.confirm(order.id, self.app.clock())
            else:
                order = self.rng.choice(data.orders)
                data.edit_notes(
                    order.id,
                    self.rng.choice(["Rush order", "Ship on pallets", "Call before delivery"]),
                    self.app.clock(),
                )
            return order.id

    def change_child(self) -> Any:
        data = self.app.data
        with self.app.data_lock, self.app._state_lock:
            orders = data.orders_with_status("open")
            if not orders:
                return None
            order = self.rng.choice(orders)
            data.receive_goods(order.id, self.app.clock(), share=self.rng.choice([0.5, 1.0]))
            return order.id

    def create(self) -> Any:
        with self.app.data_lock, self.app._state_lock:
            return self.app.data.new_order(self.app.clock()).id

    def delete(self) -> Any:
        return None  # the export API reports no deletions
