{# The plant's time zone: the one whose midnights bound the pipeline's daily partitions. #}
{% macro plant_timezone() -%}
    {{ env_var('MFG_PARTITION_TIMEZONE', 'UTC') }}
{%- endmacro %}

{# A TIMESTAMPTZ as a plain TIMESTAMP in UTC (what the marts and their Parquet carry). #}
{% macro to_utc(column) -%}
    timezone('UTC', {{ column }})
{%- endmacro %}

{# The plant-local calendar date of a TIMESTAMPTZ. #}
{% macro plant_date(column) -%}
    cast(timezone('{{ plant_timezone() }}', {{ column }}) as date)
{%- endmacro %}

{# A plant-local wall-clock TIMESTAMP (e.g. a date plus a shift's start time) as a plain TIMESTAMP in UTC. #}
{% macro plant_wall_clock_to_utc(column) -%}
    timezone('UTC', timezone('{{ plant_timezone() }}', {{ column }}))
{%- endmacro %}

{# Money: vendors send floats; the marts carry exact cents. #}
{% macro to_money(column) -%}
    cast(round({{ column }}, 2) as decimal(18, 2))
{%- endmacro %}

{# The plant-local calendar date of a plain TIMESTAMP in UTC. #}
{% macro utc_to_plant_date(column) -%}
    cast(timezone('{{ plant_timezone() }}', timezone('UTC', {{ column }})) as date)
{%- endmacro %}
