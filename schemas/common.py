"""Shapes every area shares: the problem answer and small answers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, WithJsonSchema

# JSON Schema rules the OpenAPI document states, as strict as the code's own checks
# (a schema-valid request is accepted; issue 16, schemathesis).
PROGRAM_ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]{1,25}$"}
USER_ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": r"^u_[0-9a-f]{32}$"}
EVENT_ID_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^E:[A-Za-z0-9_.\-]{1,25}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
}
TIMESTAMP_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    # In UTC, the first and last days of year 1 and year 9999 with an offset leave the calendar.
    "pattern": r"^(?!0001-01-01T[^+]*\+(?!00:00))(?!9999-12-31T[^Z]*-(?!00:00))",
}
TimestampText = Annotated[str, WithJsonSchema(TIMESTAMP_SCHEMA)]
"""A timestamp field that may also be null: ``TimestampText | None`` documents ``anyOf [timestamp, null]``."""
_PY_SPACE = r"\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NAME_PATTERN = rf"^[^\x00]*[^\x00{_PY_SPACE}][^\x00]*$"
"""Not blank (Python's idea of white space) and no NUL."""


def json_whole_number(value: Any) -> Any:
    """JSON has one number type: 7.0 is the integer 7 (as JSON Schema's "integer" says); for ``mode="before"``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Problem(BaseModel):
    """Every 4xx/5xx answer."""

    error: str
    message: str
    details: dict[str, Any]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, Any]
