"""Live mode for the Fulcrum simulator: jobs move through their statuses and complete operations (a change only
the operations list shows), invoices get paid, voided or an extra line; new jobs are created; now and then a
draft job is deleted."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from mfg_pipeline.simulators.fulcrum.app import FulcrumSimulator
from mfg_pipeline.simulators.fulcrum.data import FulcrumRecord
from mfg_pipeline.simulators.live import Mutations

NEXT_STATUS = {
    "draft": "needsReview",
    "needsReview": "approved",
    "approved": "scheduled",
    "scheduled": "inProgress",
    "engineering": "scheduled",
    "inProgress": "complete",
    "hold": "inProgress",
}


class FulcrumMutations(Mutations):
    app: FulcrumSimulator

    def _jobs(self, *statuses: str) -> list[FulcrumRecord]:
        return [j for j in self.app.data.jobs if j.body["status"] in statuses]

    def edit_old(self) -> Any:
        """An open job moves to its next status, or an issued invoice gets paid."""
        data = self.app.data
        with self.app.data_lock:
            if self.rng.random() < 0.3:
                issued = [i for i in data.invoices if i.body["status"] == "issued"]
                if issued:
                    invoice = self.rng.choice(issued[: max(1, len(issued) // 2)])
                    data.set_invoice_status(invoice, "paid")
                    return invoice.id
            jobs = self._jobs(*NEXT_STATUS)
            if not jobs:
                return None
            job = self.rng.choice(jobs[: max(1, len(jobs) // 2)])  # the older half: not only today's
            data.set_job_status(job, NEXT_STATUS[job.body["status"]])
            return job.id

    def change_child(self) -> Any:
        """A running job's next operation completed: only its operations list changes."""
        with self.app.data_lock:
            jobs = self._jobs("inProgress", "scheduled")
            for job in self.rng.sample(jobs, k=len(jobs)):
                if self.app.data.complete_next_operation(job):
                    return job.id
            return None

    def create(self) -> Any:
        data = self.app.data
        with self.app.data_lock:
            product = self.rng.choice(data.catalog.products)
            return data.new_job(product, self.rng.randrange(50, 500, 10), datetime.now(timezone.utc)).id

    def delete(self) -> Any:
        with self.app.data_lock:
            drafts = self._jobs("draft", "needsReview")
            if not drafts:
                return None
            job = self.rng.choice(drafts)
            self.app.data.remove_job(job)
            return job.id
