"""Traede settings, from TRAEDE_* environment variables."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

from mfg_pipeline.config import env_get, env_int, env_str, require_env
from mfg_pipeline.http.errors import SettingError
from mfg_pipeline.records.schema import parse_instant

DEFAULT_BASE_URL = "https://api.traede.com"
# Traede documents no rate limit (FACTS: unconfirmed). One request a second is far below what a Laravel API
# usually allows, yet a run needs only 7 requests per 60 orders (one export page, six marks of 10), so it
# still lands ~500 orders a minute; a 429 is honoured anyway. Raise it once Traede confirms a number.
DEFAULT_RATE_LIMIT_PER_MINUTE = 60
FILTER_GROUPS_EXAMPLE = '[{"filters": [{"key": "created_at", "operator": "gte", "value": "2024-01-01 00:00:00"}]}]'


def env_flag(name: str, default: bool) -> bool:
    """A 0/1 switch (true/false also accepted)."""
    raw = env_get(name)
    if not raw:
        return default
    value = raw.strip().lower()
    if value not in ("0", "1", "true", "false"):
        raise SettingError(name, f"Environment variable {name} must be 0 or 1, got {raw!r}")
    return value in ("1", "true")


def env_instant(name: str) -> datetime | None:
    raw = env_get(name)
    if not raw:
        return None
    try:
        return parse_instant(raw, timezone.utc)
    except (TypeError, ValueError):
        raise SettingError(
            name, f"Environment variable {name} must be a UTC date-time such as 2024-01-01T00:00:00Z, got {raw!r}"
        ) from None


def env_filter_groups(name: str) -> tuple[dict[str, Any], ...]:
    """Filter groups in Traede's (bruno) syntax, as JSON: a list of {"or": bool, "filters": [{key, operator,
    value, not}]}. Checked here so a typo fails before any request, not as a 400 mid-run."""
    raw = env_get(name)
    if not raw:
        return ()
    try:
        groups = json.loads(raw)
    except ValueError:
        raise SettingError(name, f"Environment variable {name} must be JSON, e.g. {FILTER_GROUPS_EXAMPLE}") from None
    well_formed = isinstance(groups, list) and all(
        isinstance(g, dict)
        and isinstance(g.get("filters"), list)
        and g["filters"]
        and all(isinstance(f, dict) and {"key", "operator", "value"} <= f.keys() for f in g["filters"])
        for g in groups
    )
    if not well_formed:
        raise SettingError(
            name,
            f"Environment variable {name} must be a list of filter groups, each with a non-empty "
            f"'filters' list of {{key, operator, value}}, e.g. {FILTER_GROUPS_EXAMPLE}",
        )
    return tuple(groups)


@dataclass(frozen=True)
class TraedeSettings:
    # The environment variables read here: the client names them in errors, the simulator's env sets them.
    BASE_URL_VARIABLE: ClassVar[str] = "TRAEDE_BASE_URL"
    ACCESS_TOKEN_VARIABLE: ClassVar[str] = "TRAEDE_ACCESS_TOKEN"
    APP_KEY_VARIABLE: ClassVar[str] = "TRAEDE_APP_KEY"
    SYSTEM_ID_VARIABLE: ClassVar[str] = "TRAEDE_SYSTEM_ID"
    RATE_LIMIT_VARIABLE: ClassVar[str] = "TRAEDE_RATE_LIMIT_PER_MINUTE"
    INCLUDE_OPEN_VARIABLE: ClassVar[str] = "TRAEDE_INCLUDE_OPEN"
    INCLUDE_CLOSED_VARIABLE: ClassVar[str] = "TRAEDE_INCLUDE_CLOSED"
    NOT_EXPORTED_SINCE_VARIABLE: ClassVar[str] = "TRAEDE_NOT_EXPORTED_SINCE"
    FILTER_GROUPS_VARIABLE: ClassVar[str] = "TRAEDE_EXPORT_FILTER_GROUPS"
    # What a person fixes when Traede refuses us (named in errors; their values are masked).
    CREDENTIAL_VARIABLES: ClassVar[tuple[str, ...]] = (ACCESS_TOKEN_VARIABLE, APP_KEY_VARIABLE)
    # The variables whose values are secrets: never in a log, an error or a plants file (only named there).
    SECRET_VARIABLES: ClassVar[tuple[str, ...]] = (ACCESS_TOKEN_VARIABLE, APP_KEY_VARIABLE)

    base_url: str
    access_token: str = field(repr=False)  # never in a repr, a log or an error
    app_key: str = field(repr=False)
    # Export state is kept per system_id: it must name this warehouse alone, or another integration's marks
    # would hide orders from us (and ours from it). Hence no default.
    system_id: str
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT_PER_MINUTE
    # The doc's `include_open` means drafts. Off: a draft is provisional and may be deleted, and the export
    # API reports no deletions, so a deleted draft would linger in the warehouse; it arrives once confirmed.
    include_open: bool = False
    # On (the doc's default is off): closing an order updates it, and only with closed orders exported does
    # that change reach the warehouse; otherwise an order would stay "open" here forever.
    include_closed: bool = True
    # A one-off re-export: orders marked at or after this instant come back (e.g. to rebuild the warehouse).
    not_exported_since: datetime | None = None
    filter_groups: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_env(cls) -> TraedeSettings:
        return cls(
            base_url=env_str(cls.BASE_URL_VARIABLE, DEFAULT_BASE_URL),
            access_token=require_env(cls.ACCESS_TOKEN_VARIABLE, "Traede API access token (Bearer)"),
            app_key=require_env(cls.APP_KEY_VARIABLE, "Traede app key (sent as X-Traede-App-Key)"),
            system_id=require_env(
                cls.SYSTEM_ID_VARIABLE,
                "Traede export system_id naming this warehouse (export state is kept per system_id)",
            ),
            rate_limit_per_minute=env_int(cls.RATE_LIMIT_VARIABLE, DEFAULT_RATE_LIMIT_PER_MINUTE),
            include_open=env_flag(cls.INCLUDE_OPEN_VARIABLE, False),
            include_closed=env_flag(cls.INCLUDE_CLOSED_VARIABLE, True),
            not_exported_since=env_instant(cls.NOT_EXPORTED_SINCE_VARIABLE),
            filter_groups=env_filter_groups(cls.FILTER_GROUPS_VARIABLE),
        )
