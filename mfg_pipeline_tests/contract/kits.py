"""What the contract suite needs of each registered source: a simulator with fixed data, its ground truth in
warehouse terms, how to change it (an old record's status, a child list, a deletion, a new record), how to break a
page, and which credential to refuse. One kit per source; `KITS` must name every registered source.

Truth is read from the simulator's own records (never by running the pipeline's code again): per table, key ->
the values of a few columns that change, for the records the vendor still has.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from mfg_pipeline.records.schema import parse_instant
from mfg_pipeline.simulators.base import Fault, SimulatorApp
from mfg_pipeline.warehouse.store import Warehouse

UTC = timezone.utc
Truth = dict[str, dict[tuple, tuple]]  # table -> key -> compared values


def ts(value: Any, zone: Any = UTC) -> datetime | None:
    return None if value in (None, "") else parse_instant(value, zone)


def ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, tz=UTC)


@dataclass
class Change:
    """What `mutate` did, by kind, as parent keys."""

    edited: list[tuple] = field(default_factory=list)
    children: list[tuple] = field(default_factory=list)
    # Child-only changes under closed parents (no open pass lists them): the rotating child sweep's to catch.
    closed_children: list[tuple] = field(default_factory=list)
    deleted: list[tuple] = field(default_factory=list)
    created: list[tuple] = field(default_factory=list)


@dataclass(frozen=True)
class Kit:
    source: str
    columns: dict[str, tuple[str, ...]]  # table -> compared columns (key columns first)
    keys: dict[str, int]  # table -> how many leading columns form the key
    truth: Callable[[Any, set[date]], Truth]  # (app, partitions loaded) -> truth
    open_keys: Callable[[Any], set[tuple]]  # parent keys of the records that can still change
    parent: str  # the table whose records `open_keys` and `mutate` name
    mutate: Callable[[Any], Change]
    break_page: Callable[[Any], Fault]  # a fault that makes one list page malformed (a wrong-typed field)
    credential: str  # a credential variable the vendor checks
    secrets: tuple[str, ...]  # values that must never appear in logs, metadata or files
    # A source with child endpoints: the path prefix of a parent's child lists (by its key), and a settled parent
    # (one no cycle changes) with the change that deletes it.
    child_path: Callable[[tuple], str] | None = None
    vanishing: Callable[[Any], tuple[tuple, Callable[[], None]]] | None = None

    def landed(self, warehouse: Warehouse, days: set[date] | None = None, plant: str | None = None) -> Truth:
        """The same shape from the warehouse's current views (`<table>_current`), of one plant's if given."""
        out: Truth = {}
        for table, columns in self.columns.items():
            selected = ", ".join(f'"{c}"' for c in columns)
            conditions, params = [], []
            if days is not None and table in PARTITIONED.get(self.source, ()):
                conditions.append("partition_date IN (" + ", ".join(f"DATE '{d}'" for d in sorted(days)) + ")")
            if plant is not None:
                conditions.append("plant = ?")
                params.append(plant)
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            rows = warehouse.query(f"SELECT {selected} FROM {self.source}.{table}_current{where}", params)
            out[table] = {tuple(row[: self.keys[table]]): tuple(row[self.keys[table] :]) for row in rows}
        return out


# Tables partitioned by day: truth and warehouse are compared on the partitions a cycle loads.
PARTITIONED = {"fusion_ops": ("productions", "downtimes", "punch_clocks"), "fulcrum": ()}


# --- Lagerkoll -----------------------------------------------------------------------------------------------
def lagerkoll_truth(app: Any, days: set[date]) -> Truth:
    orders = app.data.orders
    batches = {}
    for order in orders:
        rows = [entry for article in app.data.batches.get(order["orderId"], []) for entry in article["batches"]]
        for position, entry in enumerate(rows):
            batches[(order["orderId"], position)] = (entry["batchId"], entry["serialNr"], entry["deliveredAmount"])
    return {
        "production_orders": {
            (o["orderId"],): (int(o["state"]), o["comment"], float(o["finishedAmount"]), ms(o["finishDate"]))
            for o in orders
        },
        "production_order_batches": batches,
    }


def lagerkoll_mutate(app: Any) -> Change:
    data, now = app.data, datetime.now(UTC)
    at = int(now.timestamp() * 1000)
    change = Change()
    old_open = next(o for o in data.orders if o["state"] == 1)  # DEVELOPING
    data.change_state(old_open, 2, at)  # finished: it leaves the open states
    change.edited.append((old_open["orderId"],))
    running = next(o for o in data.orders if o["state"] == 1 and o is not old_open)
    data.book_output(running, good=12, waste=1, at=now)  # a batch, and the order's totals
    change.children.append((running["orderId"],))
    closed = next(o for o in data.orders if o["state"] == 2 and o is not old_open)
    data.book_output(closed, good=3, waste=0, at=now, touch_order=False)  # a change only the batches show
    change.closed_children.append((closed["orderId"],))
    gone = next(o for o in data.orders if o["state"] == 0)
    data.remove(gone["orderId"])
    change.deleted.append((gone["orderId"],))
    change.created.append((data.new_order(now.date())["orderId"],))
    return change


LAGERKOLL = Kit(
    source="lagerkoll",
    columns={
        "production_orders": ("order_id", "state", "comment", "finished_amount", "finish_date"),
        "production_order_batches": ("order_id", "position", "batch_id", "serial_nr", "delivered_amount"),
    },
    keys={"production_orders": 1, "production_order_batches": 2},
    truth=lagerkoll_truth,
    open_keys=lambda app: {(o["orderId"],) for o in app.data.orders if o["state"] in (0, 1)},
    parent="production_orders",
    mutate=lagerkoll_mutate,
    break_page=lambda app: Fault(
        "/v1/production_orders/production_orders_state",
        status=200,
        body=json.dumps(
            {
                "page": 0,
                "pages": 1,
                "pageSize": 50,
                "ordersCount": 1,
                "orders": [{**app.data.orders[0], "startDate": "yesterday"}],
            }
        ),
    ),
    credential="LAGERKOLL_API_KEY",
    secrets=("demo-api-key",),
    child_path=lambda key: f"/v1/production_orders/{key[0]}/batch",
    vanishing=lambda app: (
        ((order := next(o for o in app.data.orders if o["state"] == 2))["orderId"],),
        lambda: app.data.remove(order["orderId"]),
    ),
)


# --- Fulcrum -------------------------------------------------------------------------------------------------
def fulcrum_truth(app: Any, days: set[date]) -> Truth:
    data = app.data
    operations = {}
    for job in data.jobs:
        flat = [op for item in data.items_to_make[job.id] for op in data.operations[item.id]]
        for position, op in enumerate(flat):
            operations[(job.id, position)] = (op.id, op.body["status"], op.body["instructions"])
    return {
        "jobs": {(j.id,): (j.body["status"], j.body["number"]) for j in data.jobs},
        "job_operations": operations,
        "invoices": {(i.id,): (i.body["status"], i.body["total"]) for i in data.invoices if not i.body["deleted"]},
        "invoice_line_items": {
            (i.id, position): (line.id, float(line.body["quantity"]))
            for i in data.invoices
            if not i.body["deleted"]
            for position, line in enumerate(data.invoice_line_items[i.id])
        },
    }


def fulcrum_mutate(app: Any) -> Change:
    data, now = app.data, datetime.now(UTC)
    change = Change()
    old = next(j for j in data.jobs if j.body["status"] == "inProgress")
    data.set_job_status(old, "complete")  # leaves the open statuses, whatever its creation day
    change.edited.append((old.id,))
    running = next(j for j in data.jobs if j.body["status"] == "inProgress" and data.complete_next_operation(j))
    change.children.append((running.id,))  # only its operations list shows it
    issued = [i for i in data.invoices if i.body["status"] == "issued" and not i.body["deleted"]]
    data.add_invoice_line(issued[0], "Expedite fee", 1, 45.0)
    change.children.append((issued[0].id,))
    done = next(j for j in data.jobs if j.body["status"] == "complete" and data.items_to_make[j.id])
    operation = data.operations[data.items_to_make[done.id][0].id][0]
    operation.body["instructions"] += " (corrected)"  # after the job completed: only its operations list shows it
    change.closed_children.append((done.id,))
    data.void_invoice(issued[1])  # the vendor's deletion flag: hidden from the current view
    draft = next(j for j in data.jobs if j.body["status"] in ("draft", "needsReview"))
    data.remove_job(draft)
    change.deleted.append((draft.id,))
    created = data.new_job(data.catalog.products[0], 120, now)
    change.created.append((created.id,))
    return change


FULCRUM = Kit(
    source="fulcrum",
    columns={
        "jobs": ("id", "status", "number"),
        "job_operations": ("job_id", "position", "operation_id", "status", "instructions"),
        "invoices": ("id", "status", "total"),
        "invoice_line_items": ("invoice_id", "position", "line_item_id", "quantity"),
    },
    keys={"jobs": 1, "job_operations": 2, "invoices": 1, "invoice_line_items": 2},
    truth=fulcrum_truth,
    open_keys=lambda app: {(j.id,) for j in app.data.jobs if j.body["status"] not in ("complete", "cancelled")},
    parent="jobs",
    mutate=fulcrum_mutate,
    break_page=lambda app: Fault(
        "/api/customers/list", status=200, body=json.dumps([{**app.data.customers[0].body, "creditLimit": "lots"}])
    ),
    credential="FULCRUM_API_TOKEN",
    secrets=("demo-fulcrum-token",),
    child_path=lambda key: f"/api/jobs/{key[0]}/",
    vanishing=lambda app: (
        ((job := next(j for j in app.data.jobs if j.body["status"] == "complete")).id,),
        lambda: app.data.remove_job(job),
    ),
)


# --- ISOlocity -----------------------------------------------------------------------------------------------
def isolocity_truth(app: Any, days: set[date]) -> Truth:
    data = app.data
    return {
        "ncrs": {(n["id"],): (n["status"], ts(n["updated_at"])) for n in data.ncrs},
        "part_batch_ids": {
            (p["id"], position): (batch,) for p in data.parts for position, batch in enumerate(p["batch_ids"])
        },
    }


def isolocity_mutate(app: Any) -> Change:
    data, now = app.data, datetime.now(UTC)
    change = Change()
    opened = [n for n in data.ncrs if n["status"] == "Open"]
    data.set_ncr_status(opened[0], "Closed", now)
    change.edited.append((opened[0]["id"],))
    part = data.parts[0]
    data.add_part_batch(part, "L-EXTRA-LOT", now)
    change.children.append((part["id"],))
    data.remove_ncr(opened[1])
    change.deleted.append((opened[1]["id"],))
    change.created.append((data.new_ncr(now)["id"],))
    return change


ISOLOCITY = Kit(
    source="isolocity",
    columns={"ncrs": ("id", "status", "updated_at"), "part_batch_ids": ("part_id", "position", "batch_id")},
    keys={"ncrs": 1, "part_batch_ids": 2},
    truth=isolocity_truth,
    open_keys=lambda app: {(n["id"],) for n in app.data.ncrs if n["status"] == "Open"},
    parent="ncrs",
    mutate=isolocity_mutate,
    break_page=lambda app: Fault(
        "/api/ncrs",
        status=200,
        body=json.dumps(
            {
                "status": "success",
                "message": "ok",
                "meta": {"current_page": 1, "from": 1, "to": 1, "total": 1, "per_page": 50},
                "data": [{**app.data.ncrs[0], "quantity": "several"}],
            }
        ),
    ),
    credential="ISOLOCITY_API_TOKEN",
    secrets=("demo-isolocity-token",),
)


# --- Traede --------------------------------------------------------------------------------------------------
EXPORTED = ("open", "closed")  # the pipeline's default export: drafts excluded


def traede_truth(app: Any, days: set[date]) -> Truth:
    orders = [o for o in app.data.orders if o.status in EXPORTED]
    return {
        "production_orders": {(o.id,): (o.status, o.body["notes"], ts(o.body["updated_at"])) for o in orders},
        "production_order_lines": {
            (o.id, position): (float(line["received_quantity"]),)
            for o in orders
            for position, line in enumerate(o.lines)
        },
    }


def traede_mutate(app: Any) -> Change:
    data = app.data
    change = Change()
    with app._state_lock:
        opened = [o for o in data.orders if o.status == "open"]
        old = opened[0]
        data.edit_notes(old.id, "Invoice checked", app.clock())
        change.edited.append((old.id,))
        running = opened[1]
        data.receive_goods(running.id, app.clock(), share=0.5)
        change.children.append((running.id,))
        draft = next(o for o in data.orders if o.status == "draft")
        data.confirm(draft.id, app.clock())
        change.created.append((draft.id,))
        change.created.append((data.new_order(app.clock()).id,))
    return change


TRAEDE = Kit(
    source="traede",
    columns={
        "production_orders": ("id", "status", "notes", "updated_at"),
        "production_order_lines": ("production_order_id", "position", "received_quantity"),
    },
    keys={"production_orders": 1, "production_order_lines": 2},
    truth=traede_truth,
    open_keys=lambda app: {(o.id,) for o in app.data.orders if o.status in EXPORTED},
    parent="production_orders",
    mutate=traede_mutate,
    break_page=lambda app: Fault(
        "/v10/production-orders/export",
        status=200,
        body=json.dumps({"production_orders": [{"id": "not-a-number", "status": "open"}]}),
    ),
    credential="TRAEDE_APP_KEY",
    secrets=("demo-traede-token", "demo-traede-app-key"),
)


# --- Fusion Operations ---------------------------------------------------------------------------------------
def fusion_truth(app: Any, days: set[date]) -> Truth:
    data = app.data
    zone = data.tz
    live_orders = [o for o in data.production_orders if not o.deleted]
    in_days = [p for p in data.productions if not p.deleted and p.start.astimezone(UTC).date() in days]
    return {
        "production_orders": {(o.id,): (o.body["running-status"], o.body["ended"]) for o in live_orders},
        "production_order_machines": {
            (o.id, position): (m["code"],) for o in live_orders for position, m in enumerate(o.body["machines"])
        },
        "productions": {(p.id,): (float(p.body["quantity"]), ts(p.body["start-time"], zone)) for p in in_days},
    }


def fusion_mutate(app: Any) -> Change:
    from mfg_pipeline.simulators.fusion_ops.live import FusionMutations

    mutations = FusionMutations(app, seed=11)
    change = Change()
    active = [o for o in app.data.production_orders if not o.deleted and o.body["active"]]
    line = active[0].body["products"][0]
    app.update_production_order(int(active[0].id), quantity_produced={line["product"]: line["quantity-ordered"]})
    change.edited.append((active[0].id,))  # completed: it leaves the active orders
    change.children.append((mutations.change_child(),))
    app.delete_production_order(int(active[1].id))
    change.deleted.append((active[1].id,))
    change.created.append((mutations.create(),))
    return change


FUSION = Kit(
    source="fusion_ops",
    columns={
        "production_orders": ("id", "running_status", "ended"),
        "production_order_machines": ("production_order_id", "position", "machine_code"),
        "productions": ("id", "quantity", "start_time"),
    },
    keys={"production_orders": 1, "production_order_machines": 2, "productions": 1},
    truth=fusion_truth,
    open_keys=lambda app: {(o.id,) for o in app.data.production_orders if not o.deleted and o.body["active"]},
    parent="production_orders",
    mutate=fusion_mutate,
    break_page=lambda app: Fault(
        "/api/v1/production-orders",
        status=200,
        body=json.dumps([{**app.data.production_orders[0].body, "pieces-by-box": "many"}]),
    ),
    credential="FUSION_OPS_API_SECRET",
    secrets=("demo-key", "demo-secret"),
)

KITS: dict[str, Kit] = {kit.source: kit for kit in (FUSION, LAGERKOLL, FULCRUM, ISOLOCITY, TRAEDE)}


def days_back(today: date, count: int) -> set[date]:
    return {today - timedelta(days=n) for n in range(count + 1)}


def restrict(truth: Truth, table: str, keys: set[tuple], key_width: int = 1) -> Truth:
    """Only the rows of `table` (and of tables keyed by it) whose parent key is in `keys`."""
    return {name: {k: v for k, v in rows.items() if k[:key_width] in keys} for name, rows in truth.items()}


def simulator_now(app: SimulatorApp) -> datetime:
    return app.data.now  # type: ignore[attr-defined, no-any-return]
