"""Live mode for the simulators: records that keep changing while a simulator serves.

A `Mutations` subclass knows one vendor's ways of changing its data through the simulator's own mutation
methods: edit an old record (often its status), change only a record's child rows, create a record, delete one.
`LiveMutator` applies them on a daemon thread, one every interval, chosen by weight from a seeded generator, so
`mfg-pipeline dev` and `simulators` show the pipeline catching up; tests and benchmarks call the same methods
directly and then ask what the warehouse still holds stale.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

log = logging.getLogger(__name__)

KINDS = ("edit_old", "change_child", "create", "delete")


class Mutations:
    """One vendor's mutations. Each returns the key of the record it changed (its id), or None when there was
    nothing to change; subclasses hold the simulator's data lock while they change it."""

    weights = {"edit_old": 50, "change_child": 20, "create": 25, "delete": 5}

    def __init__(self, app: Any, seed: int = 0):
        self.app = app
        self.rng = random.Random(seed)

    def edit_old(self) -> Any:
        raise NotImplementedError

    def change_child(self) -> Any:
        raise NotImplementedError

    def create(self) -> Any:
        raise NotImplementedError

    def delete(self) -> Any:
        raise NotImplementedError

    def step(self) -> tuple[str, Any]:
        kinds = [k for k in KINDS if self.weights.get(k)]
        kind = self.rng.choices(kinds, weights=[self.weights[k] for k in kinds])[0]
        return kind, getattr(self, kind)()


class LiveMutator:
    """Applies `mutations.step()` every `interval_seconds` on a daemon thread (`start()`/`stop()`, or `with`)."""

    def __init__(self, mutations: Mutations, interval_seconds: float = 2.0):
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self.mutations = mutations
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> Any:
        return self.mutations.step()

    def start(self) -> LiveMutator:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        name = f"{getattr(self.mutations.app, 'system', 'simulator')}-live"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.step()
            except Exception:  # one bad step must not end live mode
                log.exception("live step failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self.interval_seconds))
            self._thread = None

    def __enter__(self) -> LiveMutator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
