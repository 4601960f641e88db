select
    plant,
    production_order_id,
    position,
    worker_number
from {{ loaded('fusion_ops', 'production_order_workers') }}
