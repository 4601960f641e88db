-- Customers, from Fulcrum (the system that invoices them).
select
    plant,
    customer_id,
    customer_code,
    customer_name,
    currency_code,
    credit_limit,
    is_taxable
from {{ ref('stg_fulcrum__customers') }}
