-- Which record in which system is which product. The part number is the shared key: Fusion Operations product
-- code, Fulcrum item number, Lagerkoll article id, ISOlocity part identification, Traede product item number.
-- Codes seen only on transactions (a production's product, an order line) are listed too, so every fact's
-- product has a row here.
with keyed as (
    select plant, 'fusion_ops' as source_system, 'products' as source_table, product_code as source_id,
        product_code as source_code, product_name as source_name,
        'Fusion Operations product code (the reference part number)' as match_method
    from {{ ref('stg_fusion_ops__products') }}

    union all
    select distinct plant, 'fusion_ops', 'productions', product_code, product_code, null,
        'product code on a production record'
    from {{ ref('stg_fusion_ops__productions') }}
    where product_code is not null
        and (plant, product_code) not in (select (plant, product_code) from {{ ref('stg_fusion_ops__products') }})

    union all
    select distinct plant, 'fusion_ops', 'production_order_products', product_code, product_code, null,
        'product code on a production order'
    from {{ ref('stg_fusion_ops__production_order_products') }}
    where product_code is not null
        and (plant, product_code) not in (select (plant, product_code) from {{ ref('stg_fusion_ops__products') }})
        and (plant, product_code) not in (
            select (plant, product_code) from {{ ref('stg_fusion_ops__productions') }} where product_code is not null
        )

    union all
    select plant, 'fulcrum', 'items', item_id, item_number, item_description, 'Fulcrum item number = part number'
    from {{ ref('stg_fulcrum__items') }}

    union all
    select plant, 'lagerkoll', 'production_order_articles', article_id, article_id, any_value(article_name),
        'Lagerkoll article id = part number'
    from {{ ref('stg_lagerkoll__production_order_articles') }}
    where article_id is not null
    group by plant, article_id

    union all
    select plant, 'isolocity', 'parts', cast(part_id as varchar), identification, part_name,
        'ISOlocity part identification = part number'
    from {{ ref('stg_isolocity__parts') }}

    union all
    select plant, 'traede', 'products', cast(product_id as varchar), any_value(product_item_number), any_value(product_name),
        'Traede product item number = part number'
    from {{ ref('stg_traede__production_order_lines') }}
    where product_id is not null
    group by plant, product_id

    union all
    select plant, 'traede', 'variants', cast(variant_id as varchar), any_value(product_item_number),
        any_value(coalesce(variant_name, product_name)),
        'Traede variant of a product: its product item number = part number'
    from {{ ref('stg_traede__production_order_lines') }}
    where variant_id is not null
    group by plant, variant_id
)

select
    plant,
    source_system,
    source_table,
    source_id,
    source_code,
    source_name,
    source_code as product_code,
    case when source_code is null then 'unmatched: the record has no part number' else match_method end
        as match_method,
    source_code is not null as is_matched
from keyed
