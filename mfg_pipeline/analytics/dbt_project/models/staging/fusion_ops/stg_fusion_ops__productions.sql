select
    plant,
    id as production_id,
    {{ to_utc('start_time') }} as started_at_utc,
    {{ to_utc('end_time') }} as ended_at_utc,
    {{ plant_date('start_time') }} as production_date,
    work_time_seconds,
    production_order_id,
    production_order_code,
    operation_code,
    product_code,
    worker_number,
    nullif(trim(worker_name), '') as worker_name,
    nullif(trim(machine_code), '') as machine_code,
    quantity as good_quantity,
    coalesce(rework, false) as is_rework,
    lot_number
from {{ loaded('fusion_ops', 'productions') }}
