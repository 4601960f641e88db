"""ISOlocity client: bearer token, `{status, message, meta, data}` envelopes paged by `page`/`per_page` and
followed by their `meta`, paths from the settings (ISOlocity does not publish them). No Dagster inside."""

from __future__ import annotations

from pathlib import Path

from mfg_pipeline.http.auth import BearerAuth
from mfg_pipeline.http.client import ApiClient, Logger, Vendor
from mfg_pipeline.http.pagination import PageMetaPaginator
from mfg_pipeline.rest import ListShape, RestClient
from mfg_pipeline.sources.isolocity.settings import IsolocitySettings
from mfg_pipeline.sources.isolocity.shapes import PAGE_SIZE, SYSTEM, EnvelopeSelector


class IsolocityClient(RestClient):
    def __init__(self, settings: IsolocitySettings, data_dir: Path, logger: Logger | None = None):
        self.settings = settings
        vendor = Vendor(SYSTEM, settings.base_url, settings.BASE_URL_VARIABLE, settings.CREDENTIAL_VARIABLES)
        api = ApiClient.for_company(
            vendor,
            auth=BearerAuth(settings.api_token),
            rate_limit_per_minute=settings.rate_limit_per_minute,
            budget_identity=settings.api_token,
            data_dir=data_dir,
            logger=logger,
        )
        # The doc's default and example page size. The NCR list may not honour it at all; the paginator follows
        # `meta.per_page`.
        lists = ListShape(paginator=lambda: PageMetaPaginator(page_size=PAGE_SIZE))
        super().__init__(
            api,
            lists,
            settings.timezone,
            paths=settings.paths,
            naive_timezone_variable=settings.TIMEZONE_VARIABLE,
            path_settings=settings.PATH_SETTINGS,
        )

    def selector(self, endpoint: str) -> EnvelopeSelector:
        return EnvelopeSelector(endpoint, PageMetaPaginator(page_size=PAGE_SIZE).start, self.api.masker.mask)
