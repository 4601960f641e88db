select
    plant,
    id as production_order_id,
    production_order_number,
    status,
    upper(nullif(trim(currency), '')) as currency_code,
    delivery_date,
    total_quantity,
    {{ to_money('total_price') }} as total_price,
    {{ to_utc('created_at') }} as created_at_utc
from {{ loaded('traede', 'production_orders') }}
