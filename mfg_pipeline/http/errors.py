"""Errors from talking to a vendor API. Every message names the system, the endpoint and (for lists) the page,
and never carries a secret: URLs are not included, and known secret values are masked."""

from __future__ import annotations


class MissingCredentialError(RuntimeError):
    """A required environment variable is not set; the message names it."""

    def __init__(self, variable: str, what: str):
        self.variable = variable
        super().__init__(f"Environment variable {variable} is not set: it must hold the {what}.")


class SourceError(RuntimeError):
    """Base class: something went wrong reading `system`'s `endpoint` (on `page`, when paging)."""

    def __init__(self, message: str, *, system: str, endpoint: str, page: int | str | None = None,
                 status: int | None = None):
        self.system = system
        self.endpoint = endpoint
        self.page = page
        self.status = status
        self.detail = message  # what went wrong, without the where: to re-raise it for another endpoint
        where = f"{system} {endpoint}" + (f" page {page}" if page is not None else "")
        super().__init__(f"{where}: {message}")


class SourceHttpError(SourceError):
    """The server refused the request, or kept failing after every retry."""


class DeadlineExceeded(SourceError):
    """The caller's deadline came before an answer: the wait for the rate limit, or the retries after failed
    attempts, would have run past it. No response was received, so a caller with a time budget (a sensor tick)
    can stop cleanly and try again later."""


class SourcePayloadError(SourceError):
    """The server answered 200 with something the doc does not allow (not JSON, wrong shape, wrong types)."""


class PaginationLoopError(SourcePayloadError):
    """The server returned the same page again: following it would never end."""


class SecretMasker:
    """Masks known secret values (API keys, tokens) in any text before it leaves the HTTP layer."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *values: str | None) -> None:
        # Very short values would mask ordinary words; real credentials are long.
        self._secrets.update(v for v in values if v and len(v) >= 4)

    def mask(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text
