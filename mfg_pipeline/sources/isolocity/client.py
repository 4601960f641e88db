"""ISOlocity client: bearer token, `{status, message, meta, data}` envelopes paged by `page`/`per_page` and
followed by their `meta`. No Dagster inside."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from mfg_pipeline.http.auth import BearerAuth
from mfg_pipeline.http.client import ApiClient, Logger, Page
from mfg_pipeline.http.errors import SourceHttpError, SourcePayloadError
from mfg_pipeline.http.pagination import PageMetaPaginator
from mfg_pipeline.http.ratelimit import bucket_name, shared_limiter
from mfg_pipeline.sources.isolocity.settings import PATH_VARIABLES, IsolocitySettings
from mfg_pipeline.sources.isolocity.streams import RECORD_ADAPTERS
from mfg_pipeline.streams import Stream

SYSTEM = "isolocity"
# The doc's default and example. The NCR list may not honour it at all; the paginator follows `meta.per_page`.
PAGE_SIZE = 50
SUCCESS_STATUS = "success"
MAX_MESSAGE_CHARS = 200

_JSON_TYPE_NAMES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number",
                    bool: "a boolean", type(None): "null"}


def _json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class EnvelopeSelector:
    """The `select` of `ApiClient.pages` for ISOlocity lists: checks one page's envelope and returns its `data`.

    A `status` other than "success" is an error even when the HTTP status is 200; `meta` is checked here, before
    the paginator relies on it. `ApiClient.pages` calls this exactly once per page, in order, so counting calls
    from the paginator's first page gives the page number to name in errors.
    """

    def __init__(self, endpoint: str, first_page: int, mask: Callable[[str], str]):
        self.endpoint = endpoint
        self.page = first_page - 1
        self._mask = mask

    def __call__(self, payload: Any) -> list[Any]:
        self.page += 1
        if not isinstance(payload, Mapping):
            self._fail(f"expected the {{status, message, meta, data}} envelope, got {_json_type(payload)}")
        status = payload.get("status")
        if status != SUCCESS_STATUS:
            message = payload.get("message")
            detail = f": {self._mask(str(message))[:MAX_MESSAGE_CHARS]}" if message else ""
            self._fail(f"the envelope's status is {status!r}, not {SUCCESS_STATUS!r}{detail}")
        data = payload.get("data")
        if not isinstance(data, list):
            self._fail(f"'data' must be an array of records, got {_json_type(data)}")
        if data:  # an empty page ends the list whatever its meta says, so only a non-empty one needs it
            self._check_meta(payload.get("meta"))
        return data

    def _check_meta(self, meta: Any) -> None:
        if not isinstance(meta, Mapping):
            self._fail(f"'meta' must be an object with current_page, per_page and total, got {_json_type(meta)}")
        for name, minimum in (("current_page", 1), ("per_page", 1), ("total", 0)):
            value = meta.get(name)
            if not _is_int(value) or value < minimum:
                self._fail(f"meta.{name} must be an integer of at least {minimum}, got {value!r}")
        if meta.get("to") is not None and not _is_int(meta["to"]):
            self._fail(f"meta.to must be an integer or null, got {meta['to']!r}")

    def _fail(self, message: str) -> None:
        raise SourcePayloadError(message, system=SYSTEM, endpoint=self.endpoint, page=self.page)


class IsolocityClient:
    system = SYSTEM

    def __init__(self, settings: IsolocitySettings, data_dir: Path, logger: Logger | None = None):
        self.settings = settings
        self.naive_timezone = settings.timezone
        limiter_name = bucket_name(SYSTEM, settings.base_url, settings.api_token)
        self.api = ApiClient(system=SYSTEM, base_url=settings.base_url, auth=BearerAuth(settings.api_token),
                             logger=logger,
                             limiter=shared_limiter(limiter_name, settings.rate_limit_per_minute, data_dir),
                             limiter_name=limiter_name)
        self.stats = self.api.stats

    def close(self) -> None:
        self.api.close()

    def path_of(self, stream: Stream) -> str:
        """The configured path (ISOLOCITY_PATH_*); the stream's declared path is only the default."""
        return self.settings.paths.get(stream.name, stream.path)

    def pages(self, stream: Stream, params: Mapping[str, Any]) -> Iterator[Page]:
        path = self.path_of(stream)
        endpoint = f"{stream.method} {path}"
        paginator = PageMetaPaginator(page_size=PAGE_SIZE)
        select = EnvelopeSelector(endpoint, paginator.start, self.api.masker.mask)
        adapt = RECORD_ADAPTERS.get(stream.name)
        try:
            for page in self.api.pages(stream.method, path, paginator, params=params, select=select,
                                       endpoint=endpoint):
                if adapt is not None:
                    page = Page(page.number, [adapt(r) if isinstance(r, Mapping) else r for r in page.records],
                                page.payload)
                yield page
        except SourceHttpError as exc:
            raise self._explained(exc, stream) from None

    def _explained(self, exc: SourceHttpError, stream: Stream) -> SourceHttpError:
        """Statuses whose usual cause is our configuration get a message naming the variable to check."""
        if exc.status in (401, 403):
            message = f"HTTP {exc.status}: the API token was refused; check ISOLOCITY_API_TOKEN"
        elif exc.status == 404 and stream.name in PATH_VARIABLES:
            variable = PATH_VARIABLES[stream.name][0]
            message = (f"HTTP 404: no such list on this server; ISOlocity does not publish its paths, so set "
                       f"{variable} (now {self.path_of(stream)!r}) to this server's path")
        else:
            return exc
        return SourceHttpError(message, system=exc.system, endpoint=exc.endpoint, page=exc.page, status=exc.status)
