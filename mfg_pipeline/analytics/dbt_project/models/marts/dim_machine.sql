-- One row per machine code seen in Fusion Operations (productions, downtimes, production orders); the name is the
-- one downtimes carry.
with codes as (
    select plant, machine_code, null as machine_name from {{ ref('stg_fusion_ops__productions') }}
    union all select plant, machine_code, machine_name from {{ ref('stg_fusion_ops__downtime_machines') }}
    union all select plant, machine_code, null from {{ ref('stg_fusion_ops__production_order_machines') }}
)

select plant, machine_code, max(machine_name) as machine_name
from codes
where machine_code is not null
group by plant, machine_code
