-- Grain: one product on one plant-local production date (the date each production started).
-- scrap_rate = waste units / (good + waste units).
select
    plant,
    product_code,
    production_date,
    cast(date_trunc('month', production_date) as date) as month_start,
    count(*) as productions,
    sum(good_quantity) as good_quantity,
    sum(waste_quantity) as waste_quantity,
    sum(total_quantity) as total_quantity,
    case when sum(total_quantity) > 0 then sum(waste_quantity) / sum(total_quantity) end as scrap_rate
from {{ ref('fct_production') }}
group by plant, product_code, production_date
