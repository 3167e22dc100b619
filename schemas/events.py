"""Published events: the body a publisher sends, and what the hub answers.

Field names and limits as CONTRACT.md ("Events (publishers)") states them.
Strings are strict (a number is not a string); timestamps are ISO 8601 text
(``Z`` or an offset; none means UTC), normalised to UTC milliseconds ``Z``.
Unknown fields are refused. docs/events.md has the choices the contract
leaves open (category limits, what "same content" means).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.common import TIMESTAMP_SCHEMA, TimestampText
from schemas.timefmt import format_utc, parse_utc

PROGRAM_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,25}$"


_UTC_SECONDS = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,6}))?(?:Z|z|\+00:00)")


def _utc_text(value: Any) -> str:
    if isinstance(value, str) and (m := _UTC_SECONDS.fullmatch(value)):
        # Already UTC (the common case): check the date, then truncate to ms as format_utc does.
        try:
            datetime.fromisoformat(m[1])
            return f"{m[1]}.{((m[2] or '') + '000')[:3]}Z"
        except ValueError:
            pass  # such as February 30th: the slow path names it
    if not isinstance(value, str):
        # ValueError, not TypeError: pydantic turns only ValueError into a field error.
        raise ValueError("must be an ISO 8601 timestamp string, such as 2026-11-22T08:00:00Z")  # noqa: TRY004
    try:
        return format_utc(parse_utc(value))
    except (ValueError, OverflowError):
        raise ValueError(f"not an ISO 8601 timestamp: {value[:60]!r}") from None


class EventCategory(BaseModel):
    """``PublisherEventCategory``: ``value`` routes the event to a template entry."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    value: str = Field(min_length=1, max_length=100, description="the category key templates match on")
    label: str | None = Field(None, max_length=200)


class EventIn(BaseModel):
    """``POST /api/events``, and a record a publisher produces onto the incoming topic."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    PublisherProgramId: str = Field(pattern=PROGRAM_ID_PATTERN, description="1-25 of A-Z a-z 0-9 _ - .")
    PublisherSystemId: str | None = Field(None, min_length=1, max_length=25)
    PublisherEventId: str = Field(min_length=1, max_length=200, description="unique per publisher; the idempotency key")
    EventType: str = Field(min_length=1, max_length=50)
    PublisherParticipantId: str = Field(min_length=1, max_length=200)
    PublisherEventCategory: EventCategory | None = None
    PublisherEventData: dict[str, Any] = Field(description="any JSON object")
    EventStartUtc: str = Field(description="ISO 8601; answered as UTC milliseconds Z", json_schema_extra=TIMESTAMP_SCHEMA)
    EventEndUtc: TimestampText | None = Field(None, description="ISO 8601; answered as UTC milliseconds Z")

    @field_validator("EventStartUtc", mode="before")
    @classmethod
    def _start(cls, value: Any) -> str:
        return _utc_text(value)

    @field_validator("EventEndUtc", mode="before")
    @classmethod
    def _end(cls, value: Any) -> str | None:
        return None if value is None else _utc_text(value)


class EventOut(BaseModel):
    """An event as the hub answers it (and as hub.events holds it)."""

    EventId: str = Field(description="E:{PublisherProgramId}-{uuid4}")
    PublisherProgramId: str
    PublisherSystemId: str | None
    PublisherEventId: str
    EventType: str
    PublisherParticipantId: str
    PublisherEventCategory: EventCategory | None
    PublisherEventData: dict[str, Any]
    EventStartUtc: str
    EventEndUtc: str | None
    CreatedUtc: str = Field(description="set by the hub; never goes backwards within a publisher")


class EventCreated(BaseModel):
    """The answer to a publish (201 new, 200 the same event again)."""

    EventId: str


class EventPage(BaseModel):
    """One page of a publisher's events, in publication order."""

    Events: list[EventOut]
    NextPageToken: str | None = Field(description="pass as pageToken for the next page; null: no more")
