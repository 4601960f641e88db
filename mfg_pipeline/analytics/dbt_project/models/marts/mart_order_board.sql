-- Grain: one order in one system: Fusion Operations production orders, Lagerkoll production orders, Fulcrum jobs
-- and Traede production orders. `state` is the shared set planned, in_progress, on_hold, completed, cancelled, from
-- the plant's editable map (seed reference.order_states); a vendor state not in it is 'unknown', its raw value
-- beside it in vendor_state, and the order_states_mapped check names it. progress = done / ordered, capped at 1.
-- The product is set when the order is for exactly one.
with fusion_quantities as (
    select
        plant,
        production_order_id,
        sum(quantity_ordered) as quantity_ordered,
        sum(quantity_produced) as quantity_done,
        case when count(distinct product_code) = 1 then any_value(product_code) end as product_code
    from {{ ref('stg_fusion_ops__production_order_products') }}
    group by plant, production_order_id
),

lagerkoll_products as (
    select plant, order_id, case when count(distinct article_id) = 1 then any_value(article_id) end as product_code
    from {{ ref('stg_lagerkoll__production_order_articles') }}
    group by plant, order_id
),

fulcrum_made as (
    select plant, job_id, sum(quantity_made) as quantity_made
    from {{ ref('stg_fulcrum__job_items_to_make') }}
    group by plant, job_id
),

traede_lines as (
    select
        plant,
        production_order_id,
        sum(received_quantity) as quantity_received,
        case when count(distinct product_item_number) = 1 then any_value(product_item_number) end as product_code
    from {{ ref('stg_traede__production_order_lines') }}
    group by plant, production_order_id
),

orders as (
    select
        o.plant,
        'fusion_ops' as source_system,
        cast(o.production_order_id as varchar) as order_id,
        o.production_order_code as order_number,
        o.description as order_name,
        q.product_code,
        o.running_status as vendor_state,
        o.running_status as state_code,
        o.due_date,
        q.quantity_ordered,
        q.quantity_done
    from {{ ref('stg_fusion_ops__production_orders') }} as o
    left join fusion_quantities as q using (plant, production_order_id)

    union all
    select
        o.plant,
        'lagerkoll',
        cast(o.order_id as varchar),
        o.pr_reference,
        o.order_name,
        a.product_code,
        coalesce(o.state_name, cast(o.state as varchar)),
        cast(o.state as varchar),
        o.end_date,
        o.total_amount,
        o.finished_amount
    from {{ ref('stg_lagerkoll__production_orders') }} as o
    left join lagerkoll_products as a using (plant, order_id)

    union all
    select
        j.plant,
        'fulcrum',
        j.job_id,
        cast(j.job_number as varchar),
        j.job_name,
        i.item_number,
        j.status,
        j.status,
        j.production_due_date,
        j.quantity_to_make,
        m.quantity_made
    from {{ ref('stg_fulcrum__jobs') }} as j
    left join fulcrum_made as m using (plant, job_id)
    left join {{ ref('stg_fulcrum__items') }} as i on i.plant = j.plant and i.item_id = j.parent_item_id

    union all
    select
        o.plant,
        'traede',
        cast(o.production_order_id as varchar),
        o.production_order_number,
        null,
        l.product_code,
        o.status,
        o.status,
        o.delivery_date,
        o.total_quantity,
        l.quantity_received
    from {{ ref('stg_traede__production_orders') }} as o
    left join traede_lines as l using (plant, production_order_id)
),

mapped as (
    select
        o.* exclude (state_code),
        coalesce(m.state, 'unknown') as state
    from orders as o
    left join {{ ref('order_states') }} as m
        on m.source_system = o.source_system and m.vendor_state = o.state_code
)

select
    plant,
    source_system || ':' || order_id as order_key,
    source_system,
    order_id,
    order_number,
    order_name,
    product_code,
    vendor_state,
    state,
    due_date,
    quantity_ordered,
    quantity_done,
    least(quantity_done / nullif(quantity_ordered, 0), 1.0) as progress,
    due_date < {{ plant_date('now()', 'plant') }} and state not in ('completed', 'cancelled') as is_overdue
from mapped
