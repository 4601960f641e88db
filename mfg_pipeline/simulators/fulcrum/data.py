"""A deterministic Fulcrum Pro shop for the Fulcrum simulator: customers, sales orders, jobs with their items to
make and routing operations, and invoices with line items.

The same (seed, scale, now, history_days) always gives the same records, so tests know exactly what must land.
Records are kept in the API's own JSON shape (`body`, field names as in the doc's response models) plus the
parsed instant the list filters compare against.

Shop conventions (the doc leaves them open):
- Ids are 24 random hex characters; items to make, operations, line items and sales order lines use 36-character
  UUIDs. Neither encodes time, so a client cannot page by id. The 24-character ids come from a stream of their
  own, the same for every seed: two simulated companies (plants) hold the same ids for different records.
- A job's `name` is the part number it makes (catalog product code); `parentItemId` is that part's item id
  (`item_ids`). Invoice part lines carry the part number as `name` and the product name as `description`.
- Jobs of one sales order are created together, so several jobs share one `createdUtc`; every day one sales
  order's jobs are created exactly at UTC midnight, the partition boundary.
- Jobs still `draft`/`needsReview` have no operations yet (the doc's note on `hasIncompleteOperations`).
- Each operation's `customFields.lotNumber` is the lot its item to make belongs to: the plant's local day of the
  item's first scheduled operation (`catalog.lot_number`), so Fulcrum work joins Fusion productions.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from mfg_pipeline.simulators.catalog import PLANT_TIMEZONE, Product, build_catalog, lot_number

UTC = timezone.utc
JOB_STATUSES = (
    "draft",
    "needsReview",
    "approved",
    "engineering",
    "scheduled",
    "inProgress",
    "complete",
    "cancelled",
    "hold",
)
INVOICE_STATUSES = ("new", "needsApproval", "approved", "issued", "paid")
SALES_ORDER_STATUSES = ("draft", "needsApproval", "approved", "inProgress", "complete")
PRIORITIES = ("low", "moderate", "high")
# Jobs in these statuses have no operations until approved.
UNAPPROVED_JOB_STATUSES = frozenset({"draft", "needsReview"})
# The doc shows only "new" (item to make) and "pending" (operation) in its samples; the rest are our choice.
ITEM_TO_MAKE_STATUSES = ("new", "inProgress", "complete")
OPERATION_STATUSES = ("pending", "inProgress", "complete")
OUTSIDE_PROCESSING_OPERATIONS = frozenset({"PAINT"})  # sent to a coater
VAT_RATE = 0.19
# Where each catalog customer bills from (by catalog position): city, postal code, country.
_BILLING_CITIES = [
    ("Oslo", "0150", "NO"),
    ("Munich", "80331", "DE"),
    ("Bilbao", "48001", "ES"),
    ("Vilnius", "01103", "LT"),
    ("Basel", "4051", "CH"),
    ("Cork", "T12 X70A", "IE"),
    ("Bergen", "5003", "NO"),
    ("Gyor", "9021", "HU"),
]


def format_utc(moment: datetime) -> str:
    """The doc's timestamp shape: 2019-08-24T14:15:22Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FulcrumRecord:
    """A record as the API returns it, with the instant its filters and ordering use."""

    id: str
    body: dict
    created: datetime | None = None  # job createdUtc, sales order orderedDate, invoice issueDate; UTC-aware

    @property
    def created_at(self) -> datetime:
        """`created`, for the records that always have one (jobs, sales orders, invoices)."""
        if self.created is None:
            raise ValueError(f"record {self.id} has no creation time")
        return self.created


@dataclass
class FulcrumDataset:
    seed: int = 42
    scale: int = 1
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    history_days: int = 42
    plant_timezone: str = PLANT_TIMEZONE  # only for the production day a lot number names

    def __post_init__(self) -> None:
        self.now = self.now.astimezone(UTC).replace(microsecond=0)
        self.plant_tz = ZoneInfo(self.plant_timezone)
        self.rng = random.Random(self.seed)
        self.id_rng = random.Random("fulcrum-ids")  # not seeded: every company's ids overlap (see the docstring)
        self.catalog = build_catalog()
        self._issued_ids: set[str] = set()
        # Reference data the records point at (endpoints for these are outside this simulator).
        self.company_info_id = self.new_id()
        self.payment_terms_ids = {"Net 30": self.new_id(), "Net 60": self.new_id()}
        self.sales_person_ids = [self.new_id() for _ in range(3)]
        self.accounting_code_ids = {"sales": self.new_id(), "freight": self.new_id()}
        self.tax_rate_id = self.new_id()
        self.item_ids = {p.code: self.new_id() for p in self.catalog.products}
        # The parts this shop makes: its item number is the catalog product code (the key every system shares).
        self.items = [
            FulcrumRecord(
                self.item_ids[p.code],
                {
                    "id": self.item_ids[p.code],
                    "number": p.code,
                    "description": p.name,
                    "revision": "A",
                    "itemOrigin": "make",
                    "unitTypeName": "Pieces",
                    "unitOfMeasureName": "Piece",
                    "isSellable": True,
                    "isArchived": False,
                },
            )
            for p in self.catalog.products
        ]
        self.system_operation_ids = {op: self.new_id() for op in self._all_operations()}
        self.equipment_ids = {op: self.new_id() for op in self._all_operations()}

        self.customers: list[FulcrumRecord] = []
        self.billing_addresses: dict[str, dict] = {}  # customer id -> address
        self.sales_orders: list[FulcrumRecord] = []
        # Sales order lines are not served here; jobs and invoice lines point at their ids. Internal shape:
        # {"id", "partNumber", "itemId", "quantity", "price", "discountedPrice"}.
        self.sales_order_lines: dict[str, list[dict]] = {}
        self.jobs: list[FulcrumRecord] = []
        self.items_to_make: dict[str, list[FulcrumRecord]] = {}  # job id -> its items to make
        self.operations: dict[str, list[FulcrumRecord]] = {}  # item to make id -> its operations, in order
        self.invoices: list[FulcrumRecord] = []
        self.invoice_line_items: dict[str, list[FulcrumRecord]] = {}  # invoice id -> its line items

        self.job_index: dict[str, FulcrumRecord] = {}
        self.invoice_index: dict[str, FulcrumRecord] = {}

        self._make_customers()
        first_day = self.now.date() - timedelta(days=self.history_days)
        day = first_day
        while day <= self.now.date():
            self._make_day(day)
            day += timedelta(days=1)
        self._number_and_order()

    # --- ids -------------------------------------------------------------------------------------------
    def new_id(self) -> str:
        """A 24-character id, unique in the dataset."""
        while True:
            self.rng.getrandbits(96)  # still drawn, so a seed's records are what they were before plants
            value = f"{self.id_rng.getrandbits(96):024x}"
            if value not in self._issued_ids:
                self._issued_ids.add(value)
                return value

    def new_line_id(self) -> str:
        """A 36-character id (items to make, operations, line items)."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _all_operations(self) -> list[str]:
        return sorted({op for p in self.catalog.products for op in p.operations})

    # --- lookups tests use -----------------------------------------------------------------------------
    def job(self, job_id: str) -> FulcrumRecord:
        return next(j for j in self.jobs if j.id == job_id)

    def job_has_incomplete_operations(self, job_id: str) -> bool:
        return any(
            op.body["status"] != "complete" for item in self.items_to_make[job_id] for op in self.operations[item.id]
        )

    # --- generation ------------------------------------------------------------------------------------
    def _make_customers(self) -> None:
        for index, party in enumerate(self.catalog.customers):
            customer_id = self.new_id()
            city, postal_code, country = _BILLING_CITIES[index % len(_BILLING_CITIES)]
            taxable = country == "DE"  # domestic sales carry VAT; exports do not
            self.billing_addresses[customer_id] = {
                "name": "Billing",
                "address1": f"{self.rng.randint(1, 200)} Industrial Road",
                "address2": None,
                "address3": None,
                "city": city,
                "stateProvince": None,
                "postalCode": postal_code,
                "country": country,
            }
            body: dict[str, Any] = {
                "id": customer_id,
                "name": party.name,
                "customerCode": party.code,
                "currencyCode": "EUR",
                "creditLimit": float(self.rng.choice([25_000, 50_000, 100_000])),
                "paymentTermsId": self.payment_terms_ids[self.rng.choice(["Net 30", "Net 60"])],
                "salesPersonId": self.rng.choice(self.sales_person_ids),
                "isTaxable": taxable,
                "taxRateIds": [self.tax_rate_id] if taxable else [],
                "externalReferences": {
                    "erp": {
                        "type": "customer",
                        "externalId": f"ERP-{party.code}",
                        "displayId": party.code,
                        "status": "synced",
                        "modifiedUtc": None,
                    }
                },
                "customFields": {},
                "notes": "",
            }
            self.customers.append(FulcrumRecord(customer_id, body))

    def _make_day(self, day: date) -> None:
        midnight = datetime.combine(day, time(0, 0), tzinfo=UTC)
        # One sales order a day whose jobs are created exactly on the UTC midnight partition boundary.
        self._add_sales_order(midnight - timedelta(minutes=self.rng.randint(30, 600)), jobs_created=midnight)
        if day.weekday() >= 5:
            return
        for _ in range(3 * self.scale):
            ordered = midnight + timedelta(seconds=self.rng.randint(6 * 3600, 18 * 3600))
            self._add_sales_order(ordered, ordered + timedelta(seconds=self.rng.randint(300, 4 * 3600)))
        for _ in range(self.rng.randint(1, 3) * self.scale):  # make-to-stock jobs, no sales order
            created = midnight + timedelta(seconds=self.rng.randint(0, 24 * 3600 - 1))
            product = self.rng.choice(self.catalog.products)
            if created > self.now:
                continue
            self._add_job(product, self.rng.randrange(50, 500, 10), created, sales_order=None, line=None)

    def _add_sales_order(self, ordered: datetime, jobs_created: datetime) -> None:
        if ordered > self.now:
            return
        customer = self.rng.choice(self.customers)
        order_id = self.new_id()
        discount_rate = self.rng.choice([0.0, 0.0, 0.0, 0.05])
        lines: list[dict[str, Any]] = []
        for product in self.rng.sample(self.catalog.products, k=self.rng.choice([1, 1, 2, 3])):
            price = product.unit_price
            lines.append(
                {
                    "id": self.new_line_id(),
                    "partNumber": product.code,
                    "itemId": self.item_ids[product.code],
                    "quantity": self.rng.randrange(20, 400, 10),
                    "price": price,
                    "discountedPrice": round(price * (1 - discount_rate), 2),
                }
            )
        subtotal = round(sum(line["quantity"] * line["discountedPrice"] for line in lines), 2)
        body: dict[str, Any] = {
            "id": order_id,
            "number": 0,  # numbered in creation order once all are made
            "orderedDate": format_utc(ordered),
            "status": "draft",
            "customerPoNumber": f"PO-{customer.body['customerCode']}-{self.rng.randint(10_000, 99_999)}",
            "externalReferences": {},
            "externalQuoteUrl": (
                f"https://crm.example.com/quotes/Q{self.rng.randint(1000, 9999)}" if self.rng.random() < 0.3 else None
            ),
            "customerId": customer.id,
            "deliveryDueDate": format_utc(ordered + timedelta(days=self.rng.randint(14, 35))),
            "billingAddress": dict(self.billing_addresses[customer.id]),
            "paymentTermsId": customer.body["paymentTermsId"],
            "discount": round(sum(line["quantity"] * (line["price"] - line["discountedPrice"]) for line in lines), 2),
            "subtotal": subtotal,
            "salesPersonId": customer.body["salesPersonId"],
            "publicNote": "",
            "customFields": {},
            "deleted": False,
            "priority": self.rng.choice(PRIORITIES),
            "companyId": self.company_info_id,
        }
        order = FulcrumRecord(order_id, body, ordered)
        self.sales_orders.append(order)
        self.sales_order_lines[order_id] = lines
        jobs = []
        if jobs_created <= self.now:
            for line in lines:
                jobs.append(
                    self._add_job(
                        self.catalog.product(line["partNumber"]),
                        line["quantity"],
                        jobs_created,
                        sales_order=order,
                        line=line,
                    )
                )
        self._settle_sales_order(order, jobs)

    def _job_status(self, created: datetime) -> str:
        age_days = (self.now - created).total_seconds() / 86400
        roll = self.rng.random()
        if age_days > 12:
            return "complete" if roll < 0.9 else ("cancelled" if roll < 0.95 else "hold")
        if age_days > 5:
            return "inProgress" if roll < 0.6 else ("complete" if roll < 0.9 else "hold")
        if age_days > 2:
            return self.rng.choice(["approved", "engineering", "scheduled", "inProgress"])
        return self.rng.choice(["draft", "needsReview", "approved"])

    def _add_job(
        self, product: Product, quantity: int, created: datetime, sales_order: FulcrumRecord | None, line: dict | None
    ) -> FulcrumRecord:
        job_id = self.new_id()
        status = self._job_status(created)
        body: dict[str, Any] = {
            "id": job_id,
            "number": 0,  # numbered in creation order once all are made
            "name": product.code,
            "status": status,
            "priority": sales_order.body["priority"] if sales_order else "low",
            "parentItemId": self.item_ids[product.code],
            "quantityToMake": quantity,
            "productionDueDate": format_utc(created + timedelta(days=self.rng.randint(7, 21))),
            "salesOrderId": sales_order.id if sales_order else None,
            "salesOrderLineItemId": line["id"] if line else None,
            "createdUtc": format_utc(created),
        }
        job = FulcrumRecord(job_id, body, created)
        self.jobs.append(job)
        products = [product]
        if self.rng.random() < 0.25:  # a component made on the same job
            products.append(self.rng.choice([p for p in self.catalog.products if p.code != product.code]))
        self.items_to_make[job_id] = [self._add_item_to_make(job, p, quantity, status) for p in products]
        return job

    def _add_item_to_make(self, job: FulcrumRecord, product: Product, quantity: int, job_status: str) -> FulcrumRecord:
        item_id = self.new_line_id()
        routing = product.operations
        if job_status in UNAPPROVED_JOB_STATUSES:
            done = None  # no operations yet
        elif job_status == "complete":
            done = len(routing)
        elif job_status == "inProgress":
            done = self.rng.randint(1, len(routing) - 1)
        elif job_status in ("cancelled", "hold"):
            done = self.rng.randint(0, len(routing) - 1)
        else:
            done = 0
        operations = []
        if done is not None:
            start = job.created_at + timedelta(days=self.rng.randint(1, 3), hours=self.rng.randint(0, 8))
            lot = lot_number(product.code, start.astimezone(self.plant_tz).date())
            running = job_status == "inProgress"
            for order, name in enumerate(routing, start=1):
                end = start + timedelta(hours=self.rng.randint(2, 8))
                status = "complete" if order <= done else ("inProgress" if running and order == done + 1 else "pending")
                body: dict[str, Any] = {
                    "id": self.new_line_id(),
                    "status": status,
                    "order": order,
                    "systemOperationId": self.system_operation_ids[name],
                    "isOutsideProcessing": name in OUTSIDE_PROCESSING_OPERATIONS,
                    "scheduledStartUtc": format_utc(start),
                    "scheduledEndUtc": format_utc(end),
                    "scheduledEquipmentId": self.equipment_ids[name],
                    "customFields": {"lotNumber": lot},
                    "instructions": f"{name} {product.code} per drawing rev {self.rng.choice('ABC')}",
                    "name": name,
                }
                operations.append(FulcrumRecord(body["id"], body, start))
                start = end + timedelta(hours=self.rng.randint(0, 4))
        self.operations[item_id] = operations
        steps = len(routing)
        finished = done or 0
        if finished == steps:
            made, status = quantity, "complete"
        elif finished > 0 or any(op.body["status"] == "inProgress" for op in operations):
            made, status = quantity * finished // steps, "inProgress"
        else:
            made, status = 0, "new"
        body = {
            "id": item_id,
            "itemId": self.item_ids[product.code],
            "quantityToMake": quantity,
            "isCustom": False,
            "status": status,
            "quantityMade": made,
        }
        return FulcrumRecord(item_id, body, job.created)

    def _settle_sales_order(self, order: FulcrumRecord, jobs: list[FulcrumRecord]) -> None:
        """Status from its jobs; a finished order is invoiced some days after its jobs were made."""
        live = [j for j in jobs if j.body["status"] != "cancelled"]
        if not jobs:
            order.body["status"] = self.rng.choice(["draft", "needsApproval"])
            return
        if live and all(j.body["status"] == "complete" for j in live):
            order.body["status"] = "complete"
        elif any(j.body["status"] in ("inProgress", "complete", "hold") for j in live):
            order.body["status"] = "inProgress"
        else:
            order.body["status"] = "approved"
        if order.body["status"] == "complete":
            issued = jobs[0].created_at + timedelta(days=self.rng.randint(6, 16), hours=self.rng.randint(0, 9))
            if issued <= self.now:
                invoiced_lines = {j.body["salesOrderLineItemId"] for j in live}
                self._add_invoice(
                    order, [line for line in self.sales_order_lines[order.id] if line["id"] in invoiced_lines], issued
                )

    def _add_invoice(self, order: FulcrumRecord, lines: list[dict], issued: datetime) -> None:
        invoice_id = self.new_id()
        customer = next(c for c in self.customers if c.id == order.body["customerId"])
        taxable = customer.body["isTaxable"]
        items = []

        def add_line(
            kind: str,
            quantity: float,
            price: float,
            discounted: float,
            name: str,
            description: str,
            accounting_code: str | None,
            is_taxable: bool,
            sales_order_line: str | None,
        ) -> None:
            body: dict[str, Any] = {
                "id": self.new_line_id(),
                "type": kind,
                "quantity": quantity,
                "price": price,
                "discountedPrice": discounted,
                "subtotal": round(quantity * price, 2),
                "discountedSubtotal": round(quantity * discounted, 2),
                "name": name,
                "description": description,
                "accountingCodeId": accounting_code,
                "taxCodeId": self.tax_rate_id if is_taxable else None,
                "salesOrderLineItemId": sales_order_line,
                "externalReferences": {},
                "isTaxable": is_taxable,
            }
            items.append(FulcrumRecord(body["id"], body, issued))

        for line in lines:
            product = self.catalog.product(line["partNumber"])
            add_line(
                "part",
                line["quantity"],
                line["price"],
                line["discountedPrice"],
                product.code,
                product.name,
                self.accounting_code_ids["sales"],
                taxable,
                line["id"],
            )
        if self.rng.random() < 0.6:
            freight = float(self.rng.randrange(25, 120, 5))
            add_line(
                "fee",
                1,
                freight,
                freight,
                "Freight",
                "Freight and packing",
                self.accounting_code_ids["freight"],
                taxable,
                None,
            )
        subtotal = round(sum(i.body["discountedSubtotal"] for i in items), 2)
        tax = 0.0
        if taxable:
            tax = round(sum(i.body["discountedSubtotal"] for i in items if i.body["isTaxable"]) * VAT_RATE, 2)
            add_line("tax", 1, tax, tax, f"VAT {VAT_RATE:.0%}", "Value added tax", None, False, None)
        age_days = (self.now - issued).total_seconds() / 86400
        if age_days > 35:
            status = "paid"
        elif age_days > 10:
            status = self.rng.choice(["issued", "paid"])
        else:
            status = self.rng.choice(INVOICE_STATUSES[:4])
        terms_days = 60 if order.body["paymentTermsId"] == self.payment_terms_ids["Net 60"] else 30
        external = {}
        if status in ("issued", "paid"):  # pushed to the accounting system once issued
            external = {
                "accounting": {
                    "type": "invoice",
                    "externalId": f"AR-{self.rng.randint(100_000, 999_999)}",
                    "displayId": None,
                    "status": status,
                    "modifiedUtc": format_utc(min(self.now, issued + timedelta(hours=2))),
                }
            }
        body: dict[str, Any] = {
            "id": invoice_id,
            "number": 0,  # numbered in issue order once all are made
            "issueDate": format_utc(issued),
            "status": status,
            "externalReferences": external,
            "customerId": customer.id,
            "paymentTermsId": order.body["paymentTermsId"],
            "companyInfoId": self.company_info_id,
            "salesOrderId": order.id,
            "customerPONumber": order.body["customerPoNumber"],
            "dueDate": format_utc(issued + timedelta(days=terms_days)),
            "total": round(subtotal + tax, 2),
            "subtotal": subtotal,
            "notesToCustomer": "Thank you for your business.",
            "billingAddress": dict(order.body["billingAddress"]),
            "customFields": {},
            "deleted": self.rng.random() < 0.03,  # voided and deleted in Fulcrum, still returned with the flag
        }
        self.invoices.append(FulcrumRecord(invoice_id, body, issued))
        self.invoice_line_items[invoice_id] = items

    def _number_and_order(self) -> None:
        """Numbers follow creation order (ties keep generation order); lists are kept in that order."""
        for records, first in ((self.sales_orders, 5001), (self.jobs, 1001), (self.invoices, 20001)):
            records.sort(key=lambda r: r.created_at)
            for number, record in enumerate(records, start=first):
                record.body["number"] = number
        self.job_index = {r.id: r for r in self.jobs}
        self.invoice_index = {r.id: r for r in self.invoices}

    # --- changes after generation (live mode, tests) -------------------------------------------------------
    def set_job_status(self, job: FulcrumRecord, status: str) -> None:
        """The job moves to `status`; completing it completes its items and operations."""
        if status not in JOB_STATUSES:
            raise ValueError(f"unknown job status {status!r}")
        job.body["status"] = status
        if status == "complete":
            for item in self.items_to_make[job.id]:
                item.body.update(status="complete", quantityMade=item.body["quantityToMake"])
                for operation in self.operations[item.id]:
                    operation.body["status"] = "complete"

    def complete_next_operation(self, job: FulcrumRecord) -> bool:
        """The job's next unfinished operation is completed; only the job's child lists change. False when there
        is none left."""
        for item in self.items_to_make[job.id]:
            for operation in self.operations[item.id]:
                if operation.body["status"] != "complete":
                    operation.body["status"] = "complete"
                    return True
        return False

    def new_job(self, product: Product, quantity: int, created: datetime) -> FulcrumRecord:
        job = self._add_job(product, quantity, created.astimezone(UTC).replace(microsecond=0), None, None)
        job.body["status"] = "draft"
        job.body["number"] = max(j.body["number"] for j in self.jobs)
        job.body["number"] += 1
        self.job_index[job.id] = job
        return job

    def remove_job(self, job: FulcrumRecord) -> None:
        self.jobs.remove(job)
        del self.job_index[job.id]

    def set_invoice_status(self, invoice: FulcrumRecord, status: str) -> None:
        if status not in INVOICE_STATUSES:
            raise ValueError(f"unknown invoice status {status!r}")
        invoice.body["status"] = status

    def void_invoice(self, invoice: FulcrumRecord) -> None:
        """Voided and deleted in Fulcrum: still listed, with `deleted` true."""
        invoice.body["deleted"] = True

    def add_invoice_line(self, invoice: FulcrumRecord, name: str, quantity: float, price: float) -> FulcrumRecord:
        """A fee line added to an invoice; its subtotal and total follow."""
        body: dict[str, Any] = {
            "id": self.new_line_id(),
            "type": "fee",
            "quantity": quantity,
            "price": price,
            "discountedPrice": price,
            "subtotal": round(quantity * price, 2),
            "discountedSubtotal": round(quantity * price, 2),
            "name": name,
            "description": name,
            "accountingCodeId": self.accounting_code_ids["freight"],
            "taxCodeId": None,
            "salesOrderLineItemId": None,
            "externalReferences": {},
            "isTaxable": False,
        }
        line = FulcrumRecord(body["id"], body, invoice.created)
        self.invoice_line_items[invoice.id].append(line)
        invoice.body["subtotal"] = round(invoice.body["subtotal"] + body["discountedSubtotal"], 2)
        invoice.body["total"] = round(invoice.body["total"] + body["discountedSubtotal"], 2)
        return line
