"""The processEvents answer and the sync ledger listing."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class BatchOut(BaseModel):
    ImportProcessId: int
    Rows: int
    BatchId: str | None
    BatchUrl: str | None


class SubscriptionSyncOut(BaseModel):
    PublisherProgramId: str
    Status: Literal["ok", "failed"]
    Events: int
    Imported: int
    Ignored: int
    Batches: list[BatchOut]
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
    """One CreateBatch call: ``sending`` until LB answers; ``unanswered`` when the worker
    died first (the rows were sent again; LB may hold them twice)."""

    PublisherProgramId: str
    ImportProcessId: int
    Rows: int
    Seq: int
    Status: Literal["sending", "accepted", "rejected", "unanswered"]
    LbStatus: int | None
    LbMessage: str | None
    BatchId: str | None
    BatchUrl: str | None
    FirstOffset: int | None
    LastOffset: int | None
    CreatedUtc: str


class LedgerSyncOut(BaseModel):
    SyncId: str
    StartedUtc: str
    FinishedUtc: str | None
    Status: Literal["running", "ok", "failed", "interrupted"]
    HttpStatus: int | None
    Subscriptions: list[SubscriptionSyncOut]
    Batches: list[LedgerBatchOut]


class SyncListOut(BaseModel):
    ProgramId: str
    Syncs: list[LedgerSyncOut]
