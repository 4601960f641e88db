"""Fulcrum Pro streams: jobs with their items to make and routing operations (daily partitions by `createdUtc`),
invoices with their line items, sales orders and customers (snapshots). Field names follow the response samples
in `fulcrum.txt`; the child lists are child endpoints, fetched for new and changed records only.

Freshness: the lists have status filters (jobs `statuses`, invoices and sales orders `status`), so the hourly
cycle reads only the records that can still change, whatever their creation day, and fetches by key (`jobIds`,
`numbers`, or `GET /api/invoices/{id}`) every record the warehouse holds as open that the open list no longer
returns; the daily cycle reads every list whole (soft-deleting what is gone) with every child list. The open
statuses are settings (FULCRUM_OPEN_JOB_STATUSES, ...), since which statuses can still change is a plant's call.
"""

from __future__ import annotations

from typing import Any

from mfg_pipeline.declarations import ById, ByKeysFilter, ChildEndpoint, OpenRecords, Stream, TimeWindowFilter
from mfg_pipeline.http.pagination import OffsetPaginator
from mfg_pipeline.records.schema import BOOL, FLOAT, INT, JSON, STRING, TIMESTAMP, Column, Table, child_table
from mfg_pipeline.sources.fulcrum.settings import PATH_SETTINGS

JOBS_PATH = "/api/jobs/list"
INVOICES_PATH = "/api/invoices/list"
# Keys the child endpoints add to a record for the child tables to read. The leading underscore marks them as
# ours: no Fulcrum field starts with one, so an enrichment can never shadow a vendor field.
ITEMS_TO_MAKE_KEY = "_itemsToMake"
OPERATIONS_KEY = "_operations"
LINE_ITEMS_KEY = "_lineItems"
# The child lists document no query parameters at all. Sending Skip/Take anyway is harmless to a server that
# ignores them (one page holds the whole list) and needed by one that pages them with a default Take; a page
# longer than Take is the whole list. They are short, so the largest documented Take gets each in one call, and
# they stay in Fulcrum's own order (routing order, invoice line order), which `position` records.
CHILD_LIST_TAKE = 1000


def child_list_paginator() -> OffsetPaginator:
    return OffsetPaginator(take=CHILD_LIST_TAKE, whole_list_when_longer=True)


def child_list(attach_as: str, path: str, *children: ChildEndpoint) -> ChildEndpoint:
    """A Fulcrum child list: `POST <path>` with an empty filter body, paged by Skip/Take, deduplicated by id.
    Fulcrum ids are strings: anything else in a path is a payload error, before any call."""
    return ChildEndpoint(
        attach_as,
        path,
        method="POST",
        paginator=child_list_paginator,
        body={},
        dedupe_on="id",
        children=children,
        path_types=(str,),
    )


def one_call_per(filter_name: str) -> Any:
    """Open-records requests for a filter that takes one value: one list call per open status."""
    return lambda values: [{filter_name: value} for value in values]


JOBS = Stream(
    name="jobs",
    path=JOBS_PATH,
    method="POST",
    description="Jobs (work orders) with their items to make and routing operations. Daily partitions by "
    "creation time (createdUtc); hourly, every job not yet complete or cancelled, whatever its day.",
    child_endpoints=(
        child_list(
            ITEMS_TO_MAKE_KEY,
            "/api/jobs/{id}/items-to-make/list",
            child_list(OPERATIONS_KEY, "/api/jobs/{_parent.id}/items-to-make/{id}/operations/list"),
        ),
    ),
    open_records=OpenRecords(
        column="status",
        values=("draft", "needsReview", "approved", "engineering", "scheduled", "inProgress", "hold"),
        requests=lambda values: [{"statuses": list(values)}],
        refetch=ByKeysFilter(param="jobIds", column="id", batch=500),  # the doc: jobIds takes 1..500 items
        setting="FULCRUM_OPEN_JOB_STATUSES",
    ),
    whole_list=True,  # every job in a few pages of 1000: the daily pass reads them all
    # Both filters are exclusive (the doc); the shared filter widens the window and the engine keeps only
    # start <= createdUtc < end, so a job created exactly at midnight lands in the day that midnight starts.
    # The client moves both from the query into the JSON body, where Fulcrum reads them.
    window=TimeWindowFilter("createdAfterUtc", "createdBeforeUtc", time_column="created_utc"),
    table=Table(
        name="jobs",
        primary_key=("id",),
        description="Fulcrum jobs (POST /api/jobs/list), one row per job.",
        columns=(
            Column("id", STRING, required=True),
            Column("number", INT, "number", description="Job number shown in Fulcrum."),
            Column("name", STRING, "name"),
            Column(
                "status",
                STRING,
                "status",
                description="JobStatusEnum: draft, needsReview, approved, "
                "engineering, scheduled, inProgress, complete, "
                "cancelled or hold.",
            ),
            Column("priority", STRING, "priority"),
            Column("parent_item_id", STRING, "parentItemId", description="The item the job produces."),
            Column("quantity_to_make", FLOAT, "quantityToMake"),
            Column("production_due_date", TIMESTAMP, "productionDueDate"),
            Column("sales_order_id", STRING, "salesOrderId"),
            Column("sales_order_line_item_id", STRING, "salesOrderLineItemId"),
            Column("created_utc", TIMESTAMP, "createdUtc", required=True, description="Creation time (UTC)."),
        ),
    ),
    children=(
        child_table(
            "job_items_to_make",
            ITEMS_TO_MAKE_KEY,
            [("job_id", "id", STRING)],
            description="Items to make on a job (POST /api/jobs/{jobId}/items-to-make/list).",
            columns=[
                Column("item_to_make_id", STRING, "id"),
                Column("item_id", STRING, "itemId"),
                Column("quantity_to_make", FLOAT, "quantityToMake"),
                Column("quantity_made", FLOAT, "quantityMade"),
                Column("is_custom", BOOL, "isCustom"),
                Column("status", STRING, "status"),
            ],
        ),
        child_table(
            "job_operations",
            f"{ITEMS_TO_MAKE_KEY}[].{OPERATIONS_KEY}",
            [("job_id", "id", STRING)],
            description="Routing operations of every item to make on a job "
            "(POST /api/jobs/{jobId}/items-to-make/{itemToMakeId}/operations/list).",
            columns=[
                Column("item_to_make_id", STRING, "_parent.id", description="The item to make it belongs to."),
                Column("operation_id", STRING, "id"),
                Column("operation_order", INT, "order", description="Step number in the item's routing."),
                Column("name", STRING, "name"),
                Column("status", STRING, "status"),
                Column("system_operation_id", STRING, "systemOperationId"),
                Column("is_outside_processing", BOOL, "isOutsideProcessing"),
                Column("scheduled_start_utc", TIMESTAMP, "scheduledStartUtc"),
                Column("scheduled_end_utc", TIMESTAMP, "scheduledEndUtc"),
                Column("scheduled_equipment_id", STRING, "scheduledEquipmentId"),
                Column("instructions", STRING, "instructions"),
                Column("custom_fields", JSON, "customFields", description="The operation's custom fields, as JSON."),
            ],
        ),
    ),
)

INVOICES = Stream(
    name="invoices",
    path=INVOICES_PATH,
    method="POST",
    description="Invoices with their line items (the invoice list has no date filter). Hourly: the invoices not "
    "yet paid, and those that left that set; daily: every invoice.",
    child_endpoints=(child_list(LINE_ITEMS_KEY, "/api/invoices/{id}/line-items/list"),),
    open_records=OpenRecords(
        column="status",
        values=("new", "needsApproval", "approved", "issued"),
        requests=one_call_per("status"),
        refetch=ById("/api/invoices/{id}"),
        setting="FULCRUM_OPEN_INVOICE_STATUSES",
    ),
    deleted_flag="deleted",
    table=Table(
        name="invoices",
        primary_key=("id",),
        description="Fulcrum invoices (POST /api/invoices/list), one row per invoice; deleted ones keep "
        "`deleted` = true.",
        columns=(
            Column("id", STRING, required=True),
            Column("number", INT, "number"),
            Column("issue_date", TIMESTAMP, "issueDate"),
            Column("status", STRING, "status", description="new, needsApproval, approved, issued or paid."),
            Column("customer_id", STRING, "customerId"),
            Column("sales_order_id", STRING, "salesOrderId"),
            Column("customer_po_number", STRING, "customerPONumber"),
            Column("payment_terms_id", STRING, "paymentTermsId"),
            Column("company_info_id", STRING, "companyInfoId"),
            Column("due_date", TIMESTAMP, "dueDate"),
            Column("subtotal", FLOAT, "subtotal"),
            Column("total", FLOAT, "total"),
            Column("notes_to_customer", STRING, "notesToCustomer"),
            Column("deleted", BOOL, "deleted"),
            Column("billing_address", JSON, "billingAddress", description="Billing address, as JSON."),
            Column("external_references", JSON, "externalReferences", description="As JSON."),
            Column("custom_fields", JSON, "customFields", description="As JSON."),
        ),
    ),
    children=(
        child_table(
            "invoice_line_items",
            LINE_ITEMS_KEY,
            [("invoice_id", "id", STRING)],
            description="Line items of every type on an invoice (POST /api/invoices/{invoiceId}/line-items/list).",
            columns=[
                Column("line_item_id", STRING, "id"),
                Column("line_type", STRING, "type", description="part, fee, tax, discount, shipping charge, ..."),
                Column("name", STRING, "name"),
                Column("description", STRING, "description"),
                Column("quantity", FLOAT, "quantity"),
                Column("price", FLOAT, "price"),
                Column("discounted_price", FLOAT, "discountedPrice"),
                Column("subtotal", FLOAT, "subtotal"),
                Column("discounted_subtotal", FLOAT, "discountedSubtotal"),
                Column("is_taxable", BOOL, "isTaxable"),
                Column("accounting_code_id", STRING, "accountingCodeId"),
                Column("tax_code_id", STRING, "taxCodeId"),
                Column("sales_order_line_item_id", STRING, "salesOrderLineItemId"),
                Column("external_references", JSON, "externalReferences", description="As JSON."),
            ],
        ),
    ),
)

SALES_ORDERS = Stream(
    name="sales_orders",
    path="/api/sales-orders/list",
    method="POST",
    description="Sales orders (a dimension for jobs and invoices). Hourly: the ones not yet complete, and those "
    "that left that set; daily: every sales order.",
    open_records=OpenRecords(
        column="status",
        values=("draft", "needsApproval", "approved", "inProgress"),
        requests=one_call_per("status"),
        refetch=ByKeysFilter(param="numbers", column="number", batch=500),
        setting="FULCRUM_OPEN_SALES_ORDER_STATUSES",
    ),
    deleted_flag="deleted",
    table=Table(
        name="sales_orders",
        primary_key=("id",),
        description="Fulcrum sales orders (POST /api/sales-orders/list), one row per order.",
        columns=(
            Column("id", STRING, required=True),
            Column("number", INT, "number"),
            Column("ordered_date", TIMESTAMP, "orderedDate"),
            Column("status", STRING, "status", description="draft, needsApproval, approved, inProgress or complete."),
            Column("priority", STRING, "priority"),
            Column("customer_id", STRING, "customerId"),
            Column("customer_po_number", STRING, "customerPoNumber"),
            Column("delivery_due_date", TIMESTAMP, "deliveryDueDate"),
            Column("payment_terms_id", STRING, "paymentTermsId"),
            Column("sales_person_id", STRING, "salesPersonId"),
            Column("company_id", STRING, "companyId"),
            Column("discount", FLOAT, "discount"),
            Column("subtotal", FLOAT, "subtotal"),
            Column("public_note", STRING, "publicNote"),
            Column("external_quote_url", STRING, "externalQuoteUrl"),
            Column("deleted", BOOL, "deleted"),
            Column("billing_address", JSON, "billingAddress", description="Billing address, as JSON."),
            Column("external_references", JSON, "externalReferences", description="As JSON."),
            Column("custom_fields", JSON, "customFields", description="As JSON."),
        ),
    ),
)

CUSTOMERS = Stream(
    name="customers",
    path="/api/customers/list",
    method="POST",
    description="Customers (a dimension for sales orders and invoices); the whole list every hour (no status "
    "filter, and a short list).",
    table=Table(
        name="customers",
        primary_key=("id",),
        description="Fulcrum customers (POST /api/customers/list), one row per customer.",
        columns=(
            Column("id", STRING, required=True),
            Column("name", STRING, "name"),
            Column("customer_code", STRING, "customerCode"),
            Column("currency_code", STRING, "currencyCode"),
            Column("credit_limit", FLOAT, "creditLimit"),
            Column("payment_terms_id", STRING, "paymentTermsId"),
            Column("sales_person_id", STRING, "salesPersonId"),
            Column("is_taxable", BOOL, "isTaxable"),
            Column("tax_rate_ids", JSON, "taxRateIds", description="Tax codes added to its new sales orders."),
            Column("notes", STRING, "notes"),
            Column("external_references", JSON, "externalReferences", description="As JSON."),
            Column("custom_fields", JSON, "customFields", description="As JSON."),
        ),
    ),
)

ITEMS = Stream(
    name="items",
    path=PATH_SETTINGS["items"].default,  # FULCRUM_PATH_ITEMS: a deprecated path FACTS.md does not list
    method="POST",
    description="Items (parts, materials): the dimension jobs and invoice lines point at; the whole list every "
    "hour (a short list).",
    table=Table(
        name="items",
        primary_key=("id",),
        description="Fulcrum items (POST /api/items/list), one row per item; `number` is the part number the other "
        "systems use.",
        columns=(
            Column("id", STRING, required=True),
            Column("number", STRING, "number", description="Item number (the part number)."),
            Column("description", STRING, "description"),
            Column("revision", STRING, "revision"),
            Column(
                "item_origin", STRING, "itemOrigin", description="make, buy, makeOrBuy, customerSupplied, kit or none."
            ),
            Column("unit_type_name", STRING, "unitTypeName"),
            Column("unit_of_measure_name", STRING, "unitOfMeasureName"),
            Column("is_sellable", BOOL, "isSellable"),
            Column("is_archived", BOOL, "isArchived"),
        ),
    ),
)

STREAMS = (JOBS, INVOICES, SALES_ORDERS, CUSTOMERS, ITEMS)
