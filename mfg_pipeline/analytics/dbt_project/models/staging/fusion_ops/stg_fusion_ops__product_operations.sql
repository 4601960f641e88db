-- The planned time of `task_ratio_quantity` units, run `times_per_product` times per unit (doc defaults: 1).
select
    plant,
    product_code,
    position,
    operation_code,
    coalesce(disabled, false) as is_disabled,
    task_duration_seconds,
    task_duration_seconds * coalesce(times_per_product, 1) / nullif(coalesce(task_ratio_quantity, 1), 0)
        as ideal_seconds_per_unit
from {{ loaded('fusion_ops', 'product_operations') }}
