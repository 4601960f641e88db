"""Pages and paging strategies: small objects that say where the first page is and where the next one is.

Each vendor picks one by declaration; the loop that follows them (with loop detection) is `ApiClient.pages`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class Page:
    number: int | str  # the page's label in errors and logs (page number, offset, ...)
    records: list[Any]
    payload: Any


class Paginator(Protocol):
    """A paging strategy: where the first page is, and where the next is given the current one.
    Parameters whose names start with "_" are the paginator's own state and are not sent."""

    def first(self) -> dict[str, Any]: ...

    def next(self, params: dict[str, Any], records: list[Any], payload: Any) -> dict[str, Any] | None: ...

    def label(self, params: dict[str, Any]) -> int | str: ...


RecordSelector = Callable[[Any], Any]  # a page's payload -> its list of records


def whole_payload(payload: Any) -> Any:
    """The default selector: the payload is the bare array of records."""
    return payload


def _numbered_first_page(param: str, start: int, size_param: str | None, page_size: int) -> dict[str, Any]:
    """`{param: start}`, plus the page size for APIs that take one."""
    return {param: start, **({size_param: page_size} if size_param else {})}


@dataclass(frozen=True)
class PageNumberPaginator:
    """`?page=N` from `start`; the end is an empty page or one shorter than a full page.

    A full page is `page_size` (from the doc) or the longest page seen so far, whichever is larger, so a server
    that pages by more than the doc says still ends on its first short page. `size_param` sends the page size
    for APIs that accept one.
    """

    page_size: int
    param: str = "page"
    start: int = 1
    size_param: str | None = None

    def first(self) -> dict[str, Any]:
        return {
            **_numbered_first_page(self.param, self.start, self.size_param, self.page_size),
            "_full_page": self.page_size,
        }

    def next(self, params: dict[str, Any], records: list[Any], payload: Any) -> dict[str, Any] | None:
        full_page = max(params["_full_page"], len(records))
        if not records or len(records) < full_page:
            return None
        return {**params, self.param: params[self.param] + 1, "_full_page": full_page}

    def label(self, params: dict[str, Any]) -> int:
        return int(params[self.param])


@dataclass(frozen=True)
class TotalPagesPaginator:
    """`?page=N` where each response says how many pages there are (`pages_of(payload)`) and, when `echo_of` is
    given, which page it is. Stops after the last page or on an empty page, whichever comes first.

    FACTS: whether pages count from 0 or 1 is unconfirmed. Asked for `start`, a server counting from `start + 1`
    may serve its first page and say so in its echo: then the walk goes on from the echoed page, and the end is
    counted from the base the server revealed. Without an echo, the count of pages served decides.
    """

    page_size: int
    pages_of: Callable[[Any], int]
    param: str = "page"
    start: int = 0
    size_param: str | None = "limit"
    echo_of: Callable[[Any], int | None] | None = None

    def first(self) -> dict[str, Any]:
        return {**_numbered_first_page(self.param, self.start, self.size_param, self.page_size), "_base": self.start}

    def next(self, params: dict[str, Any], records: list[Any], payload: Any) -> dict[str, Any] | None:
        asked = params[self.param]
        echoed = self.echo_of(payload) if self.echo_of is not None else None
        base = params["_base"]
        if echoed is not None and asked == self.start and echoed == self.start + 1:
            base = self.start + 1  # asked for the doc's first page, served the server's first page
        served = echoed if echoed is not None else asked
        if not records or served - base + 1 >= int(self.pages_of(payload)):
            return None
        return {**params, self.param: served + 1, "_base": base}

    def label(self, params: dict[str, Any]) -> int:
        return int(params[self.param])


@dataclass(frozen=True)
class OffsetPaginator:
    """`?Skip=&Take=` style: the end is a page shorter than `Take`.

    With `whole_list_when_longer`, a page longer than `Take` means the server ignored the paging parameters and
    sent the whole list (child lists that document no paging), so that page is also the last one.
    """

    take: int
    skip_param: str = "Skip"
    take_param: str = "Take"
    whole_list_when_longer: bool = False

    def first(self) -> dict[str, Any]:
        return {self.skip_param: 0, self.take_param: self.take}

    def next(self, params: dict[str, Any], records: list[Any], payload: Any) -> dict[str, Any] | None:
        if len(records) < self.take or (self.whole_list_when_longer and len(records) > self.take):
            return None
        return {**params, self.skip_param: params[self.skip_param] + len(records)}

    def label(self, params: dict[str, Any]) -> str:
        return f"Skip={params[self.skip_param]}"


def _envelope_meta(payload: Any) -> Any:
    return payload["meta"]


@dataclass(frozen=True)
class PageMetaPaginator:
    """`?page=N&per_page=M` where every response's `meta` reports `{current_page, per_page, total, from, to}`
    (Laravel's length-aware paginator, without `last_page`).

    The server's own `meta.per_page` counts, not ours: it may cap `per_page` or ignore it (an endpoint that does
    not document it), so the end is computed from what it reports, and later pages ask for that same size. Stops
    on an empty page, when `to >= total`, or when `current_page * per_page >= total`, so a list that fills its last
    page exactly costs no extra empty request. `meta_of(payload)` must give a checked meta: the record selector
    validates the envelope before this runs.
    """

    page_size: int
    meta_of: Callable[[Any], Any] = _envelope_meta
    param: str = "page"
    size_param: str | None = "per_page"
    start: int = 1

    def first(self) -> dict[str, Any]:
        return _numbered_first_page(self.param, self.start, self.size_param, self.page_size)

    def next(self, params: dict[str, Any], records: list[Any], payload: Any) -> dict[str, Any] | None:
        if not records:
            return None
        meta = self.meta_of(payload)
        total, server_page_size = int(meta["total"]), int(meta["per_page"])
        current_page = int(meta.get("current_page") or params[self.param])
        last_position = meta.get("to")
        if last_position is not None and int(last_position) >= total:
            return None
        if current_page * server_page_size >= total:
            return None
        following = {**params, self.param: params[self.param] + 1}
        if self.size_param:
            following[self.size_param] = server_page_size
        return following

    def label(self, params: dict[str, Any]) -> int:
        return int(params[self.param])
