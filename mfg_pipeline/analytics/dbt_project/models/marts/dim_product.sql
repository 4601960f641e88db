-- One row per part number, across the five systems (int_product_key_map says which id in which system it is). The
-- name comes from the first system that has one, in the order Fusion Operations, Fulcrum, Lagerkoll, ISOlocity,
-- Traede; unit and prices from Fusion Operations.
with ranked as (
    select
        plant,
        product_code,
        source_system,
        source_name,
        case source_system
            when 'fusion_ops' then 1 when 'fulcrum' then 2 when 'lagerkoll' then 3 when 'isolocity' then 4 else 5
        end as preference
    from {{ ref('int_product_key_map') }}
    where product_code is not null
),

products as (
    select
        plant,
        product_code,
        arg_min(source_name, preference) filter (where source_name is not null) as product_name,
        string_agg(distinct source_system, ', ' order by source_system) as source_systems,
        count(distinct source_system) as source_system_count
    from ranked
    group by plant, product_code
)

select
    p.plant,
    p.product_code,
    p.product_name,
    f.unit_of_measure,
    f.unit_cost,
    f.unit_price,
    p.source_systems,
    p.source_system_count,
    f.product_code is not null as in_fusion_ops_catalog
from products as p
left join {{ ref('stg_fusion_ops__products') }} as f using (plant, product_code)
