"""Fulcrum Pro client: bearer token, `POST /api/<entities>/list` with Skip/Take/Sort in the query and filters in
a JSON body, bare-array pages. Jobs and invoices come back enriched with their child lists (one extra call per
job, per item to make and per invoice), so the load engine only ever sees records with nested arrays. No Dagster
inside.
"""

from __future__ import annotations

from datetime import timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import quote

from mfg_pipeline.http.auth import BearerAuth
from mfg_pipeline.http.client import ApiClient, Logger, Page
from mfg_pipeline.http.errors import SourceHttpError, SourcePayloadError
from mfg_pipeline.http.pagination import OffsetPaginator
from mfg_pipeline.http.ratelimit import bucket_name, shared_limiter
from mfg_pipeline.records.schema import parse_instant
from mfg_pipeline.sources.fulcrum.settings import FulcrumSettings
from mfg_pipeline.streams import Stream

SYSTEM = "fulcrum"
JOBS_PATH = "/api/jobs/list"
INVOICES_PATH = "/api/invoices/list"

# Every list is sorted by its record id. Ids are unique, so this is a total order and every request agrees on
# it; sorting by a creation stamp would not be (jobs of one sales order share one `createdUtc`), and a server
# free to order ties differently per request could then skip or repeat a record at a page boundary. A record
# created while we page can only add a repeat (the engine keeps the first copy by key), never hide another.
SORT_BY_ID = {"Sort.Field": "id", "Sort.Dir": "ascending"}

# The child lists document no query parameters at all. Sending Skip/Take anyway is harmless to a server that
# ignores them (one page holds the whole list) and needed by one that pages them with a default Take. They are
# short (a job's items, an item's routing, an invoice's lines), so the largest documented Take gets each in one
# call. They stay in Fulcrum's own order (routing order, invoice line order), which `position` records.
CHILD_LIST_TAKE = 1000

# Keys this client adds to a record for the child tables to read. The leading underscore marks them as ours:
# no Fulcrum field starts with one, so an enrichment can never shadow a vendor field.
ITEMS_TO_MAKE_KEY = "_itemsToMake"
OPERATIONS_KEY = "_operations"  # every operation of every item to make, flat, each with its item's id
ITEM_TO_MAKE_ID_KEY = "_itemToMakeId"
LINE_ITEMS_KEY = "_lineItems"


class ChildListPaginator(OffsetPaginator):
    """Skip/Take over a child list. A page longer than Take means the server ignored the paging parameters and
    sent the whole list, so that page is also the last one."""

    def next(self, params: dict[str, Any], records: list[Any], payload: Any) -> dict[str, Any] | None:
        if len(records) > self.take:
            return None
        return super().next(params, records, payload)


class FulcrumClient:
    system = SYSTEM
    naive_timezone = timezone.utc  # every Fulcrum date-time is UTC (`createdUtc`, samples end in `Z`)

    def __init__(self, settings: FulcrumSettings, data_dir: Path, logger: Logger | None = None):
        self.settings = settings
        limiter_name = bucket_name(SYSTEM, settings.base_url, settings.api_token)
        self.api = ApiClient(system=SYSTEM, base_url=settings.base_url, auth=BearerAuth(settings.api_token),
                             logger=logger, limiter_name=limiter_name,
                             limiter=shared_limiter(limiter_name, settings.rate_limit_per_minute, data_dir))
        self.stats = self.api.stats
        # Lists whose records need their children fetched, by list path.
        self._enrichers: dict[str, Callable[[Any, int, Page], dict]] = {
            JOBS_PATH: self._job_with_items_and_operations,
            INVOICES_PATH: self._invoice_with_line_items,
        }

    def close(self) -> None:
        self.api.close()

    def pages(self, stream: Stream, params: Mapping[str, Any]) -> Iterator[Page]:
        """Every page of `stream`. Fulcrum's query string carries only paging and sorting: every parameter the
        engine passes (the stream's own and the partition's createdAfterUtc/createdBeforeUtc) is a filter and
        goes in the JSON body. An empty body is sent rather than none: it means "no filter"."""
        filters = dict(params)
        enrich = self._enrichers.get(stream.path)
        in_partition = _partition_test(stream, params)
        try:
            for page in self.api.pages(stream.method, stream.path, OffsetPaginator(take=self.settings.page_size),
                                       params=SORT_BY_ID, json_body=filters, endpoint=stream.endpoint):
                if enrich is not None:
                    # Records of the widened margin are dropped by the engine: fetching their children would
                    # only spend the rate budget (every day's midnight jobs would be fetched twice).
                    page = Page(page.number, [enrich(record, index, page) if in_partition(record) else record
                                              for index, record in enumerate(page.records)], page.payload)
                yield page
        except SourceHttpError as exc:
            if exc.status in (401, 403):
                raise SourceHttpError(f"HTTP {exc.status}: the API token was refused; check FULCRUM_API_TOKEN "
                                      "(and that its Fulcrum user may read this entity)", system=SYSTEM,
                                      endpoint=exc.endpoint, page=exc.page, status=exc.status) from None
            raise

    # --- enrichment --------------------------------------------------------------------------------------
    def _job_with_items_and_operations(self, job: Any, index: int, page: Page) -> dict:
        job_id = _record_id(job, f"record {index}", f"POST {JOBS_PATH}", page.number)
        items_path = f"/api/jobs/{quote(job_id, safe='')}/items-to-make"
        items = self._child_list(f"{items_path}/list")
        operations = []
        for item_index, item in enumerate(items):
            item_id = _record_id(item, f"item to make {item_index}", f"POST {items_path}/list")
            operations_path = f"{items_path}/{quote(item_id, safe='')}/operations/list"
            for op_index, operation in enumerate(self._child_list(operations_path)):
                if not isinstance(operation, Mapping):
                    raise SourcePayloadError(f"operation {op_index} is {type(operation).__name__}, expected an "
                                             "object", system=SYSTEM, endpoint=f"POST {operations_path}")
                operations.append({**operation, ITEM_TO_MAKE_ID_KEY: item_id})
        return {**job, ITEMS_TO_MAKE_KEY: items, OPERATIONS_KEY: operations}

    def _invoice_with_line_items(self, invoice: Any, index: int, page: Page) -> dict:
        invoice_id = _record_id(invoice, f"record {index}", f"POST {INVOICES_PATH}", page.number)
        lines_path = f"/api/invoices/{quote(invoice_id, safe='')}/line-items/list"
        return {**invoice, LINE_ITEMS_KEY: self._child_list(lines_path)}

    def _child_list(self, path: str) -> list[Any]:
        """Every record of a child list, in the server's order; a record seen on an earlier page (the list
        shifted while paged) is kept once."""
        records: list[Any] = []
        seen_ids: set[str] = set()
        for page in self.api.pages("POST", path, ChildListPaginator(take=CHILD_LIST_TAKE), json_body={},
                                   endpoint=f"POST {path}"):
            for record in page.records:
                record_id = record.get("id") if isinstance(record, Mapping) else None
                if isinstance(record_id, str):
                    if record_id in seen_ids:
                        continue
                    seen_ids.add(record_id)
                records.append(record)
        return records


def _partition_test(stream: Stream, params: Mapping[str, Any]) -> Callable[[Any], bool]:
    """Whether a record falls inside the partition itself, i.e. not only inside its widened request window
    (`TimeWindowFilter`: the request asks for [start - margin, end + margin), the engine keeps [start, end)).
    Anything that cannot be read counts as inside, so the engine's parser still sees and reports it."""
    window = stream.window
    if window is None:
        return lambda record: True
    try:
        start = parse_instant(params[window.after_param]) + window.margin
        end = parse_instant(params[window.before_param]) - window.margin
    except (KeyError, TypeError, ValueError):
        return lambda record: True
    time_of = next(c.getter for c in stream.table.columns if c.name == window.time_column)

    def inside(record: Any) -> bool:
        try:
            return start <= parse_instant(time_of(record)) < end
        except (TypeError, ValueError, AttributeError):
            return True

    return inside


def _record_id(record: Any, what: str, endpoint: str, page: int | str | None = None) -> str:
    """A record's id, which the paths of its child lists need; a payload error when there is none."""
    if not isinstance(record, Mapping):
        raise SourcePayloadError(f"{what} is {type(record).__name__}, expected an object", system=SYSTEM,
                                 endpoint=endpoint, page=page)
    record_id = record.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise SourcePayloadError(f"{what}: field 'id' must be a non-empty string (it is in the path of the "
                                 f"record's child lists), got {record_id!r}", system=SYSTEM, endpoint=endpoint,
                                 page=page)
    return record_id
