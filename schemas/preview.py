"""Seeing before sending: the preview of a template, and the dry-run answer of processEvents."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, WithJsonSchema, field_validator

from schemas.common import json_whole_number
from schemas.subscriptions import Template
from schemas.sync import SubscriptionSyncOut, SyncOut

MAX_PREVIEW_EVENTS = 100


# Checked by the intake's own rules (every error listed, 400 invalid_event), and
# documented as what they are: event bodies (POST /api/events is in the same document).
class PreviewIn(BaseModel):
    """``POST .../eventSubs/{pub}/preview``; every field optional (an empty body is fine)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    LbApiPayloadTemplate: Template = Field(
        None, description="the template to try; default: the stored one (needed when there is no subscription yet)"
    )
    ImportProcessId: int | None = Field(None, gt=0, strict=True, description="with a plain Handlebars template")
    Events: list[Annotated[dict[str, Any], WithJsonSchema({"$ref": "#/components/schemas/EventIn"})]] | None = Field(
        None,
        max_length=MAX_PREVIEW_EVENTS,
        description="event bodies as published (validated the same way, of the publisher in the path); not stored",
    )
    Latest: int | None = Field(
        None, ge=1, le=MAX_PREVIEW_EVENTS, strict=True, description="without Events: the publisher's latest n live events (default 10)"
    )

    @field_validator("ImportProcessId", "Latest", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        return json_whole_number(value)


class RowError(BaseModel):
    error: Literal["render_error", "row_not_json", "row_not_object"]
    message: str
    line: int | None = Field(description="row_not_json: where in the rendered row; else null")
    column: int | None


class PreviewResult(BaseModel):
    EventId: str | None = Field(description="null for an event given in the body (it has none yet)")
    PublisherEventId: str | None
    Category: str | None
    EntryKey: str | None = Field(description="the template entry the event routes to; null: no entry (ignored)")
    Action: Literal["import", "ignore"]
    ImportProcessId: int | None
    Row: dict[str, Any] | None = Field(description="the row as LB would receive it")
    Error: RowError | None


class PreviewSummary(BaseModel):
    Import: int
    Ignore: int
    Failed: int


class PreviewOut(BaseModel):
    Results: list[PreviewResult]
    Summary: PreviewSummary


class DryRunBatchOut(BaseModel):
    ImportProcessId: int
    Rows: int
    Sample: list[dict[str, Any]] = Field(description="the batch's first 3 rows")
    BatchId: None
    BatchUrl: None


class DryRunSubscriptionOut(SubscriptionSyncOut):
    Batches: list[DryRunBatchOut]  # type: ignore[assignment]


class DryRunOut(BaseModel):
    """``processEvents?dryRun=true``: the plan; nothing was sent, stored or moved."""

    DryRun: Literal[True]
    ProgramId: str
    SyncId: None
    StartedUtc: str
    FinishedUtc: str
    Subscriptions: list[DryRunSubscriptionOut]


class SyncOrDryRunOut(RootModel[DryRunOut | SyncOut]):
    """processEvents: the sync's answer, or with dryRun=true its plan."""
