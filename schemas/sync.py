"""The processEvents answer and the sync ledger listing."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class BatchOut(BaseModel):
    ImportProcessId: int
    Rows: int
    BatchId: str | None
    BatchUrl: str | None


class ParkedInSync(BaseModel):
    EventId: str
    Reason: str = Field(description="why its row failed")


class SubscriptionSyncOut(BaseModel):
    PublisherProgramId: str
    Status: Literal["ok", "failed"]
    Events: int
    Imported: int
    Ignored: int
    Batches: list[BatchOut]
    Resent: int = Field(
        0,
        ge=0,
        description="Batches of this subscription sent again after an attempt that got no answer"
        " (a timeout, a dropped connection, a worker that died): LB may hold their rows twice."
        " Each is `unanswered` in the ledger; a batch keeps its fileName when sent again.",
    )
    Parked: list[ParkedInSync] = Field(
        default_factory=list,
        description="OnRenderError park: events whose row failed in this sync (new ones, and parked ones"
        " redelivered that failed again); skipped and kept (GET .../parked). Always empty under stop.",
    )
    Redelivered: int = Field(0, ge=0, description="Parked events sent again in this sync (POST .../parked/redeliver).")
    LastSyncUtc: str | None
    Error: str | None


class SyncOut(BaseModel):
    """The answer of POST /api/processEvents (200 and error alike; errors add error/message/details)."""

    ProgramId: str
    SyncId: str
    StartedUtc: str
    FinishedUtc: str
    Subscriptions: list[SubscriptionSyncOut]


class LedgerBatchOut(BaseModel):
    """One CreateBatch call: ``sending`` until LB answers; ``unanswered`` when an attempt
    got no answer after the rows went out (a timeout, a dropped connection, a worker that
    died): the rows were or will be sent again, and LB may hold them twice."""

    PublisherProgramId: str
    ImportProcessId: int
    Rows: int
    Seq: int
    Status: Literal["sending", "accepted", "rejected", "unanswered"]
    LbStatus: int | None
    LbMessage: str | None
    BatchId: str | None
    BatchUrl: str | None
    FileName: str | None = Field(None, description="The fileName LB shows for this batch (null for batches recorded before it was kept).")
    FirstOffset: int | None
    LastOffset: int | None
    CreatedUtc: str


class LedgerSyncOut(BaseModel):
    SyncId: str
    StartedUtc: str
    FinishedUtc: str | None
    Status: Literal["running", "ok", "failed", "interrupted"]
    HttpStatus: int | None
    Resumed: int = Field(0, ge=0, description="How many times another run took this sync over after its worker stopped or died.")
    Subscriptions: list[SubscriptionSyncOut]
    Batches: list[LedgerBatchOut]


class SyncListOut(BaseModel):
    ProgramId: str
    Syncs: list[LedgerSyncOut]


# The codes of hub_stream.sync.outcome.ERROR_STATUS (a unit test holds the two together).
SyncErrorCode = Literal["lb_rejected", "render_failed", "cursor_moved", "sync_interrupted", "events_unavailable", "internal_error"]


class FailedSubscription(BaseModel):
    PublisherProgramId: str
    Error: SyncErrorCode
    Message: str | None
    LbStatus: int | None = Field(None, description="lb_rejected: LB's HTTP status (null: no answer)")
    EventIds: list[str] = Field(default_factory=list, description="render_failed: the events whose row failed")


class SyncFailureDetails(BaseModel):
    Subscriptions: list[FailedSubscription] = Field(description="the failed subscriptions, by PublisherProgramId")


class SyncProblem(SyncOut):
    """A sync that failed (422 render_failed, 502 lb_rejected, 409 cursor_moved, 503 sync_interrupted
    or events_unavailable): the whole sync answer, plus the problem fields every error has."""

    error: SyncErrorCode
    message: str
    details: SyncFailureDetails
