-- Grain: one machine on one shift date that had output or stopped during planned time.
--   planned time      = the shift calendar's shifts of that date (reference.shift_calendar);
--   downtime          = the machine's merged downtime intervals inside those shifts;
--   run time          = planned time - downtime;
--   availability      = run time / planned time;
--   performance       = ideal time of the output (planned seconds per unit x good and waste units) / run time;
--                       NULL when a production of the day has no planned cycle time in its product's routing;
--   quality           = good units / (good + waste units);
--   oee               = availability x performance x quality.
-- Output counts for the shift it started in (fct_production.shift_date).
with downtime as (
    select
        i.plant,
        i.machine_code,
        w.shift_date,
        sum(epoch(least(i.interval_end_utc, w.window_end_utc) - greatest(i.interval_start_utc, w.window_start_utc)))
            as downtime_seconds
    from {{ ref('int_machine_downtime_intervals') }} as i
    join {{ ref('int_shift_windows') }} as w
        on i.plant = w.plant and i.interval_start_utc < w.window_end_utc and i.interval_end_utc > w.window_start_utc
    group by i.plant, i.machine_code, w.shift_date
),

output as (
    select
        plant,
        machine_code,
        shift_date,
        count(*) as productions,
        sum(good_quantity) as good_quantity,
        sum(waste_quantity) as waste_quantity,
        sum(total_quantity) as total_quantity,
        sum(ideal_seconds) as ideal_seconds,
        count(*) filter (where ideal_seconds_per_unit is null) as productions_without_cycle_time
    from {{ ref('fct_production') }}
    where machine_code is not null
    group by plant, machine_code, shift_date
),

planned as (
    select plant, shift_date, sum(planned_seconds) as planned_seconds
    from {{ ref('int_shift_windows') }}
    group by plant, shift_date
),

machine_days as (
    select plant, machine_code, shift_date from output
    union
    select plant, machine_code, shift_date from downtime
),

measured as (
    select
        md.plant,
        md.machine_code,
        md.shift_date,
        coalesce(p.planned_seconds, 0) as planned_seconds,
        coalesce(d.downtime_seconds, 0) as downtime_seconds,
        greatest(coalesce(p.planned_seconds, 0) - coalesce(d.downtime_seconds, 0), 0) as run_seconds,
        coalesce(o.productions, 0) as productions,
        coalesce(o.good_quantity, 0) as good_quantity,
        coalesce(o.waste_quantity, 0) as waste_quantity,
        coalesce(o.total_quantity, 0) as total_quantity,
        coalesce(o.ideal_seconds, 0) as ideal_seconds,
        coalesce(o.productions_without_cycle_time, 0) as productions_without_cycle_time
    from machine_days as md
    left join planned as p using (plant, shift_date)
    left join downtime as d using (plant, machine_code, shift_date)
    left join output as o using (plant, machine_code, shift_date)
)

select
    *,
    cast(date_trunc('month', shift_date) as date) as month_start,
    case when planned_seconds > 0 then run_seconds / planned_seconds end as availability,
    case when run_seconds > 0 and productions_without_cycle_time = 0 then ideal_seconds / run_seconds end
        as performance,
    case when total_quantity > 0 then good_quantity / total_quantity end as quality,
    (case when planned_seconds > 0 then run_seconds / planned_seconds end)
    * (case when run_seconds > 0 and productions_without_cycle_time = 0 then ideal_seconds / run_seconds end)
    * (case when total_quantity > 0 then good_quantity / total_quantity end) as oee
from measured
