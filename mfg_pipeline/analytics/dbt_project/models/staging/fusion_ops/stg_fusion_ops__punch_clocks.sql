select
    plant,
    id as punch_id,
    {{ to_utc('punched_at') }} as punched_at_utc,
    {{ plant_date('punched_at') }} as punch_date,
    worker_number,
    direction
from {{ loaded('fusion_ops', 'punch_clocks') }}
