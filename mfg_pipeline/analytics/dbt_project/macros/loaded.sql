{#- A loaded table's current state, as `source()` names it; or, when the plant switched its stream off
    (<SOURCE>_STREAMS), an empty relation of the same columns, so every model still builds and what came from the
    table is NULL or missing (the marts' `inputs_loaded` checks say so). Var `switched_off` maps
    "<source>.<table>" to {column: type}; the pipeline passes it from its declarations. -#}
{% macro loaded(source_name, table_name) %}
    {%- set switched_off = var('switched_off', {}) -%}
    {%- set columns = switched_off.get(source_name ~ '.' ~ table_name) -%}
    {%- if columns is none -%}
        {{ source(source_name, table_name) }}
    {%- else -%}
        (select {% for column, type in columns.items() -%}
            cast(null as {{ type }}) as {{ adapter.quote(column) }}{{ ", " if not loop.last }}
        {%- endfor %} where false)
    {%- endif -%}
{% endmacro %}
