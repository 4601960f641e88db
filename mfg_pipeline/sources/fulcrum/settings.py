"""Fulcrum Pro settings, from FULCRUM_* environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from mfg_pipeline.config import env_int, env_str, require_env
from mfg_pipeline.rest import PathSetting, paths_from_env

DEFAULT_BASE_URL = "https://api.fulcrumpro.com"  # ITAR tenants: https://api.fulcrumpro.us (FACTS.md)
# Fulcrum documents no rate limit (FACTS.md: unconfirmed). 120/min (2 a second) is the lowest limit any of our
# documented vendors sets (Fusion Operations), far below what would hurt a tenant's other integrations, and
# still enough for a day of jobs with their items and operations in well under a minute. A 429 is honoured
# (Retry-After) whatever this says; raise it once Fulcrum confirms a higher limit.
DEFAULT_RATE_LIMIT_PER_MINUTE = 120
# "Take: integer [0 .. 1000]" in this doc; FACTS.md notes newer versions allow 5000, hence a setting.
DEFAULT_PAGE_SIZE = 1000
# Stream name -> the setting of its path, for paths FACTS.md does not list (unconfirmed).
PATH_SETTINGS: Mapping[str, PathSetting] = {
    "items": PathSetting(
        "FULCRUM_PATH_ITEMS",
        "/api/items/list",
        "fulcrum.txt marks POST /api/items/list 'TO BE REMOVED 11/02/2023 - … Use V2' and FACTS.md lists no items "
        "path (or leave items out: FULCRUM_STREAMS)",
    )
}


@dataclass(frozen=True)
class FulcrumSettings:
    # The environment variables read here: the client names them in errors, the simulator's env sets them.
    BASE_URL_VARIABLE: ClassVar[str] = "FULCRUM_BASE_URL"
    API_TOKEN_VARIABLE: ClassVar[str] = "FULCRUM_API_TOKEN"
    RATE_LIMIT_VARIABLE: ClassVar[str] = "FULCRUM_RATE_LIMIT_PER_MINUTE"
    PAGE_SIZE_VARIABLE: ClassVar[str] = "FULCRUM_PAGE_SIZE"
    PATH_SETTINGS: ClassVar[Mapping[str, PathSetting]] = PATH_SETTINGS  # FULCRUM_PATH_*
    # What a person fixes when Fulcrum refuses us (named in errors; their values are masked).
    CREDENTIAL_VARIABLES: ClassVar[tuple[str, ...]] = (API_TOKEN_VARIABLE,)
    # The variables whose values are secrets: never in a log, an error or a plants file (only named there).
    SECRET_VARIABLES: ClassVar[tuple[str, ...]] = (API_TOKEN_VARIABLE,)

    base_url: str
    api_token: str = field(repr=False)  # never in a repr, a log or an error
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT_PER_MINUTE
    page_size: int = DEFAULT_PAGE_SIZE
    paths: Mapping[str, str] = field(default_factory=dict)  # stream name -> path, for paths FACTS leaves open

    @classmethod
    def from_env(cls) -> FulcrumSettings:
        return cls(
            base_url=env_str(cls.BASE_URL_VARIABLE, DEFAULT_BASE_URL),
            api_token=require_env(cls.API_TOKEN_VARIABLE, "Fulcrum Pro API token (a JWT made in the Fulcrum UI)"),
            rate_limit_per_minute=env_int(cls.RATE_LIMIT_VARIABLE, DEFAULT_RATE_LIMIT_PER_MINUTE),
            page_size=env_int(cls.PAGE_SIZE_VARIABLE, DEFAULT_PAGE_SIZE),
            paths=paths_from_env(cls.PATH_SETTINGS),
        )
