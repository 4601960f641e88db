{# The plants the warehouse holds, name -> time zone (the zone whose midnights bound its daily partitions): var
   `plants`, which the pipeline passes from the plants file; without it the one plant of the environment. #}
{% macro plant_zones() -%}
    {%- set one = {(env_var('MFG_PLANT', '') or 'default'): (env_var('MFG_PARTITION_TIMEZONE', '') or 'UTC')} -%}
    {{ return(var('plants', one)) }}
{%- endmacro %}

{# A row's plant's time zone, as an SQL expression over its plant column (a literal when there is one plant). #}
{% macro plant_timezone(plant='plant') -%}
    {%- set zones = plant_zones() -%}
    {%- if zones | length == 1 -%}
        '{{ zones.values() | first }}'
    {%- else -%}
        case {{ plant }}{% for name, zone in zones.items() %} when '{{ name }}' then '{{ zone }}'{% endfor %} end
    {%- endif -%}
{%- endmacro %}

{# A TIMESTAMPTZ as a plain TIMESTAMP in UTC (what the marts and their Parquet carry). #}
{% macro to_utc(column) -%}
    timezone('UTC', {{ column }})
{%- endmacro %}

{# The plant-local calendar date of a TIMESTAMPTZ (`plant`: the row's plant column). #}
{% macro plant_date(column, plant='plant') -%}
    cast(timezone({{ plant_timezone(plant) }}, {{ column }}) as date)
{%- endmacro %}

{# A plant-local wall-clock TIMESTAMP (e.g. a date plus a shift's start time) as a plain TIMESTAMP in UTC. #}
{% macro plant_wall_clock_to_utc(column, plant='plant') -%}
    timezone('UTC', timezone({{ plant_timezone(plant) }}, {{ column }}))
{%- endmacro %}

{# Money: vendors send floats; the marts carry exact cents. #}
{% macro to_money(column) -%}
    cast(round({{ column }}, 2) as decimal(18, 2))
{%- endmacro %}

{# The plant-local calendar date of a plain TIMESTAMP in UTC. #}
{% macro utc_to_plant_date(column, plant='plant') -%}
    cast(timezone({{ plant_timezone(plant) }}, timezone('UTC', {{ column }})) as date)
{%- endmacro %}

{# Each plant's planned shifts (seed shift_calendar): its own rows, or the `*` rows when it has none. #}
{% macro plant_shift_calendar() -%}
    (
        select p.plant, c.iso_weekday, c.shift_name, c.start_time, c.hours
        from {{ ref('dim_plant') }} as p
        join {{ ref('shift_calendar') }} as c
            on c.plant = p.plant
            or (c.plant = '*' and not exists (select 1 from {{ ref('shift_calendar') }} as o where o.plant = p.plant))
    )
{%- endmacro %}
