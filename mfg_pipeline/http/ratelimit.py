"""One request budget per vendor company, shared by every process that calls it.

A vendor's limit is per company, not per process: Dagster runs each run, backfill partition and sensor tick in
its own process, so an in-process bucket would let N runs send N times the limit. pyrate-limiter keeps the
sliding-window log in a store all processes see:

- default: a SQLite file under `<MFG_DATA_DIR>/ratelimit/` guarded by a file lock (every process on this machine);
- `MFG_RATE_LIMIT_BACKEND=redis://host:6379/0` or `postgresql://...`: a Redis or Postgres bucket, for runs spread
  over several machines (needs the `redis` or `psycopg[pool]` package).

The client-side window is a little longer than the server's minute (`WINDOW_MARGIN_SECONDS`): a request admitted
at the very end of our window reaches the server a few milliseconds later, and network jitter must never let the
server count one request too many in its own window.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from pyrate_limiter import AbstractBucket, Duration, Limiter, Rate, SQLiteBucket

from mfg_pipeline.http.errors import SettingError

WINDOW_MARGIN_SECONDS = 1.0

_limiters: dict[tuple[str, str, int], Limiter] = {}
_lock = threading.Lock()


def bucket_name(system: str, *identity: str) -> str:
    """A stable, secret-free name for one company's budget at one vendor (identity is hashed)."""
    digest = hashlib.sha256("\x00".join(identity).encode()).hexdigest()[:16]
    return f"{system}_{digest}"


def shared_limiter(name: str, per_minute: int, data_dir: Path, backend: str | None = None) -> Limiter:
    """The limiter for budget `name` (one per process; the state behind it is shared)."""
    backend = backend if backend is not None else os.environ.get("MFG_RATE_LIMIT_BACKEND", "")
    key = (name, backend or str(data_dir), per_minute)
    with _lock:
        if key not in _limiters:
            _limiters[key] = _build(name, per_minute, data_dir, backend)
        return _limiters[key]


def _build(name: str, per_minute: int, data_dir: Path, backend: str) -> Limiter:
    if per_minute <= 0:
        raise ValueError(f"rate limit for {name} must be positive, got {per_minute}")
    rates = [Rate(per_minute, int(Duration.MINUTE) + int(WINDOW_MARGIN_SECONDS * 1000))]
    if not backend or backend.startswith("sqlite"):
        directory = Path(backend.removeprefix("sqlite:///")) if backend else Path(data_dir) / "ratelimit"
        directory.mkdir(parents=True, exist_ok=True)
        db_path = str(directory / f"{name}.sqlite")
        bucket: AbstractBucket = SQLiteBucket.init_from_file(
            rates, db_path=db_path, table=f"rate_{per_minute}", create_new_table=True, use_file_lock=True
        )
        return Limiter(bucket, buffer_ms=20)
    if backend.startswith("redis://") or backend.startswith("rediss://"):
        from pyrate_limiter import RedisBucket
        from redis import Redis  # optional dependency, only for multi-machine setups

        bucket = RedisBucket.init(rates, Redis.from_url(backend), f"mfg_pipeline:{name}")
        return Limiter(bucket, buffer_ms=20)
    if backend.startswith("postgres"):
        from psycopg_pool import ConnectionPool  # optional dependency, only for multi-machine setups
        from pyrate_limiter import PostgresBucket

        bucket = PostgresBucket(ConnectionPool(backend), f"mfg_rate_{name}", rates)
        return Limiter(bucket, buffer_ms=20)
    raise SettingError(
        "MFG_RATE_LIMIT_BACKEND",
        f"MFG_RATE_LIMIT_BACKEND: unsupported backend {backend!r} "
        "(use a sqlite:/// directory, redis://... or postgresql://...)",
    )


def acquire(limiter: Limiter, name: str, timeout: float | None = None) -> bool:
    """Block until the shared budget admits one more request; with `timeout` (seconds), give up after it and
    return False."""
    if timeout is not None:
        return timeout > 0 and bool(limiter.try_acquire(name, blocking=True, timeout=timeout))
    if not limiter.try_acquire(name, blocking=True):
        raise RuntimeError(f"rate limiter {name} refused a request it can never admit")
    return True
