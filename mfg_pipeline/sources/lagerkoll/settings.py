"""Lagerkoll settings, from LAGERKOLL_* environment variables.

The doc offers two credential styles, both sent as headers next to `store`: an API key (machine to machine), or
a person's `user_id` + `user_token` from a login. The user pair wins when both of its variables are set;
otherwise the API key is required.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from mfg_pipeline.config import env_int, env_str, require_env
from mfg_pipeline.http.errors import MissingCredentialError, SettingError

DEFAULT_BASE_URL = "https://capi.lagerkoll.com"
DEFAULT_RATE_LIMIT_PER_MINUTE = 200  # the doc: "MAX number of requests per minute is set to 200"
DEFAULT_PAGE_SIZE = 50  # the doc's default `limit` on its other lists, so any server accepts it


@dataclass(frozen=True)
class LagerkollSettings:
    # The environment variables read here: the client names them in errors, the simulator's env sets them.
    BASE_URL_VARIABLE: ClassVar[str] = "LAGERKOLL_BASE_URL"
    STORE_VARIABLE: ClassVar[str] = "LAGERKOLL_STORE"
    API_KEY_VARIABLE: ClassVar[str] = "LAGERKOLL_API_KEY"
    USER_ID_VARIABLE: ClassVar[str] = "LAGERKOLL_USER_ID"
    USER_TOKEN_VARIABLE: ClassVar[str] = "LAGERKOLL_USER_TOKEN"
    RATE_LIMIT_VARIABLE: ClassVar[str] = "LAGERKOLL_RATE_LIMIT_PER_MINUTE"
    FIRST_PAGE_VARIABLE: ClassVar[str] = "LAGERKOLL_FIRST_PAGE"
    # What a person fixes when Lagerkoll refuses us, per credential style (named in errors; the secret
    # headers' values are masked). `credential_variables` is the one in use.
    API_KEY_CREDENTIAL_VARIABLES: ClassVar[tuple[str, ...]] = (STORE_VARIABLE, API_KEY_VARIABLE)
    USER_TOKEN_CREDENTIAL_VARIABLES: ClassVar[tuple[str, ...]] = (STORE_VARIABLE, USER_ID_VARIABLE, USER_TOKEN_VARIABLE)
    # The variables whose values are secrets: never in a log, an error or a plants file (only named there).
    SECRET_VARIABLES: ClassVar[tuple[str, ...]] = (API_KEY_VARIABLE, USER_TOKEN_VARIABLE)

    base_url: str
    store: str
    # Credentials: never in a repr, a log or an error.
    api_key: str | None = field(default=None, repr=False)
    user_id: str | None = field(default=None, repr=False)
    user_token: str | None = field(default=None, repr=False)
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT_PER_MINUTE
    page_size: int = DEFAULT_PAGE_SIZE
    # FACTS: whether pages count from 0 or 1 is unconfirmed. "auto" starts at the doc's 0 and follows what the
    # server shows (its `page` echo, or a refused or empty page 0); "0" or "1" fixes it.
    first_page: int = 0
    first_page_fixed: bool = False

    def __post_init__(self) -> None:
        if not self.api_key and not (self.user_id and self.user_token):
            raise ValueError("Lagerkoll settings need an api_key, or a user_id and a user_token")

    @property
    def uses_user_token(self) -> bool:
        return bool(self.user_id and self.user_token)

    @property
    def credential_variables(self) -> tuple[str, ...]:
        """The variables of the credential style in use."""
        return self.USER_TOKEN_CREDENTIAL_VARIABLES if self.uses_user_token else self.API_KEY_CREDENTIAL_VARIABLES

    @classmethod
    def from_env(cls) -> LagerkollSettings:
        store = require_env(cls.STORE_VARIABLE, "Lagerkoll store id (shown where the API was activated)")
        user_id = env_str(cls.USER_ID_VARIABLE, "")
        user_token = env_str(cls.USER_TOKEN_VARIABLE, "")
        api_key = env_str(cls.API_KEY_VARIABLE, "")
        if not (user_id and user_token) and not api_key:
            # Half of the user pair set: the other half is what is missing, not the API key.
            if user_id:
                raise MissingCredentialError(
                    cls.USER_TOKEN_VARIABLE,
                    f"Lagerkoll user token that goes with {cls.USER_ID_VARIABLE} "
                    f"(or unset it and set {cls.API_KEY_VARIABLE})",
                )
            if user_token:
                raise MissingCredentialError(
                    cls.USER_ID_VARIABLE,
                    f"Lagerkoll user id that goes with {cls.USER_TOKEN_VARIABLE} "
                    f"(or unset it and set {cls.API_KEY_VARIABLE})",
                )
            api_key = require_env(
                cls.API_KEY_VARIABLE,
                f"Lagerkoll API key (or set {cls.USER_ID_VARIABLE} and {cls.USER_TOKEN_VARIABLE} instead)",
            )
        use_user = bool(user_id and user_token)
        first_page = _first_page(env_str(cls.FIRST_PAGE_VARIABLE, "auto"))
        return cls(
            base_url=env_str(cls.BASE_URL_VARIABLE, DEFAULT_BASE_URL),
            store=store,
            api_key=None if use_user else api_key,
            user_id=user_id if use_user else None,
            user_token=user_token if use_user else None,
            rate_limit_per_minute=env_int(cls.RATE_LIMIT_VARIABLE, DEFAULT_RATE_LIMIT_PER_MINUTE),
            first_page=first_page or 0,
            first_page_fixed=first_page is not None,
        )


def _first_page(raw: str) -> int | None:
    """LAGERKOLL_FIRST_PAGE: "auto" (None), "0" or "1"."""
    value = raw.strip().lower()
    if value == "auto":
        return None
    if value in ("0", "1"):
        return int(value)
    variable = LagerkollSettings.FIRST_PAGE_VARIABLE
    raise SettingError(variable, f"Environment variable {variable} must be auto, 0 or 1, got {raw!r}")
