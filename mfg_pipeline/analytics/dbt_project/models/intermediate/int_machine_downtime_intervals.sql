-- Each machine's stopped time as non-overlapping intervals: the downtimes of a machine merged where they overlap,
-- so time is never counted twice. A downtime without an end lasts its time-spent, or until now while open.
with spans as (
    select
        d.plant,
        m.machine_code,
        d.started_at_utc as span_start,
        coalesce(
            d.ended_at_utc,
            d.started_at_utc + to_seconds(d.time_spent_seconds),
            timezone('UTC', now())
        ) as span_end
    from {{ ref('stg_fusion_ops__downtimes') }} as d
    join {{ ref('stg_fusion_ops__downtime_machines') }} as m using (plant, downtime_id)
    where m.machine_code is not null
),

ordered as (
    select
        *,
        max(span_end) over (
            partition by plant, machine_code order by span_start, span_end
            rows between unbounded preceding and 1 preceding
        ) as earlier_end
    from spans
    where span_end > span_start
),

islands as (
    select
        *,
        sum(case when earlier_end is null or span_start > earlier_end then 1 else 0 end) over (
            partition by plant, machine_code order by span_start, span_end rows unbounded preceding
        ) as island
    from ordered
)

select
    plant,
    machine_code,
    min(span_start) as interval_start_utc,
    max(span_end) as interval_end_utc
from islands
group by plant, machine_code, island
