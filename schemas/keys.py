"""API key requests and answers. The secret appears only in ``NewKeyOut``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from schemas.common import PROGRAM_ID_SCHEMA

Access = Literal["read", "write"]


def _key_body_schema(schema: dict[str, Any]) -> None:
    """Exactly one of ``System: true`` or a non-empty ``Programs`` map of program ids (as the validator)."""
    schema["properties"] = {
        # enum, not const: openapi-python-client 0.29 writes invalid Python for a boolean const.
        "System": {"type": "boolean", "enum": [True], "description": "a system key (may do everything)"},
        "Programs": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1000,
            "propertyNames": PROGRAM_ID_SCHEMA,
            "additionalProperties": {"enum": ["read", "write"]},
            "description": "program id -> read or write",
        },
    }
    schema["minProperties"] = 1
    schema["maxProperties"] = 1


class KeyBody(BaseModel):
    """``POST /api/keys``: ``{"System": true}`` or ``{"Programs": {"ACME": "write"}}``, not both.

    Program ids in ``Programs`` are checked by the caller (the rule and whether
    each is registered), so that the answer can name every offending id.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, json_schema_extra=_key_body_schema)

    System: StrictBool | None = None
    Programs: dict[str, Access] | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> KeyBody:
        if self.System is not None and self.Programs is not None:
            raise ValueError('send either {"System": true} or {"Programs": {...}}, not both')
        if self.System is None and self.Programs is None:
            raise ValueError('send {"System": true} or {"Programs": {"ProgramId": "read"|"write"}}')
        if self.System is False:
            raise ValueError('System must be true; for a program key send {"Programs": {...}} instead')
        if self.Programs is not None and not self.Programs:
            raise ValueError("Programs must name at least one program")
        return self


class NewKeyOut(BaseModel):
    """The answer to a key creation: the only time the secret is shown."""

    UserId: str
    ApiKey: str


class KeyOut(BaseModel):
    """One key as listed: what it may do and when, never its secret."""

    UserId: str
    System: bool
    Programs: dict[str, Access]
    CreatedUtc: str
    RevokedUtc: str | None
