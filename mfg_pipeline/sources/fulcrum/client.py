"""Fulcrum Pro client: bearer token, `POST /api/<entities>/list` with Skip/Take/Sort in the query and every
filter in a JSON body, bare-array pages. Child lists (items to make, operations, line items) are declared on the
streams; nothing here is specific to a stream. No Dagster inside."""

from __future__ import annotations

from datetime import timezone
from pathlib import Path

from mfg_pipeline.http.auth import BearerAuth
from mfg_pipeline.http.client import ApiClient, Logger, Vendor
from mfg_pipeline.http.pagination import OffsetPaginator
from mfg_pipeline.rest import ListShape, RestClient
from mfg_pipeline.sources.fulcrum.settings import FulcrumSettings

SYSTEM = "fulcrum"

# Every list is sorted by its record id. Ids are unique, so this is a total order and every request agrees on
# it; sorting by a creation stamp would not be (jobs of one sales order share one `createdUtc`), and a server
# free to order ties differently per request could then skip or repeat a record at a page boundary. A record
# created while we page can only add a repeat (the engine keeps the first copy by key), never hide another.
SORT_BY_ID = {"Sort.Field": "id", "Sort.Dir": "ascending"}


def make_fulcrum_client(settings: FulcrumSettings, data_dir: Path, logger: Logger | None = None) -> RestClient:
    vendor = Vendor(SYSTEM, settings.base_url, settings.BASE_URL_VARIABLE, settings.CREDENTIAL_VARIABLES)
    api = ApiClient.for_company(
        vendor,
        auth=BearerAuth(settings.api_token),
        rate_limit_per_minute=settings.rate_limit_per_minute,
        budget_identity=settings.api_token,
        data_dir=data_dir,
        logger=logger,
    )
    # Fulcrum's query string carries only paging and sorting: every filter (the partition's createdAfterUtc /
    # createdBeforeUtc, the open statuses) goes in the JSON body; an empty body means "no filter".
    lists = ListShape(
        paginator=lambda: OffsetPaginator(take=settings.page_size), filters_in="json_body", query=SORT_BY_ID
    )
    # Every Fulcrum date-time is UTC (`createdUtc`, samples end in `Z`).
    return RestClient(api, lists, timezone.utc, paths=settings.paths, path_settings=settings.PATH_SETTINGS)
