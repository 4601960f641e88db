"""Traede export API client: bearer token plus app key, the export call and mark-as-exported. No Dagster inside.

The export-then-mark flow itself (land a page, mark it, read again) is in `loading.py`; this module only speaks
HTTP, so every request still goes through the shared client's rate limit, retries and secret masking.
"""

from __future__ import annotations

import json
from datetime import timezone
from itertools import count
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from mfg_pipeline.http.auth import BearerAuth
from mfg_pipeline.http.client import ApiClient, Logger, Page
from mfg_pipeline.http.errors import SourceHttpError, SourcePayloadError
from mfg_pipeline.http.ratelimit import bucket_name, shared_limiter
from mfg_pipeline.sources.traede.settings import TraedeSettings
from mfg_pipeline.streams import Stream

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


class TraedeClient:
    system = SYSTEM

    def __init__(self, settings: TraedeSettings, data_dir: Path, logger: Logger | None = None):
        self.settings = settings
        self.naive_timezone = timezone.utc  # the doc: export datetimes are UTC
        auth = BearerAuth(settings.access_token, extra_headers={APP_KEY_HEADER: settings.app_key},
                          extra_secret_headers=(APP_KEY_HEADER,))
        limiter_name = bucket_name(SYSTEM, settings.base_url, settings.access_token)
        self.api = ApiClient(system=SYSTEM, base_url=settings.base_url, auth=auth, logger=logger,
                             limiter=shared_limiter(limiter_name, settings.rate_limit_per_minute, data_dir),
                             limiter_name=limiter_name)
        self.stats = self.api.stats
        self.log = self.api.log

    def close(self) -> None:
        self.api.close()

    @property
    def re_exporting(self) -> bool:
        """A re-export (`not_exported_since`): marking does not take orders out of the export."""
        return self.settings.not_exported_since is not None

    def export_params(self, stream_params: Mapping[str, Any]) -> dict[str, Any]:
        settings = self.settings
        params: dict[str, Any] = {
            **stream_params,
            "system_id": settings.system_id,
            "include_open": int(settings.include_open),
            "include_closed": int(settings.include_closed),
            "limit": EXPORT_PAGE_SIZE,
        }
        if settings.not_exported_since is not None:
            params["not_exported_since"] = settings.not_exported_since.astimezone(timezone.utc).strftime(
                "%Y-%m-%d %H:%M:%S")
        params.update(php_query("filter_groups", list(settings.filter_groups)) if settings.filter_groups else [])
        return params

    def export_page(self, stream_params: Mapping[str, Any], page_number: int, label: int | str) -> Page:
        """One call of the export: `{"production_orders": [...]}` at `page_number`; `label` names it in errors."""
        params = {**self.export_params(stream_params), "page": page_number}
        payload = self._refused_credentials_named(
            lambda: self.api.get_json("GET", EXPORT_PATH, params=params, page=label, endpoint=EXPORT_ENDPOINT))
        records = payload.get("production_orders") if isinstance(payload, dict) else None
        if not isinstance(records, list):
            got = (f"an object with keys {sorted(payload)[:10]}" if isinstance(payload, dict)
                   else type(payload).__name__)
            raise SourcePayloadError(f"expected an object with a 'production_orders' array, got {got}",
                                     system=SYSTEM, endpoint=EXPORT_ENDPOINT, page=label)
        self.stats.add(pages=1)
        return Page(label, records, payload)

    def mark_exported(self, order_ids: Sequence[int]) -> None:
        """Mark orders exported to our system_id, at most 10 per call. Marking twice is harmless (the doc's
        export state only moves forward), so the shared client may retry a call whose answer was lost."""
        for start in range(0, len(order_ids), MAX_MARKS_PER_CALL):
            chunk = list(order_ids[start:start + MAX_MARKS_PER_CALL])
            body = {"production_orders": [{"production_order_id": order_id, "system_id": self.settings.system_id,
                                           "note": MARK_NOTE} for order_id in chunk]}
            try:
                self._refused_credentials_named(
                    lambda: self.api.request("POST", MARK_PATH, json_body=body, endpoint=MARK_ENDPOINT))
            except SourceHttpError as exc:
                detail = str(exc).removeprefix(f"{exc.system} {exc.endpoint}: ")
                raise SourceHttpError(f"could not mark orders {chunk} as exported ({detail}); they are landed in "
                                      "the warehouse and come back on the next run", system=SYSTEM,
                                      endpoint=MARK_ENDPOINT, status=exc.status) from None

    def pages(self, stream: Stream, params: Mapping[str, Any]) -> Iterator[Page]:
        """Read-only: what is due for export now, page by page from 0, marking nothing. Ends on an empty page or
        on one that brings no order not seen before (a server that does not page answers every page with all)."""
        seen: set[str] = set()
        for number in count():
            page = self.export_page(params, number, label=number)
            ids = {json.dumps(r.get("id") if isinstance(r, Mapping) else r, sort_keys=True, default=str)
                   for r in page.records}
            if not ids - seen:
                return
            seen |= ids
            yield page

    def _refused_credentials_named(self, call: Any) -> Any:
        try:
            return call()
        except SourceHttpError as exc:
            if exc.status in (401, 403):
                raise SourceHttpError(f"HTTP {exc.status}: the credentials were refused; check "
                                      "TRAEDE_ACCESS_TOKEN and TRAEDE_APP_KEY", system=SYSTEM,
                                      endpoint=exc.endpoint, page=exc.page, status=exc.status) from None
            raise
