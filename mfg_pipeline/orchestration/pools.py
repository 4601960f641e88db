"""Dagster concurrency pools, one per vendor: how many steps may call one vendor's API at once, machine-wide.

The request budget itself is held by the shared rate limiter (`mfg_pipeline/http/ratelimit.py`); the pool keeps a
30-day backfill from starting 30 callers that would only queue on that budget holding memory and connections.
Each source declares its limit (`SourceSystem.concurrency_limit`): enough callers to keep the vendor's budget
busy, and exactly one for Traede, whose export → mark flow must never overlap itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import DagsterInstance

from mfg_pipeline.declarations import SourceSystem


def pool_name(source_name: str) -> str:
    return f"{source_name}_api"


def apply_pool_limits(
    instance: DagsterInstance, sources: Iterable[SourceSystem], *, overwrite: bool = False
) -> dict[str, int]:
    """Set each source's pool limit on `instance`; a limit someone already set (UI or `dagster instance
    concurrency set`) is kept unless `overwrite`. Returns the limits in force."""
    storage = instance.event_log_storage
    existing = storage.get_concurrency_keys()
    limits = {}
    for source in sources:
        pool = pool_name(source.name)
        if overwrite or pool not in existing:
            storage.set_concurrency_slots(pool, source.concurrency_limit)
        limits[pool] = storage.get_concurrency_info(pool).slot_count
    return limits
