"""One program's sync: for each SyncEnabled subscription, read, render, send, advance.

For a subscription: read the publisher's partition of hub.events from the
cursor to the log end taken when the sync started; keep the publisher's own
events (its partition holds other publishers' too), drop deleted ones;
render each with the subscription's template; only when every event
rendered, send the rows grouped by importProcessId in log order. Each batch
LB accepts is remembered at once (``on_delivered``), so a retry — after LB
failed, or after the worker died — sends only rows LB has not accepted.
The cursor moves to the log end, and LastSyncUtc to the sync's start, only
when every row of the window was accepted.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from hub_stream import metrics
from hub_stream.cursors import SyncCursor
from hub_stream.lb_client import BatchOutcome, CreateBatchClient, LbTarget
from hub_stream.sync_plan import PlannedBatch, RowAt, batch_file_name, plan_batches
from hub_stream.templating import PayloadTemplate, RowRenderError
from schemas.timefmt import format_utc, parse_utc

logger = logging.getLogger(__name__)

MAX_FAILED_EVENTS_NAMED = 20


@dataclass(frozen=True)
class StoredEvent:
    """A record of hub.events: an event, or a deletion marker."""

    offset: int
    publisher: str
    event: dict[str, Any] | None = None  # None for a deletion marker
    deleted_event_id: str | None = None


class EventSource(Protocol):
    async def log_end(self, publisher: str) -> int: ...

    def read(self, publisher: str, start: int, end: int) -> AsyncIterator[StoredEvent]: ...


@dataclass
class SubscriptionOutcome:
    publisher: str
    status: str = "ok"
    events: int = 0
    imported: int = 0
    ignored: int = 0
    batches: list[dict[str, Any]] = field(default_factory=list)
    last_sync_utc: datetime | None = None
    error: str | None = None
    error_code: str | None = None  # render_failed | lb_rejected
    failed_event_ids: list[str] = field(default_factory=list)
    lb_status: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "PublisherProgramId": self.publisher,
            "Status": self.status,
            "Events": self.events,
            "Imported": self.imported,
            "Ignored": self.ignored,
            "Batches": self.batches,
            "LastSyncUtc": format_utc(self.last_sync_utc) if self.last_sync_utc else None,
            "Error": self.error,
        }


OnDelivered = Callable[[SyncCursor], Awaitable[None]]
OnBatch = Callable[[PlannedBatch, BatchOutcome], Awaitable[None]]


async def sync_subscription(
    *,
    publisher: str,
    template: PayloadTemplate,
    cursor: SyncCursor,
    source: EventSource,
    lb: CreateBatchClient,
    target: LbTarget,
    started: datetime,
    row_cap: int,
    on_delivered: OnDelivered,
    on_batch: OnBatch,
) -> tuple[SubscriptionOutcome, SyncCursor]:
    """Sync one subscription; returns its outcome and its cursor afterwards."""
    outcome = SubscriptionOutcome(publisher, last_sync_utc=cursor.last_sync_utc)
    end = await source.log_end(publisher)
    start = cursor.next_offset or 0
    events: list[tuple[int, dict[str, Any]]] = []
    deleted: set[str] = set()
    async for record in source.read(publisher, start, end):
        if record.deleted_event_id is not None:
            deleted.add(record.deleted_event_id)
        elif record.event is not None:
            if cursor.from_time is not None and _created(record.event) < cursor.from_time:
                continue
            events.append((record.offset, record.event))
    rows: list[RowAt] = []
    failures: list[tuple[str, str]] = []
    for offset, event in events:
        if event.get("EventId") in deleted:
            continue
        outcome.events += 1
        try:
            row = template.render_row(event)
        except RowRenderError as exc:
            failures.append((str(event.get("EventId")), str(exc)))
            continue
        if row is None:
            outcome.ignored += 1
        else:
            rows.append(RowAt(offset, row.import_process_id, row.line))
    if failures:
        outcome.status = "failed"
        outcome.error_code = "render_failed"
        outcome.failed_event_ids = [event_id for event_id, _ in failures]
        named = "; ".join(reason for _, reason in failures[:MAX_FAILED_EVENTS_NAMED])
        more = f" (and {len(failures) - MAX_FAILED_EVENTS_NAMED} more)" if len(failures) > MAX_FAILED_EVENTS_NAMED else ""
        outcome.error = f"{len(failures)} event(s) failed to render: {named}{more}"
        metrics.SYNC_ROWS.labels("failed").inc(len(failures))
        return outcome, cursor
    delivered = dict(cursor.delivered)
    failed_processes: set[int] = set()
    for batch in plan_batches(rows, delivered=delivered, row_cap=row_cap):
        if batch.import_process_id in failed_processes:
            continue  # later rows of a refused process wait: order within a process is kept
        result = await lb.create_batch(
            target,
            file_name=batch_file_name(publisher, started),
            import_process_id=batch.import_process_id,
            rows=batch.rows,
        )
        await on_batch(batch, result)
        metrics.SYNC_BATCHES.labels("accepted" if result.ok else "failed").inc()
        if result.ok:
            delivered[batch.import_process_id] = batch.last_offset
            cursor = replace(cursor, delivered=dict(delivered))
            await on_delivered(cursor)
            outcome.imported += len(batch.rows)
            outcome.batches.append(
                {"ImportProcessId": batch.import_process_id, "Rows": len(batch.rows), "BatchId": result.batch_id, "BatchUrl": result.batch_url}
            )
        else:
            failed_processes.add(batch.import_process_id)
            metrics.LB_ERRORS.labels(str(result.status or "none")).inc()
            outcome.status = "failed"
            outcome.error_code = "lb_rejected"
            outcome.lb_status = result.status
            outcome.error = (
                f"LearningBuilder answered {result.status if result.status is not None else 'nothing'}"
                f" for import process {batch.import_process_id}: {result.message}"
            )
    metrics.SYNC_ROWS.labels("imported").inc(outcome.imported)
    metrics.SYNC_ROWS.labels("ignored").inc(outcome.ignored)
    if outcome.status == "ok":
        cursor = cursor.advanced(end, started)
        await on_delivered(cursor)
        outcome.last_sync_utc = started
    return outcome, cursor


def _created(event: Mapping[str, Any]) -> datetime:
    value = event.get("CreatedUtc")
    return parse_utc(value) if isinstance(value, str) else datetime.min.replace(tzinfo=UTC)


def sync_answer(
    program_id: str, sync_id: str, started: datetime, finished: datetime, outcomes: list[SubscriptionOutcome]
) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body of processEvents for these outcomes."""
    body: dict[str, Any] = {
        "ProgramId": program_id,
        "SyncId": sync_id,
        "StartedUtc": format_utc(started),
        "FinishedUtc": format_utc(finished),
        "Subscriptions": [o.as_json() for o in sorted(outcomes, key=lambda o: o.publisher)],
    }
    rejected = [o for o in outcomes if o.error_code == "lb_rejected"]
    render = [o for o in outcomes if o.error_code == "render_failed"]
    if rejected:
        body.update(
            error="lb_rejected",
            message=f"LearningBuilder refused or failed a batch of {', '.join(o.publisher for o in rejected)}: {rejected[0].error}",
            details={
                "Subscriptions": [
                    {"PublisherProgramId": o.publisher, "LbStatus": o.lb_status, "Error": o.error} for o in rejected
                ]
            },
        )
        return 502, body
    if render:
        body.update(
            error="render_failed",
            message=f"A template failed on {sum(len(o.failed_event_ids) for o in render)} event(s): {render[0].error}",
            details={
                "Subscriptions": [
                    {"PublisherProgramId": o.publisher, "EventIds": o.failed_event_ids, "Error": o.error} for o in render
                ]
            },
        )
        return 422, body
    return 200, body
