"""Parked events of a subscription (``OnRenderError: park``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ParkedEventOut(BaseModel):
    EventId: str
    Offset: int = Field(description="the event's offset in its publisher's partition of hub.events")
    EntryKey: str | None = Field(description="the template entry the event routed to")
    Reason: str = Field(description="why its row failed (the latest attempt's reason)")
    ParkedUtc: str
    Redeliver: bool = Field(description="true: queued; the next sync renders it again with the current template")


class ParkedPage(BaseModel):
    Parked: list[ParkedEventOut] = Field(description="oldest first (by offset)")
    NextPageToken: str | None = Field(description="pageToken of the next page; null on the last")
    Total: int = Field(description="parked events of the subscription, all pages")


class RedeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    EventIds: list[str] | None = Field(None, description="the parked events to send again; default (or null): all")


class RedeliverOut(BaseModel):
    Queued: list[str] = Field(description="EventIds the next sync renders again, before the new events")
    NotParked: list[str] = Field(description="EventIds of the body that are not parked (nothing done for them)")
