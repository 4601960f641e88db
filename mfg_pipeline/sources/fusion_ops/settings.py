"""Fusion Operations settings, from FUSION_OPS_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from zoneinfo import ZoneInfo

from mfg_pipeline.config import env_int, env_str, env_timezone, require_env

DEFAULT_BASE_URL = "https://fusionoperations.autodesk.com"


@dataclass(frozen=True)
class FusionOpsSettings:
    # The environment variables read here: the client names them in errors, the simulator's env sets them.
    BASE_URL_VARIABLE: ClassVar[str] = "FUSION_OPS_BASE_URL"
    API_KEY_VARIABLE: ClassVar[str] = "FUSION_OPS_API_KEY"
    API_SECRET_VARIABLE: ClassVar[str] = "FUSION_OPS_API_SECRET"
    RATE_LIMIT_VARIABLE: ClassVar[str] = "FUSION_OPS_RATE_LIMIT_PER_MINUTE"
    TOKEN_TTL_VARIABLE: ClassVar[str] = "FUSION_OPS_TOKEN_TTL_SECONDS"
    # The zone of timestamps sent without an offset.
    COMPANY_TIMEZONE_VARIABLE: ClassVar[str] = "FUSION_OPS_COMPANY_TIMEZONE"
    # What a person fixes when Fusion Operations refuses us (named in errors; their values are masked).
    CREDENTIAL_VARIABLES: ClassVar[tuple[str, ...]] = (API_KEY_VARIABLE, API_SECRET_VARIABLE)
    # The variables whose values are secrets: never in a log, an error or a plants file (only named there).
    SECRET_VARIABLES: ClassVar[tuple[str, ...]] = (API_KEY_VARIABLE, API_SECRET_VARIABLE)

    base_url: str
    api_key: str = field(repr=False)  # never in a repr, a log or an error
    api_secret: str = field(repr=False)
    rate_limit_per_minute: int = 120
    token_ttl_seconds: int = 7200  # the doc: tokens last 2 hours
    company_timezone: ZoneInfo = ZoneInfo("UTC")  # for timestamps sent without an offset

    @classmethod
    def from_env(cls) -> FusionOpsSettings:
        return cls(
            base_url=env_str(cls.BASE_URL_VARIABLE, DEFAULT_BASE_URL),
            api_key=require_env(cls.API_KEY_VARIABLE, "Fusion Operations API key"),
            api_secret=require_env(cls.API_SECRET_VARIABLE, "Fusion Operations API secret"),
            rate_limit_per_minute=env_int(cls.RATE_LIMIT_VARIABLE, 120),
            token_ttl_seconds=env_int(cls.TOKEN_TTL_VARIABLE, 7200),
            company_timezone=env_timezone(cls.COMPANY_TIMEZONE_VARIABLE, "UTC"),
        )


# Also a module name: the changes feed reads the same zone without building the settings.
COMPANY_TIMEZONE_VARIABLE = FusionOpsSettings.COMPANY_TIMEZONE_VARIABLE
