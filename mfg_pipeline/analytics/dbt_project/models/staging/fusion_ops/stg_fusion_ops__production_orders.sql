select
    plant,
    id as production_order_id,
    code as production_order_code,
    description,
    {{ to_utc('start_date') }} as start_at_utc,
    {{ to_utc('due_date') }} as due_at_utc,
    {{ plant_date('due_date') }} as due_date,
    status,
    running_status,
    active as is_active,
    ended as is_ended
from {{ loaded('fusion_ops', 'production_orders') }}
