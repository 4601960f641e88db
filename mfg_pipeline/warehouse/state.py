"""What the pipeline remembers between runs, in the lake beside the data it describes: per plant and stream, when a
pass last started (the modified-since pass counts from it) or last completed (the child sweep's cadence)."""

from __future__ import annotations

from datetime import datetime

import duckdb

from mfg_pipeline.warehouse.lake import Lake
from mfg_pipeline.warehouse.layout import PLANT_COLUMN, STREAM_STATE

MODIFIED_PASS = "modified_pass"  # when the last modified-since pass started
CHILD_SWEEP = "child_sweep"  # when the last full pass that swept a slice of child lists started (engine/sweep.py)


class StreamState:
    def __init__(self, lake: Lake, plant: str):
        self.lake = lake
        self.plant = plant

    def get(self, schema: str, stream: str, name: str) -> datetime | None:
        if not self._exists():
            return None
        rows = self.lake.read(
            f"SELECT happened_at FROM {STREAM_STATE} WHERE schema_name = ? AND stream = ? AND name = ? "
            f"AND {PLANT_COLUMN} = ?",
            [schema, stream, name, self.plant],
        )
        return rows[0][0] if rows else None

    def set(self, schema: str, stream: str, name: str, at: datetime) -> None:
        which = [schema, stream, name, self.plant]

        def write(cursor: duckdb.DuckDBPyConnection) -> None:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {STREAM_STATE} "
                f"(schema_name VARCHAR, stream VARCHAR, name VARCHAR, happened_at TIMESTAMPTZ, {PLANT_COLUMN} VARCHAR)"
            )
            cursor.execute(
                f"DELETE FROM {STREAM_STATE} WHERE schema_name = ? AND stream = ? AND name = ? AND {PLANT_COLUMN} = ?",
                which,
            )
            cursor.execute(
                f"INSERT INTO {STREAM_STATE} (schema_name, stream, name, {PLANT_COLUMN}, happened_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [*which, at],
            )

        self.lake.write(f"{schema} {stream}: recording plant {self.plant}'s {name.replace('_', ' ')}", write)

    def _exists(self) -> bool:
        return self.lake.has_table(*STREAM_STATE.split("."))
