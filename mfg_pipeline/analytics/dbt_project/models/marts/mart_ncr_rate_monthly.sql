-- Grain: one product (part number) in one plant-local month. NCRs raised that month against the product's
-- ISOlocity part (part identification = part number), against the units Fusion Operations produced of it that
-- month (good + waste, by production date). NCRs whose part has no part number are one row without a product.
with ncrs as (
    select
        n.plant,
        p.identification as product_code,
        cast(date_trunc('month', n.created_date) as date) as month_start,
        count(*) as ncrs,
        cast(coalesce(sum(n.nonconforming_quantity), 0) as bigint) as nonconforming_quantity
    from {{ ref('stg_isolocity__ncrs') }} as n
    left join {{ ref('stg_isolocity__parts') }} as p using (plant, part_id)
    group by all
),

produced as (
    select
        plant,
        product_code,
        cast(date_trunc('month', production_date) as date) as month_start,
        sum(total_quantity) as units_produced
    from {{ ref('fct_production') }}
    where product_code is not null
    group by all
)

select
    coalesce(n.plant, p.plant) as plant,
    coalesce(n.product_code, p.product_code) as product_code,
    coalesce(n.month_start, p.month_start) as month_start,
    coalesce(n.ncrs, 0) as ncrs,
    coalesce(n.nonconforming_quantity, 0) as nonconforming_quantity,
    coalesce(p.units_produced, 0) as units_produced,
    case when p.units_produced > 0 then coalesce(n.ncrs, 0) * 1000.0 / p.units_produced end as ncrs_per_1000_units
from ncrs as n
full outer join produced as p
    on n.plant = p.plant and n.product_code = p.product_code and n.month_start = p.month_start
