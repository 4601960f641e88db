{# Every value of the column is a `field` of `to` in the same plant (vendor ids are unique per company only). #}
{% test relationships_in_plant(model, column_name, to, field) %}
select child.plant, child.{{ column_name }}
from {{ model }} as child
where child.{{ column_name }} is not null
    and not exists (
        select 1 from {{ to }} as parent
        where parent.plant = child.plant and parent.{{ field }} = child.{{ column_name }}
    )
{% endtest %}
