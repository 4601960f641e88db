select
    plant,
    production_order_id,
    position,
    product_id,
    variant_id,
    nullif(trim(product_item_number), '') as product_item_number,
    product_name,
    nullif(trim(variant_sku), '') as variant_sku,
    variant_name,
    quantity,
    received_quantity,
    {{ to_money('total_price') }} as total_price
from {{ loaded('traede', 'production_order_lines') }}
