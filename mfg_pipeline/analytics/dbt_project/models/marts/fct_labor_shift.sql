-- Grain: one shift of one worker: a punch in and the worker's next punch, if that is a punch out. Pairs are made
-- over every punch the warehouse holds, so a shift across midnight or across two daily partitions is one row.
-- Nothing is dropped: a punch in with no punch after it is an open shift ('open'), a punch in followed by another
-- punch in is 'missing_out', a punch out with no punch in before it is 'missing_in'; only 'closed' shifts have
-- hours. A shift counts for the plant-local date it started on (shift_date).
with punches as (
    select
        plant,
        punch_id,
        worker_number,
        punched_at_utc,
        direction,
        lead(direction) over worker_punches as next_direction,
        lead(punched_at_utc) over worker_punches as next_punched_at_utc,
        lead(punch_id) over worker_punches as next_punch_id,
        lag(direction) over worker_punches as previous_direction
    from {{ ref('stg_fusion_ops__punch_clocks') }}
    where worker_number is not null and direction in ('in', 'out')
    window worker_punches as (partition by plant, worker_number order by punched_at_utc, punch_id)
),

shifts as (
    select
        plant,
        punch_id as shift_id,
        worker_number,
        punched_at_utc as clock_in_at_utc,
        case when next_direction = 'out' then next_punched_at_utc end as clock_out_at_utc,
        case when next_direction = 'out' then next_punch_id end as clock_out_punch_id,
        case
            when next_direction = 'out' then 'closed'
            when next_direction = 'in' then 'missing_out'
            else 'open'
        end as shift_status
    from punches
    where direction = 'in'

    union all

    select plant, punch_id, worker_number, null, punched_at_utc, punch_id, 'missing_in'
    from punches
    where direction = 'out' and coalesce(previous_direction, 'out') = 'out'
),

dated as (
    select *, {{ utc_to_plant_date('coalesce(clock_in_at_utc, clock_out_at_utc)') }} as shift_date
    from shifts
)

select
    s.plant,
    s.shift_id,
    s.worker_number,
    w.worker_name,
    s.clock_in_at_utc,
    s.clock_out_at_utc,
    s.clock_out_punch_id,
    s.shift_date,
    cast(date_trunc('month', s.shift_date) as date) as month_start,
    s.shift_status,
    case when s.shift_status = 'closed' then epoch(s.clock_out_at_utc - s.clock_in_at_utc) / 3600.0 end as hours
from dated as s
left join {{ ref('dim_worker') }} as w using (plant, worker_number)
