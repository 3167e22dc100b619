"""processEvents in a worker: one program's sync, run beside the sync agent.

The sync agent (agents/sync_agent.py) hands each "sync" request to ``SyncRunner``
and goes back to its stream at once: a sync may take minutes (LB answers
slowly, 100k rows), and an agent busy with one request serves no other —
no ``PATCH LastSyncUtc`` within its 10 s timeout, no other program's sync —
and Faust waits for it before any rebalance can finish. The runner's task
replies to the caller itself when the sync is done.

The cursors table keeps a single writer: the task never writes it. Each
cursor change is a ``store_cursor`` record on the sync request topic, on the
request's own partition, applied by the agent inside its stream (where Faust
table writes belong) as a compare-and-set, flushed to the changelog, and
acknowledged to the waiting task in memory (``CursorWriter``). The task sends
the next batch to LB only after that acknowledgement.

Two syncs of one program never overlap: its requests all arrive on one
partition, so one worker; a lock per program serializes them there; and when
a rebalance revokes the partition, the worker stops its syncs of it before the
new owner can start one. A run that was not stopped in time (its worker was
evicted from the group while blocked, or its last cursor write was still in
flight when the partition moved) is fenced: each run first claims the program
in PostgreSQL (``ledger.claim_program``: a batch is recorded ``sending``, and
so sent, only while its run holds that claim) and then in the cursors table
(``claim_sync``, applied in partition order, so every earlier cursor write
has been applied or refused before the new run reads a cursor; writes of
earlier runs are refused after it). A batch the old run had in flight is
settled ``unanswered`` and sent again as a counted resend.

A sync outlives its worker: the request is recorded in the pending-syncs
table (agents/pending_syncs.py) until it is answered. A sync stopped here (the
partition handed over, the worker shutting down) is not answered: it is
marked ``interrupted`` in the ledger and the next owner of the partition
resumes it under the same SyncId (``resume``), building on what was done —
subscriptions finished, batches accepted — and answers the waiting caller.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import faust
from aiokafka.errors import KafkaError

from agents.pending_syncs import PendingSyncs
from hub_stream.access.programs import Program, get_program
from hub_stream.events.log import EventLogError
from hub_stream.platform import db, metrics
from hub_stream.platform.faust_app import HubApp
from hub_stream.platform.logs import request_id_var
from hub_stream.platform.request_reply import Reply, Request, encode_request
from hub_stream.subscriptions.records import SubscriberRecord, Subscription
from hub_stream.sync import ledger
from hub_stream.sync.cursors import SubscriberCursors, SyncCursor
from hub_stream.sync.delivery import (
    EventSource,
    ProgressNotRecorded,
    SubscriptionOutcome,
    SyncJob,
    sync_answer,
    sync_subscription,
)
from hub_stream.sync.lb_client import CreateBatchClient, LbTarget
from hub_stream.sync.resume import LedgerBatches, carry_earlier, finished_outcomes
from hub_stream.templating import PayloadTemplateError, parse_payload_template

logger = logging.getLogger(__name__)

MAX_TAKEOVERS = 10
"""A sync resumed this often gives up (503 ``sync_interrupted``): something keeps stopping its workers."""
STOP_GRACE_S = 2.0
"""A sync asked to stop may finish the batch it is sending for this long; then it is cancelled."""
SETTLE_ACCEPTED = "LB accepted this batch (the cursor recorded it); the worker stopped before the ledger was updated."
SETTLE_UNANSWERED = (
    "The worker stopped before LB's answer was recorded: the rows are sent again,"
    " so LB may hold them twice (check its Recent Imports for this file name)."
)

SendReply = Callable[[Reply], Awaitable[None]]

STORED, MOVED, SUPERSEDED = "stored", "moved", "superseded"
"""How the sync agent settled a cursor write: applied; refused by the compare-and-set; refused because
another run of a sync claimed the subscriber since."""


class CursorWriter:
    """Cursor writes of running syncs, applied by the sync agent (the table's only writer).

    ``store`` puts a ``store_cursor`` record on the request's partition of the
    sync request topic and waits until the agent has applied it and flushed
    the changelog (``settle``), or raises ProgressNotRecorded after the timeout.
    ``claim`` does the same with a ``claim_sync`` record.
    """

    def __init__(self, topic: faust.TopicT, *, timeout_s: float) -> None:
        self._topic = topic
        self._timeout_s = timeout_s
        self._waiting: dict[str, asyncio.Future[str]] = {}

    async def claim(self, program_id: str, partition: int | None, sync_id: str, token: str) -> None:
        """Take the subscriber for this run; every cursor write sent before has been applied or refused on return."""
        await self._write("claim_sync", program_id, partition, {"SyncId": sync_id, "Token": token}, "claim")

    async def store(
        self,
        program_id: str,
        partition: int | None,
        sub: Subscription,
        expected: SyncCursor,
        new: SyncCursor,
        parked_changes: dict[str, Any] | None = None,
        *,
        lease: str | None = None,
    ) -> bool:
        """True: stored; False: the cursor moved (compare-and-set refused). SyncSuperseded: another run claimed it."""
        body = {
            "PublisherProgramId": sub.publisher,
            "SubscriptionId": sub.subscription_id,
            "Expected": expected.to_json(),
            "Cursor": new.to_json(),
            "ParkedChanges": parked_changes,
            "Lease": lease,
        }
        result = await self._write("store_cursor", program_id, partition, body, "cursor write")
        if result == SUPERSEDED:
            raise SyncSuperseded("another run of a sync claimed the subscriber; this run's cursor write was refused")
        return result == STORED

    async def _write(self, kind: str, program_id: str, partition: int | None, body: dict[str, Any], what: str) -> str:
        write_id = f"cursor-{uuid.uuid4().hex}"
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[write_id] = future
        try:
            # No reply headers: the agent answers through ``settle``, in this process.
            await self._topic.send(
                key=program_id.encode(), value=encode_request(kind, body, write_id), partition=partition, force=True
            )
            return await asyncio.wait_for(future, self._timeout_s)
        except TimeoutError:
            raise ProgressNotRecorded(f"the sync agent did not apply the {what} within {self._timeout_s:g} s") from None
        except KafkaError as exc:
            raise ProgressNotRecorded(f"the {what} could not be sent: {exc}") from None
        finally:
            self._waiting.pop(write_id, None)

    def settle(self, write_id: str, result: str) -> None:
        """Called by the agent once the write is applied (or refused); a write of another worker's is ignored."""
        future = self._waiting.get(write_id)
        if future is not None and not future.done():
            future.set_result(result)


class SyncSuperseded(ProgressNotRecorded):
    """Another run of a sync took the program (its claim is newer): this run sends and writes nothing more."""


@dataclass
class RunningSync:
    program_id: str
    sync_id: str
    partition: int | None
    stopping: bool = False
    last_seq: int = 0  # the ledger seq of the sync's last batch
    token: str = ""  # this run's claim of the program (ledger.claim_program, cursors.claim)
    superseded: bool = False  # another run claimed the program: this one stopped and answers nothing

    def supersede(self) -> None:
        self.superseded = self.stopping = True


def _now_ms() -> datetime:
    """Now, to the millisecond: what the contract shows, so cursors compare equal after a round trip."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _target(program: Program) -> LbTarget:
    assert program.lb_base_url and program.lb_api_key
    return LbTarget(
        program.lb_base_url,
        program.lb_api_key.get_secret_value(),
        creation_path=program.creation_path,
        success_email=program.success_email,
        failure_email=program.failure_email,
    )


class SyncRunner:
    """Runs "sync" requests as tasks beside the sync agent; at most one per program at a time."""

    def __init__(
        self,
        app: HubApp,
        cursors: faust.Table,
        subscriptions: faust.Table,
        source: EventSource,
        writer: CursorWriter,
        pending: PendingSyncs,
    ) -> None:
        self._app = app
        self._cursors = cursors  # read only here: the agent writes it
        self._subscriptions = subscriptions  # read only: the subscriptions agent writes it
        self._source = source
        self._writer = writer
        self._pending = pending  # read only here: the agent writes it
        self._requests_topic = app.hub_settings.topic("sync.requests")
        self._locks: dict[str, asyncio.Lock] = {}
        self._running: dict[asyncio.Task[None], RunningSync] = {}
        self._pool: asyncpg.Pool | None = None
        self._lb: CreateBatchClient | None = None

    # --- lifecycle ---------------------------------------------------------
    def start(self, request: Request, reply: SendReply) -> bool:
        """Start the sync of ``request`` in its own task; ``reply`` is called when it is done.

        False when this worker runs that sync already (a redelivered request, or
        one resumed from the pending-syncs table that the stream then read again).
        """
        program_id = str(request.body.get("ProgramId") or request.key)
        sync_id = str(request.body.get("SyncId") or request.command_id)
        if any(r.sync_id == sync_id and not r.stopping for r in self._running.values()):
            return False
        running = RunningSync(program_id, sync_id, request.partition)
        # A fresh context: nothing of the agent's current event (Faust's attachments) leaks in;
        # only the request_id of the HTTP request that asked for the sync, for its log lines.
        context = contextvars.Context()
        context.run(request_id_var.set, request.request_id)
        task = asyncio.get_running_loop().create_task(self._run(running, reply), name=f"sync {sync_id}", context=context)
        self._running[task] = running
        task.add_done_callback(self._running.pop)
        return True

    def owned_partitions(self) -> set[int]:
        """The sync request partitions this worker owns now."""
        return {tp.partition for tp in self._app.consumer.assignment() if tp.topic == self._requests_topic}

    async def stop(self, partitions: set[int] | None = None) -> None:
        """Stop the syncs of these request partitions (None: all): between batches, else cancelled."""
        tasks = [t for t, r in self._running.items() if partitions is None or r.partition in partitions]
        if not tasks:
            return
        for task in tasks:
            self._running[task].stopping = True
        _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=STOP_GRACE_S)
        logger.warning("stopped %d running sync(s) (%d cancelled mid-batch)", len(tasks), len(pending))

    async def on_partitions_revoked(self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """Stop syncs whose program may move to another worker, before it can start one there.

        Faust's signal: ``(app, revoked: set[TopicPartition], signal=...)``.
        """
        revoked = args[0] if args else kwargs.get("revoked", ())
        await self.stop({tp.partition for tp in revoked if tp.topic == self._requests_topic})

    async def on_shutdown(self, sender: Any = None, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        await self.stop()
        if self._lb is not None:
            await self._lb.close()
        if self._pool is not None:
            await self._pool.close()

    async def _resources(self) -> tuple[asyncpg.Pool, CreateBatchClient]:
        if self._pool is None:
            self._pool = await db.create_pool(self._app.hub_settings)
        if self._lb is None:
            self._lb = CreateBatchClient(self._app.hub_settings)  # one ClientSession per process
        return self._pool, self._lb

    async def _run(self, running: RunningSync, reply: SendReply) -> None:
        try:
            lock = self._locks.setdefault(running.program_id, asyncio.Lock())
            async with lock:
                answer = await self._sync(running) if not running.stopping else None
        except asyncio.CancelledError:
            await self._mark_interrupted(running)
            raise
        except Exception:
            logger.exception("sync %s of %s failed", running.sync_id, running.program_id)
            answer = Reply(500, {"error": "internal_error", "message": "The worker failed on this sync; see its log.", "details": {"SyncId": running.sync_id}})
            await self._record_failure(running, answer)
        if answer is None:
            logger.warning(
                "sync %s of %s stopped here; %s",
                running.sync_id,
                running.program_id,
                "another run claimed the program (its request partition moved) and answers"
                if running.superseded
                else f"the next owner of request partition {running.partition} resumes it",
                extra={"program_id": running.program_id, "sync_id": running.sync_id},
            )
            return
        await reply(answer)
        try:
            await self._pending.send_done(running.program_id, running.partition, running.sync_id)
        except Exception:  # the next owner of the partition finds it answered in the ledger
            logger.warning("could not mark sync %s answered", running.sync_id, exc_info=True)

    async def _mark_interrupted(self, running: RunningSync) -> None:
        """Best effort, bounded: the ledger says that no worker runs this sync until the next owner resumes it."""
        try:
            async with asyncio.timeout(STOP_GRACE_S):
                if self._pool is not None:
                    await ledger.interrupt_sync(self._pool, running.sync_id, _now_ms(), running.token)
        except Exception:
            logger.warning("could not record the interruption of sync %s", running.sync_id, exc_info=True)

    async def _record_failure(self, running: RunningSync, answer: Reply) -> None:
        try:
            if self._pool is not None:
                await ledger.finish_sync(self._pool, running.sync_id, finished=_now_ms(), status="failed", http_status=answer.status, result=answer.body)
        except Exception:
            logger.warning("could not record the failure of sync %s", running.sync_id, exc_info=True)

    # --- one program ---------------------------------------------------------
    async def _sync(self, running: RunningSync) -> Reply | None:
        """The sync's answer; None when it was stopped here (handed over) and is to be resumed elsewhere."""
        program_id, sync_id = running.program_id, running.sync_id
        pool, lb = await self._resources()
        clock = time.perf_counter()
        program = await get_program(pool, program_id)
        if program is None or not program.lb_configured:
            code = "unknown_program" if program is None else "program_not_configured"
            return Reply(404 if program is None else 422, {"error": code, "message": f"Program {program_id!r} cannot be synced ({code}).", "details": {"ProgramId": program_id}})
        recorded = await ledger.recorded_sync(pool, sync_id)
        if recorded is not None and recorded.finished and recorded.http_status is not None:
            return Reply(recorded.http_status, recorded.result)  # answered before; the caller may still wait
        if recorded is not None and recorded.resumed >= MAX_TAKEOVERS:
            answer = _given_up(running, recorded.resumed)
            await ledger.finish_sync(pool, sync_id, finished=_now_ms(), status="failed", http_status=answer.status, result=answer.body)
            return answer
        claimed = await self._claim(pool, running)
        if claimed is not None:
            return claimed
        earlier: list[ledger.RecordedBatch] = []
        done: dict[str, SubscriptionOutcome] = {}
        if recorded is None:
            started = _now_ms()
            await ledger.start_sync(pool, sync_id, program_id, started)
            logger.info(
                "sync %s of %s started (request partition %s)", sync_id, program_id, running.partition,
                extra={"program_id": program_id, "sync_id": sync_id},
            )
        else:
            started = recorded.started_utc.astimezone(UTC)
            await ledger.resume_sync(pool, sync_id)
            metrics.SYNCS.labels("resumed").inc()
        left = await self._settle_interrupted(pool, program_id, sync_id, rerun=recorded is not None)
        if recorded is not None:
            earlier = await ledger.sync_batches(pool, sync_id)
            done = {o.publisher: o for o in finished_outcomes(recorded.result)}
            running.last_seq = max((b.seq for b in earlier), default=0)
            logger.warning(
                "sync %s of %s resumed (request partition %s, takeover %d): %d subscription(s) done, %d batch(es) sent before",
                sync_id, program_id, running.partition, recorded.resumed + 1, len(done), len(earlier),
                extra={"program_id": program_id, "sync_id": sync_id},
            )
        record = SubscriberRecord.from_json(self._subscriptions.get(program_id))
        target = _target(program)
        outcomes: list[SubscriptionOutcome] = []
        for sub in record.sorted():
            if not sub.sync_enabled:
                continue
            if running.stopping:
                break
            outcome = done.get(sub.publisher) or await self._sync_one(
                running, sub, started, lb, target, pool, [b for b in earlier if b.publisher_program_id == sub.publisher],
                [b for b in left if b.publisher_program_id == sub.publisher],
            )
            outcomes.append(outcome)
            if outcome.status == "ok":
                await ledger.sync_progress(pool, sync_id, {"Subscriptions": [o.as_json() for o in outcomes if o.status == "ok"]})
        if running.superseded:
            return None  # the run that claimed the program answers
        if running.stopping and (len(outcomes) < sum(s.sync_enabled for s in record.sorted()) or any(o.status != "ok" for o in outcomes)):
            await self._mark_interrupted(running)
            return None
        finished = _now_ms()
        for o in outcomes:
            logger.info(
                "sync %s of %s <- %s: %s, window %s, %d event(s), %d row(s) imported, %d batch(es), %d resent; %s",
                sync_id,
                program_id,
                o.publisher,
                o.error_code or "ok",
                f"[{o.window[0]}, {o.window[1]})" if o.window else "-",
                o.events,
                o.imported,
                len(o.batches),
                o.resent,
                ", ".join(f"{phase} {s * 1000:.0f} ms" for phase, s in o.seconds.items()),
                extra={"program_id": program_id, "sync_id": sync_id},
            )
        status, body = sync_answer(program_id, sync_id, started, finished, outcomes)
        await ledger.finish_sync(pool, sync_id, finished=finished, status="ok" if status == 200 else "failed", http_status=status, result=body)
        metrics.SYNCS.labels("ok" if status == 200 else "failed").inc()
        metrics.SYNC_SECONDS.labels("ok" if status == 200 else "failed").observe(time.perf_counter() - clock)
        logger.info(
            "sync %s of %s: %d subscription(s), %d row(s) imported, answer %d in %.2f s",
            sync_id,
            program_id,
            len(outcomes),
            sum(o.imported for o in outcomes),
            status,
            time.perf_counter() - clock,
            extra={"program_id": program_id, "sync_id": sync_id},
        )
        return Reply(status, body)

    async def _claim(self, pool: asyncpg.Pool, running: RunningSync) -> Reply | None:
        """Take the program for this run (module docstring); an answer when that fails, else None."""
        running.token = uuid.uuid4().hex
        try:
            await ledger.claim_program(pool, running.program_id, running.sync_id, running.token, _now_ms())
            await self._writer.claim(running.program_id, running.partition, running.sync_id, running.token)
        except ProgressNotRecorded as exc:
            logger.warning(
                "sync %s of %s could not claim the program (request partition %s): %s",
                running.sync_id, running.program_id, running.partition, exc,
                extra={"program_id": running.program_id, "sync_id": running.sync_id},
            )
            return Reply(
                503,
                {
                    "error": "sync_interrupted",
                    "message": f"The worker could not take hold of the program's syncs ({exc}); nothing was sent: call again.",
                    "details": {"ProgramId": running.program_id, "SyncId": running.sync_id},
                },
            )
        return None

    async def _settle_interrupted(
        self, pool: asyncpg.Pool, program_id: str, sync_id: str, *, rerun: bool
    ) -> list[ledger.RecordedBatch]:
        """Close what a dead worker left ``running``/``sending``, judged by the cursors it had stored.

        Returns the batches settled ``unanswered``: their rows go out again, counted as resent.
        """
        unsettled = await ledger.unsettled_batches(pool, program_id, None if rerun else sync_id)
        cursors = SubscriberCursors.from_json(self._cursors.get(program_id))
        subs = SubscriberRecord.from_json(self._subscriptions.get(program_id)).subscriptions
        settled: dict[tuple[str, int], tuple[str, str]] = {}
        unanswered: list[ledger.RecordedBatch] = []
        for b in unsettled:
            sub = subs.get(b.publisher_program_id)
            cursor = cursors.cursor_of(sub) if sub is not None else None
            covered = cursor is not None and (
                (cursor.next_offset is not None and b.last_offset < cursor.next_offset)
                or cursor.delivered.get(b.import_process_id, -1) >= b.last_offset
            )
            settled[(b.sync_id, b.seq)] = ("accepted", SETTLE_ACCEPTED) if covered else ("unanswered", SETTLE_UNANSWERED)
            if not covered and b.sync_id != sync_id:  # this sync's own come back through its ``earlier`` batches
                unanswered.append(b.settled_unanswered())
        closed = await ledger.close_interrupted(pool, program_id, sync_id, finished=_now_ms(), settled=settled)
        if closed or settled:
            logger.warning(
                "sync %s of %s: closed %d interrupted sync(s), settled %d batch(es) sent without a recorded answer",
                sync_id,
                program_id,
                closed,
                len(settled),
                extra={"program_id": program_id, "sync_id": sync_id},
            )
        return unanswered

    async def _sync_one(
        self,
        running: RunningSync,
        sub: Subscription,
        started: datetime,
        lb: CreateBatchClient,
        target: LbTarget,
        pool: asyncpg.Pool,
        earlier: list[ledger.RecordedBatch],
        left: list[ledger.RecordedBatch] = (),  # type: ignore[assignment]
    ) -> SubscriptionOutcome:
        """One subscription; ``earlier``: its batches sent by earlier runs of this sync (resumed);
        ``left``: batches of other syncs settled ``unanswered`` at this one's start (sent again, as resends)."""
        program_id = running.program_id
        cursor = SubscriberCursors.from_json(self._cursors.get(program_id)).cursor_of(sub)
        try:
            template = parse_payload_template(sub.template, import_process_id=sub.import_process_id)
        except PayloadTemplateError as exc:  # stored templates were validated; be safe all the same
            outcome = SubscriptionOutcome(sub.publisher, last_sync_utc=cursor.last_sync_utc)
            outcome.fail("render_failed", f"The stored template cannot be used: {exc}")
            return outcome
        registered = None
        if cursor.next_offset is None and cursor.from_time is None:
            publisher = await get_program(pool, sub.publisher)
            registered = publisher.created_utc if publisher is not None else None

        async def store(expected: SyncCursor, new: SyncCursor, parked_changes: dict[str, Any] | None = None) -> bool:
            try:
                return await self._writer.store(program_id, running.partition, sub, expected, new, parked_changes, lease=running.token)
            except SyncSuperseded:
                running.supersede()
                raise

        try:
            outcome = await sync_subscription(
                SyncJob(sub.publisher, template, cursor, registered, park=sub.on_render_error == "park"),
                source=self._source,
                lb=lb,
                target=target,
                started=started,
                row_cap=self._app.hub_settings.lb_batch_row_cap,
                store=store,
                batches=LedgerBatches(pool, running, sub.publisher, started, earlier, left),
                should_stop=lambda: running.stopping,
            )
            carry_earlier(outcome, earlier)
            return outcome
        except ledger.SyncSuperseded as exc:
            running.supersede()
            outcome = SubscriptionOutcome(sub.publisher, last_sync_utc=cursor.last_sync_utc)
            outcome.fail("sync_interrupted", f"{exc}; that run answers.")
            return outcome
        except (EventLogError, KafkaError) as exc:
            outcome = SubscriptionOutcome(sub.publisher, last_sync_utc=cursor.last_sync_utc)
            outcome.fail("events_unavailable", f"hub.events could not be read: {exc}; nothing was lost, call again.")
            return outcome
        except Exception:
            logger.exception("sync %s: subscription to %s failed", running.sync_id, sub.publisher)
            outcome = SubscriptionOutcome(sub.publisher, last_sync_utc=cursor.last_sync_utc)
            outcome.fail("internal_error", "The worker failed on this subscription; see its log. Its cursor did not move.")
            return outcome


def _given_up(running: RunningSync, takeovers: int) -> Reply:
    return Reply(
        503,
        {
            "error": "sync_interrupted",
            "message": f"The sync was stopped and taken over {takeovers} times (workers stopping or dying);"
            " what LB accepted stays accepted: call processEvents again.",
            "details": {"ProgramId": running.program_id, "SyncId": running.sync_id},
        },
    )
