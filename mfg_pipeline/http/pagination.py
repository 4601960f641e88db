"""Paging strategies: small objects that say where the first page is and where the next one is.

Each vendor picks one by declaration; the loop that follows them (with loop detection) is `ApiClient.pages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


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
        return {**_numbered_first_page(self.param, self.start, self.size_param, self.page_size),
                "_full_page": self.page_size}

    def next(self, params: dict[str, Any], records: list[Any], payload: Any) -> dict[str, Any] | None:
        full_page = max(params["_full_page"], len(records))
        if not records or len(records) < full_page:
            return None
        return {**params, self.param: params[self.param] + 1, "_full_page": full_page}

    def label(self, params: dict[str, Any]) -> int:
        return params[self.param]


@dataclass(frozen=True)
class TotalPagesPaginator:
    """`?page=N` where each response says how many pages there are (`pages_of(payload)`); stops after the last
    one, or on an empty page, whichever comes first (FACTS: 0- vs 1-based is unconfirmed, so trust the count)."""

    page_size: int
    pages_of: Callable[[Any], int]
    param: str = "page"
    start: int = 0
    size_param: str | None = "limit"

    def first(self) -> dict[str, Any]:
        return _numbered_first_page(self.param, self.start, self.size_param, self.page_size)

    def next(self, params: dict[str, Any], records: list[Any], payload: Any) -> dict[str, Any] | None:
        seen = params[self.param] - self.start + 1
        if not records or seen >= int(self.pages_of(payload)):
            return None
        return {**params, self.param: params[self.param] + 1}

    def label(self, params: dict[str, Any]) -> int:
        return params[self.param]


@dataclass(frozen=True)
class OffsetPaginator:
    """`?Skip=&Take=` style: the end is a page shorter than `Take`."""

    take: int
    skip_param: str = "Skip"
    take_param: str = "Take"

    def first(self) -> dict[str, Any]:
        return {self.skip_param: 0, self.take_param: self.take}

    def next(self, params: dict[str, Any], records: list[Any], payload: Any) -> dict[str, Any] | None:
        if len(records) < self.take:
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
        return params[self.param]
