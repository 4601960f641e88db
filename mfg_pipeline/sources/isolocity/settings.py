"""ISOlocity settings, from ISOLOCITY_* environment variables.

What the doc leaves open is configuration here rather than a guess in code (FACTS.md marks it unconfirmed):
- ISOLOCITY_BASE_URL is required: the host is not published, and a guessed default would send the bearer token
  to a server nobody chose.
- ISOLOCITY_PATH_NCRS / _CARS / _PARTS (defaults `/api/ncrs`, `/api/cars`, `/api/parts`): one variable per path
  rather than one mapping, so each can be set on its own without quoting JSON, and an error about a wrong path
  can name the exact variable to change.
- ISOLOCITY_TIMEZONE (default UTC): the zone of timestamps sent as `YYYY-MM-DD HH:MM:SS`, without an offset.
- ISOLOCITY_RATE_LIMIT_PER_MINUTE (default 60): the limit is not published; 60/minute is Laravel's stock API
  throttle, and the envelope, meta and error messages show a Laravel backend. A full load is a few dozen
  requests, so being cautious costs little; 429 with Retry-After is still honoured if the real limit is lower.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar
from zoneinfo import ZoneInfo

from mfg_pipeline.config import env_int, env_timezone, require_env
from mfg_pipeline.rest import PathSetting, paths_from_env

DEFAULT_RATE_LIMIT_PER_MINUTE = 60
_UNPUBLISHED = "ISOlocity does not publish its paths"
# Stream name -> the setting of its path.
PATH_SETTINGS: Mapping[str, PathSetting] = {
    "ncrs": PathSetting("ISOLOCITY_PATH_NCRS", "/api/ncrs", _UNPUBLISHED),
    "cars": PathSetting("ISOLOCITY_PATH_CARS", "/api/cars", _UNPUBLISHED),
    "parts": PathSetting("ISOLOCITY_PATH_PARTS", "/api/parts", _UNPUBLISHED),
}


@dataclass(frozen=True)
class IsolocitySettings:
    # The environment variables read here: the client names them in errors, the simulator's env sets them.
    BASE_URL_VARIABLE: ClassVar[str] = "ISOLOCITY_BASE_URL"
    API_TOKEN_VARIABLE: ClassVar[str] = "ISOLOCITY_API_TOKEN"
    RATE_LIMIT_VARIABLE: ClassVar[str] = "ISOLOCITY_RATE_LIMIT_PER_MINUTE"
    TIMEZONE_VARIABLE: ClassVar[str] = "ISOLOCITY_TIMEZONE"  # the zone of timestamps sent without an offset
    PATH_SETTINGS: ClassVar[Mapping[str, PathSetting]] = PATH_SETTINGS  # ISOLOCITY_PATH_*
    # What a person fixes when ISOlocity refuses us (named in errors; their values are masked).
    CREDENTIAL_VARIABLES: ClassVar[tuple[str, ...]] = (API_TOKEN_VARIABLE,)
    # The variables whose values are secrets: never in a log, an error or a plants file (only named there).
    SECRET_VARIABLES: ClassVar[tuple[str, ...]] = (API_TOKEN_VARIABLE,)

    base_url: str
    api_token: str = field(repr=False)  # never in a repr, a log or an error
    paths: Mapping[str, str] = field(
        default_factory=lambda: {name: setting.default for name, setting in PATH_SETTINGS.items()}
    )
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT_PER_MINUTE
    timezone: ZoneInfo = ZoneInfo("UTC")  # for timestamps sent without an offset

    @classmethod
    def from_env(cls) -> IsolocitySettings:
        return cls(
            base_url=require_env(
                cls.BASE_URL_VARIABLE,
                "ISOlocity API base URL (not published: ask ISOlocity "
                "for your organization's host, e.g. https://<host>)",
            ),
            api_token=require_env(cls.API_TOKEN_VARIABLE, "ISOlocity API bearer token"),
            paths=paths_from_env(cls.PATH_SETTINGS),
            rate_limit_per_minute=env_int(cls.RATE_LIMIT_VARIABLE, DEFAULT_RATE_LIMIT_PER_MINUTE),
            timezone=env_timezone(cls.TIMEZONE_VARIABLE, "UTC"),
        )
