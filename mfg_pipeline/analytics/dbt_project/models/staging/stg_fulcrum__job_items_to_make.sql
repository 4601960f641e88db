select
    job_id,
    position,
    item_id,
    quantity_to_make,
    quantity_made,
    status
from {{ source('fulcrum', 'job_items_to_make') }}
