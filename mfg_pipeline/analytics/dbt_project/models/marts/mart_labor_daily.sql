-- Grain: one worker on one plant-local date (the date each shift started). Hours are closed shifts only; open and
-- broken shifts are counted beside them so they are never silently lost.
select
    plant,
    shift_date,
    any_value(month_start) as month_start,
    worker_number,
    any_value(worker_name) as worker_name,
    coalesce(sum(hours), 0) as hours_worked,
    count(*) filter (where shift_status = 'closed') as closed_shifts,
    count(*) filter (where shift_status = 'open') as open_shifts,
    count(*) filter (where shift_status in ('missing_in', 'missing_out')) as broken_shifts
from {{ ref('fct_labor_shift') }}
group by plant, shift_date, worker_number
