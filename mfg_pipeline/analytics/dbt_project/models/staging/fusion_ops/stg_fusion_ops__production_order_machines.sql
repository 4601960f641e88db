select
    plant,
    production_order_id,
    position,
    nullif(trim(machine_code), '') as machine_code
from {{ loaded('fusion_ops', 'production_order_machines') }}
