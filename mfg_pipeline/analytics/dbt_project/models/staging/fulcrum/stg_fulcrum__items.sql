select
    plant,
    id as item_id,
    number as item_number,
    description as item_description,
    unit_of_measure_name,
    coalesce(is_archived, false) as is_archived
from {{ loaded('fulcrum', 'items') }}
