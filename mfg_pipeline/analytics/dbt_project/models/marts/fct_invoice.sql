-- Grain: one Fulcrum invoice (invoices Fulcrum flags deleted are already left out). Fulcrum invoices carry no
-- currency: it is the customer's. is_revenue: the status is one of var('revenue_invoice_statuses') (issued, paid).
select
    i.plant,
    i.invoice_id,
    i.invoice_number,
    i.customer_id,
    i.issued_at_utc,
    i.issue_date,
    cast(date_trunc('month', i.issue_date) as date) as month_start,
    i.due_date,
    i.status,
    i.status in (
        {%- for status in var('revenue_invoice_statuses') %}'{{ status }}'{{ ", " if not loop.last }}{% endfor -%}
    ) as is_revenue,
    c.currency_code,
    i.subtotal,
    i.total,
    cast(i.total - i.subtotal as decimal(18, 2)) as tax
from {{ ref('stg_fulcrum__invoices') }} as i
left join {{ ref('stg_fulcrum__customers') }} as c using (plant, customer_id)
