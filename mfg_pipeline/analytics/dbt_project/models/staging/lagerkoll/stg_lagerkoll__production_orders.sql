select
    plant,
    order_id,
    pr_reference,
    name as order_name,
    {{ to_utc('start_date') }} as start_at_utc,
    {{ to_utc('end_date') }} as end_at_utc,
    {{ plant_date('end_date') }} as end_date,
    {{ to_utc('finish_date') }} as finished_at_utc,
    state,
    state_name,
    total_amount,
    finished_amount
from {{ loaded('lagerkoll', 'production_orders') }}
