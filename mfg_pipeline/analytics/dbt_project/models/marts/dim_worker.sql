-- One row per worker number seen in Fusion Operations. The name is the latest one a production record carried
-- (the productions list is asked for names; the changes feed sends numbers only).
with numbers as (
    select plant, worker_number, worker_name, started_at_utc as seen_at_utc
    from {{ ref('stg_fusion_ops__productions') }}
    union all select plant, worker_number, null, punched_at_utc from {{ ref('stg_fusion_ops__punch_clocks') }}
    union all select plant, worker_number, null, null from {{ ref('stg_fusion_ops__production_order_workers') }}
    union all select plant, started_by_worker_number, null, started_at_utc from {{ ref('stg_fusion_ops__downtimes') }}
    union all select plant, closed_by_worker_number, null, started_at_utc from {{ ref('stg_fusion_ops__downtimes') }}
)

select
    plant,
    worker_number,
    arg_max(worker_name, seen_at_utc) filter (where worker_name is not null) as worker_name
from numbers
where worker_number is not null
group by plant, worker_number
