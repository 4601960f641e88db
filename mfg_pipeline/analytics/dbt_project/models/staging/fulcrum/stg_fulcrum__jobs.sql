select
    plant,
    id as job_id,
    number as job_number,
    name as job_name,
    status,
    parent_item_id,
    quantity_to_make,
    {{ to_utc('production_due_date') }} as production_due_at_utc,
    {{ plant_date('production_due_date') }} as production_due_date,
    {{ to_utc('created_utc') }} as created_at_utc
from {{ loaded('fulcrum', 'jobs') }}
