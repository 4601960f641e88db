"""Auth strategies for the shared HTTP client, as `requests.auth.AuthBase` objects.

Static schemes (bearer token, fixed headers) just decorate the request. `RefreshingTokenAuth` obtains a token
from a callable (which itself goes through the rate-limited client), renews it before it expires, and is told to
drop it when the server answers 401 so the next attempt fetches a fresh one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

import requests
from requests.auth import AuthBase


class SecretAuth(AuthBase):
    """An auth scheme that can list its secret values, so errors and logs can mask them."""

    def secrets(self) -> list[str]:
        return []


class HeaderAuth(SecretAuth):
    """Fixed headers (e.g. Lagerkoll's `store` + `api_key`, Traede's bearer + `X-Traede-App-Key`)."""

    def __init__(self, headers: Mapping[str, str], secret_headers: tuple[str, ...] = ()):
        self.headers = dict(headers)
        self.secret_headers = secret_headers

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self.headers)
        return request

    def secrets(self) -> list[str]:
        return [self.headers[h] for h in self.secret_headers if h in self.headers]


class BearerAuth(HeaderAuth):
    def __init__(
        self, token: str, extra_headers: Mapping[str, str] | None = None, extra_secret_headers: tuple[str, ...] = ()
    ):
        super().__init__(
            {"Authorization": f"Bearer {token}", **(extra_headers or {})},
            secret_headers=("Authorization",) + extra_secret_headers,
        )
        self.token = token

    def secrets(self) -> list[str]:
        return [self.token] + super().secrets()


class BasicAuth(SecretAuth, requests.auth.HTTPBasicAuth):
    """HTTP Basic where both halves are secret (Fusion's API key and secret)."""

    def secrets(self) -> list[str]:
        return [str(self.username), str(self.password)]


class RefreshingTokenAuth(SecretAuth):
    """A token fetched on demand, renewed `refresh_margin` seconds before `ttl`, and after any 401.

    `fetch_token(replacing)` returns a token; `replacing` is True when a token we held is being replaced (it is
    about to expire or the server refused it), so the fetcher must not hand back the same one.

    `placement` is "query" (Fusion's `access_token` parameter) or "header" (Authorization: Bearer).
    """

    def __init__(
        self,
        fetch_token: Callable[[bool], str],
        *,
        ttl: float,
        refresh_margin: float = 300.0,
        placement: str = "query",
        query_param: str = "access_token",
        on_new_token: Callable[[str], None] | None = None,
    ):
        if placement not in ("query", "header"):
            raise ValueError("placement must be 'query' or 'header'")
        self._fetch_token = fetch_token
        self.ttl = ttl
        self.refresh_margin = min(refresh_margin, ttl / 2)
        self.placement = placement
        self.query_param = query_param
        self._on_new_token = on_new_token
        self._token: str | None = None
        self._replacing = False  # a token was held before: the next fetch must produce a new one
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def ensure_token(self) -> str:
        """The current token, fetching a new one when there is none or it is about to expire."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - self.refresh_margin:
                self._token = self._fetch_token(self._replacing or self._token is not None)
                self._replacing = False
                self._expires_at = time.monotonic() + self.ttl
                if self._on_new_token:
                    self._on_new_token(self._token)
            return self._token

    def invalidate(self) -> None:
        """The server rejected the token (401): the next request fetches a new one."""
        with self._lock:
            self._token = None
            self._replacing = True

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.ensure_token()
        if self.placement == "header":
            request.headers["Authorization"] = f"Bearer {token}"
        else:
            request.prepare_url(request.url or "", {self.query_param: token})
        return request

    def secrets(self) -> list[str]:
        return [self._token] if self._token else []
