"""Settings read from the environment (the only place secrets come from)."""

from __future__ import annotations

import os
from datetime import date, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mfg_pipeline.http.errors import MissingCredentialError, SettingError

PARTITION_ZONE_VARIABLE = "MFG_PARTITION_TIMEZONE"

PARTITION_START_VARIABLE = "MFG_PARTITION_START_DATE"


def env_get(name: str) -> str | None:
    """A setting's value: the active plant's (`MFG_PLANTS_FILE`, see `plants.py`) where it sets one, else the
    environment's. Every setting is read through here."""
    from mfg_pipeline.plants import active_plant  # plants reads the registry, whose sources read settings here

    plant = active_plant()
    value = plant.setting(name) if plant is not None else None
    return value if value is not None else os.environ.get(name)


def env_str(name: str, default: str) -> str:
    return env_get(name) or default


def require_env(name: str, what: str) -> str:
    value = env_get(name)
    if not value:
        raise MissingCredentialError(name, what)
    return value


def env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = env_get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(name, f"Environment variable {name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingError(name, f"Environment variable {name} must be at least {minimum}, got {value}")
    return value


def env_timezone(name: str, default: str = "UTC") -> ZoneInfo:
    raw = env_get(name) or default
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(
            name, f"Environment variable {name}: unknown timezone {raw!r} (use an IANA name such as Europe/Berlin)"
        ) from None


def zone_name(zone: tzinfo) -> str:
    """A zone as its setting spells it: an IANA name, or "UTC" for datetime's own UTC."""
    return getattr(zone, "key", None) or ("UTC" if zone is timezone.utc else str(zone))


def data_dir() -> Path:
    """MFG_DATA_DIR (default `data/`): warehouse.duckdb, parquet/, staging/ and the shared rate-limit state."""
    return Path(env_str("MFG_DATA_DIR", "data")).resolve()


def partition_timezone() -> ZoneInfo:
    """MFG_PARTITION_TIMEZONE (default UTC): the zone whose midnights bound the daily partitions."""
    return env_timezone(PARTITION_ZONE_VARIABLE, "UTC")


def partition_start_setting() -> date | None:
    """MFG_PARTITION_START_DATE, if set: the first daily partition. Unset, the first partition follows the history
    the warehouse holds (`orchestration.factory.partition_start`)."""
    raw = os.environ.get(PARTITION_START_VARIABLE, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise SettingError(
            PARTITION_START_VARIABLE, f"{PARTITION_START_VARIABLE}={raw!r} is not a date (YYYY-MM-DD)"
        ) from None


def lookback_days(cycle: str) -> int:
    """Days before today a cycle reloads for partitioned streams: MFG_SCHEDULE_LOOKBACK_DAYS (hourly, default 2)
    and MFG_DAILY_LOOKBACK_DAYS (daily, default 7)."""
    if cycle == "hourly":
        return env_int("MFG_SCHEDULE_LOOKBACK_DAYS", 2, minimum=0)
    return env_int("MFG_DAILY_LOOKBACK_DAYS", 7, minimum=0)


def child_sweep_every_days() -> int:
    """MFG_CHILD_SWEEP_EVERY_DAYS (default 14): the daily cycle fetches the child lists of the open records and of
    one slice in this many of the others, changed or not, so every record's child lists are fetched at least once
    in this many days (`engine/sweep.py`); 1 sweeps every record every day. 14 keeps Fulcrum's daily cycle under
    5 % of its budget at five times the simulated volume over two years (7 would cost 5.9 %)."""
    return env_int("MFG_CHILD_SWEEP_EVERY_DAYS", 14)
