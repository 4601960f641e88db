-- Grain: one downtime cause in one plant-local month. Machine minutes lost (a downtime stopping two machines counts
-- twice), ranked within the month, with each cause's share and the running share of the causes ranked above it.
with by_cause as (
    select
        plant,
        month_start,
        downtime_type,
        count(distinct downtime_id) as downtimes,
        coalesce(sum(duration_minutes), 0) as machine_downtime_minutes
    from {{ ref('fct_downtime') }}
    group by plant, month_start, downtime_type
)

select
    plant,
    month_start,
    downtime_type,
    downtimes,
    machine_downtime_minutes,
    row_number() over month_ranking as pareto_rank,
    machine_downtime_minutes / nullif(sum(machine_downtime_minutes) over (partition by plant, month_start), 0)
        as share_of_month,
    sum(machine_downtime_minutes) over (month_ranking rows unbounded preceding)
    / nullif(sum(machine_downtime_minutes) over (partition by plant, month_start), 0) as cumulative_share
from by_cause
window month_ranking as (partition by plant, month_start order by machine_downtime_minutes desc, downtime_type)
