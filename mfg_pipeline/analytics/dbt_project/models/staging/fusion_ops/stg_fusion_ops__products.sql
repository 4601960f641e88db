select
    plant,
    code as product_code,
    name as product_name,
    standard_uom_code as unit_of_measure,
    {{ to_money('unit_cost') }} as unit_cost,
    {{ to_money('unit_price') }} as unit_price
from {{ loaded('fusion_ops', 'products') }}
