"""The Fusion Operations changes feed, declared: `GET /api/v1/changes/{channel}` returns up to 25 changed
entities, oldest first, and removes them from the channel's stack. The journal that makes that destructive read
safe, and the apply, are the engine's (`engine/feed.py`); this module says what each entity type is."""

from __future__ import annotations

from mfg_pipeline.engine.feed import ChangesFeed, ChangeType
from mfg_pipeline.sources.fusion_ops.client import SYSTEM
from mfg_pipeline.sources.fusion_ops.settings import COMPANY_TIMEZONE_VARIABLE
from mfg_pipeline.sources.fusion_ops.streams import (
    DOWNTIMES,
    PRODUCTION_ORDERS,
    PRODUCTIONS,
    PRODUCTS,
    PUNCH_CLOCKS,
    STOCK,
)

FEED = ChangesFeed(
    system=SYSTEM,
    title="Fusion Operations",
    change_types=(
        # the list's `worker-name=true` gives the worker's name; the feed sends the worker's number
        ChangeType("PRODUCTION", PRODUCTIONS, lambda r: r.get("status") == "deleted", lacks=("worker_name",)),
        ChangeType("DOWN_TIME", DOWNTIMES, lambda r: r.get("event-type") == "downtime_deleted"),
        ChangeType("PUNCH_CLOCK", PUNCH_CLOCKS, lambda r: r.get("notification") == "punch_clock_deleted"),
        ChangeType("PRODUCTION_ORDER", PRODUCTION_ORDERS, lambda r: r.get("running-status") == "deleted"),
        # keyed by code; GET /api/v1/products fills these two, the PRODUCT feed example does not
        ChangeType(
            "PRODUCT",
            PRODUCTS,
            lambda r: r.get("notification") == "product_deleted",
            lacks=("standard_uom_code", "label_code"),
        ),
        ChangeType("STOCK", STOCK, lambda r: False, feed_only=True),  # the doc shows no deletion for inventory
    ),
    default_channels="production=PRODUCTION,downtime=DOWN_TIME,punch_clock=PUNCH_CLOCK",
    endpoint="GET /api/v1/changes/{channel}",
    naive_timezone_variable=COMPANY_TIMEZONE_VARIABLE,
    page_size=25,  # the doc: "a maximum of 25 per service call"
    max_channels=3,  # the doc: "You can create up to 3 channels per organization"
    # With a tick every 30 s, 12 calls are at most 24 of the company's 120 requests a minute: the rest is left to
    # scheduled runs and backfills.
    calls_per_tick=12,
)
