"""Traede export API endpoints and request shapes (shared by the client and the export flow)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SYSTEM = "traede"
EXPORT_PATH = "/v10/production-orders/export"
EXPORT_ENDPOINT = f"GET {EXPORT_PATH}"
MARK_PATH = "/v10/production-orders/mark-as-exported"
MARK_ENDPOINT = f"POST {MARK_PATH}"
APP_KEY_HEADER = "X-Traede-App-Key"
# FACTS: where Traede pages, `limit` is at most 60. A server that does not page the export ignores it.
EXPORT_PAGE_SIZE = 60
MAX_MARKS_PER_CALL = 10  # the doc: "You can at a max mark 10 production orders at a time"
MARK_NOTE = "Landed in the mfg_pipeline warehouse"  # shown in the order's timeline in Traede


def php_query(name: str, value: Any) -> list[tuple[str, str]]:
    """Nested lists/objects as PHP-style query fields: `filter_groups[0][filters][0][key]=updated_at`."""
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    elif isinstance(value, bool):
        return [(name, "true" if value else "false")]
    else:
        return [(name, "" if value is None else str(value))]
    return [pair for key, item in items for pair in php_query(f"{name}[{key}]", item)]
