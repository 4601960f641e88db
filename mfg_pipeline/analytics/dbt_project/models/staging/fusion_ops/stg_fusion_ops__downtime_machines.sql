select
    plant,
    downtime_id,
    position,
    nullif(trim(machine_code), '') as machine_code,
    nullif(trim(machine_name), '') as machine_name
from {{ loaded('fusion_ops', 'downtime_machines') }}
