-- Grain: one Fusion Operations production record. Waste is summed per production before the join, so totals never
-- fan out. A production belongs to the planned shift it started in (shift_date); one started outside every
-- planned shift belongs to its calendar date.
with waste as (
    select plant, production_id, sum(waste_quantity) as waste_quantity
    from {{ ref('stg_fusion_ops__production_waste') }}
    group by plant, production_id
),

cycle as (
    -- An operation listed twice in a routing counts at its shorter planned time.
    select plant, product_code, operation_code, min(ideal_seconds_per_unit) as ideal_seconds_per_unit
    from {{ ref('stg_fusion_ops__product_operations') }}
    where not is_disabled and ideal_seconds_per_unit is not null
    group by plant, product_code, operation_code
),

shift as (
    select p.plant, p.production_id, arg_min(w.shift_date, w.window_start_utc) as shift_date,
        arg_min(w.shift_name, w.window_start_utc) as shift_name
    from {{ ref('stg_fusion_ops__productions') }} as p
    join {{ ref('int_shift_windows') }} as w
        on p.plant = w.plant and p.started_at_utc >= w.window_start_utc and p.started_at_utc < w.window_end_utc
    group by p.plant, p.production_id
)

select
    p.plant,
    p.production_id,
    p.started_at_utc,
    p.ended_at_utc,
    p.production_date,
    cast(date_trunc('month', p.production_date) as date) as month_start,
    coalesce(s.shift_date, p.production_date) as shift_date,
    s.shift_name,
    p.machine_code,
    p.worker_number,
    p.product_code,
    p.operation_code,
    p.production_order_code,
    p.lot_number,
    p.is_rework,
    p.good_quantity,
    coalesce(w.waste_quantity, 0) as waste_quantity,
    p.good_quantity + coalesce(w.waste_quantity, 0) as total_quantity,
    p.work_time_seconds,
    c.ideal_seconds_per_unit,
    c.ideal_seconds_per_unit * (p.good_quantity + coalesce(w.waste_quantity, 0)) as ideal_seconds
from {{ ref('stg_fusion_ops__productions') }} as p
left join waste as w using (plant, production_id)
left join cycle as c using (plant, product_code, operation_code)
left join shift as s using (plant, production_id)
