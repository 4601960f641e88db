-- Grain: one machine stopped by one Fusion Operations downtime (a downtime that stops two machines is two rows;
-- one that names no machine is one row without a machine). The duration is the vendor's time-spent, else end
-- minus start; an open downtime has no duration yet.
select
    d.plant,
    d.downtime_id,
    m.machine_code,
    d.downtime_type,
    d.started_at_utc,
    d.ended_at_utc,
    d.downtime_date,
    cast(date_trunc('month', d.downtime_date) as date) as month_start,
    coalesce(d.time_spent_seconds, epoch(d.ended_at_utc - d.started_at_utc)) as duration_seconds,
    coalesce(d.time_spent_seconds, epoch(d.ended_at_utc - d.started_at_utc)) / 60.0 as duration_minutes,
    d.ended_at_utc is null and d.time_spent_seconds is null as is_open,
    d.product_code
from {{ ref('stg_fusion_ops__downtimes') }} as d
left join {{ ref('stg_fusion_ops__downtime_machines') }} as m using (plant, downtime_id)
