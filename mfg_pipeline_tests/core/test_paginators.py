"""Paging strategies, walked over scripted servers: where each starts, which page comes next, where the walk ends
(short page, empty page, reported totals, a server that pages its own way), and how each page is labelled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mfg_pipeline.http.pagination import (
    OffsetPaginator,
    PageMetaPaginator,
    PageNumberPaginator,
    Paginator,
    TotalPagesPaginator,
)

Server = Callable[[dict[str, Any]], tuple[list[Any], Any]]  # sent params -> (records, payload)


def walk(paginator: Paginator, server: Server, limit: int = 50) -> list[tuple[dict[str, Any], int]]:
    """The (params sent, records received) of every request the paginator makes."""
    params: dict[str, Any] | None = paginator.first()
    calls = []
    while params is not None and len(calls) < limit:
        sent = {k: v for k, v in params.items() if not k.startswith("_")}
        records, payload = server(sent)
        calls.append((sent, len(records)))
        params = paginator.next(params, records, payload)
    return calls


def numbered(total: int, size: int, first: int = 1) -> Server:
    """Pages of `size` records numbered from `first`."""
    return lambda p: (list(range(total))[(p["page"] - first) * size : (p["page"] - first + 1) * size], None)


@pytest.mark.parametrize(
    ("total", "served_size", "expected_sizes"),
    [
        (25, 10, [10, 10, 5]),  # a short last page ends it
        (20, 10, [10, 10, 0]),  # a full last page costs one empty request
        (0, 10, [0]),
        (45, 20, [20, 20, 5]),  # the server pages by more than the doc's 10: its own size counts
    ],
)
def test_page_numbers_end_on_the_first_short_or_empty_page(total, served_size, expected_sizes):
    calls = walk(PageNumberPaginator(page_size=10), numbered(total, served_size))
    assert [n for _, n in calls] == expected_sizes
    assert [sent["page"] for sent, _ in calls] == list(range(1, len(expected_sizes) + 1))


def test_page_numbers_send_the_page_size_only_to_apis_that_take_one():
    assert PageNumberPaginator(page_size=50).first() == {"page": 1, "_full_page": 50}
    assert PageNumberPaginator(page_size=50, size_param="limit", start=0).first() == {
        "page": 0,
        "limit": 50,
        "_full_page": 50,
    }
    assert PageNumberPaginator(page_size=50).label({"page": 3}) == 3


def total_pages_server(total: int, size: int, server_first: int, echo: bool) -> Server:
    pages = max(1, -(-total // size))

    def serve(p: dict[str, Any]) -> tuple[list[Any], Any]:
        index = max(p["page"], server_first) - server_first  # a 1-based server serves page 1 when asked for 0
        records = list(range(total))[index * size : (index + 1) * size]
        return records, {"pages": pages, "page": index + server_first if echo else None}

    return serve


@pytest.mark.parametrize(
    ("server_first", "echo", "expected_pages"),
    [
        (0, True, [0, 1, 2]),  # the doc's reading: pages from 0
        (1, True, [0, 2, 3]),  # asked for 0, served 1 and said so: the walk follows the server's numbering
        (0, False, [0, 1, 2]),  # no echo: the count of pages served decides
    ],
)
def test_total_pages_stop_after_the_reported_last_page_whatever_the_servers_first_page(
    server_first, echo, expected_pages
):
    paginator = TotalPagesPaginator(
        page_size=10, pages_of=lambda payload: payload["pages"], echo_of=(lambda p: p["page"]) if echo else None
    )
    calls = walk(paginator, total_pages_server(25, 10, server_first, echo))
    assert [sent["page"] for sent, _ in calls] == expected_pages
    assert sum(n for _, n in calls) == 25 and all(sent["limit"] == 10 for sent, _ in calls)


def test_total_pages_stop_on_an_empty_page_even_if_the_count_says_more():
    paginator = TotalPagesPaginator(page_size=10, pages_of=lambda payload: 99)
    calls = walk(paginator, lambda p: ([], {"pages": 99}))
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("total", "ignores_paging", "expected"),
    [
        (25, False, [(0, 10), (10, 10), (20, 5)]),
        (20, False, [(0, 10), (10, 10), (20, 0)]),
        (37, True, [(0, 37)]),  # a child list that documents no paging sends everything: one request
    ],
)
def test_offsets_advance_by_what_came_back_and_a_longer_page_is_the_whole_list(total, ignores_paging, expected):
    def serve(p: dict[str, Any]) -> tuple[list[Any], Any]:
        records = list(range(total))
        return (records if ignores_paging else records[p["Skip"] : p["Skip"] + p["Take"]]), None

    calls = walk(OffsetPaginator(take=10, whole_list_when_longer=True), serve)
    assert [(sent["Skip"], n) for sent, n in calls] == expected
    assert OffsetPaginator(take=10).label({"Skip": 20, "Take": 10}) == "Skip=20"


def meta_server(total: int, cap: int | None, with_to: bool) -> Server:
    def serve(p: dict[str, Any]) -> tuple[list[Any], Any]:
        size = min(p["per_page"], cap) if cap else p["per_page"]
        start = (p["page"] - 1) * size
        records = list(range(total))[start : start + size]
        meta = {"current_page": p["page"], "per_page": size, "total": total}
        if with_to:
            meta["to"] = start + len(records) if records else None
        return records, {"meta": meta}

    return serve


@pytest.mark.parametrize(
    ("total", "cap", "with_to", "expected_sizes"),
    [
        (250, None, True, [100, 100, 50]),
        (200, None, True, [100, 100]),  # an exactly full last page: no empty request
        (200, None, False, [100, 100]),  # without `to`, current_page x per_page says the same
        (120, 50, True, [50, 50, 20]),  # the server capped per_page at 50: later pages ask for 50
        (0, None, True, [0]),
    ],
)
def test_page_meta_ends_where_the_servers_own_totals_say(total, cap, with_to, expected_sizes):
    calls = walk(PageMetaPaginator(page_size=100), meta_server(total, cap, with_to))
    assert [n for _, n in calls] == expected_sizes
    if cap:
        assert [sent["per_page"] for sent, _ in calls] == [100, 50, 50]
