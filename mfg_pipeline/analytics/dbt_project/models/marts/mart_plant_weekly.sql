-- Plant against plant, per plant-local ISO week (starting Monday): OEE, scrap rate, downtime hours and NCR rate.
-- Each figure is a ratio of the week's sums, not an average of daily ratios, so a short day weighs what it holds.
with output as (
    select
        plant,
        cast(date_trunc('week', production_date) as date) as week_start,
        sum(good_quantity) as good_quantity,
        sum(waste_quantity) as waste_quantity,
        sum(total_quantity) as total_quantity
    from {{ ref('fct_production') }}
    group by all
),

machine_time as (
    select
        plant,
        cast(date_trunc('week', shift_date) as date) as week_start,
        sum(planned_seconds) as planned_seconds,
        sum(run_seconds) as run_seconds,
        -- Performance only over machine-days whose every production has a cycle time (as mart_oee_daily).
        sum(ideal_seconds) filter (where productions_without_cycle_time = 0) as ideal_seconds,
        sum(run_seconds) filter (where productions_without_cycle_time = 0) as timed_run_seconds
    from {{ ref('mart_oee_daily') }}
    group by all
),

downtime as (
    select
        plant,
        cast(date_trunc('week', downtime_date) as date) as week_start,
        sum(duration_seconds) / 3600.0 as downtime_hours
    from {{ ref('fct_downtime') }}
    group by all
),

ncrs as (
    select plant, cast(date_trunc('week', created_date) as date) as week_start, count(*) as ncrs
    from {{ ref('stg_isolocity__ncrs') }}
    where created_date is not null
    group by all
),

weeks as (
    select plant, week_start from output
    union select plant, week_start from machine_time
    union select plant, week_start from downtime
    union select plant, week_start from ncrs
),

measured as (
    select
        w.plant,
        w.week_start,
        coalesce(m.planned_seconds, 0) as planned_seconds,
        coalesce(m.run_seconds, 0) as run_seconds,
        coalesce(o.good_quantity, 0) as good_quantity,
        coalesce(o.waste_quantity, 0) as waste_quantity,
        coalesce(o.total_quantity, 0) as total_quantity,
        coalesce(d.downtime_hours, 0) as downtime_hours,
        coalesce(n.ncrs, 0) as ncrs,
        case when m.planned_seconds > 0 then m.run_seconds / m.planned_seconds end as availability,
        case when m.timed_run_seconds > 0 then m.ideal_seconds / m.timed_run_seconds end as performance,
        case when o.total_quantity > 0 then o.good_quantity / o.total_quantity end as quality
    from weeks as w
    left join output as o using (plant, week_start)
    left join machine_time as m using (plant, week_start)
    left join downtime as d using (plant, week_start)
    left join ncrs as n using (plant, week_start)
)

select
    *,
    availability * performance * quality as oee,
    case when total_quantity > 0 then waste_quantity / total_quantity end as scrap_rate,
    case when total_quantity > 0 then ncrs * 1000.0 / total_quantity end as ncrs_per_1000_units
from measured
