select
    plant,
    production_id,
    position,
    waste_code,
    waste_description,
    flaw,
    quantity as waste_quantity,
    recoverable,
    billable
from {{ loaded('fusion_ops', 'production_waste') }}
