"""Errors from talking to a vendor API. Every message names the system, the endpoint and (for lists) the page,
and never carries a secret: URLs carry no query string, and known secret values are masked.

`ConfigurationError` marks the errors a person fixes by changing a setting (a missing variable, a refused
credential, a base URL that reaches nothing or the wrong server): the orchestration shows their one-line
message without a stack trace.
"""

from __future__ import annotations


class ConfigurationError(RuntimeError):
    """Mixed into errors whose cause is a setting; `variable` names the one to check, when there is one."""

    variable: str | None = None


class SettingError(ConfigurationError, ValueError):
    """An environment variable holds a value the pipeline cannot use; the message names it and says what fits."""

    def __init__(self, variable: str, message: str):
        self.variable = variable
        super().__init__(message)


class MissingCredentialError(ConfigurationError):
    """A required environment variable is not set; the message names it."""

    def __init__(self, variable: str, what: str):
        self.variable = variable
        super().__init__(f"Environment variable {variable} is not set: it must hold the {what}.")


class SourceError(RuntimeError):
    """Base class: something went wrong reading `system`'s `endpoint` (on `page`, when paging)."""

    def __init__(
        self,
        message: str,
        *,
        system: str,
        endpoint: str,
        page: int | str | None = None,
        status: int | None = None,
    ):
        self.system = system
        self.endpoint = endpoint
        self.page = page
        self.status = status
        self.detail = message  # what went wrong, without the where: to re-raise it for another endpoint
        where = f"{system} {endpoint}" + (f" page {page}" if page is not None else "")
        super().__init__(f"{where}: {message}")


class SourceHttpError(SourceError):
    """The server refused the request, or kept failing after every retry."""


class ChildListError(SourceHttpError):
    """A record's child list failed (not the list the record came from): never a sign that the list's own
    filters were refused."""


class SourceConfigurationError(SourceHttpError, ConfigurationError):
    """The answer says a setting is wrong: credentials refused, host unreachable, a path the server lacks."""

    def __init__(self, message: str, *, variable: str | None = None, **where: object):
        self.variable = variable
        super().__init__(message, **where)  # type: ignore[arg-type]


class DeadlineExceeded(SourceError):
    """The caller's deadline came before an answer: the wait for the rate limit, or the retries after failed
    attempts, would have run past it. No response was received, so a caller with a time budget (a sensor tick)
    can stop cleanly and try again later."""


class SourcePayloadError(SourceError):
    """The server answered 200 with something the doc does not allow (not JSON, wrong shape, wrong types)."""


class NotJsonError(SourcePayloadError, ConfigurationError):
    """The server answered with something other than JSON (an HTML login or error page, usually a wrong base
    URL)."""

    def __init__(self, message: str, *, variable: str | None = None, **where: object):
        self.variable = variable
        super().__init__(message, **where)  # type: ignore[arg-type]


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
