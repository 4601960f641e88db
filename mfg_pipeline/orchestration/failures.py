"""Failures a data engineer can act on: the first line says what is wrong and what to change.

Errors the pipeline understands - a setting (missing variable, refused credentials, a base URL that reaches
nothing or serves HTML, a DuckDB file held open elsewhere) or a vendor answer it cannot use (HTTP errors after
every retry, malformed pages) - become a Dagster `Failure` whose description is that one line and whose metadata
names the system, endpoint, page and the variable to check. Anything else is a bug and keeps its stack trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster import Failure, MetadataValue

from mfg_pipeline.http.errors import ConfigurationError, SourceError


def failure_for(error: BaseException, source: str, stream: str | None = None) -> Failure | None:
    """The `Failure` to raise instead of `error`, or None when it is not one the pipeline understands."""
    is_setting = isinstance(error, ConfigurationError)
    if not is_setting and not isinstance(error, SourceError):
        return None
    metadata: dict[str, Any] = {
        "source": MetadataValue.text(source),
        "kind": MetadataValue.text("configuration" if is_setting else "source data"),
    }
    if stream:
        metadata["stream"] = MetadataValue.text(stream)
    if isinstance(error, SourceError):
        metadata["endpoint"] = MetadataValue.text(error.endpoint)
        if error.page is not None:
            metadata["page"] = MetadataValue.text(str(error.page))
        if error.status is not None:
            metadata["http_status"] = MetadataValue.int(error.status)
    variable = getattr(error, "variable", None)
    if variable:
        metadata["check_variable"] = MetadataValue.text(variable)
    return Failure(description=str(error), metadata=metadata, allow_retries=not is_setting)


@contextmanager
def explained_failures(source: str, stream: str | None = None) -> Iterator[None]:
    try:
        yield
    except Exception as error:
        failure = failure_for(error, source, stream)
        if failure is None:
            raise
        raise failure from None
