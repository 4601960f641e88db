"""The shapes of ISOlocity's answers: `{status, message, meta, data}` envelopes, checked before anything relies
on them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mfg_pipeline.http.errors import SourcePayloadError

SYSTEM = "isolocity"
# The doc's default and example. The NCR list may not honour it at all; the paginator follows `meta.per_page`.
PAGE_SIZE = 50
SUCCESS_STATUS = "success"
MAX_MESSAGE_CHARS = 200

_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


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


def record_of_envelope(payload: Any) -> Any:
    """The record of a single-record envelope `{status: "success", message, data: {...}}`."""
    if not isinstance(payload, Mapping) or payload.get("status") != SUCCESS_STATUS:
        raise ValueError(f'expected a {{status: "success", data}} envelope, got {_json_type(payload)}')
    return payload.get("data")
