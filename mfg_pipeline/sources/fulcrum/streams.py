"""Fulcrum Pro streams: jobs with their items to make and routing operations (daily partitions by `createdUtc`),
invoices with their line items, sales orders and customers (snapshots). Field names follow the response samples
in `fulcrum.txt`; the child arrays are the ones `FulcrumClient` adds to each job and invoice.
"""

from __future__ import annotations

from mfg_pipeline.records.schema import BOOL, FLOAT, INT, JSON, STRING, TIMESTAMP, Column, Table, child_table
from mfg_pipeline.sources.fulcrum.client import (INVOICES_PATH, ITEM_TO_MAKE_ID_KEY, ITEMS_TO_MAKE_KEY, JOBS_PATH,
                                                 LINE_ITEMS_KEY, OPERATIONS_KEY)
from mfg_pipeline.streams import Stream, TimeWindowFilter

JOBS = Stream(
    name="jobs",
    path=JOBS_PATH,
    method="POST",
    description="Jobs (work orders) with their items to make and routing operations. Daily partitions by "
                "creation time (createdUtc).",
    # Both filters are exclusive (the doc); the shared filter widens the window and the engine keeps only
    # start <= createdUtc < end, so a job created exactly at midnight lands in the day that midnight starts.
    # The client moves both from the query into the JSON body, where Fulcrum reads them.
    window=TimeWindowFilter("createdAfterUtc", "createdBeforeUtc", time_column="created_utc"),
    table=Table(
        name="jobs", primary_key=("id",),
        description="Fulcrum jobs (POST /api/jobs/list), one row per job.",
        columns=(
            Column("id", STRING, required=True),
            Column("number", INT, "number", description="Job number shown in Fulcrum."),
            Column("name", STRING, "name"),
            Column("status", STRING, "status", description="JobStatusEnum: draft, needsReview, approved, "
                                                           "engineering, scheduled, inProgress, complete, "
                                                           "cancelled or hold."),
            Column("priority", STRING, "priority"),
            Column("parent_item_id", STRING, "parentItemId", description="The item the job produces."),
            Column("quantity_to_make", FLOAT, "quantityToMake"),
            Column("production_due_date", TIMESTAMP, "productionDueDate"),
            Column("sales_order_id", STRING, "salesOrderId"),
            Column("sales_order_line_item_id", STRING, "salesOrderLineItemId"),
            Column("created_utc", TIMESTAMP, "createdUtc", required=True, description="Creation time (UTC)."),
        )),
    children=(
        child_table(
            "job_items_to_make", ITEMS_TO_MAKE_KEY, [("job_id", "id", STRING)],
            description="Items to make on a job (POST /api/jobs/{jobId}/items-to-make/list).",
            columns=[
                Column("item_to_make_id", STRING, "id"),
                Column("item_id", STRING, "itemId"),
                Column("quantity_to_make", FLOAT, "quantityToMake"),
                Column("quantity_made", FLOAT, "quantityMade"),
                Column("is_custom", BOOL, "isCustom"),
                Column("status", STRING, "status"),
            ]),
        child_table(
            "job_operations", OPERATIONS_KEY, [("job_id", "id", STRING)],
            description="Routing operations of every item to make on a job "
                        "(POST /api/jobs/{jobId}/items-to-make/{itemToMakeId}/operations/list).",
            columns=[
                Column("item_to_make_id", STRING, ITEM_TO_MAKE_ID_KEY, description="The item to make it belongs to."),
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
            ]),
    ),
)

INVOICES = Stream(
    name="invoices",
    path=INVOICES_PATH,
    method="POST",
    description="Invoices with their line items; pulled whole each run (the invoice list has no date filter).",
    table=Table(
        name="invoices", primary_key=("id",),
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
        )),
    children=(child_table(
        "invoice_line_items", LINE_ITEMS_KEY, [("invoice_id", "id", STRING)],
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
        ]),),
)

SALES_ORDERS = Stream(
    name="sales_orders",
    path="/api/sales-orders/list",
    method="POST",
    description="Sales orders (a dimension for jobs and invoices); pulled whole each run.",
    table=Table(
        name="sales_orders", primary_key=("id",),
        description="Fulcrum sales orders (POST /api/sales-orders/list), one row per order.",
        columns=(
            Column("id", STRING, required=True),
            Column("number", INT, "number"),
            Column("ordered_date", TIMESTAMP, "orderedDate"),
            Column("status", STRING, "status", description="draft, needsApproval, approved, inProgress or "
                                                           "complete."),
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
        )),
)

CUSTOMERS = Stream(
    name="customers",
    path="/api/customers/list",
    method="POST",
    description="Customers (a dimension for sales orders and invoices); pulled whole each run.",
    table=Table(
        name="customers", primary_key=("id",),
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
        )),
)

STREAMS = (JOBS, INVOICES, SALES_ORDERS, CUSTOMERS)
