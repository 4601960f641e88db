"""How the definitions partition: by day, and, when one deployment loads several plants (`plants.py`), by plant
too. The asset graph does not grow with the plants: a partitioned table is one asset whose partitions are
plant x day (`MultiPartitionsDefinition`), so backfilling one plant, or one plant's week, is one selection in the
UI. A day is always a plant-local day: each run reads its plant's zone for the window (`window`).

A table loaded whole (a snapshot) stays unpartitioned: a run loads it for the plant of its partition or of its
`mfg/plant` tag (a schedule's), and a run with neither (a materialization by hand) for every plant in turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Any

from dagster import (
    DailyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
)

from mfg_pipeline import config
from mfg_pipeline.declarations import PartitionWindow

PLANT_DIMENSION, DATE_DIMENSION = "plant", "date"
PLANT_TAG = "mfg/plant"  # the plant a run works for, on runs whose partition does not say it
PARTITION_TAG = "dagster/partition"  # Dagster's own tags (not exported by name from the public API)
PLANT_PARTITION_TAG = f"{PARTITION_TAG}/{PLANT_DIMENSION}"  # a multi-partitioned run's plant


@dataclass(frozen=True)
class Partitioning:
    daily: DailyPartitionsDefinition
    plants: tuple[str, ...] = ()  # empty: the deployment loads one plant, and there is no plant dimension

    @classmethod
    def of(cls, definition: PartitionsDefinition | None) -> Partitioning | None:
        """The partitioning a job's partitions definition stands for."""
        if isinstance(definition, DailyPartitionsDefinition):
            return cls(definition)
        if isinstance(definition, MultiPartitionsDefinition):
            dimensions = {d.name: d.partitions_def for d in definition.partitions_defs}
            daily, plants = dimensions[DATE_DIMENSION], dimensions[PLANT_DIMENSION]
            assert isinstance(daily, DailyPartitionsDefinition)
            return cls(daily, tuple(plants.get_partition_keys()))
        return None

    @property
    def by_plant(self) -> bool:
        return bool(self.plants)

    @cached_property
    def definition(self) -> PartitionsDefinition:
        """The partitions of a partitioned table."""
        if not self.by_plant:
            return self.daily
        return MultiPartitionsDefinition(
            {PLANT_DIMENSION: StaticPartitionsDefinition(list(self.plants)), DATE_DIMENSION: self.daily}
        )

    @property
    def first_day(self) -> date:
        return self.daily.start.date()

    def key(self, plant: str, day: str) -> str:
        """A partition key: the day, or the plant and the day."""
        return MultiPartitionKey({PLANT_DIMENSION: plant, DATE_DIMENSION: day}) if self.by_plant else day

    def split(self, key: str) -> tuple[str | None, str]:
        """(plant, day) of a partition key (the plant is None without a plant dimension)."""
        if not self.by_plant:
            return None, key
        parsed = self.definition.get_partition_key_from_str(key)  # type: ignore[attr-defined]
        keys = parsed.keys_by_dimension
        return keys[PLANT_DIMENSION], keys[DATE_DIMENSION]

    def days(self, now: datetime) -> set[str]:
        """The days that are partitions at `now`."""
        return set(self.daily.get_partition_keys(current_time=now))

    def run_plants(self, tags: Mapping[str, str], every: tuple[str, ...]) -> tuple[str, ...]:
        """The plants a run works for: its partition's, else its `mfg/plant` tag's, else `every` plant."""
        plant = tags.get(PLANT_PARTITION_TAG) or tags.get(PLANT_TAG)
        if self.by_plant and not plant and tags.get(PARTITION_TAG):
            plant = self.split(tags[PARTITION_TAG])[0]
        return (plant,) if plant else every


def window(day: date) -> PartitionWindow:
    """A plant-local day: midnight to midnight in the partition zone in force (the plant's, inside its run)."""
    zone = config.partition_timezone()
    start = datetime.combine(day, time(), tzinfo=zone)
    return PartitionWindow(day, start, datetime.combine(day + timedelta(days=1), time(), tzinfo=zone))


def latest_zone(zones: Mapping[str, Any]) -> str:
    """Of the plants' zones, the one whose day starts first (furthest east now): its partitions include every
    plant's today."""
    now = datetime.now()
    return max(zones.values(), key=lambda zone: now.astimezone(zone).utcoffset() or timedelta()).key
