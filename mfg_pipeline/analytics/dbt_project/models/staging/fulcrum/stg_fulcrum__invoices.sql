select
    plant,
    id as invoice_id,
    number as invoice_number,
    {{ to_utc('issue_date') }} as issued_at_utc,
    {{ plant_date('issue_date') }} as issue_date,
    {{ plant_date('due_date') }} as due_date,
    status,
    customer_id,
    {{ to_money('subtotal') }} as subtotal,
    {{ to_money('total') }} as total
from {{ loaded('fulcrum', 'invoices') }}
