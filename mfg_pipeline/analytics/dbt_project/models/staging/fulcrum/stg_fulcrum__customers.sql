select
    plant,
    id as customer_id,
    customer_code,
    name as customer_name,
    upper(nullif(trim(currency_code), '')) as currency_code,
    {{ to_money('credit_limit') }} as credit_limit,
    is_taxable
from {{ loaded('fulcrum', 'customers') }}
