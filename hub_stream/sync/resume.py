"""What a run of a sync records of its batches, and what a resumed run builds on.

A sync stopped on one worker is resumed by another under the same SyncId
(agents/pending_syncs.py, docs/sync.md): the resumed run numbers its batches
after the earlier run's, sends a batch that got no answer again under its
file name (a resend, counted in the answer's ``Resent``), keeps the
subscriptions the earlier run completed and counts the batches LB accepted
from it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import asyncpg

from hub_stream.sync import ledger
from hub_stream.sync.delivery import SendingBatch, SubscriptionOutcome, ledger_status
from hub_stream.sync.lb_client import BatchOutcome
from hub_stream.sync.plan import PlannedBatch, batch_file_name


class SyncRun(Protocol):
    """The running sync: its id, its program, the ledger seq of its last batch and its claim's token."""

    sync_id: str
    program_id: str
    last_seq: int
    token: str


class LedgerBatches:
    """The ledger rows of one subscription's batches in one sync (hub_stream.sync.delivery.BatchLog).

    ``earlier``: this subscription's batches of earlier runs of the same sync
    (a resumed sync). Rows of an earlier batch that got no answer and are sent
    again make a resend: counted, and under the earlier batch's fileName.
    ``left``: batches of other syncs of the program settled ``unanswered``
    when this one started (a worker died, or a run that lost the program had
    one in flight): rows of theirs sent again are a resend too.

    A batch is recorded ``sending`` only while the run holds the program's
    claim (``ledger.batch_sending``): ledger.SyncSuperseded otherwise.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        run: SyncRun,
        publisher: str,
        started: datetime,
        earlier: list[ledger.RecordedBatch],
        left: list[ledger.RecordedBatch] = (),  # type: ignore[assignment]
    ) -> None:
        self._pool = pool
        self._run = run
        self._publisher = publisher
        self._started = started
        self._unanswered = [b for b in [*earlier, *left] if b.status == "unanswered" and not accepted(b)]

    async def sending(self, batch: PlannedBatch) -> SendingBatch:
        run = self._run
        run.last_seq += 1
        seq = run.last_seq
        overlapping = [
            b
            for b in self._unanswered
            if b.import_process_id == batch.import_process_id and b.first_offset <= batch.last_offset and batch.first_offset <= b.last_offset
        ]
        # Each earlier copy LB may hold is one resend, counted once (a batch sent three times: two).
        self._unanswered = [b for b in self._unanswered if b not in overlapping]
        before = overlapping[0] if overlapping else None
        if before is not None and before.first_offset == batch.first_offset and before.file_name:
            file_name = before.file_name
        else:
            file_name = batch_file_name(self._publisher, self._started, run.sync_id, seq)
        await ledger.batch_sending(
            self._pool,
            run.sync_id,
            seq,
            publisher_program_id=self._publisher,
            import_process_id=batch.import_process_id,
            row_count=len(batch.rows),
            first_offset=batch.first_offset,
            last_offset=batch.last_offset,
            file_name=file_name,
            claim=(run.program_id, run.token) if run.token else None,
        )
        return SendingBatch(seq, file_name, resend=len(overlapping))

    async def answered(self, sending: SendingBatch, batch: PlannedBatch, outcome: BatchOutcome, *, note: str | None = None) -> None:
        status, message = ledger_status(sending, outcome, note)
        await ledger.batch_answered(
            self._pool,
            self._run.sync_id,
            sending.seq,
            status=status,
            lb_status=outcome.status,
            lb_message=message,
            batch_id=outcome.batch_id,
            batch_url=outcome.batch_url,
        )


def accepted(batch: ledger.RecordedBatch) -> bool:
    """LB accepted the batch (its rows are not sent again), possibly after an attempt without an answer."""
    return batch.status == "accepted" or (batch.status == "unanswered" and batch.lb_status is not None and 200 <= batch.lb_status < 300)


def carry_earlier(outcome: SubscriptionOutcome, earlier: list[ledger.RecordedBatch]) -> None:
    """Count in the answer the batches LB accepted from earlier runs of this sync (a resumed sync)."""
    carried = [b for b in earlier if accepted(b)]
    outcome.imported += sum(b.row_count for b in carried)
    outcome.resent += sum(b.status == "unanswered" for b in carried)
    outcome.batches[:0] = [
        {"ImportProcessId": b.import_process_id, "Rows": b.row_count, "BatchId": b.batch_id, "BatchUrl": b.batch_url} for b in carried
    ]


def finished_outcomes(result: dict[str, Any] | None) -> list[SubscriptionOutcome]:
    """The subscriptions an interrupted run of a sync completed (recorded as it went)."""
    return [SubscriptionOutcome.from_json(doc) for doc in (result or {}).get("Subscriptions", []) if doc.get("Status") == "ok"]
