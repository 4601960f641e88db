select
    plant,
    order_id,
    position,
    article_id,
    article_name,
    amount,
    finished,
    waste
from {{ loaded('lagerkoll', 'production_order_articles') }}
