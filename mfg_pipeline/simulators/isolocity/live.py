"""Live mode for the ISOlocity simulator: open NCRs get closed (or reopened), parts get new lots, new NCRs are
raised, and now and then an open NCR is deleted."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from mfg_pipeline.simulators.catalog import lot_number
from mfg_pipeline.simulators.isolocity.app import IsolocitySimulator
from mfg_pipeline.simulators.live import Mutations


class IsolocityMutations(Mutations):
    app: IsolocitySimulator

    def _ncrs(self, status: str) -> list[dict]:
        return [n for n in self.app.data.ncrs if n["status"] == status]

    def edit_old(self) -> Any:
        """An open NCR is closed; now and then a closed one is reopened."""
        now = datetime.now(timezone.utc)
        with self.app.data_lock:
            open_ncrs = self._ncrs("Open")
            if open_ncrs and self.rng.random() < 0.85:
                ncr, status = self.rng.choice(open_ncrs), "Closed"
            else:
                closed = self._ncrs("Closed")
                if not closed:
                    return None
                ncr, status = self.rng.choice(closed[: max(1, len(closed) // 2)]), "Open"
            self.app.data.set_ncr_status(ncr, status, now)
            return ncr["id"]

    def change_child(self) -> Any:
        """A part gets today's lot among its batch ids."""
        now = datetime.now(timezone.utc)
        data = self.app.data
        with self.app.data_lock:
            part = self.rng.choice(data.parts)
            lot = lot_number(part["identification"], now.astimezone(data.tz).date())
            if lot in part["batch_ids"]:
                return None
            data.add_part_batch(part, lot, now)
            return part["id"]

    def create(self) -> Any:
        with self.app.data_lock:
            return self.app.data.new_ncr(datetime.now(timezone.utc))["id"]

    def delete(self) -> Any:
        with self.app.data_lock:
            open_ncrs = self._ncrs("Open")
            if not open_ncrs:
                return None
            ncr = self.rng.choice(open_ncrs)
            self.app.data.remove_ncr(ncr)
            return ncr["id"]
