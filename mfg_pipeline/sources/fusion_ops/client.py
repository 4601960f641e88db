"""Fusion Operations client: token auth over HTTP Basic, page-numbered bare-array lists, and the changes feed.
No Dagster inside."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from mfg_pipeline.http.auth import BasicAuth, RefreshingTokenAuth
from mfg_pipeline.http.client import ApiClient, Logger, Vendor
from mfg_pipeline.http.errors import SourcePayloadError
from mfg_pipeline.http.pagination import PageNumberPaginator
from mfg_pipeline.rest import ListShape, RestClient
from mfg_pipeline.sources.fusion_ops.settings import FusionOpsSettings

SYSTEM = "fusion_ops"
AUTHORIZATION_PATH = "/api/v1/authorization"
PAGE_SIZE = 25  # the doc: "This service is paginated, returning 25 ... per page"
LISTS = ListShape(paginator=lambda: PageNumberPaginator(page_size=PAGE_SIZE))


class FusionOpsClient(RestClient):
    def __init__(self, settings: FusionOpsSettings, data_dir: Path, logger: Logger | None = None):
        self.settings = settings
        self._basic = BasicAuth(settings.api_key, settings.api_secret)
        self._token_auth = RefreshingTokenAuth(
            self._fetch_token,
            ttl=settings.token_ttl_seconds,
            refresh_margin=300,
            placement="query",
            query_param="access_token",
        )
        vendor = Vendor(SYSTEM, settings.base_url, settings.BASE_URL_VARIABLE, settings.CREDENTIAL_VARIABLES)
        api = ApiClient.for_company(
            vendor,
            auth=self._token_auth,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            budget_identity=settings.api_key,
            data_dir=data_dir,
            logger=logger,
        )
        api.masker.add(*self._basic.secrets())
        super().__init__(
            api, LISTS, settings.company_timezone, naive_timezone_variable=settings.COMPANY_TIMEZONE_VARIABLE
        )

    def _fetch_token(self, replacing: bool) -> str:
        """GET returns the company's current token (shared with other runs, so no new token per run); POST makes
        a new one, used when there is none yet or ours is being replaced (about to expire, or refused)."""
        if not replacing:
            response = self.api.request(
                "GET", AUTHORIZATION_PATH, auth=self._basic, ok_statuses=(404,), endpoint=f"GET {AUTHORIZATION_PATH}"
            )
            if response.status_code == 200:
                return self._token_from(response, "GET")
        response = self.api.request(
            "POST",
            AUTHORIZATION_PATH,
            auth=self._basic,
            json_body={"scopes": ["productions_write"]},
            endpoint=f"POST {AUTHORIZATION_PATH}",
        )
        return self._token_from(response, "POST")

    def _token_from(self, response, method: str) -> str:
        endpoint = f"{method} {AUTHORIZATION_PATH}"
        payload = self.api.json_of(response, endpoint)  # an HTML page (a wrong base URL) is named as such
        token = payload.get("token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            # Do not quote the body: it may hold a token.
            raise SourcePayloadError(
                "the authorization response has no 'token' string", system=SYSTEM, endpoint=endpoint
            )
        self.api.masker.add(token)
        return token

    def read_changes(self, channel: str, deadline: float | None = None) -> list:
        """One call to the changes feed (destructive: what it returns is gone from the server's stack).

        429 and 5xx answers are retried safely (the server removed nothing). A response lost in transit after the
        server removed its changes cannot be recovered by anyone; the caller journals every answer it does get
        before it calls again. With `deadline` (monotonic), `DeadlineExceeded` means nothing was read."""
        endpoint = f"GET /api/v1/changes/{channel}"
        payload = self.api.get_json(
            "GET", f"/api/v1/changes/{quote(channel, safe='')}", endpoint=endpoint, deadline=deadline
        )
        if not isinstance(payload, list):
            raise SourcePayloadError(
                f"expected a JSON array of changes, got {type(payload).__name__}", system=SYSTEM, endpoint=endpoint
            )
        return payload
