"""Program ids, the programs registry's request body and its answers.

Field names are PascalCase, exactly as they travel. The LB API key appears
only in the request body, as a ``SecretStr`` so it is masked if a model is
ever printed or logged; no answer model has a field for it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from schemas.common import NAME_PATTERN

PROGRAM_ID_RULE = "1–25 characters of A-Z a-z 0-9 _ - ."
CREATION_PATH_RULE = "1–15 characters of A-Z 0-9 _"
DEFAULT_CREATION_PATH = "LH"

_PROGRAM_ID = re.compile(r"[A-Za-z0-9_.\-]{1,25}")
_CREATION_PATH = re.compile(r"[A-Z0-9_]{1,15}")
_HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no spaces: it goes into a header
_EMAIL = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+")


# The same rules as JSON Schema patterns for the OpenAPI document (a subset of what the code
# accepts only where an exact pattern would be unreadable: URL paths are RFC 3986 characters).
LB_BASE_URL_PATTERN = r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,4})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/\-]*)?$"
_ADDRESS = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+"
EMAILS_PATTERN = rf"^ *{_ADDRESS} *([,;] *{_ADDRESS} *)*$"


def is_program_id(value: object) -> bool:
    """True when ``value`` follows the program id rule (case-sensitive)."""
    return isinstance(value, str) and _PROGRAM_ID.fullmatch(value) is not None


def _check_lb_base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host, such as https://lb.example.com")
    if any(ch.isspace() for ch in value):
        raise ValueError("must not contain whitespace")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials; send the key as LbApiKey")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment: the hub appends the CreateBatch path to it")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ValueError("has an invalid port") from None
    return value


def _check_emails(value: str | None) -> str | None:
    if value is None:
        return None
    addresses = [part.strip() for part in re.split(r"[,;]", value)]
    bad = [a for a in addresses if not _EMAIL.fullmatch(a)]
    if bad:
        shown = ", ".join(repr(b) for b in bad)
        raise ValueError(f"must be e-mail addresses separated by , or ; (not valid: {shown})")
    return value


class ProgramBody(BaseModel):
    """``PUT /api/programs/{programId}``: the whole registry entry.

    ``LbApiKey`` omitted on a replace keeps the stored key; ``null`` clears it
    (see docs/programs-and-keys.md). Check ``model_fields_set`` for which.
    """

    # hide_input_in_errors: a ValidationError printed or logged must not show the LbApiKey.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, hide_input_in_errors=True)

    Name: str = Field(min_length=1, max_length=200, json_schema_extra={"pattern": NAME_PATTERN})
    LbBaseUrl: str | None = Field(None, max_length=2000, json_schema_extra={"pattern": LB_BASE_URL_PATTERN})
    LbApiKey: SecretStr | None = Field(None, min_length=1, max_length=4000, json_schema_extra={"pattern": r"^[\x21-\x7e]+$"})
    CreationPath: str = Field(DEFAULT_CREATION_PATH, json_schema_extra={"pattern": r"^[A-Z0-9_]{1,15}$"})
    SendSuccessEmailTo: str | None = Field(None, min_length=1, max_length=1000, json_schema_extra={"pattern": EMAILS_PATTERN})
    SendFailureEmailTo: str | None = Field(None, min_length=1, max_length=1000, json_schema_extra={"pattern": EMAILS_PATTERN})

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold NUL: refused here, not failed there (CONTRACT.md "Conventions").
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value

    @field_validator("Name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("LbBaseUrl")
    @classmethod
    def _lb_base_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_lb_base_url(value)

    @field_validator("LbApiKey")
    @classmethod
    def _lb_api_key(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never repeats the value: it is a secret.
        if value is not None and not _HEADER_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("must be printable ASCII without spaces or control characters")
        return value

    @field_validator("CreationPath")
    @classmethod
    def _creation_path(cls, value: str) -> str:
        if not _CREATION_PATH.fullmatch(value):
            raise ValueError(f"must be {CREATION_PATH_RULE}, got {value!r}")
        return value

    @field_validator("SendSuccessEmailTo", "SendFailureEmailTo")
    @classmethod
    def _emails(cls, value: str | None) -> str | None:
        return _check_emails(value)

    @property
    def keeps_stored_lb_api_key(self) -> bool:
        """True when the body leaves LbApiKey out: a replace keeps the stored secret."""
        return "LbApiKey" not in self.model_fields_set


class ProgramOut(BaseModel):
    """One registry entry as answered: never the LB API key, only whether it is set."""

    ProgramId: str
    Name: str
    LbBaseUrl: str | None
    LbApiKeySet: bool
    CreationPath: str
    SendSuccessEmailTo: str | None
    SendFailureEmailTo: str | None
    CreatedUtc: str
    UpdatedUtc: str
