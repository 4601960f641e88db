"""A source client for a plain REST vendor, driven by declarations. No Dagster inside.

A vendor needs its settings (base URL, credentials, rate limit), how its lists are paged and read (`ListShape`),
and its stream declarations; everything else - the partition window's filters, child endpoints fetched per
record, records refetched by key - is the same for every vendor and lives here. A vendor client subclasses
`RestClient` only for real quirks (Fusion's token and changes feed, Lagerkoll's page numbering, ISOlocity's
configurable paths, Traede's export flow).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any
from urllib.parse import quote

from mfg_pipeline.config import env_str, zone_name
from mfg_pipeline.declarations import ById, ByKeysFilter, ChildEndpoint, ChildListGone, PartitionWindow, Stream
from mfg_pipeline.http.client import ApiClient, RequestStats
from mfg_pipeline.http.errors import ChildListError, SourceConfigurationError, SourceHttpError, SourcePayloadError
from mfg_pipeline.http.pagination import Page, Paginator, RecordSelector, whole_payload
from mfg_pipeline.records.schema import path_getter

_FIELD = re.compile(r"\{([^{}]+)\}")
# Times a child list is read again because one of its records' own lists answered 404 (deleted meanwhile).
CHILD_LIST_REREADS = 3


@dataclass(frozen=True)
class ListShape:
    """How one vendor's lists are paged and read."""

    paginator: Callable[[], Paginator]
    select: RecordSelector = whole_payload
    filters_in: str = "query"  # "query", or "json_body" (Fulcrum: every filter goes in a JSON body)
    query: Mapping[str, Any] = field(default_factory=dict)  # sent with every list call (e.g. a sort order)


def expand(template: str, record: Mapping[str, Any], allowed: tuple[type, ...]) -> str:
    """`template` with each `{field}` (a dotted path into `record`) replaced by its URL-quoted value. Raises
    ValueError naming the field when the value is missing or of a type the path cannot take."""

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        value = path_getter(name)(record)
        if isinstance(value, bool) or not isinstance(value, allowed) or value == "":
            kinds = " or ".join({str: "string", int: "integer"}.get(t, t.__name__) for t in allowed)
            raise ValueError(
                f"field '{name}' must be a non-empty {kinds} (it is in the path of the record's "
                f"child lists), got {value!r}"
            )
        return quote(str(value), safe="")

    return _FIELD.sub(value_of, template)


@dataclass(frozen=True)
class PathSetting:
    """A list path the vendor's docs leave open, so a setting names it: the variable, its default, and why."""

    variable: str
    default: str
    why: str

    def from_env(self) -> str:
        return "/" + env_str(self.variable, self.default).strip().strip("/")


def paths_from_env(settings: Mapping[str, PathSetting]) -> dict[str, str]:
    """stream name -> its path, from the variables (or their defaults)."""
    return {name: setting.from_env() for name, setting in settings.items()}


class RestClient:
    """Lists, child lists and refetches for one vendor, from its `ListShape` and the stream declarations."""

    def __init__(
        self,
        api: ApiClient,
        lists: ListShape,
        naive_timezone: tzinfo,
        paths: Mapping[str, str] | None = None,
        naive_timezone_variable: str | None = None,
        path_settings: Mapping[str, PathSetting] | None = None,
    ):
        self.api = api
        self.lists = lists
        self._naive_timezone = naive_timezone
        self._naive_timezone_variable = naive_timezone_variable  # the setting it came from, if any
        self.paths = dict(paths or {})  # stream name -> path, where the vendor's paths are a setting
        self.path_settings = dict(path_settings or {})  # stream name -> the setting its path comes from

    @property
    def system(self) -> str:
        return self.api.system

    @property
    def stats(self) -> RequestStats:
        return self.api.stats

    @property
    def naive_timezone(self) -> tzinfo:
        return self._naive_timezone

    @property
    def built_with(self) -> Mapping[str, str]:
        variable = self._naive_timezone_variable
        return {variable: zone_name(self._naive_timezone)} if variable else {}

    @property
    def log(self) -> Any:
        return self.api.log

    def close(self) -> None:
        self.api.close()

    # --- hooks a vendor client may override ----------------------------------------------------------------
    def path_of(self, stream: Stream) -> str:
        return self.paths.get(stream.name, stream.path)

    def selector(self, endpoint: str) -> RecordSelector:
        return self.lists.select

    def list_pages(self, stream: Stream, filters: Mapping[str, Any]) -> Iterator[Page]:
        """Every page of the stream's list with `filters` (sent where the vendor reads them). A 404 for a list
        whose path is a setting names the setting, and why the path is one."""
        try:
            yield from self._list_pages(stream, filters)
        except SourceHttpError as exc:
            setting = self.path_settings.get(stream.name)
            if exc.status != 404 or setting is None or isinstance(exc, (ChildListError, SourceConfigurationError)):
                raise
            raise SourceConfigurationError(
                f"HTTP 404: no such list on this server; {setting.why}, so set {setting.variable} (now "
                f"{self.path_of(stream)!r}) to this server's path",
                variable=setting.variable,
                system=exc.system,
                endpoint=exc.endpoint,
                page=exc.page,
                status=404,
            ) from None

    def _list_pages(self, stream: Stream, filters: Mapping[str, Any]) -> Iterator[Page]:
        path = self.path_of(stream)
        endpoint = f"{stream.method} {path}"
        query, body = dict(self.lists.query), None
        if self.lists.filters_in == "json_body":
            body = dict(filters)  # an empty body means "no filter"
        else:
            query.update(filters)
        return self.api.pages(
            stream.method,
            path,
            self.lists.paginator(),
            params=query,
            json_body=body,
            select=self.selector(endpoint),
            endpoint=endpoint,
        )

    # --- SourceClient ----------------------------------------------------------------------------------------
    def pages(
        self, stream: Stream, window: PartitionWindow | None = None, params: Mapping[str, Any] | None = None
    ) -> Iterator[Page]:
        filters = dict(stream.params)
        if window is not None and stream.window is not None:
            filters.update(stream.window.params(window))
        filters.update(params or {})
        return self.list_pages(stream, filters)

    def with_children(
        self, stream: Stream, records: Sequence[Any], page: int | str, indices: Sequence[int] | None = None
    ) -> list[Any]:
        positions = indices if indices is not None else range(len(records))
        attached: list[Any] = []
        for index, record in zip(positions, records, strict=True):
            try:
                attached.append(self._attach(stream, stream.child_endpoints, record, index, page, parent=None))
            except ChildListError as exc:
                if exc.status != 404:
                    raise
                attached.append(ChildListGone(exc))  # deleted since it was listed? the load asks again
        return attached

    def _attach(
        self,
        stream: Stream,
        endpoints: Sequence[ChildEndpoint],
        record: Any,
        index: int,
        page: int | str | None,
        parent: Any,
    ) -> Any:
        context = {**record, "_parent": parent} if parent is not None else record
        enriched = dict(record)
        for child in endpoints:
            try:
                path = expand(child.path, context, child.path_types)
            except ValueError as exc:
                where = stream.endpoint if parent is None else child.endpoint
                raise SourcePayloadError(
                    f"record {index}: {exc}", system=self.system, endpoint=where, page=page if parent is None else None
                ) from None
            children = self.child_list(child, path)
            if child.children:
                children = self._attach_listed(stream, child, path, children, record)
            enriched[child.attach_as] = children
        return enriched

    def _attach_listed(self, stream: Stream, child: ChildEndpoint, path: str, items: list[Any], record: Any) -> list:
        """A child list's records with their own child lists. One whose own list answers 404 may have been deleted
        since `items` was read (its parent, `record`, still exists): the list is read again and its records now are
        attached. A list that reads the same again means the grandchild path itself is wrong: the 404 is raised."""
        rereads = 0
        while True:
            try:
                return [
                    self._attach(stream, child.children, item, item_index, None, parent=record)
                    for item_index, item in enumerate(items)
                ]
            except ChildListError as exc:
                if exc.status != 404 or rereads == CHILD_LIST_REREADS:
                    raise
                rereads += 1
                again = self.child_list(child, path)
                if again == items:
                    raise
                items = again

    def child_list(self, child: ChildEndpoint, path: str) -> list[Any]:
        """Every record of one child list, in the server's order; with `dedupe_on`, a record seen on an
        earlier page (the list shifted while paged) is kept once."""
        try:
            return self._child_list(child, path)
        except SourceHttpError as exc:
            if isinstance(exc, (ChildListError, SourceConfigurationError)):
                raise
            raise ChildListError(
                exc.detail, system=exc.system, endpoint=exc.endpoint, page=exc.page, status=exc.status
            ) from exc

    def _child_list(self, child: ChildEndpoint, path: str) -> list[Any]:
        endpoint = f"{child.method} {path}"
        select = child.select or whole_payload
        if child.paginator is None:
            payload = self.api.get_json(child.method, path, json_body=child.body, endpoint=endpoint)
            try:
                records = select(payload)
            except (TypeError, ValueError) as exc:
                raise SourcePayloadError(str(exc), system=self.system, endpoint=endpoint) from None
            if not isinstance(records, list):
                raise SourcePayloadError(
                    f"expected a JSON array of records, got {type(records).__name__}",
                    system=self.system,
                    endpoint=endpoint,
                )
            return records
        records, seen = [], set()
        for page in self.api.pages(
            child.method, path, child.paginator(), json_body=child.body, select=select, endpoint=endpoint
        ):
            for record in page.records:
                identity = record.get(child.dedupe_on) if child.dedupe_on and isinstance(record, Mapping) else None
                if identity is not None:
                    if identity in seen:
                        continue
                    seen.add(identity)
                records.append(record)
        return records

    def refetch(self, stream: Stream, rows: Sequence[Mapping[str, Any]]) -> Iterator[Page]:
        if stream.open_records is None:
            return iter(())
        how = stream.open_records.refetch
        if isinstance(how, ById):
            return self._by_id(stream, how, rows)
        return self._by_keys(stream, how, rows)

    def _by_id(self, stream: Stream, how: ById, rows: Sequence[Mapping[str, Any]]) -> Iterator[Page]:
        select = how.select or whole_payload
        template = how.path.replace("{path}", self.path_of(stream))  # `{path}`: the stream's (configured) path
        for row in rows:
            path = expand(template, row, (str, int))
            endpoint = f"GET {how.path}"
            response = self.api.request("GET", path, params=how.params, endpoint=endpoint, ok_statuses=(404,))
            if response.status_code == 404:
                continue  # deleted at the vendor
            record = select(self.api.json_of(response, endpoint))
            yield Page(path, [record], record)

    def _by_keys(self, stream: Stream, how: ByKeysFilter, rows: Sequence[Mapping[str, Any]]) -> Iterator[Page]:
        values = [row[how.column] for row in rows]
        for start in range(0, len(values), how.batch):
            yield from self.pages(stream, None, {how.param: values[start : start + how.batch]})
