-- Grain: one customer, one plant-local month of the issue date, one currency. Invoiced revenue: invoices whose
-- status counts as revenue (fct_invoice.is_revenue); drafts and invoices Fulcrum flags deleted are excluded.
-- Net is before tax (subtotal), gross includes it (total). Exact DECIMAL sums.
select
    f.plant,
    f.customer_id,
    c.customer_name,
    f.month_start,
    f.currency_code,
    count(*) as invoices,
    cast(sum(f.subtotal) as decimal(18, 2)) as net_revenue,
    cast(sum(f.tax) as decimal(18, 2)) as tax,
    cast(sum(f.total) as decimal(18, 2)) as gross_revenue
from {{ ref('fct_invoice') }} as f
left join {{ ref('dim_customer') }} as c using (plant, customer_id)
where f.is_revenue
group by f.plant, f.customer_id, c.customer_name, f.month_start, f.currency_code
