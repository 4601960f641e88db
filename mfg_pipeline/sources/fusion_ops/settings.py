"""Fusion Operations settings, from FUSION_OPS_* environment variables."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from mfg_pipeline.config import env_int, env_str, env_timezone, require_env

DEFAULT_BASE_URL = "https://fusionoperations.autodesk.com"
COMPANY_TIMEZONE_VARIABLE = "FUSION_OPS_COMPANY_TIMEZONE"  # the zone of timestamps sent without an offset


@dataclass(frozen=True)
class FusionOpsSettings:
    base_url: str
    api_key: str
    api_secret: str
    rate_limit_per_minute: int = 120
    token_ttl_seconds: int = 7200  # the doc: tokens last 2 hours
    company_timezone: ZoneInfo = ZoneInfo("UTC")  # for timestamps sent without an offset

    def __repr__(self) -> str:  # never print the credentials
        return f"FusionOpsSettings(base_url={self.base_url!r}, rate_limit_per_minute={self.rate_limit_per_minute})"

    @classmethod
    def from_env(cls) -> FusionOpsSettings:
        return cls(
            base_url=env_str("FUSION_OPS_BASE_URL", DEFAULT_BASE_URL),
            api_key=require_env("FUSION_OPS_API_KEY", "Fusion Operations API key"),
            api_secret=require_env("FUSION_OPS_API_SECRET", "Fusion Operations API secret"),
            rate_limit_per_minute=env_int("FUSION_OPS_RATE_LIMIT_PER_MINUTE", 120),
            token_ttl_seconds=env_int("FUSION_OPS_TOKEN_TTL_SECONDS", 7200),
            company_timezone=env_timezone(COMPANY_TIMEZONE_VARIABLE, "UTC"),
        )
