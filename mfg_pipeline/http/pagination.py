"""Paging strategies: small objects that say where the first page is and where the next one is.

Each vendor picks one by declaration; the loop that follows them (with loop detection) is `ApiClient.pages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


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
        params: dict[str, Any] = {self.param: self.start}
        if self.size_param:
            params[self.size_param] = self.page_size
        params["_full_page"] = self.page_size
        return params

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
        params: dict[str, Any] = {self.param: self.start}
        if self.size_param:
            params[self.size_param] = self.page_size
        return params

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
