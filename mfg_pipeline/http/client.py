"""The one HTTP layer every vendor client goes through.

It owns what every API call needs and no vendor client should write again: explicit timeouts, the shared
per-company rate limit (acquired before *every* attempt, retries and token calls included), retries with
exponential backoff and jitter on connection errors, timeouts and 5xx, `Retry-After` on 429, a single token
refresh on 401, errors that name system, endpoint and page without leaking secrets, and request statistics.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Protocol

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from mfg_pipeline.http.auth import RefreshingTokenAuth, SecretAuth
from mfg_pipeline.http.errors import (DeadlineExceeded, PaginationLoopError, SecretMasker, SourceHttpError,
                                     SourcePayloadError)
from mfg_pipeline.http.ratelimit import acquire

DEFAULT_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds
_request_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("request_deadline", default=None)
_SECRET_QUERY = re.compile(r"((?:access_token|api_key|user_token|token)=)[^&\s\"']+", re.IGNORECASE)


class _RedactSecretQueryParams(logging.Filter):
    """urllib3 logs every request line at DEBUG, query string included; Fusion's token travels there."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_QUERY.sub(r"\1***", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactSecretQueryParams())
MAX_RETRY_AFTER = 300.0  # never sleep longer than this on one Retry-After


class Logger(Protocol):
    def info(self, msg: str, *args: Any) -> Any: ...
    def warning(self, msg: str, *args: Any) -> Any: ...


@dataclass
class RequestStats:
    """What one client did; shown as materialization metadata."""

    requests: int = 0  # HTTP requests sent (every attempt)
    retries: int = 0  # attempts after a retryable failure
    throttled: int = 0  # 429 responses received
    token_refreshes: int = 0
    pages: int = 0
    bytes_received: int = 0
    rate_limit_wait_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **increments: float) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


class _Retryable(Exception):
    """An attempt failed in a way worth retrying; `retry_after` is the server's wish, if it gave one."""

    def __init__(self, description: str, retry_after: float | None = None, status: int | None = None):
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    max_elapsed_seconds: float = 900.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            # Honour the server, plus a little jitter so parallel callers do not return in lockstep.
            return min(exc.retry_after, MAX_RETRY_AFTER) + random.uniform(0, 0.5)
        exponential = min(self.backoff_max, self.backoff_initial * 2 ** (state.attempt_number - 1))
        return random.uniform(exponential / 2, exponential)  # "equal jitter"


def _retry_after_seconds(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        from email.utils import parsedate_to_datetime  # HTTP-date form

        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


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


RecordSelector = Callable[[Any], Any]


class ApiClient:
    """HTTP access to one vendor for one company. Knows nothing about Dagster."""

    def __init__(self, *, system: str, base_url: str, limiter: Any, limiter_name: str,
                 auth: SecretAuth | None = None, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 retry: RetryPolicy = RetryPolicy(), logger: Logger | None = None,
                 default_headers: Mapping[str, str] | None = None, pool_size: int = 8):
        self.system = system
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.retry = retry
        self.log = logger or logging.getLogger(f"mfg_pipeline.{system}")
        self.stats = RequestStats()
        self.masker = SecretMasker()
        self._limiter = limiter
        self._limiter_name = limiter_name
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "mfg_pipeline/0.1",
                                     **(default_headers or {})})
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if auth is not None:
            self.masker.add(*auth.secrets())

    def close(self) -> None:
        self.session.close()

    # --- one request, with limit, retries and auth -------------------------------------------------------
    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None,
                page: int | str | None = None, auth: SecretAuth | None = None,
                endpoint: str | None = None, ok_statuses: tuple[int, ...] = (),
                deadline: float | None = None) -> requests.Response:
        """Send one logical request; returns a 2xx response (or one whose status is in `ok_statuses`).

        `deadline` (time.monotonic()): no attempt starts after it, waits for the rate limit end at it, and the
        read timeout shrinks to fit; `DeadlineExceeded` says nothing more was sent."""
        endpoint = endpoint or f"{method} {path}"
        if deadline is None:
            deadline = _request_deadline.get()  # a token call made on behalf of a request with a deadline
        use_auth = auth if auth is not None else self.auth
        if use_auth is not None:
            self.masker.add(*use_auth.secrets())
        refreshed_after_401 = False

        def attempt() -> requests.Response:
            nonlocal refreshed_after_401
            if isinstance(use_auth, RefreshingTokenAuth):
                use_auth.ensure_token()  # may itself call the token endpoint, through this client
                self.masker.add(*use_auth.secrets())
            waited = time.monotonic()
            timeout = self.timeout
            if deadline is None:
                acquire(self._limiter, self._limiter_name)
            else:
                if not acquire(self._limiter, self._limiter_name, timeout=deadline - waited):
                    raise DeadlineExceeded("deadline reached while waiting for the rate limit", system=self.system,
                                           endpoint=endpoint, page=page)
                timeout = (timeout[0], max(1.0, min(timeout[1], deadline - time.monotonic())))
            self.stats.add(requests=1, rate_limit_wait_seconds=time.monotonic() - waited)
            try:
                response = self.session.request(method, self.base_url + path, params=params, json=json_body,
                                                auth=use_auth, timeout=timeout)
            except requests.Timeout:
                raise _Retryable(f"timed out after {timeout[1]:.0f}s") from None
            except requests.ConnectionError as exc:
                raise _Retryable(f"connection failed ({type(exc).__name__})") from None
            self.stats.add(bytes_received=len(response.content))
            status = response.status_code
            if status == 401 and isinstance(use_auth, RefreshingTokenAuth) and not refreshed_after_401:
                refreshed_after_401 = True
                use_auth.invalidate()
                self.stats.add(token_refreshes=1)
                self.log.info(f"{self.system} {endpoint}: 401, renewing the access token")
                raise _Retryable("401 unauthorized; token renewed", retry_after=0.0, status=401)
            if status == 429:
                self.stats.add(throttled=1)
                raise _Retryable("429 too many requests", retry_after=_retry_after_seconds(response) or 1.0,
                                 status=429)
            if status >= 500:
                raise _Retryable(f"HTTP {status}", retry_after=_retry_after_seconds(response), status=status)
            if status >= 400 and status not in ok_statuses:
                raise SourceHttpError(f"HTTP {status}: {self._snippet(response)}", system=self.system,
                                      endpoint=endpoint, page=page, status=status)
            return response

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            self.stats.add(retries=1)
            wait = state.next_action.sleep if state.next_action else 0
            self.log.warning(f"{self.system} {endpoint}" + (f" page {page}" if page is not None else "")
                             + f": {getattr(exc, 'description', exc)}; retry {state.attempt_number} in {wait:.1f}s")

        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            stop=(stop_after_attempt(self.retry.max_attempts) | stop_after_delay(self.retry.max_elapsed_seconds)
                  | (lambda state: deadline is not None
                     and time.monotonic() + (state.upcoming_sleep or 0) >= deadline)),
            wait=self.retry.wait, before_sleep=before_sleep, reraise=True)
        token = _request_deadline.set(deadline)
        try:
            return retrying(attempt)
        except _Retryable as exc:
            if deadline is not None and time.monotonic() + self.retry.backoff_initial >= deadline:
                raise DeadlineExceeded(f"{exc.description}; deadline reached before a retry", system=self.system,
                                       endpoint=endpoint, page=page, status=exc.status) from None
            raise SourceHttpError(f"{exc.description}, giving up after {self.retry.max_attempts} attempts",
                                  system=self.system, endpoint=endpoint, page=page, status=exc.status) from None
        finally:
            _request_deadline.reset(token)

    def get_json(self, method: str, path: str, *, page: int | str | None = None, endpoint: str | None = None,
                 **kwargs: Any) -> Any:
        endpoint = endpoint or f"{method} {path}"
        response = self.request(method, path, page=page, endpoint=endpoint, **kwargs)
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError):
            content_type = response.headers.get("Content-Type", "no content type")
            raise SourcePayloadError(f"response is not JSON ({content_type}): {self._snippet(response)}",
                                     system=self.system, endpoint=endpoint, page=page) from None

    def _snippet(self, response: requests.Response, limit: int = 200) -> str:
        text = response.text[:limit].replace("\n", " ").strip() or "(empty body)"
        return self.masker.mask(text)

    # --- paging ------------------------------------------------------------------------------------------
    def pages(self, method: str, path: str, paginator: Paginator, *, params: Mapping[str, Any] | None = None,
              json_body: Any = None, select: RecordSelector = lambda payload: payload,
              endpoint: str | None = None, max_pages: int = 100_000) -> Iterator[Page]:
        """Every page of a list, until the paginator says stop. Each page must be a JSON array after `select`,
        and a page identical to the previous one (a server ignoring the page parameter) is an error."""
        endpoint = endpoint or f"{method} {path}"
        page_params = paginator.first()
        previous_fingerprint: str | None = None
        for _ in range(max_pages):
            label = paginator.label(page_params)
            sent = {k: v for k, v in page_params.items() if not k.startswith("_")}  # "_" keys: paginator state
            payload = self.get_json(method, path, params={**(params or {}), **sent}, json_body=json_body,
                                    page=label, endpoint=endpoint)
            try:
                records = select(payload)
            except SourcePayloadError:
                raise
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise SourcePayloadError(f"unexpected response shape ({exc})", system=self.system,
                                         endpoint=endpoint, page=label) from None
            if not isinstance(records, list):
                raise SourcePayloadError(f"expected a JSON array of records, got {type(records).__name__}",
                                         system=self.system, endpoint=endpoint, page=label)
            self.stats.add(pages=1)
            fingerprint = json.dumps(records, sort_keys=True, default=str) if records else None
            if fingerprint is not None and fingerprint == previous_fingerprint:
                raise PaginationLoopError("the server returned the same records as the previous page; "
                                          "it may be ignoring the paging parameters", system=self.system,
                                          endpoint=endpoint, page=label)
            previous_fingerprint = fingerprint
            yield Page(label, records, payload)
            next_params = paginator.next(page_params, records, payload)
            if next_params is None:
                return
            page_params = next_params
        raise PaginationLoopError(f"more than {max_pages} pages; stopping", system=self.system,
                                  endpoint=endpoint, page=paginator.label(page_params))
