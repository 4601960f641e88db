select
    plant,
    job_id,
    position,
    item_id,
    quantity_to_make,
    quantity_made,
    status
from {{ loaded('fulcrum', 'job_items_to_make') }}
