"""Traede export API client: bearer token plus app key, the export call and mark-as-exported. No Dagster inside.

The export-then-mark flow itself (land a page, mark it, read again) is in `export_flow.py`; this module only
speaks HTTP, so every request still goes through the shared client's rate limit, retries and secret masking.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import timezone
from itertools import count
from pathlib import Path
from typing import Any

from mfg_pipeline.declarations import PartitionWindow, Stream
from mfg_pipeline.http.auth import BearerAuth
from mfg_pipeline.http.client import ApiClient, Logger, Vendor
from mfg_pipeline.http.errors import SourceHttpError, SourcePayloadError
from mfg_pipeline.http.pagination import Page, PageNumberPaginator
from mfg_pipeline.rest import ListShape, RestClient
from mfg_pipeline.sources.traede.settings import TraedeSettings
from mfg_pipeline.sources.traede.shapes import (
    APP_KEY_HEADER,
    EXPORT_ENDPOINT,
    EXPORT_PAGE_SIZE,
    EXPORT_PATH,
    MARK_ENDPOINT,
    MARK_NOTE,
    MARK_PATH,
    MAX_MARKS_PER_CALL,
    SYSTEM,
    php_query,
)

__all__ = ["EXPORT_PATH", "MARK_PATH", "TraedeClient"]


class TraedeClient(RestClient):
    def __init__(self, settings: TraedeSettings, data_dir: Path, logger: Logger | None = None):
        self.settings = settings
        auth = BearerAuth(
            settings.access_token,
            extra_headers={APP_KEY_HEADER: settings.app_key},
            extra_secret_headers=(APP_KEY_HEADER,),
        )
        vendor = Vendor(SYSTEM, settings.base_url, settings.BASE_URL_VARIABLE, settings.CREDENTIAL_VARIABLES)
        api = ApiClient.for_company(
            vendor,
            auth=auth,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            budget_identity=settings.access_token,
            data_dir=data_dir,
            logger=logger,
        )
        # The doc: export datetimes are UTC. The export is walked by `export_page`, not a paginator.
        super().__init__(
            api, ListShape(paginator=lambda: PageNumberPaginator(page_size=EXPORT_PAGE_SIZE, start=0)), timezone.utc
        )

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
                "%Y-%m-%d %H:%M:%S"
            )
        params.update(php_query("filter_groups", list(settings.filter_groups)) if settings.filter_groups else [])
        return params

    def export_page(self, stream_params: Mapping[str, Any], page_number: int, label: int | str) -> Page:
        """One call of the export: `{"production_orders": [...]}` at `page_number`; `label` names it in errors."""
        params = {**self.export_params(stream_params), "page": page_number}
        payload = self.api.get_json("GET", EXPORT_PATH, params=params, page=label, endpoint=EXPORT_ENDPOINT)
        records = payload.get("production_orders") if isinstance(payload, dict) else None
        if not isinstance(records, list):
            got = f"an object with keys {sorted(payload)[:10]}" if isinstance(payload, dict) else type(payload).__name__
            raise SourcePayloadError(
                f"expected an object with a 'production_orders' array, got {got}",
                system=SYSTEM,
                endpoint=EXPORT_ENDPOINT,
                page=label,
            )
        self.stats.add(pages=1)
        return Page(label, records, payload)

    def mark_exported(self, order_ids: Sequence[int]) -> None:
        """Mark orders exported to our system_id, at most 10 per call. Marking twice is harmless (the doc's
        export state only moves forward), so the shared client may retry a call whose answer was lost."""
        for start in range(0, len(order_ids), MAX_MARKS_PER_CALL):
            chunk = list(order_ids[start : start + MAX_MARKS_PER_CALL])
            body = {
                "production_orders": [
                    {"production_order_id": order_id, "system_id": self.settings.system_id, "note": MARK_NOTE}
                    for order_id in chunk
                ]
            }
            try:
                self.api.request("POST", MARK_PATH, json_body=body, endpoint=MARK_ENDPOINT)
            except SourceHttpError as exc:
                raise type(exc)(
                    f"could not mark orders {chunk} as exported ({exc.detail}); they are landed in "
                    "the warehouse and come back on the next run",
                    system=SYSTEM,
                    endpoint=MARK_ENDPOINT,
                    status=exc.status,
                ) from None

    def pages(
        self, stream: Stream, window: PartitionWindow | None = None, params: Mapping[str, Any] | None = None
    ) -> Iterator[Page]:
        """Read-only: what is due for export now, page by page from 0, marking nothing. Ends on an empty page or
        on one that brings no order not seen before (a server that does not page answers every page with all)."""
        seen: set[str] = set()
        stream_params = {**stream.params, **(params or {})}
        for number in count():
            page = self.export_page(stream_params, number, label=number)
            ids = {
                json.dumps(r.get("id") if isinstance(r, Mapping) else r, sort_keys=True, default=str)
                for r in page.records
            }
            if not ids - seen:
                return
            seen |= ids
            yield page
