"""ISOlocity streams: NCRs, CARs and parts, each pulled whole as a snapshot on every run.

Why unpartitioned: none of these lists documents a date filter (the NCR list takes only `page`, `keyword`,
`status` and `source`; CARs and parts only `page` and `per_page`), so a day's records cannot be asked for; the
records also change long after they are created (an NCR goes from Open to Closed, a CAR is updated while it is
worked on), which a snapshot reflects and a creation-day partition would not; and a quality system's lists are
small (hundreds to a few thousand records, a few dozen requests).

Field names follow the doc's request schemas (`isolocity.txt`) plus `id`, `status`, `created_at` and
`updated_at`, which its collapsed response samples do not show. The NCR list is read unfiltered, so every source
(internal, customer, supplier) and every status lands. An NCR's `part_id` is a row of `parts`; a CAR's `ncr_id`
(when the server sends it: undocumented) is a row of `ncrs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mfg_pipeline.declarations import ById, OpenRecords, Stream
from mfg_pipeline.records.schema import BOOL, FLOAT, INT, STRING, TIMESTAMP, Column, Table, child_table
from mfg_pipeline.sources.isolocity.settings import PATH_SETTINGS
from mfg_pipeline.sources.isolocity.shapes import record_of_envelope

BATCH_ID_FIELD = "batch_id"


def batch_ids_as_rows(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """A part's `batch_ids` is an array of strings (the doc's part schema); child tables are read from arrays of
    objects, so each id becomes `{"batch_id": id}`. Anything else is left for the parser to reject by name."""
    batch_ids = record.get("batch_ids")
    if not isinstance(batch_ids, list):
        return record
    return {**record, "batch_ids": [{BATCH_ID_FIELD: batch_id} for batch_id in batch_ids]}


NCRS = Stream(
    name="ncrs",
    path=PATH_SETTINGS["ncrs"].default,
    description="Non-conformance reports of every source (internal, customer, supplier) and status (the list has "
    "no date filter, and NCRs change status after they are raised). Hourly: the open ones "
    "(`status=Open`), and each NCR stored as open that the list no longer returns, by id; daily: all.",
    # ISOLOCITY_OPEN_NCR_STATUSES (default Open) overrides the statuses that can still change; "" turns it off.
    open_records=OpenRecords(
        column="status",
        values=("Open",),
        requests=lambda values: [{"status": v} for v in values],
        refetch=ById("{path}/{id}", select=record_of_envelope),
        setting="ISOLOCITY_OPEN_NCR_STATUSES",
    ),
    table=Table(
        name="ncrs",
        primary_key=("id",),
        description="ISOlocity non-conformance reports (the NCR list, by default GET /api/ncrs), one row per NCR.",
        columns=(
            Column("id", INT, required=True),
            Column("ncr_number", STRING, description="Report number."),
            Column("source", STRING, description="internal, customer or supplier (the API's spelling)."),
            Column("status", STRING, description="E.g. Open or Closed (the API's spelling)."),
            Column("lot_number", STRING, description="Lot of the non-conforming parts."),
            Column("quantity", INT, description="Non-conforming quantity."),
            Column("description", STRING),
            Column("immediate_action", STRING, description="Containment taken when the NCR was raised."),
            Column("is_root_cause_determined", BOOL),
            Column("has_incomplete_action_items", BOOL),
            Column("has_unread_notes", BOOL),
            Column("part_id", INT, description="The part concerned: parts.id."),
            Column("created_at", TIMESTAMP, description="Raised at (UTC)."),
            Column("updated_at", TIMESTAMP, description="Last changed at (UTC)."),
        ),
    ),
)

CARS = Stream(
    name="cars",
    path=PATH_SETTINGS["cars"].default,
    description="Corrective action reports; the whole list every hour (no filter, and a short list).",
    table=Table(
        name="cars",
        primary_key=("id",),
        description="ISOlocity corrective action reports (the CAR list, by default GET /api/cars), one row per CAR.",
        columns=(
            Column("id", INT, required=True),
            Column("car_number", STRING, description="Report number."),
            Column(
                "ncr_id",
                INT,
                description="The NCR the CAR was raised for (ncrs.id); null when it came from an "
                "audit or review, or when the server does not send the link.",
            ),
            Column("created_at", TIMESTAMP, description="Opened at (UTC)."),
            Column("updated_at", TIMESTAMP, description="Last changed at (UTC)."),
        ),
    ),
)

PARTS = Stream(
    name="parts",
    path=PATH_SETTINGS["parts"].default,
    description="Parts and activities of the organization (NCRs point to them); the whole list every hour (no "
    "filter, and a short list).",
    post_process=batch_ids_as_rows,
    table=Table(
        name="parts",
        primary_key=("id",),
        description="ISOlocity parts (the part list, by default GET /api/parts), one row per part.",
        columns=(
            Column("id", INT, required=True),
            Column("name", STRING),
            Column("identification", STRING, description="Part number / product code."),
            Column("company_id", INT, description="Owning company, when the part belongs to one."),
            Column("is_activity", BOOL, description="True for an activity, false for a part."),
            Column("is_finished_product", BOOL),
            Column("supplier_id", INT),
            Column("parent_part_id", INT),
            Column("unit_type", STRING, description="Volume, Mass or Length."),
            Column("unit_of_measure", STRING),
            Column("density", FLOAT),
            Column("density_mass_unit", STRING),
            Column("density_volume_unit", STRING),
            Column("created_at", TIMESTAMP, description="Created at (UTC)."),
            Column("updated_at", TIMESTAMP, description="Last changed at (UTC)."),
        ),
    ),
    children=(
        child_table(
            "part_batch_ids",
            "batch_ids",
            [("part_id", "id", INT)],
            description="Batch ids of a part (its batch_ids array), one row per id.",
            columns=[Column(BATCH_ID_FIELD, STRING)],
        ),
    ),
)

STREAMS = (NCRS, CARS, PARTS)
