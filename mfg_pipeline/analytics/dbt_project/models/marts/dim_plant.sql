-- The plants the warehouse holds: var `plants` (name -> time zone), which the pipeline passes from the plants
-- file; one plant of the environment without it.
select plant, timezone
from (
    values
    {%- for name, zone in plant_zones().items() %}
        ('{{ name }}', '{{ zone }}'){{ "," if not loop.last }}
    {%- endfor %}
) as plants (plant, timezone)
