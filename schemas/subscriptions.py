"""Event subscription request bodies and answers (field names as they travel).

``SynEnabled`` (the vendor's misspelling) is accepted as an alias of
``SyncEnabled`` in request bodies, never both at once; answers say
``SyncEnabled``. ``LbApiPayloadTemplate`` is typed loosely here (object
string or null): its content is checked by the template parser.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.common import TimestampText, json_whole_number
from schemas.timefmt import format_utc, parse_utc

READ_ONLY_FIELDS = ("ProgramId", "PublisherProgramId", "CreatedUtc", "UpdatedUtc")
"""Fields of the resource a PATCH may not send (POST may send PublisherProgramId only)."""

Template = dict[str, Any] | str | None
RenderErrorPolicy = Literal["stop", "park"]


def _one_sync_flag(data: Any) -> Any:
    """Fold ``SynEnabled`` into ``SyncEnabled``; both at once is an error."""
    if isinstance(data, dict) and "SynEnabled" in data:
        if "SyncEnabled" in data:
            raise ValueError("send SyncEnabled or its alias SynEnabled, not both")
        data = {("SyncEnabled" if k == "SynEnabled" else k): v for k, v in data.items()}
    return data


def _document_alias(schema: dict[str, Any]) -> None:
    """The document names the alias too: a client generated from it may send either spelling, never both."""
    schema["properties"]["SynEnabled"] = {
        "type": "boolean",
        "description": "alias of SyncEnabled (the vendor's own examples spell it so); send one of the two, never both",
    }
    schema["not"] = {"required": ["SyncEnabled", "SynEnabled"]}


def _document_patch(schema: dict[str, Any]) -> None:
    _document_alias(schema)
    schema["minProperties"] = 1


def _utc_text(value: Any) -> str | None:
    """``LastSyncUtc`` normalised to UTC ms ``Z`` text (null stays null)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_utc(value)
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 timestamp string or null")  # noqa: TRY004 - pydantic reports ValueError only
    return format_utc(parse_utc(value))


class _SubscriptionFields(BaseModel):
    """The fields POST and PATCH share."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_document_alias)

    SyncEnabled: bool = Field(False, strict=True)
    LbApiPayloadTemplate: Template = Field(None, description="object, string holding an object, or plain Handlebars string")
    ImportProcessId: int | None = Field(None, gt=0, strict=True, description="only with a plain Handlebars template, and then needed")
    LastSyncUtc: TimestampText | None = Field(
        None, description="deliver events with CreatedUtc >= this; null: from the publisher's first event"
    )
    OnRenderError: RenderErrorPolicy = Field(
        "stop", description="an event the template cannot render: stop the subscription (default) or park the event"
    )

    @model_validator(mode="before")
    @classmethod
    def _fold_alias(cls, data: Any) -> Any:
        return _one_sync_flag(data)

    @field_validator("LastSyncUtc", mode="before")
    @classmethod
    def _last_sync(cls, value: Any) -> str | None:
        return _utc_text(value)

    @field_validator("ImportProcessId", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        return json_whole_number(value)


class SubscriptionCreate(_SubscriptionFields):
    """``POST /api/programs/{programId}/eventSubs`` (``LastSyncUtc``: optional start point)."""

    PublisherProgramId: str = Field(max_length=25, pattern=r"^[A-Za-z0-9_.\-]{1,25}$")


class SubscriptionPatch(_SubscriptionFields):
    """``PATCH .../eventSubs/{publisherProgramId}``: any of these; only the ones sent change.

    ``LastSyncUtc`` moves the cursor: the next sync delivers events with
    ``CreatedUtc >= LastSyncUtc``; null: from the publisher's first event.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_document_patch)

    def changes(self) -> dict[str, Any]:
        """Only the fields the body named, with their values."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


class SubscriptionOut(BaseModel):
    """One subscription as answered."""

    ProgramId: str
    PublisherProgramId: str
    CreatedUtc: str
    UpdatedUtc: str
    LastSyncUtc: str | None = Field(description="null until the first successful sync, or what staff set")
    SyncEnabled: bool
    LbApiPayloadTemplate: Template = Field(description="as it was given")
    ImportProcessId: int | None = Field(description="only with a plain Handlebars template")
    OnRenderError: RenderErrorPolicy = Field(description="stop (default) or park")
