"""The one HTTP layer every vendor client goes through.

It owns what every API call needs and no vendor client should write again: explicit timeouts, the shared
per-company rate limit (acquired before *every* attempt, retries and token calls included), retries with
exponential backoff and jitter on timeouts, dropped connections and 5xx, `Retry-After` on 429, a single token
refresh on 401, errors that name system, endpoint and page without leaking secrets, and request statistics.

A host that cannot be reached at all (connection refused, unknown name, connect timeout) is almost always a
wrong base URL: it gets a short retry budget (`RetryPolicy.unreachable_seconds`) and then an error naming the
host and the variable that sets it, instead of minutes of backoff.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, stop_any
from tenacity.stop import stop_base
from urllib3.exceptions import NameResolutionError, NewConnectionError

from mfg_pipeline.http.auth import RefreshingTokenAuth, SecretAuth
from mfg_pipeline.http.errors import (
    DeadlineExceeded,
    NotJsonError,
    PaginationLoopError,
    SecretMasker,
    SourceConfigurationError,
    SourceHttpError,
    SourcePayloadError,
)
from mfg_pipeline.http.pagination import Page, Paginator, RecordSelector, whole_payload
from mfg_pipeline.http.ratelimit import acquire, bucket_name, shared_limiter

DEFAULT_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds
# Hosts this process found unreachable: base URL -> (first, last refusal). A run's steps share one wait: once a
# host has been unreachable for the whole budget, the next caller in this process fails at its first refusal.
_unreachable_hosts: dict[str, tuple[float, float]] = {}
NEW_OUTAGE_AFTER = 60.0  # seconds without a refusal: a refusal after that starts a new outage (and a new wait)
_unreachable_lock = threading.Lock()
MAX_RETRY_AFTER = 300.0  # never sleep longer than this on one Retry-After
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

    def __init__(
        self,
        description: str,
        retry_after: float | None = None,
        status: int | None = None,
        wait_at_most: float | None = None,
    ):
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after
        self.status = status
        self.wait_at_most = wait_at_most  # e.g. what is left of an unreachable host's budget


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    max_elapsed_seconds: float = 900.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    unreachable_seconds: float = 15.0  # how long a host that refuses connections is retried

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            # Honour the server, plus a little jitter so parallel callers do not return in lockstep.
            return min(exc.retry_after, MAX_RETRY_AFTER) + random.uniform(0, 0.5)
        exponential = min(self.backoff_max, self.backoff_initial * 2 ** (state.attempt_number - 1))
        wait = random.uniform(exponential / 2, exponential)  # "equal jitter"
        if isinstance(exc, _Retryable) and exc.wait_at_most is not None:
            wait = min(wait, exc.wait_at_most)
        return wait


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


def _unreachable_reason(exc: requests.ConnectionError) -> str | None:
    """Why no connection could be opened at all (None: it was opened, then dropped, which is worth retrying)."""
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(reason, NameResolutionError):
        return "host name not found"
    if isinstance(reason, NewConnectionError):
        text = str(reason)
        return "connection refused" if "refused" in text.lower() else text.split(": ", 1)[-1][:120]
    return None


@dataclass(frozen=True)
class Vendor:
    """Who we talk to: the system's name, where it lives, and which variables a person would fix when it refuses
    us or cannot be reached (named in errors)."""

    system: str
    base_url: str
    base_url_variable: str | None = None
    credential_variables: tuple[str, ...] = ()


class ApiClient:
    """HTTP access to one vendor for one company. Knows nothing about Dagster."""

    def __init__(
        self,
        *,
        vendor: Vendor,
        limiter: Any,
        limiter_name: str,
        auth: SecretAuth | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        logger: Logger | None = None,
        default_headers: Mapping[str, str] | None = None,
        pool_size: int = 8,
    ):
        self.vendor = vendor
        self.system = vendor.system
        self.base_url = vendor.base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.retry = retry
        self.log: Logger = logger or logging.getLogger(f"mfg_pipeline.{vendor.system}")
        self.stats = RequestStats()
        self.masker = SecretMasker()
        self._limiter = limiter
        self._limiter_name = limiter_name
        self.session = requests.Session()
        self.session.headers.update(
            {"Accept": "application/json", "User-Agent": "mfg_pipeline/0.1", **(default_headers or {})}
        )
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if auth is not None:
            self.masker.add(*auth.secrets())

    @classmethod
    def for_company(
        cls,
        vendor: Vendor,
        *,
        auth: SecretAuth | None,
        rate_limit_per_minute: int,
        budget_identity: str,
        data_dir: Path,
        logger: Logger | None = None,
        **kwargs: Any,
    ) -> ApiClient:
        """A client drawing from the company's shared request budget, named from the base URL and a (hashed)
        identity of the company (its API key, store id, ...), so every process calling it shares one limit."""
        limiter_name = bucket_name(vendor.system, vendor.base_url, budget_identity)
        limiter = shared_limiter(limiter_name, rate_limit_per_minute, data_dir)
        return cls(vendor=vendor, auth=auth, limiter=limiter, limiter_name=limiter_name, logger=logger, **kwargs)

    def close(self) -> None:
        self.session.close()

    def url_of(self, path: str) -> str:
        return self.base_url + path

    # --- one request, with limit, retries and auth -------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        page: int | str | None = None,
        auth: SecretAuth | None = None,
        endpoint: str | None = None,
        ok_statuses: tuple[int, ...] = (),
        deadline: float | None = None,
    ) -> requests.Response:
        """Send one logical request; returns a 2xx response (or one whose status is in `ok_statuses`).

        `deadline` (time.monotonic()): no attempt starts after it, waits for the rate limit end at it, and the
        read timeout shrinks to fit; `DeadlineExceeded` says nothing more was sent."""
        if deadline is None:
            deadline = _request_deadline.get()  # a token call made on behalf of a request with a deadline
        call = _Call(
            self,
            method,
            path,
            params=params,
            json_body=json_body,
            page=page,
            auth=auth if auth is not None else self.auth,
            endpoint=endpoint or f"{method} {path}",
            ok_statuses=ok_statuses,
            deadline=deadline,
        )
        token = _request_deadline.set(deadline)
        try:
            return call.run()
        finally:
            _request_deadline.reset(token)

    def get_json(
        self, method: str, path: str, *, page: int | str | None = None, endpoint: str | None = None, **kwargs: Any
    ) -> Any:
        endpoint = endpoint or f"{method} {path}"
        response = self.request(method, path, page=page, endpoint=endpoint, **kwargs)
        return self.json_of(response, endpoint, page)

    def json_of(self, response: requests.Response, endpoint: str, page: int | str | None = None) -> Any:
        """The response's JSON, or an error saying what came instead, from where, and which setting to check."""
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError):
            pass
        content_type = response.headers.get("Content-Type", "no content type").split(";")[0].strip()
        url = (response.url or self.url_of("")).split("?")[0]  # no query string: Fusion's token travels there
        hint = f"; check {self.vendor.base_url_variable}" if self.vendor.base_url_variable else ""
        raise NotJsonError(
            f"response is not JSON: the answer from {url} was {content_type}: {self.snippet(response)}{hint}",
            variable=self.vendor.base_url_variable,
            system=self.system,
            endpoint=endpoint,
            page=page,
        ) from None

    def snippet(self, response: requests.Response, limit: int = 200) -> str:
        text = response.text[:limit].replace("\n", " ").strip() or "(empty body)"
        return self.masker.mask(text)

    def refused(
        self, response: requests.Response, endpoint: str, page: int | str | None = None
    ) -> SourceConfigurationError:
        """401/403: the credentials were refused; the error keeps the vendor's (masked) answer, which may carry
        an error code, and names the variables that hold the credentials."""
        status = response.status_code
        names = " and ".join(self.vendor.credential_variables) or "the credentials"
        return SourceConfigurationError(
            f"HTTP {status}: {self.snippet(response)}; the credentials were refused: check {names}",
            variable=self.vendor.credential_variables[0] if self.vendor.credential_variables else None,
            system=self.system,
            endpoint=endpoint,
            page=page,
            status=status,
        )

    # --- paging ------------------------------------------------------------------------------------------
    def pages(
        self,
        method: str,
        path: str,
        paginator: Paginator,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        select: RecordSelector = whole_payload,
        endpoint: str | None = None,
        max_pages: int = 100_000,
    ) -> Iterator[Page]:
        """Every page of a list, until the paginator says stop. Each page must be a JSON array after `select`,
        and a page identical to the previous one (a server ignoring the page parameter) is an error."""
        endpoint = endpoint or f"{method} {path}"
        page_params = paginator.first()
        previous_fingerprint: str | None = None
        for _ in range(max_pages):
            label = paginator.label(page_params)
            sent = {k: v for k, v in page_params.items() if not k.startswith("_")}  # "_" keys: paginator state
            payload = self.get_json(
                method, path, params={**(params or {}), **sent}, json_body=json_body, page=label, endpoint=endpoint
            )
            records = self._records_of(payload, select, endpoint, label)
            self.stats.add(pages=1)
            fingerprint = json.dumps(records, sort_keys=True, default=str) if records else None
            if fingerprint is not None and fingerprint == previous_fingerprint:
                raise PaginationLoopError(
                    "the server returned the same records as the previous page; it may be ignoring the paging "
                    "parameters",
                    system=self.system,
                    endpoint=endpoint,
                    page=label,
                )
            previous_fingerprint = fingerprint
            yield Page(label, records, payload)
            next_params = paginator.next(page_params, records, payload)
            if next_params is None:
                return
            page_params = next_params
        raise PaginationLoopError(
            f"more than {max_pages} pages; stopping",
            system=self.system,
            endpoint=endpoint,
            page=paginator.label(page_params),
        )

    def _records_of(self, payload: Any, select: RecordSelector, endpoint: str, label: int | str) -> list[Any]:
        try:
            records = select(payload)
        except SourcePayloadError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise SourcePayloadError(
                f"unexpected response shape ({exc})", system=self.system, endpoint=endpoint, page=label
            ) from None
        if not isinstance(records, list):
            raise SourcePayloadError(
                f"expected a JSON array of records, got {type(records).__name__}",
                system=self.system,
                endpoint=endpoint,
                page=label,
            )
        return records


class _PastDeadline(stop_base):
    """Stop retrying when the next attempt would start after the call's deadline."""

    def __init__(self, call: _Call):
        self.call = call

    def __call__(self, state: RetryCallState) -> bool:
        deadline = self.call.deadline
        return deadline is not None and time.monotonic() + (state.upcoming_sleep or 0) >= deadline


class _Call:
    """One logical request: its attempts, the rate-limit slot each takes, and how each answer is judged."""

    def __init__(
        self,
        api: ApiClient,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json_body: Any,
        page: int | str | None,
        auth: SecretAuth | None,
        endpoint: str,
        ok_statuses: tuple[int, ...],
        deadline: float | None,
    ):
        self.api, self.method, self.path = api, method, path
        self.params, self.json_body, self.page, self.auth = params, json_body, page, auth
        self.endpoint, self.ok_statuses, self.deadline = endpoint, ok_statuses, deadline
        self.refreshed_after_401 = False
        self.unreachable_since: float | None = None
        if auth is not None:
            api.masker.add(*auth.secrets())

    def run(self) -> requests.Response:
        retry = self.api.retry
        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_any(
                stop_after_attempt(retry.max_attempts), stop_after_delay(retry.max_elapsed_seconds), _PastDeadline(self)
            ),
            wait=retry.wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt)
        except _Retryable as exc:
            if self.deadline is not None and time.monotonic() + retry.backoff_initial >= self.deadline:
                raise DeadlineExceeded(
                    f"{exc.description}; deadline reached before a retry", **self._where(status=exc.status)
                ) from None
            raise SourceHttpError(
                f"{exc.description}, giving up after {retry.max_attempts} attempts", **self._where(status=exc.status)
            ) from None

    def _where(self, status: int | None = None) -> dict[str, Any]:
        return {"system": self.api.system, "endpoint": self.endpoint, "page": self.page, "status": status}

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.api.stats.add(retries=1)
        wait = state.next_action.sleep if state.next_action else 0
        where = f"{self.api.system} {self.endpoint}" + (f" page {self.page}" if self.page is not None else "")
        self.api.log.warning(
            f"{where}: {getattr(exc, 'description', exc)}; retry {state.attempt_number} in {wait:.1f}s"
        )

    def _attempt(self) -> requests.Response:
        if isinstance(self.auth, RefreshingTokenAuth):
            self.auth.ensure_token()  # may itself call the token endpoint, through this client
            self.api.masker.add(*self.auth.secrets())
        timeout = self._take_slot()
        try:
            response = self.api.session.request(
                self.method,
                self.api.url_of(self.path),
                params=self.params,
                json=self.json_body,
                auth=self.auth,
                timeout=timeout,
            )
        except requests.ConnectionError as exc:  # before Timeout: a connect timeout is both
            raise self._connection_failed(exc) from None
        except requests.Timeout:
            raise _Retryable(f"timed out after {timeout[1]:.0f}s") from None
        self.unreachable_since = None
        with _unreachable_lock:
            _unreachable_hosts.pop(self.api.base_url, None)
        self.api.stats.add(bytes_received=len(response.content))
        return self._judge(response)

    def _take_slot(self) -> tuple[float, float]:
        """Wait for a slot of the shared budget; returns the timeout for this attempt (shrunk to the deadline)."""
        api, started = self.api, time.monotonic()
        timeout = api.timeout
        if self.deadline is None:
            acquire(api._limiter, api._limiter_name)
        else:
            if not acquire(api._limiter, api._limiter_name, timeout=self.deadline - started):
                raise DeadlineExceeded("deadline reached while waiting for the rate limit", **self._where())
            timeout = (timeout[0], max(1.0, min(timeout[1], self.deadline - time.monotonic())))
        api.stats.add(requests=1, rate_limit_wait_seconds=time.monotonic() - started)
        return timeout

    def _connection_failed(self, exc: requests.ConnectionError) -> Exception:
        reason = _unreachable_reason(exc)
        if reason is None:
            return _Retryable(f"connection failed ({type(exc).__name__})")
        now = time.monotonic()
        if self.unreachable_since is None:
            with _unreachable_lock:  # refused earlier in this process (another step of the run): that wait counts
                first, last = _unreachable_hosts.get(self.api.base_url, (now, now))
                self.unreachable_since = first if now - last < NEW_OUTAGE_AFTER else now
        with _unreachable_lock:
            _unreachable_hosts[self.api.base_url] = (self.unreachable_since, now)
        vendor = self.api.vendor
        if now - self.unreachable_since >= self.api.retry.unreachable_seconds:
            hint = f"; check {vendor.base_url_variable}" if vendor.base_url_variable else ""
            return SourceConfigurationError(
                f"cannot connect to {self.api.base_url} ({reason}) for {now - self.unreachable_since:.0f}s{hint}",
                variable=vendor.base_url_variable,
                **self._where(),
            )
        left = self.api.retry.unreachable_seconds - (now - self.unreachable_since)
        return _Retryable(f"cannot connect to {self.api.base_url} ({reason})", wait_at_most=left)

    def _judge(self, response: requests.Response) -> requests.Response:
        status = response.status_code
        if status == 401 and isinstance(self.auth, RefreshingTokenAuth) and not self.refreshed_after_401:
            self.refreshed_after_401 = True
            self.auth.invalidate()
            self.api.stats.add(token_refreshes=1)
            self.api.log.info(f"{self.api.system} {self.endpoint}: 401, renewing the access token")
            raise _Retryable("401 unauthorized; token renewed", retry_after=0.0, status=401)
        if status == 429:
            self.api.stats.add(throttled=1)
            raise _Retryable("429 too many requests", retry_after=_retry_after_seconds(response) or 1.0, status=429)
        if status >= 500:
            raise _Retryable(f"HTTP {status}", retry_after=_retry_after_seconds(response), status=status)
        if status >= 400 and status not in self.ok_statuses:
            if status in (401, 403):
                raise self.api.refused(response, self.endpoint, self.page)
            raise SourceHttpError(f"HTTP {status}: {self.api.snippet(response)}", **self._where(status=status))
        return response
