select
    production_order_id,
    position,
    worker_number
from {{ source('fusion_ops', 'production_order_workers') }}
