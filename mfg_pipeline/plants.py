"""Plants as configuration: a group's plants, each its own company at each vendor, in one file the data engineer
edits (`MFG_PLANTS_FILE`, YAML).

Each plant has a name, a time zone and, for each vendor it names, that company's settings under the variable names
the vendor's settings already own (`FUSION_OPS_BASE_URL`, `FULCRUM_OPEN_JOB_STATUSES`, ...). A secret never appears
in the file: its value is `${VARIABLE}`, the environment variable that holds it, read when a client is built. A
vendor the plant does not name is read from the environment, as without a file; so is everything that is not a
plant's (the warehouse, the lookbacks).

Every row the pipeline writes carries its plant (`warehouse.layout.PLANT_COLUMN`), so plants share one warehouse.
Code that works for one plant runs inside `for_plant(name)`: settings are then read from that plant's entry, and
the warehouse scopes its reads and writes to it. Outside such a block the plant is the one `MFG_PLANT` names (or the
file's only plant); without a file it is `MFG_PLANT`, or `default`, and the environment describes it, as before.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from mfg_pipeline.config import PARTITION_ZONE_VARIABLE  # a plant's zone is its partitions' zone
from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.http.errors import MissingCredentialError, SettingError

PLANTS_FILE_VARIABLE = "MFG_PLANTS_FILE"
PLANT_VARIABLE = "MFG_PLANT"
PLANT_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")  # a future partition key and folder level: plain and short
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
PLANT_KEYS = {"name", "timezone", "sources"}
DEFAULT_PLANT = "default"  # the one plant of an installation without a plants file or MFG_PLANT


class PlantsFileError(SettingError):
    """The plants file cannot be used; the message names the file, the plant and the entry, and what fits."""

    def __init__(self, path: Path, message: str):
        super().__init__(PLANTS_FILE_VARIABLE, f"{PLANTS_FILE_VARIABLE} ({path}): {message}")


@dataclass(frozen=True)
class Plant:
    name: str
    timezone: ZoneInfo
    # source name -> variable -> the value as written: a literal, or `${VARIABLE}` naming where a secret is
    sources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    file: Path | None = None

    def setting(self, variable: str) -> str | None:
        """The plant's value of `variable` (a reference read from the environment now), or None when the plant
        does not set it. Raises MissingCredentialError naming the referenced variable when it is unset."""
        if variable == PARTITION_ZONE_VARIABLE:
            also_set = os.environ.get(variable, "").strip()
            if also_set and also_set != self.timezone.key:  # two zones for one plant's days: say so, never pick one
                raise SettingError(
                    variable,
                    f"{variable}={also_set} disagrees with plant {self.name}'s timezone {self.timezone.key} in "
                    f"{self.file}: unset {variable} (the plant's zone decides its days)",
                )
            return self.timezone.key
        for values in self.sources.values():
            if variable in values:
                return self._resolve(variable, values[variable])
        return None

    def _resolve(self, variable: str, written: str) -> str:
        reference = REFERENCE.fullmatch(written)
        if reference is None:
            return written
        name = reference.group(1)
        value = os.environ.get(name)
        if not value:
            raise MissingCredentialError(name, f"value of plant {self.name}'s {variable} (its file: {self.file})")
        return value

    def describe(self, source: SourceSystem) -> dict[str, str]:
        """What the plant sets for `source`, as written: secrets only by the variable that holds them."""
        return dict(self.sources.get(source.name, {}))


def load_plants(path: Path, sources: Sequence[SourceSystem]) -> tuple[Plant, ...]:
    """Every plant the file lists, checked against the registered `sources`; PlantsFileError on anything unusable."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PlantsFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise PlantsFileError(path, f"is not YAML ({' '.join(str(exc).split())})") from None
    entries = document.get("plants") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise PlantsFileError(path, "must hold `plants:`, a list of plants (name, timezone, sources)")
    plants = [_plant(path, index, entry, {s.name: s for s in sources}) for index, entry in enumerate(entries)]
    names = [plant.name for plant in plants]
    if repeated := sorted({name for name in names if names.count(name) > 1}):
        raise PlantsFileError(path, f"lists plant {', '.join(repeated)} more than once")
    return tuple(plants)


def _plant(path: Path, index: int, entry: Any, sources: Mapping[str, SourceSystem]) -> Plant:
    if not isinstance(entry, dict):
        raise PlantsFileError(path, f"plant #{index + 1} must be a mapping with name, timezone and sources")
    name = entry.get("name")
    if not isinstance(name, str) or not PLANT_NAME.fullmatch(name):
        raise PlantsFileError(
            path, f"plant #{index + 1}'s name {name!r} must be lower-case letters, digits and _, starting with a letter"
        )
    if unknown := sorted(set(entry) - PLANT_KEYS):
        raise PlantsFileError(
            path, f"plant {name} has {', '.join(unknown)}; a plant has {', '.join(sorted(PLANT_KEYS))}"
        )
    try:
        zone = ZoneInfo(str(entry.get("timezone")))
    except (ZoneInfoNotFoundError, ValueError):
        raise PlantsFileError(
            path, f"plant {name}'s timezone {entry.get('timezone')!r} is not an IANA zone such as Europe/Berlin"
        ) from None
    listed = entry.get("sources") or {}
    if not isinstance(listed, dict):
        raise PlantsFileError(path, f"plant {name}'s sources must map a source name to its settings")
    settings = {}
    for source_name, values in listed.items():
        if source_name not in sources:
            raise PlantsFileError(
                path, f"plant {name} names source {source_name!r}; the registered sources: {', '.join(sources)}"
            )
        settings[source_name] = _source_settings(path, name, sources[source_name], values or {})
    return Plant(name=name, timezone=zone, sources=settings, file=path)


def _source_settings(path: Path, plant: str, source: SourceSystem, values: Any) -> dict[str, str]:
    where = f"plant {plant}'s {source.name}"
    if not isinstance(values, dict):
        raise PlantsFileError(path, f"{where} must map its settings' variable names to values")
    prefix = f"{source.name.upper()}_"
    settings = {}
    for variable, value in values.items():
        if not isinstance(variable, str) or not variable.startswith(prefix):
            raise PlantsFileError(path, f"{where} sets {variable!r}: only {source.title}'s own settings ({prefix}*)")
        if isinstance(value, (dict, list)) or value is None:
            raise PlantsFileError(path, f"{where} {variable} must be one value (a string, number or true/false)")
        written = str(value).lower() if isinstance(value, bool) else str(value)
        if variable in source.secret_variables and not REFERENCE.fullmatch(written):
            # Masked: the file is refused because it holds a secret, which must not reach a log either.
            raise PlantsFileError(
                path,
                f"{where} {variable} holds a secret in the file: write the variable that holds it instead, "
                f"e.g. {variable}: ${{{plant.upper()}_{variable}}}",
            )
        settings[variable] = written
    return settings


def _plants_path() -> Path | None:
    raw = os.environ.get(PLANTS_FILE_VARIABLE, "").strip()
    return Path(raw).expanduser().resolve() if raw else None


@dataclass
class _Loaded:
    key: tuple[str, int, int]  # (file, mtime_ns, size): read again when any changes
    plants: tuple[Plant, ...]


_loaded: _Loaded | None = None


_in_context: ContextVar[str | None] = ContextVar("mfg_plant", default=None)


@contextmanager
def for_plant(name: str) -> Iterator[None]:
    """Settings and the warehouse work for plant `name` inside the block (a run of one plant's partition)."""
    token = _in_context.set(name)
    try:
        yield
    finally:
        _in_context.reset(token)


def plants() -> tuple[Plant, ...]:
    """Every plant of the file (empty without one)."""
    path = _plants_path()
    return _read(path) if path is not None else ()


def plant_names() -> tuple[str, ...]:
    """The plants this installation loads: the one `MFG_PLANT` picks, else every plant of the file; without a file
    the one plant (`MFG_PLANT`, or `default`)."""
    path = _plants_path()
    chosen = os.environ.get(PLANT_VARIABLE, "").strip()
    if path is None:
        return (current_plant_name(),)
    listed = _read(path)
    return (_choose(path, listed, chosen).name,) if chosen else tuple(plant.name for plant in listed)


def plants_side_by_side() -> tuple[Plant, ...]:
    """The plants one deployment loads side by side (its definitions get a plant dimension): every plant of the
    file when it lists several and `MFG_PLANT` picks none; else none (the deployment loads one plant)."""
    path = _plants_path()
    if path is None or os.environ.get(PLANT_VARIABLE, "").strip():
        return ()
    listed = _read(path)
    return listed if len(listed) > 1 else ()


def current_plant_name() -> str:
    """The plant the code now works for: `for_plant`'s, else `MFG_PLANT`'s or the file's only plant, else
    `default` (an installation without a plants file is one plant)."""
    name = _in_context.get()
    if name is not None:
        return name
    plant = active_plant()
    if plant is not None:
        return plant.name
    path = _plants_path()
    if path is not None:  # plants side by side, and this code runs for none of them
        _choose(path, _read(path), "")
    chosen = os.environ.get(PLANT_VARIABLE, "").strip()
    if chosen and not PLANT_NAME.fullmatch(chosen):
        raise SettingError(
            PLANT_VARIABLE,
            f"{PLANT_VARIABLE}={chosen!r}: a plant's name is lower-case letters, digits and _, starting with a letter",
        )
    return chosen or DEFAULT_PLANT


def active_plant() -> Plant | None:
    """The plant whose settings apply now: `for_plant`'s, else the file's only plant or the one `MFG_PLANT` names.
    None without a file (the environment is the plant), and outside any plant's code when plants load side by side
    (the deployment's own settings, e.g. which streams it loads, come from the environment). The file is read
    again when it changes."""
    path = _plants_path()
    if path is None:
        return None
    listed = _read(path)
    in_context = _in_context.get()
    if in_context is not None:
        return _choose(path, listed, in_context, f"plant {in_context!r}")
    chosen = os.environ.get(PLANT_VARIABLE, "").strip()
    if not chosen and len(listed) > 1:
        return None
    return _choose(path, listed, chosen)


def _read(path: Path) -> tuple[Plant, ...]:
    global _loaded
    try:
        stat = path.stat()
    except OSError as exc:
        raise PlantsFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if _loaded is None or _loaded.key != key:
        from mfg_pipeline.sources.registry import all_sources  # the registry's sources import config, as this does

        _loaded = _Loaded(key, load_plants(path, all_sources()))
    return _loaded.plants


def _choose(path: Path, plants: tuple[Plant, ...], chosen: str, named_by: str = "") -> Plant:
    names = ", ".join(plant.name for plant in plants)
    if chosen:
        for plant in plants:
            if plant.name == chosen:
                return plant
        named_by = named_by or f"{PLANT_VARIABLE}={chosen!r}"
        raise SettingError(PLANT_VARIABLE, f"{named_by} is not a plant of {path}; its plants: {names}")
    if len(plants) > 1:
        raise SettingError(
            PLANT_VARIABLE,
            f"{path} lists {len(plants)} plants ({names}) and this runs for none of them: run it for one plant (a "
            f"run of one plant's partition, or with {PLANT_VARIABLE} set to the plant)",
        )
    return plants[0]


def report(sources: Sequence[SourceSystem]) -> list[str]:
    """`mfg-pipeline plants`: the plants file checked, and each plant's zone and vendor settings as written (a secret
    only as the variable that holds it, and whether that is set); the plant this installation loads is marked."""
    path = _plants_path()
    if path is None:
        return [f"{PLANTS_FILE_VARIABLE} is not set: the environment describes this installation's one plant."]
    listed = load_plants(path, sources)
    chosen = os.environ.get(PLANT_VARIABLE, "").strip()
    active = _choose(path, listed, chosen).name if chosen or len(listed) == 1 else None
    lines = [f"Plants in {path}:"]
    for plant in listed:
        mark = "  <- this installation loads it" if plant.name == active else ""
        lines.append(f"{plant.name}  {plant.timezone.key}{mark}")
        for source in sources:
            written = plant.describe(source)
            if not written:
                lines.append(f"  {source.name}: from the environment")
                continue
            shown = [f"{variable}={value}{_reference_state(value)}" for variable, value in sorted(written.items())]
            lines.append(f"  {source.name}: {'  '.join(shown)}")
    if active is None:
        lines.append(f"No plant chosen: set {PLANT_VARIABLE} to load one; without it this installation loads them all.")
    return lines


def _reference_state(written: str) -> str:
    reference = REFERENCE.fullmatch(written)
    if reference is None:
        return ""
    return " (set)" if os.environ.get(reference.group(1)) else " (NOT SET)"
