"""Named locks every writer of the warehouse sees: file locks on one machine, Postgres advisory locks on many.

DuckLake commits are optimistic: two writers of *different* tables commit side by side (a conflict is retried,
see `lake.py`). Two writers of the *same* table could both insert a key neither saw (DuckLake has no primary
keys), so the writers of one table group (a source's schema, the analytics layer) take that group's lock. With a
Postgres catalog the lock is an advisory lock in the same Postgres, so it holds across machines, and it is released
by the server when the holder's process dies (its connection closes), as a file lock is by the kernel.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from filelock import FileLock, Timeout

from mfg_pipeline.http.errors import ConfigurationError
from mfg_pipeline.warehouse.settings import WarehouseSettings

LOCK_TIMEOUT_VARIABLE = "MFG_WAREHOUSE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 900.0


class LockTimeoutError(ConfigurationError):
    """Another writer held the lock longer than this one may wait."""

    variable = LOCK_TIMEOUT_VARIABLE


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (Postgres advisory locks take a bigint)."""
    return int.from_bytes(hashlib.blake2b(f"mfg_pipeline:{name}".encode(), digest_size=8).digest(), "big", signed=True)


class Locks:
    """The named locks of one warehouse."""

    def __init__(self, settings: WarehouseSettings):
        self.settings = settings
        self.folder = settings.data_dir / "locks"

    @contextmanager
    def hold(self, name: str, timeout: float | None, what: str) -> Iterator[None]:
        """Hold `name` for the block, waiting at most `timeout` seconds (None: as long as it takes); `what` says who
        waits, for the error."""
        started = time.monotonic()
        if self.settings.shared:
            with self._advisory(name, timeout, what, started):
                yield
            return
        lock = self._file(name, timeout)
        try:
            lock.acquire()
        except Timeout:
            raise self._timeout(name, what, started) from None
        try:
            yield
        finally:
            lock.release()

    def is_free(self, name: str) -> bool:
        """Whether nobody holds `name` right now (taken and released at once when free)."""
        if self.settings.shared:
            with self._connection() as connection:
                key = advisory_key(name)
                taken = connection.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]
                if taken:
                    connection.execute("SELECT pg_advisory_unlock(%s)", [key])
                return bool(taken)
        lock = self._file(name, 0)
        try:
            lock.acquire()
        except Timeout:
            return False
        lock.release()
        return True

    def _file(self, name: str, timeout: float | None) -> FileLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.folder / f"{name}.lock"), timeout=-1 if timeout is None else timeout)

    @contextmanager
    def _advisory(self, name: str, timeout: float | None, what: str, started: float) -> Iterator[None]:
        import psycopg

        with self._connection() as connection:
            # lock_timeout 0 waits as long as it takes
            connection.execute(f"SET lock_timeout = '{0 if timeout is None else max(1, int(timeout * 1000))}ms'")
            try:
                connection.execute("SELECT pg_advisory_lock(%s)", [advisory_key(name)])
            except psycopg.errors.LockNotAvailable:
                raise self._timeout(name, what, started) from None
            yield  # released when the connection closes, as it is when this process dies

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        import psycopg  # only with a Postgres catalog (the `cluster` extra)

        connection = psycopg.connect(self.settings.catalog.target, autocommit=True, connect_timeout=30)
        try:
            yield connection
        finally:
            connection.close()

    def _timeout(self, name: str, what: str, started: float) -> LockTimeoutError:
        where = (
            f"advisory lock '{name}' in {self.settings.catalog.redacted()}"
            if self.settings.shared
            else str(self.folder / f"{name}.lock")
        )
        return LockTimeoutError(
            f"{what}: another writer held {where} for {time.monotonic() - started:.0f}s; it is still running (see "
            f"the runs in progress), or raise {LOCK_TIMEOUT_VARIABLE}"
        )
