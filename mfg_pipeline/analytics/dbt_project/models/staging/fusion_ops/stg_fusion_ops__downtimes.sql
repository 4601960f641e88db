select
    plant,
    id as downtime_id,
    {{ to_utc('start_time') }} as started_at_utc,
    {{ to_utc('end_time') }} as ended_at_utc,
    {{ plant_date('start_time') }} as downtime_date,
    time_spent_seconds,
    coalesce(nullif(trim(downtime_type), ''), 'Unspecified') as downtime_type,
    product_code,
    started_by_worker_number,
    closed_by_worker_number
from {{ loaded('fusion_ops', 'downtimes') }}
