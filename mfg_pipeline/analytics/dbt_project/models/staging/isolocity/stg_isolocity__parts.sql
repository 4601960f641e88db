select
    plant,
    id as part_id,
    name as part_name,
    nullif(trim(identification), '') as identification,
    unit_of_measure
from {{ loaded('isolocity', 'parts') }}
