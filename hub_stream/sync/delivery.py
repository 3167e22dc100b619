"""One subscription's sync: read the window, render all, send by import process, advance.

For a subscription: read the publisher's partition of hub.events from where
its window starts to the log end taken when the sync started; keep the
publisher's own records (its partition holds other publishers' too), drop
events a deletion marker in the window names; render each with the
subscription's template; only when every event rendered, send the rows
grouped by importProcessId in log order (hub_stream.sync.plan).

Progress is written after every batch LB accepts (``StoreCursor``, a
compare-and-set through the sync agent, the cursors table's only writer)
before the next batch goes out, so a retry — after LB failed, or after the
worker died — sends only rows LB has not accepted. The cursor moves to the
log end, and LastSyncUtc to the sync's start, only when every row of the
window was accepted. docs/sync.md states the guarantees.

Where a window starts (``window_start``):
- a cursor with an offset: there;
- ``from_time`` T (PATCH LastSyncUtc, or LastSyncUtc given at creation): the
  first offset whose record timestamp (= CreatedUtc) is >= T, by binary
  search — O(log n) fetches, not a scan of the partition;
- neither ("from the publisher's first event"): the same search from the
  publisher's registration time less a clock margin. The API refuses events
  of unregistered publishers, so no event of the publisher is older; records
  before that point are other publishers' and are never read.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from hub_stream.events.records import StoredEvent
from hub_stream.platform import metrics
from hub_stream.sync.cursors import ParkedEvent, SyncCursor
from hub_stream.sync.lb_client import BatchOutcome, CreateBatchClient, LbTarget
from hub_stream.sync.outcome import ERROR_STATUS, SubscriptionOutcome, sync_answer  # noqa: F401 (re-exported)
from hub_stream.sync.parking import parked_changes, read_parked, render_parked
from hub_stream.sync.plan import PlannedBatch, RowAt, plan_batches
from hub_stream.templating import PayloadTemplate, RowRenderError

logger = logging.getLogger(__name__)

MAX_FAILED_EVENTS_NAMED = 20
REGISTRATION_CLOCK_MARGIN = timedelta(hours=1)
"""How far before a publisher's registration its first event may appear to be.

CreatedUtc comes from the intake worker's clock, the registration time from
PostgreSQL's: the margin absorbs any skew between them. It costs reading one
hour of other publishers' records, once, on a subscription's first sync.
"""



class EventWindow(Protocol):
    """An open read of a publisher's records from a start offset."""

    @property
    def end(self) -> int:
        """The offset after the window: the log end when the window opened, unless given."""
        ...

    def chunks(self) -> AsyncIterator[list[StoredEvent]]:
        """The publisher's records of [start, end) in log order, a fetch's worth at a time."""
        ...


class EventSource(Protocol):
    async def log_end(self, publisher: str) -> int: ...

    async def offset_at_time(self, publisher: str, ms: int, *, end: int | None = None) -> int: ...

    def window(self, publisher: str, start: int, end: int | None = None) -> AbstractAsyncContextManager[EventWindow]: ...


class ProgressNotRecorded(RuntimeError):
    """The cursor write did not complete: stop sending; the next sync picks up from the stored cursor."""


StoreCursor = Callable[[SyncCursor, SyncCursor, "dict[str, Any] | None"], Awaitable[bool]]
"""(expected, new, parked changes) -> True when stored; False when the stored cursor is no longer ``expected``.

The parked changes (hub_stream.sync.cursors.parked_changed) are merged into
the stored parked events, which the sync never overwrites."""


@dataclass(frozen=True)
class SendingBatch:
    """A batch as the ledger recorded it before the CreateBatch call."""

    seq: int
    file_name: str
    resend: int = 0  # how many earlier copies of these rows went out and got no answer (LB may hold each)


class BatchLog(Protocol):
    """The sync ledger's view of one subscription's batches."""

    async def sending(self, batch: PlannedBatch) -> SendingBatch: ...

    async def answered(self, sending: SendingBatch, batch: PlannedBatch, outcome: BatchOutcome, *, note: str | None = None) -> None: ...


def ledger_status(sending: SendingBatch, outcome: BatchOutcome, note: str | None = None) -> tuple[str, str]:
    """A batch's ledger status and message after its CreateBatch call.

    ``unanswered`` whenever an attempt may have reached LB without an answer:
    LB may hold the rows (twice, when a later attempt was accepted).
    """
    message = note or outcome.message
    if outcome.unanswered == 0:
        return ("accepted" if outcome.ok else "rejected"), message
    if outcome.ok:
        return "unanswered", (
            f"LB accepted this batch on attempt {outcome.attempts}; {outcome.unanswered} earlier attempt(s)"
            f" got no answer after the rows went out, so LB may hold these rows twice"
            f" (file {sending.file_name!r} in its Recent Imports)." + (f" {note}" if note else "")
        )
    return "unanswered", (
        f"{message} {outcome.unanswered} attempt(s) got no answer after the rows went out: LB may hold"
        f" these rows (file {sending.file_name!r}); the next sync sends them again."
    )


@dataclass(frozen=True)
class SyncJob:
    """One subscription to sync, as the sync agent found it."""

    publisher: str
    template: PayloadTemplate
    cursor: SyncCursor
    publisher_registered: datetime | None = None  # None: unknown, read from the partition's start
    park: bool = False  # OnRenderError "park": an event that fails is parked and skipped


async def window_start(job: SyncJob, source: EventSource, end: int | None = None) -> int:
    """The first offset of the publisher's partition this sync reads (see the module docstring)."""
    cursor = job.cursor
    if cursor.next_offset is not None:
        return cursor.next_offset
    since = cursor.from_time
    if since is None and job.publisher_registered is not None:
        since = job.publisher_registered - REGISTRATION_CLOCK_MARGIN
    if since is None:
        return 0
    return await source.offset_at_time(job.publisher, int(since.timestamp() * 1000), end=end)


async def window_bounds(job: SyncJob, source: EventSource) -> tuple[int, int | None]:
    """(start, end) of the window a sync of ``job`` reads now; end None: the window's first fetch tells it."""
    if job.cursor.next_offset is not None:
        return job.cursor.next_offset, None
    known_end = await source.log_end(job.publisher)  # a search goes back from the end
    return await window_start(job, source, known_end), known_end


class WindowRows:
    """A window's rows, rendered chunk by chunk as the records arrive (``add``), judged at the end (``finish``).

    Each event is rendered as soon as its chunk is decoded, and only its row
    is kept: a window's decoded events never all live at once. Holding 100k
    decoded events cost more than decoding them (fresh memory for each, page
    faults, cache misses). What a deletion marker later in the window names
    is dropped at ``finish``: rows, failures and ignored events alike, so the
    outcome is that of rendering only the events that are kept.
    """

    def __init__(self, template: PayloadTemplate, *, held: frozenset[int] = frozenset()) -> None:
        self._render = template.render_row
        self._held = held  # offsets of parked events: never rendered from the window
        self.rows: list[RowAt] = []
        self._row_ids: list[Any] = []  # the EventId of each row, for deletions
        self._ignored: list[Any] = []  # EventIds of events the template ignores
        self._failures: list[tuple[int, RowRenderError, Any]] = []  # (offset, error, EventId)
        self._deleted: set[str] = set()
        self.render_seconds = 0.0

    def add(self, chunk: list[StoredEvent]) -> None:
        clock = time.perf_counter()
        render, held = self._render, self._held
        rows, row_ids = self.rows, self._row_ids
        for record in chunk:
            event = record.event
            if event is None:
                if record.deleted_event_id is not None:
                    self._deleted.add(record.deleted_event_id)
                continue
            offset = record.offset
            if held and offset in held:
                continue
            try:
                row = render(event)
            except RowRenderError as exc:
                self._failures.append((offset, exc, event.get("EventId")))
                continue
            if row is None:
                self._ignored.append(event.get("EventId"))
            else:
                rows.append(RowAt(offset, row.import_process_id, row.line))
                row_ids.append(event.get("EventId"))
        self.render_seconds += time.perf_counter() - clock

    def finish(self, outcome: SubscriptionOutcome, *, park: bool = False, now: datetime | None = None) -> list[RowAt] | None:
        """The rows in log order; None (and ``outcome`` failed) when any kept event failed to render.

        With ``park``, a failing event is added to ``outcome.parked`` (parked
        at ``now``) and skipped instead: the other rows are returned.
        """
        rows, failures, ignored, deleted = self.rows, self._failures, self._ignored, self._deleted
        if deleted:
            rows = [row for row, eid in zip(rows, self._row_ids, strict=True) if eid not in deleted]
            failures = [f for f in failures if f[2] not in deleted]
            ignored = [eid for eid in ignored if eid not in deleted]
        self.rows, self._row_ids = [], []
        outcome.events = len(rows) + len(ignored) + len(failures)
        outcome.ignored += len(ignored)
        if park:
            for offset, exc, _ in failures:
                outcome.parked.append(ParkedEvent(str(exc.event_id), offset, exc.entry, exc.reason, now or datetime.now().astimezone()))
        return _judged(rows, [exc for _, exc, _ in failures], outcome, park=park)


def _judged(rows: list[RowAt], failures: list[RowRenderError], outcome: SubscriptionOutcome, *, park: bool) -> list[RowAt] | None:
    if park and failures:
        metrics.SYNC_ROWS.labels("parked").inc(len(failures))
    if not failures or park:
        return rows
    outcome.failed_event_ids = [str(f.event_id) for f in failures]
    named = "; ".join(str(f) for f in failures[:MAX_FAILED_EVENTS_NAMED])
    more = len(failures) - MAX_FAILED_EVENTS_NAMED
    outcome.fail(
        "render_failed",
        f"{len(failures)} event(s) failed to render: {named}" + (f" (and {more} more)" if more > 0 else ""),
    )
    metrics.SYNC_ROWS.labels("failed").inc(len(failures))
    return None


async def window_rows(
    job: SyncJob, source: EventSource, start: int, known_end: int | None, outcome: SubscriptionOutcome, now: datetime
) -> list[RowAt] | None:
    """The rows of a sync: parked events queued for redelivery first, then the window's (``WindowRows``).

    Reads [start, end) of the publisher's partition and renders it as it
    arrives; ``outcome.window`` is set as soon as the end is known. A window
    that holds parked events (its cursor was moved back) skips them: they are
    sent only when redelivered.
    """
    collected = WindowRows(job.template, held=frozenset(p.offset for p in job.cursor.parked))
    clock = time.perf_counter()
    async with source.window(job.publisher, start, known_end) as window:
        outcome.window = (start, window.end)
        async for chunk in window.chunks():
            collected.add(chunk)
    read_s = time.perf_counter() - clock - collected.render_seconds
    again: list[RowAt] = []
    if any(p.redeliver for p in job.cursor.parked):
        again = render_parked(job.template, await read_parked(source, job.publisher, job.cursor.parked), outcome)
    rows = collected.finish(outcome, park=job.park, now=now)
    outcome.seconds["read"] = read_s
    outcome.seconds["render"] = time.perf_counter() - clock - read_s
    return None if rows is None else again + rows


async def sync_subscription(
    job: SyncJob,
    *,
    source: EventSource,
    lb: CreateBatchClient,
    target: LbTarget,
    started: datetime,
    row_cap: int,
    store: StoreCursor,
    batches: BatchLog,
    should_stop: Callable[[], bool] = lambda: False,
) -> SubscriptionOutcome:
    """Sync one subscription; its cursor is written through ``store`` only."""
    outcome = SubscriptionOutcome(job.publisher, last_sync_utc=job.cursor.last_sync_utc)
    clock = time.perf_counter()
    start, known_end = await window_bounds(job, source)
    clock = _lap(outcome, "locate", clock)
    with paused_gc():
        rows = await window_rows(job, source, start, known_end, outcome, started)  # times "read" and "render"
    clock = time.perf_counter()
    if rows is None:
        return outcome
    assert outcome.window is not None
    end = outcome.window[1]
    cursor = await _send(job, rows, start, outcome, lb=lb, target=target, row_cap=row_cap, store=store, batches=batches, should_stop=should_stop)
    clock = _lap(outcome, "send", clock)
    metrics.SYNC_ROWS.labels("imported").inc(outcome.imported)
    metrics.SYNC_ROWS.labels("ignored").inc(outcome.ignored)
    if outcome.status == "ok" and cursor is not None:
        try:
            if await store(cursor, cursor.advanced(end, started), parked_changes(outcome)):
                outcome.last_sync_utc = started
            else:
                outcome.fail("cursor_moved", _MOVED)
        except ProgressNotRecorded as exc:
            outcome.fail("sync_interrupted", f"LB accepted every row, but the cursor could not be moved: {exc}")
        _lap(outcome, "advance", clock)
    return outcome


_gc_pauses = 0


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a window is decoded and rendered.

    Decoding builds a few dicts per event, and every row is kept until it is
    sent; every 700 allocations the collector runs, and its older
    generations rescan everything kept so far. Measured on 100k events, when
    a sync still kept every decoded event: the read took a third less time
    without it. Reference counting still frees
    what is not cyclic; the collector runs again as soon as the last
    concurrent sync leaves this block.
    """
    global _gc_pauses
    if _gc_pauses == 0:
        gc.disable()
    _gc_pauses += 1
    try:
        yield
    finally:
        _gc_pauses -= 1
        if _gc_pauses == 0:
            gc.enable()


def _lap(outcome: SubscriptionOutcome, phase: str, since: float) -> float:
    now = time.perf_counter()
    outcome.seconds[phase] = now - since
    return now


UNRECORDED = "LB accepted this batch but the hub could not record it: the next sync may send these rows again"
_MOVED = (
    "The cursor was moved (PATCH LastSyncUtc, or the subscription was replaced) while this sync ran;"
    " rows LB accepted stay accepted, and the next sync starts from the new cursor."
)


async def _send(
    job: SyncJob,
    rows: list[RowAt],
    start: int,
    outcome: SubscriptionOutcome,
    *,
    lb: CreateBatchClient,
    target: LbTarget,
    row_cap: int,
    store: StoreCursor,
    batches: BatchLog,
    should_stop: Callable[[], bool],
) -> SyncCursor | None:
    """Send the batches LB has not accepted yet; the cursor after them (None: stop here)."""
    cursor = job.cursor
    delivered = dict(cursor.delivered)
    refused: set[int] = set()
    for batch in plan_batches(rows, delivered=delivered, row_cap=row_cap, window_start=start):
        if batch.import_process_id in refused:
            continue  # later rows of a refused process wait: order within a process is kept
        if should_stop():
            outcome.fail("sync_interrupted", "The sync was stopped (worker shutting down or handing over); call again.")
            return None
        sending = await batches.sending(batch)
        result = await lb.create_batch(
            target, file_name=sending.file_name, import_process_id=batch.import_process_id, rows=batch.rows
        )
        metrics.SYNC_BATCHES.labels("accepted" if result.ok else "failed").inc()
        copies = sending.resend + (1 if result.resent else 0)
        if copies:
            outcome.resent += copies
            metrics.SYNC_BATCHES.labels("resent").inc(copies)
        if not result.ok:
            await batches.answered(sending, batch, result)
            refused.add(batch.import_process_id)
            _rejected(outcome, batch, result)
            continue
        delivered[batch.import_process_id] = max(batch.last_offset, delivered.get(batch.import_process_id, -1))
        new = cursor.in_window(start, delivered)
        sent_again = [
            eid for off, (ipid, eid) in outcome.redelivering.items()
            if ipid == batch.import_process_id and batch.first_offset <= off <= batch.last_offset
        ]
        try:
            stored = await store(cursor, new, {"Resolved": sent_again} if sent_again else None)
        except ProgressNotRecorded as exc:
            await batches.answered(sending, batch, result, note=f"{UNRECORDED} ({exc})")
            outcome.fail("sync_interrupted", f"LB accepted a batch, but the progress could not be recorded: {exc}")
            return None
        await batches.answered(sending, batch, result)
        outcome.imported += len(batch.rows)
        outcome.redelivered += len(sent_again)
        outcome.batches.append(
            {"ImportProcessId": batch.import_process_id, "Rows": len(batch.rows), "BatchId": result.batch_id, "BatchUrl": result.batch_url}
        )
        if not stored:
            outcome.fail("cursor_moved", _MOVED)
            return None
        cursor = new
    return cursor


def _rejected(outcome: SubscriptionOutcome, batch: PlannedBatch, result: BatchOutcome) -> None:
    metrics.LB_ERRORS.labels(str(result.status or "none")).inc()
    if outcome.lb_status is None:
        outcome.lb_status = result.status
    answered = result.status if result.status is not None else "nothing"
    outcome.fail(
        "lb_rejected",
        f"LearningBuilder answered {answered} for import process {batch.import_process_id}"
        f" after {result.attempts} attempt(s): {result.message}",
    )
