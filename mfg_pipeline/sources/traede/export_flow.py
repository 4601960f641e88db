"""Traede's export flow: read the export, land it, then mark it exported; repeat until the export is empty.

Exactly once, whatever the server's paging and wherever the run dies:
- an order is marked only after the DuckDB transaction holding it has committed, so a crash before the mark
  means it is simply exported again next run, and the upsert (by order id) replaces it instead of adding it;
- the first page (page 0) is read again after every mark. Marking takes orders out of the export, so on a server
  that pages, page 0 then holds the next ones, and on one that ignores paging, the whole (smaller) remainder.
  Advancing page numbers instead would skip orders on a server that pages: the marked ones no longer fill the
  pages before, so what was on page 1 has moved to page 0;
- a page holding only orders this run already landed and marked means the marks are not taking effect (wrong
  system_id, or a server ignoring them): stop with an error rather than loop forever.
A re-export (`not_exported_since`) is different: marks made now do not take orders out of it, so it advances
page by page and ends on an empty page or on one with nothing new (a server that does not page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mfg_pipeline.declarations import SourceClient, Stream
from mfg_pipeline.engine.load import LoadReport, PassKind, ProgressCallback, StreamLoad
from mfg_pipeline.engine.refresh import RefreshPlan
from mfg_pipeline.http.client import Logger
from mfg_pipeline.http.errors import PaginationLoopError
from mfg_pipeline.records.schema import INT
from mfg_pipeline.sources.traede.shapes import EXPORT_ENDPOINT
from mfg_pipeline.warehouse.store import Warehouse

if TYPE_CHECKING:
    from mfg_pipeline.sources.traede.client import TraedeClient


def _updated_at_by_id(records: list[Any]) -> dict[int, Any]:
    """Order id -> its `updated_at` as sent (only called on a page that parsed, so every id is an integer)."""
    return {INT.coerce(r["id"]): r.get("updated_at") for r in records}


def export_and_mark(
    client: SourceClient,
    stream: Stream,
    warehouse: Warehouse,
    plan: RefreshPlan,
    progress: ProgressCallback | None = None,
    log: Logger | None = None,
) -> list[LoadReport]:
    """Land every order due for export to our system_id, marking each batch exported once it is committed. The
    export is Traede's own change feed (an edited order is due again), so every cycle runs the same flow (`plan`
    is not consulted)."""
    from mfg_pipeline.sources.traede.client import TraedeClient  # here: the client's module imports this one

    if not isinstance(client, TraedeClient):
        raise TypeError(f"{stream.name}: the export flow needs Traede's client, got {type(client).__name__}")
    stream_params = dict(stream.params)
    re_exporting = client.re_exporting
    landed: dict[int, Any] = {}  # order id -> updated_at, for every order landed and marked by this run
    page_number = batch = 0
    with StreamLoad(client, stream, warehouse, kind=PassKind.UPSERT) as load:
        while True:
            batch += 1
            page = client.export_page(stream_params, page_number, label=f"{page_number} (batch {batch})")
            if not page.records:
                break
            fresh = [key[0] for key in load.add_page(page)]  # drops orders this run already landed
            if not fresh:
                if not re_exporting:
                    _stop_on_repeated_page(client, stream, page.number, page.records, landed)
                break
            load.commit()  # durable before it is marked: a crash after this line re-exports, never loses
            if progress:
                progress(stream, page, len(landed) + len(fresh))
            client.mark_exported(fresh)
            versions = _updated_at_by_id(page.records)
            landed.update((order_id, versions[order_id]) for order_id in fresh)
            client.log.info(
                f"{client.system} {stream.name}: batch {batch} landed and marked {len(fresh)} "
                f"orders ({len(landed)} this run)"
            )
            if re_exporting:
                page_number += 1
        if not load.commits:
            # Nothing was due: commit the empty stage anyway (a no-op once the tables exist), so the tables and
            # their Parquet exist for the checks and for readers even when the very first run finds nothing.
            load.commit()
    return [load.report()]


def _stop_on_repeated_page(
    client: TraedeClient, stream: Stream, label: Any, records: list[Any], landed: dict[int, Any]
) -> None:
    """Every order on the page was landed and marked by this run. If some changed since (edited in Traede
    meanwhile), they are due again by right: leave them unmarked for the next run, which lands the new version.
    If none changed, the marks are not taking effect, and reading on would never end."""
    current = _updated_at_by_id(records)
    changed = sorted(order_id for order_id, updated_at in current.items() if landed.get(order_id) != updated_at)
    if changed:
        client.log.warning(
            f"{client.system} {stream.name}: orders {changed[:20]} changed in Traede after this "
            "run landed them; they stay due and land on the next run"
        )
        return
    raise PaginationLoopError(
        f"the export returned only orders this run already landed and marked exported ({sorted(current)[:20]}): "
        f"the marks are not taking effect (is TRAEDE_SYSTEM_ID {client.settings.system_id!r} the one being "
        "marked?); stopping instead of reading the same orders forever. Everything landed so far is committed",
        system=client.system,
        endpoint=EXPORT_ENDPOINT,
        page=label,
    )
