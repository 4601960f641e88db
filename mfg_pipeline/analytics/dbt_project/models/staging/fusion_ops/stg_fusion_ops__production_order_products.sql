select
    plant,
    production_order_id,
    position,
    product_code,
    quantity_ordered,
    quantity_produced
from {{ loaded('fusion_ops', 'production_order_products') }}
