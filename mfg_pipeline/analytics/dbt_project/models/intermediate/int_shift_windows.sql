-- Every planned shift of every calendar day, from the shift calendar (reference.shift_calendar), as UTC instants.
-- A shift belongs to the date it starts on; a night shift runs into the next day.
select
    d.plant,
    d.date_day as shift_date,
    c.shift_name,
    {{ plant_wall_clock_to_utc('d.date_day + c.start_time', 'd.plant') }} as window_start_utc,
    {{ plant_wall_clock_to_utc('d.date_day + c.start_time', 'd.plant') }} + to_microseconds(cast(c.hours * 3600000000 as bigint))
        as window_end_utc,
    c.hours * 3600 as planned_seconds
from {{ ref('dim_date') }} as d
join {{ plant_shift_calendar() }} as c on c.plant = d.plant and c.iso_weekday = d.iso_day_of_week
