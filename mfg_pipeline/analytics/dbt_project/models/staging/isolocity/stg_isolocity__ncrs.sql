select
    plant,
    id as ncr_id,
    ncr_number,
    status,
    source as ncr_source,
    part_id,
    quantity as nonconforming_quantity,
    lot_number,
    {{ to_utc('created_at') }} as created_at_utc,
    {{ plant_date('created_at') }} as created_date
from {{ loaded('isolocity', 'ncrs') }}
