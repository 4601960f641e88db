-- Plant-local calendar days from the first day any system has data (from 1 January of that year) to the end of
-- next year, with the planned shift hours of each day.
with data_days as (
    select min(production_date) as day from {{ ref('stg_fusion_ops__productions') }}
    union all select min(downtime_date) from {{ ref('stg_fusion_ops__downtimes') }}
    union all select min(punch_date) from {{ ref('stg_fusion_ops__punch_clocks') }}
    union all select min(issue_date) from {{ ref('stg_fulcrum__invoices') }}
    union all select min(created_date) from {{ ref('stg_isolocity__ncrs') }}
    union all select {{ plant_date('now()', 'plant') }} from {{ ref('dim_plant') }}
),

bounds as (
    select
        cast(date_trunc('year', min(day)) as date) as first_day,
        cast(date_trunc('year', max({{ plant_date('now()', 'plant') }})) + interval 2 year - interval 1 day as date) as last_day
    from data_days, {{ ref('dim_plant') }}
),

days as (
    select p.plant, cast(unnest(generate_series(first_day, last_day, interval 1 day)) as date) as date_day
    from bounds, {{ ref('dim_plant') }} as p
),

planned as (
    select plant, iso_weekday, sum(hours) as planned_hours
    from {{ plant_shift_calendar() }}
    group by plant, iso_weekday
)

select
    d.plant,
    d.date_day,
    year(d.date_day) as year,
    quarter(d.date_day) as quarter,
    cast(date_trunc('month', d.date_day) as date) as month_start,
    monthname(d.date_day) as month_name,
    isoyear(d.date_day) as iso_year,
    week(d.date_day) as iso_week,
    cast(date_trunc('week', d.date_day) as date) as week_start,
    isodow(d.date_day) as iso_day_of_week,
    dayname(d.date_day) as day_name,
    isodow(d.date_day) >= 6 as is_weekend,
    coalesce(p.planned_hours, 0) as planned_shift_hours
from days as d
left join planned as p on p.plant = d.plant and p.iso_weekday = isodow(d.date_day)
