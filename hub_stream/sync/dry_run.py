"""processEvents?dryRun=true: the plan of the real sync, without sending, storing or moving anything.

A dry run walks the same steps as a sync (hub_stream.sync.delivery) up to
the first call to LB: the same window (``window_bounds`` from the cursor the
sync would start from), the same reading (deleted events skipped), routing
and rendering (``window_rows``), the same grouping by importProcessId, the
same skipping of rows LB already accepted in a retried window, and the same
row cap (``plan_batches``). It stops there: no CreateBatch, no cursor write,
no ledger row. Under ``OnRenderError: park`` the answer's ``Parked`` lists
the events the sync would park (and parked events queued for redelivery
that would fail again), ``Redelivered`` the parked events it would send.
Each planned batch is answered with its row count and its
first ``SAMPLE_ROWS`` rows.

The cursor is read when the dry run starts; a sync running at the same time
may move it, so the plan is exact for the next sync only when nothing runs
in between (docs/sync.md).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hub_stream.sync.delivery import (
    EventSource,
    SubscriptionOutcome,
    SyncJob,
    sync_answer,
    window_bounds,
    window_rows,
)
from hub_stream.sync.plan import plan_batches

SAMPLE_ROWS = 3


async def plan_subscription(job: SyncJob, *, source: EventSource, row_cap: int) -> SubscriptionOutcome:
    """What a sync of ``job`` would send now: ``Batches`` with ``Rows``, ``Sample``, ``BatchId`` null."""
    outcome = SubscriptionOutcome(job.publisher, last_sync_utc=job.cursor.last_sync_utc)
    start, known_end = await window_bounds(job, source)
    rows = await window_rows(job, source, start, known_end, outcome, datetime.now(UTC))
    if rows is None:
        return outcome
    outcome.redelivered = len(outcome.redelivering)
    for batch in plan_batches(rows, delivered=job.cursor.delivered, row_cap=row_cap, window_start=start):
        outcome.imported += len(batch.rows)
        outcome.batches.append(
            {
                "ImportProcessId": batch.import_process_id,
                "Rows": len(batch.rows),
                "Sample": [json.loads(line) for line in batch.rows[:SAMPLE_ROWS]],
                "BatchId": None,
                "BatchUrl": None,
            }
        )
    return outcome


def dry_run_answer(
    program_id: str, started: datetime, finished: datetime, outcomes: list[SubscriptionOutcome]
) -> tuple[int, dict[str, Any]]:
    """The real sync's answer shape and status for this plan, with ``DryRun: true`` and no SyncId.

    The status is the one the real sync would answer for what can be known
    without LB: 422 ``render_failed`` when a template fails on an event.
    """
    status, body = sync_answer(program_id, "", started, finished, outcomes)
    body["SyncId"] = None
    return status, {"DryRun": True, **body}
