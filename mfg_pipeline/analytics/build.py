"""One `dbt build` into the warehouse, as the analytics asset runs it: the profile's settings from the warehouse's,
and the models whose commit lost a race with another writer built again (`dbt retry`).

The loads and the changes feed keep committing while dbt builds. A model's transaction that another commit
overtook fails (`database is locked` from a SQLite catalog, a transaction conflict from Postgres); dbt's own
`retry` runs exactly the failed nodes and the ones they skipped again, against the new state.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

from dagster import AssetCheckResult, AssetMaterialization, AssetObservation, Output
from dagster_dbt import DbtCliResource

from mfg_pipeline.analytics.layout import dbt_vars
from mfg_pipeline.warehouse.lake import CONFLICT_MARKERS
from mfg_pipeline.warehouse.settings import WarehouseSettings

MAX_RETRIES = 5
KEPT_INVOCATIONS = 10  # dbt's artifacts (run_results, compiled SQL) of the newest builds, for looking into one
SETTLED_SECONDS = 3600  # an invocation folder younger than this may belong to a build still running
PARTIAL_PARSE_FILE = "partial_parse.msgpack"  # dbt's parse state, which it reads from the invocation's target
DBT_PROFILE_VARIABLES = ("MFG_DBT_TARGET", "MFG_DBT_CATALOG", "MFG_DBT_DATA_PATH", "MFG_DBT_EXTENSION_DIR")


def dbt_environment(settings: WarehouseSettings) -> dict[str, str]:
    """The MFG_DBT_* variables profiles.yml reads (the catalog may carry a password: environment only)."""
    values = (
        "s3_files" if settings.s3 is not None else "local_files",
        settings.catalog.attach_target,
        settings.data_path,
        str(settings.extension_dir),
    )
    return dict(zip(DBT_PROFILE_VARIABLES, values, strict=True))


def run_build(context: Any, dbt: DbtCliResource) -> tuple[list[Any], str | None]:
    """`dbt build`, then `dbt retry` while every failure is a lost commit race; returns the events (the last of
    each asset's and check's) and the first line of the error that remained, if any."""
    # dagster-dbt's own default for where invocations write (relative to the project)
    target = Path(dbt.project_dir) / os.getenv("DBT_TARGET_PATH", "target")
    prune_invocations(target, f"{context.op_execution_context.op.name}-*")
    prune_invocations(target, ParseState.PATTERN)
    parse_state = ParseState(target, [*sorted(dbt_environment_now().items()), *dbt_vars()])
    # named as dagster-dbt names its own (`<op>-<run>-<id>`), seeded with the parse state before dbt starts
    invocation_target = target / f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{uuid4().hex[:7]}"
    parse_state.seed(invocation_target)
    invocation = dbt.cli(["build", *dbt_vars()], context=context, raise_on_error=False, target_path=invocation_target)
    events = list(invocation.stream())
    parse_state.keep(invocation.target_path)
    for attempt in range(1, MAX_RETRIES + 1):
        if invocation.is_successful():
            return _latest(events), None
        failed = _failures(invocation)
        if not failed or not all(_lost_race(message) for message in failed.values()):
            break
        context.log.info(
            f"dbt build: {', '.join(sorted(failed))} lost a commit race with another writer; dbt retry ({attempt})"
        )
        time.sleep(0.5 * attempt)
        invocation = dbt.cli(["retry", "--state", str(invocation.target_path)], context=context, raise_on_error=False)
        events += list(invocation.stream())
    if invocation.is_successful():
        return _latest(events), None
    return _latest(events), failure_line(_failures(invocation), invocation.get_error())


def dbt_environment_now() -> dict[str, str]:
    """The MFG_DBT_* variables as this process has them (the profile dbt renders from them)."""
    return {name: os.environ.get(name, "") for name in DBT_PROFILE_VARIABLES}


@dataclass(frozen=True)
class ParseState:
    """dbt's partial-parse state (`partial_parse.msgpack`) kept per profile, so a build parses only what changed.

    dbt throws the state away when the rendered profile differs from the one it was made with, and the profile's
    attach names the warehouse: the state `dbt parse` leaves beside the manifest never matched a build, and every
    build parsed the whole project again (about 4 s). So each build starts from the state the last build with the
    same profile and vars left (`partial_parse-<digest>.msgpack` in `target/`), and leaves its own there. dbt still
    checks every file against it, so a state older than the project only costs a fuller parse."""

    PATTERN: ClassVar[str] = "partial_parse-*.msgpack"

    target: Path
    profile: Sequence[Any]  # what the state is keyed by: the profile's variables and dbt's vars

    @property
    def path(self) -> Path:
        digest = hashlib.sha256(repr(list(self.profile)).encode()).hexdigest()[:16]
        return self.target / self.PATTERN.replace("*", digest)

    def seed(self, invocation_target: Path) -> bool:
        """Put the kept state where the invocation's dbt looks for it; returns whether there was one."""
        if not self.path.exists():
            return False
        invocation_target.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # a build replacing it meanwhile: parse without
            shutil.copyfile(self.path, invocation_target / PARTIAL_PARSE_FILE)
            return True
        return False

    def keep(self, invocation_target: Path) -> bool:
        """Keep the state the invocation left (written whole: a temporary file, then a rename, so a build starting
        meanwhile reads the old state or the new); returns whether there was one."""
        state = invocation_target / PARTIAL_PARSE_FILE
        if not state.exists():
            return False
        staged = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        shutil.copyfile(state, staged)
        os.replace(staged, self.path)
        return True


def prune_invocations(target: Path, pattern: str, keep: int = KEPT_INVOCATIONS) -> list[Path]:
    """Remove what dbt's builds leave in `target/` under `pattern` (dagster-dbt's artifact folder per invocation,
    `<op>-<run>-<id>/`, or a kept parse state) beyond the newest `keep`, except any younger than SETTLED_SECONDS;
    returns what was removed. Without this `target/` grows by one folder per build, forever."""
    modified = {}
    for path in target.glob(pattern):
        with contextlib.suppress(OSError):  # another build pruning at the same time may have removed it
            modified[path] = path.stat().st_mtime
    newest_first = sorted(modified, key=modified.__getitem__, reverse=True)
    settled_before = time.time() - SETTLED_SECONDS
    removed = [path for path in newest_first[keep:] if modified[path] < settled_before]
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed


def failure_line(failed: dict[str, str], error: BaseException | None) -> str:
    """One line naming the nodes that failed (unique id -> dbt's message) and the first one's error; dbt's own
    exception starts with the command line, which says nothing."""
    if not failed:
        return " ".join(str(error).split())[:300] if error else "dbt build failed"
    first, message = next(iter(failed.items()))
    reason = next((line.strip() for line in message.splitlines() if line.strip()), "no message")
    more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
    return f"{first.rsplit('.', 1)[-1]}{more} failed: {reason}"


def _failures(invocation: Any) -> dict[str, str]:
    """unique id -> error message of every node that errored (none when dbt stopped before running any)."""
    try:
        results = invocation.get_artifact("run_results.json").get("results", [])
    except FileNotFoundError:
        return {}
    return {r["unique_id"]: r.get("message") or "" for r in results if r.get("status") in ("error", "fail")}


def _lost_race(message: str) -> bool:
    return any(marker in message.lower() for marker in CONFLICT_MARKERS)


def _latest(events: list[Any]) -> list[Any]:
    """One event per asset output, check and observation: the last one (a retried node reports again)."""
    latest: dict[Any, Any] = {}
    for event in events:
        if isinstance(event, Output):
            key: Any = ("output", event.output_name)
        elif isinstance(event, AssetCheckResult):
            key = ("check", event.asset_key, event.check_name)
        elif isinstance(event, (AssetMaterialization, AssetObservation)):
            key = (type(event).__name__, event.asset_key)
        else:
            key = ("other", id(event))
        latest.pop(key, None)
        latest[key] = event
    return list(latest.values())
