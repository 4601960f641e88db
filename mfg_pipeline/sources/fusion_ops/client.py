"""Fusion Operations client: token auth over HTTP Basic, page-numbered bare-array lists. No Dagster inside."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import quote

from mfg_pipeline.http.auth import BasicAuth, RefreshingTokenAuth
from mfg_pipeline.http.client import ApiClient, Logger, Page
from mfg_pipeline.http.errors import SourceHttpError, SourcePayloadError
from mfg_pipeline.http.pagination import PageNumberPaginator
from mfg_pipeline.http.ratelimit import bucket_name, shared_limiter
from mfg_pipeline.sources.fusion_ops.settings import FusionOpsSettings
from mfg_pipeline.streams import Stream

SYSTEM = "fusion_ops"
AUTHORIZATION_PATH = "/api/v1/authorization"
PAGE_SIZE = 25  # the doc: "This service is paginated, returning 25 ... per page"


class FusionOpsClient:
    system = SYSTEM

    def __init__(self, settings: FusionOpsSettings, data_dir: Path, logger: Logger | None = None):
        self.settings = settings
        self.naive_timezone = settings.company_timezone
        self._basic = BasicAuth(settings.api_key, settings.api_secret)
        self._token_auth = RefreshingTokenAuth(self._fetch_token, ttl=settings.token_ttl_seconds,
                                               refresh_margin=300, placement="query", query_param="access_token")
        limiter_name = bucket_name(SYSTEM, settings.base_url, settings.api_key)
        self.api = ApiClient(system=SYSTEM, base_url=settings.base_url, auth=self._token_auth, logger=logger,
                             limiter=shared_limiter(limiter_name, settings.rate_limit_per_minute, data_dir),
                             limiter_name=limiter_name)
        self.api.masker.add(*self._basic.secrets())
        self.stats = self.api.stats

    def close(self) -> None:
        self.api.close()

    def _fetch_token(self, replacing: bool) -> str:
        """GET returns the company's current token (shared with other runs, so no new token per run); POST makes
        a new one, used when there is none yet or ours is being replaced (about to expire, or refused)."""
        try:
            if not replacing:
                response = self.api.request("GET", AUTHORIZATION_PATH, auth=self._basic, ok_statuses=(404,),
                                            endpoint=f"GET {AUTHORIZATION_PATH}")
                if response.status_code == 200:
                    return self._token_from(response, "GET")
            response = self.api.request("POST", AUTHORIZATION_PATH, auth=self._basic,
                                        json_body={"scopes": ["productions_write"]},
                                        endpoint=f"POST {AUTHORIZATION_PATH}")
            return self._token_from(response, "POST")
        except SourceHttpError as exc:
            if exc.status in (401, 403):
                raise SourceHttpError("the API key/secret were refused: check FUSION_OPS_API_KEY and "
                                      "FUSION_OPS_API_SECRET", system=SYSTEM, endpoint=exc.endpoint,
                                      status=exc.status) from None
            raise

    def _token_from(self, response: Any, method: str) -> str:
        try:
            token = response.json()["token"]
        except (ValueError, KeyError, TypeError):
            token = None
        if not isinstance(token, str) or not token:
            # Do not quote the body: it may hold a token.
            raise SourcePayloadError("the authorization response has no 'token' string", system=SYSTEM,
                                     endpoint=f"{method} {AUTHORIZATION_PATH}")
        self.api.masker.add(token)
        return token

    def pages(self, stream: Stream, params: Mapping[str, Any]) -> Iterator[Page]:
        return self.api.pages(stream.method, stream.path, PageNumberPaginator(page_size=PAGE_SIZE), params=params,
                              endpoint=stream.endpoint)

    def read_changes(self, channel: str, deadline: float | None = None) -> list:
        """One call to the changes feed (destructive: what it returns is gone from the server's stack).

        429 and 5xx answers are retried safely (the server removed nothing). A response lost in transit after the
        server removed its changes cannot be recovered by anyone; the caller journals every answer it does get
        before it calls again. With `deadline` (monotonic), `DeadlineExceeded` means nothing was read."""
        endpoint = f"GET /api/v1/changes/{channel}"
        payload = self.api.get_json("GET", f"/api/v1/changes/{quote(channel, safe='')}", endpoint=endpoint,
                                    deadline=deadline)
        if not isinstance(payload, list):
            raise SourcePayloadError(f"expected a JSON array of changes, got {type(payload).__name__}",
                                     system=SYSTEM, endpoint=endpoint)
        return payload
