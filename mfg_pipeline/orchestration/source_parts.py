"""What one source hands over to the code location: its streams' assets, jobs and schedules and, when it declares
a changes feed, the feed's sensor, apply job and the tables only the feed writes (dagster-open-platform's way:
each source's own definitions, merged by `definitions.py`, which knows no source by name)."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import Definitions

from mfg_pipeline.declarations import SourceSystem
from mfg_pipeline.orchestration.changes_feed import changes_feed_definitions, feed_upstream
from mfg_pipeline.orchestration.factory import source_definitions
from mfg_pipeline.orchestration.maintenance import JournalFactory
from mfg_pipeline.orchestration.plant_partitions import Partitioning


def source_parts(source: SourceSystem, partitions: Partitioning) -> list[Definitions]:
    feed = source.changes_feed
    if feed is None:
        return [source_definitions(source, partitions)]
    channels = feed.channels()
    return [
        source_definitions(source, partitions, feed_upstream(feed, channels)),
        changes_feed_definitions(source, feed, channels, partitions),
    ]


def feed_journals(sources: Sequence[SourceSystem]) -> list[JournalFactory]:
    """The journals the daily maintenance prunes: one per source with a changes feed."""
    return [feed.journal_pages for source in sources if (feed := source.changes_feed) is not None]
