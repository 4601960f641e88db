"""Lagerkoll client: `store` + `api_key` (or `user_id` + `user_token`) headers, and the
`{page, pages, pageSize, ordersCount, orders}` list wrapper, whose page numbering is detected. No Dagster inside.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import timezone
from pathlib import Path
from typing import Any

from mfg_pipeline.declarations import Stream
from mfg_pipeline.http.auth import HeaderAuth
from mfg_pipeline.http.client import ApiClient, Logger, Vendor
from mfg_pipeline.http.errors import SourceHttpError, SourcePayloadError
from mfg_pipeline.http.pagination import Page, TotalPagesPaginator
from mfg_pipeline.rest import ListShape, RestClient
from mfg_pipeline.sources.lagerkoll.settings import LagerkollSettings
from mfg_pipeline.sources.lagerkoll.shapes import orders_count, orders_of, page_echo

SYSTEM = "lagerkoll"
# How a server counting pages from 1 may refuse page 0 (the doc is silent); on these we start again at 1.
PAGE_REFUSED_STATUSES = (400, 404)


def credential_auth(settings: LagerkollSettings) -> HeaderAuth:
    """The doc's headers: `store` plus either `user_id` + `user_token` or `api_key`."""
    if settings.uses_user_token:
        return HeaderAuth(
            {"store": settings.store, "user_id": str(settings.user_id), "user_token": str(settings.user_token)},
            secret_headers=("user_token",),
        )
    return HeaderAuth({"store": settings.store, "api_key": str(settings.api_key)}, secret_headers=("api_key",))


class LagerkollClient(RestClient):
    def __init__(self, settings: LagerkollSettings, data_dir: Path, logger: Logger | None = None):
        self.settings = settings
        auth = credential_auth(settings)
        vendor = Vendor(SYSTEM, settings.base_url, settings.BASE_URL_VARIABLE, settings.credential_variables)
        # The limit belongs to the store, whichever credential style a run uses.
        api = ApiClient.for_company(
            vendor,
            auth=auth,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            budget_identity=settings.store,
            data_dir=data_dir,
            logger=logger,
        )
        # Every date is epoch milliseconds: nothing is in a local zone.
        super().__init__(api, ListShape(paginator=self._paginator, select=orders_of), timezone.utc)

    def _paginator(self, first_page: int | None = None) -> TotalPagesPaginator:
        start = self.settings.first_page if first_page is None else first_page
        return TotalPagesPaginator(
            page_size=self.settings.page_size, pages_of=lambda payload: payload["pages"], start=start, echo_of=page_echo
        )

    def list_pages(self, stream: Stream, filters: Mapping[str, Any]) -> Iterator[Page]:
        """Pages from 0 (the doc's default; LAGERKOLL_FIRST_PAGE to change), going on from the page the server
        says it served (a server counting from 1 may answer page 0 with page 1), or again from 1 when it refuses
        page 0 or answers it empty while counting orders. Each walk ends after `pages` pages or on an empty page.
        Fewer orders than the last page's `ordersCount` fail the load instead of landing a partial list."""
        walk = self._walk(stream, filters, None)
        first = self._first_page(stream, walk)
        if first is None:
            walk = self._walk(stream, filters, self.settings.first_page + 1)
            first = next(walk)
        received, counted, last_label = 0, None, first.number
        for page in itertools.chain([first], walk):
            received += len(page.records)
            counted, last_label = orders_count(page.payload), page.number
            yield page
        if counted is not None and received < counted:
            raise SourcePayloadError(
                f"the list ended after {received} orders but ordersCount says {counted}: "
                "pages were skipped, so nothing is landed",
                system=SYSTEM,
                endpoint=stream.endpoint,
                page=last_label,
            )

    def _first_page(self, stream: Stream, walk: Iterator[Page]) -> Page | None:
        """The walk's first page, or None when the server's pages evidently start one later."""
        start = self.settings.first_page
        try:
            first = next(walk)
        except SourceHttpError as exc:
            if exc.status not in PAGE_REFUSED_STATUSES or self.settings.first_page_fixed:
                raise
            self.log.warning(
                f"{SYSTEM} {stream.endpoint}: page {start} refused (HTTP {exc.status}); the server's "
                f"pages must start at {start + 1} (set {self.settings.FIRST_PAGE_VARIABLE}={start + 1})"
            )
            return None
        if not first.records and (orders_count(first.payload) or 0) > 0 and not self.settings.first_page_fixed:
            self.log.warning(
                f"{SYSTEM} {stream.endpoint}: page {start} is empty but ordersCount is "
                f"{orders_count(first.payload)}; the server's pages must start at {start + 1}"
            )
            walk.close()  # type: ignore[attr-defined]
            return None
        return first

    def _walk(self, stream: Stream, filters: Mapping[str, Any], first_page: int | None) -> Iterator[Page]:
        path = self.path_of(stream)
        return self.api.pages(
            stream.method,
            path,
            self._paginator(first_page),
            params=dict(filters),
            select=orders_of,
            endpoint=f"{stream.method} {path}",
        )
