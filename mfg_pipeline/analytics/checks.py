"""Checks of the analytics layer that dbt's tests cannot phrase: ones whose answer is a list of names a person acts
on. They run in the build job, after the model they check."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    asset_check,
    multi_asset_check,
)

from mfg_pipeline.analytics.layout import switched_off_tables
from mfg_pipeline.orchestration.resources import WarehouseResource
from mfg_pipeline.sources.registry import source_by_name, streams_variable

ORDER_BOARD = AssetKey(["marts", "mart_order_board"])
STATE_MAP_SEED = "mfg_pipeline/analytics/dbt_project/seeds/order_states.csv"


@asset_check(
    asset=ORDER_BOARD,
    name="order_states_mapped",
    description="Every order's vendor state is in the plant's state map (reference.order_states); a state the map "
    "lacks shows as 'unknown' on the board, and this check names each one (a warning: the board is still right "
    "about everything else).",
)
def order_states_mapped(warehouse: WarehouseResource) -> AssetCheckResult:
    unmapped = warehouse.warehouse().query(
        "SELECT source_system, vendor_state, count(*) FROM marts.mart_order_board WHERE state = 'unknown' "
        "GROUP BY ALL ORDER BY 3 DESC, 1, 2"
    )
    named = [f"{system}:{state} ({orders} orders)" for system, state, orders in unmapped]
    return AssetCheckResult(
        passed=not unmapped,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"{len(unmapped)} vendor states have no shared state: {', '.join(named)}; add them to {STATE_MAP_SEED}"
            if unmapped
            else "Every vendor state on the board is mapped"
        ),
        metadata={"unmapped": MetadataValue.json([list(row) for row in unmapped])},
    )


def inputs_loaded_checks(manifest: Mapping[str, Any], marts: Mapping[str, AssetKey]) -> Any:
    """One check per mart (`marts`: dbt unique id -> asset key): every loaded table it reads is loaded. A table
    whose stream the plant switched off (`<SOURCE>_STREAMS`) is read as empty: the mart still builds, what came
    from the table is NULL or missing, and its check warns, naming the table and the setting."""
    off = switched_off_tables()
    lacking = {uid: sorted(_loaded_inputs(manifest, uid) & off.keys()) for uid in marts}
    specs = [
        AssetCheckSpec(
            "inputs_loaded",
            asset=key,
            description="Every loaded table the mart reads is loaded (a stream switched off by <SOURCE>_STREAMS is "
            "read as empty: the columns it fills are NULL).",
        )
        for key in marts.values()
    ]

    @multi_asset_check(specs=specs, name="marts_inputs_loaded", can_subset=True)
    def marts_inputs_loaded(context) -> Iterator[AssetCheckResult]:
        # `context` unannotated: Dagster checks the annotation at definition time, and this module's string
        # annotations (`from __future__`) are not something it can read.
        selected = {check.asset_key for check in context.selected_asset_check_keys}
        for uid, key in marts.items():
            if key not in selected:
                continue
            missing = lacking[uid]
            yield AssetCheckResult(
                asset_key=key,
                check_name="inputs_loaded",
                passed=not missing,
                severity=AssetCheckSeverity.WARN,
                description=(
                    f"Reads {', '.join(missing)}, switched off by "
                    f"{', '.join(sorted({streams_setting(m) for m in missing}))}: what it "
                    "would add is NULL or missing"
                    if missing
                    else "Every loaded table it reads is loaded"
                ),
            )

    return marts_inputs_loaded


def streams_setting(table: str) -> str:
    """The setting that switches a "<source>.<table>" off."""
    return streams_variable(source_by_name(table.split(".", 1)[0]))


_LOADED = re.compile(r"loaded\(\s*'(\w+)'\s*,\s*'(\w+)'\s*\)")


def _loaded_inputs(manifest: Mapping[str, Any], unique_id: str) -> set[str]:
    """ "<source>.<table>" of every loaded table the node reads, through any depth of models."""
    found: set[str] = set()
    seen: set[str] = set()
    todo = [unique_id]
    while todo:
        uid = todo.pop()
        if uid in seen:
            continue
        seen.add(uid)
        node = manifest["nodes"].get(uid)
        if node is not None:
            found.update(f"{s}.{t}" for s, t in _LOADED.findall(node.get("raw_code", "")))
        todo.extend(manifest["parent_map"].get(uid, []))
    return found
