"""The sync request handler of the sync agent: one program's processEvents.

Runs inside the sync agent (the only writer of the cursors table); reads the
subscriptions table (written by the subscriptions agent; co-partitioned, so
the subscriber's entry is local) and hub.events with plain aiokafka range
reads. Two syncs of one program never overlap: a lock per program, and the
program's requests all arrive on one partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import faust

from hub_stream import db, ledger, metrics
from hub_stream.cursors import SubscriberCursors, SyncCursor
from hub_stream.event_log import KafkaEventSource
from hub_stream.faust_app import HubApp
from hub_stream.lb_client import BatchOutcome, CreateBatchClient, LbTarget
from hub_stream.programs import get_program
from hub_stream.rpc import Reply, Request
from hub_stream.subscriptions import SubscriberRecord
from hub_stream.sync import SubscriptionOutcome, sync_answer, sync_subscription
from hub_stream.sync_plan import PlannedBatch
from hub_stream.templating import PayloadTemplateError, parse_payload_template

logger = logging.getLogger(__name__)

class SyncHandler:
    """Handles "sync" requests: every SyncEnabled subscription of one program."""

    def __init__(self, app: HubApp, cursors: faust.Table, subscriptions: faust.Table, source: KafkaEventSource) -> None:
        self._app = app
        self._cursors = cursors
        self._subscriptions = subscriptions
        self._source = source
        self._locks: dict[str, asyncio.Lock] = {}
        self._pool: asyncpg.Pool | None = None
        self._lb: CreateBatchClient | None = None

    async def _resources(self) -> tuple[asyncpg.Pool, CreateBatchClient]:
        if self._pool is None:
            self._pool = await db.create_pool(self._app.hub_settings)
        if self._lb is None:
            self._lb = CreateBatchClient(self._app.hub_settings)
        return self._pool, self._lb

    async def __call__(self, request: Request) -> Reply:
        program_id = str(request.body.get("ProgramId") or request.key)
        sync_id = str(request.body.get("SyncId") or request.command_id)
        lock = self._locks.setdefault(program_id, asyncio.Lock())
        async with lock:
            return await self._sync(program_id, sync_id)

    async def _sync(self, program_id: str, sync_id: str) -> Reply:
        pool, lb = await self._resources()
        started = datetime.now(UTC)
        clock = time.perf_counter()
        program = await get_program(pool, program_id)
        if program is None or not program.lb_configured:
            code = "unknown_program" if program is None else "program_not_configured"
            return Reply(404 if program is None else 422, {"error": code, "message": f"Program {program_id!r} cannot be synced ({code}).", "details": {"ProgramId": program_id}})
        assert program.lb_base_url and program.lb_api_key
        target = LbTarget(
            program.lb_base_url,
            program.lb_api_key.get_secret_value(),
            creation_path=program.creation_path,
            success_email=program.success_email,
            failure_email=program.failure_email,
        )
        await ledger.start_sync(pool, sync_id, program_id, started)
        record = SubscriberRecord.from_json(self._subscriptions.get(program_id))
        outcomes: list[SubscriptionOutcome] = []
        for sub in record.sorted():
            if not sub.sync_enabled:
                continue
            outcomes.append(await self._sync_one(program_id, sync_id, sub, started, lb, target, pool))
        finished = datetime.now(UTC)
        status, body = sync_answer(program_id, sync_id, started, finished, outcomes)
        await ledger.finish_sync(pool, sync_id, finished=finished, status="ok" if status == 200 else "failed", http_status=status, result=body)
        metrics.SYNCS.labels("ok" if status == 200 else "failed").inc()
        logger.info(
            "sync %s of %s: %d subscription(s), answer %d in %.2f s",
            sync_id,
            program_id,
            len(outcomes),
            status,
            time.perf_counter() - clock,
            extra={"program_id": program_id, "sync_id": sync_id},
        )
        return Reply(status, body)

    async def _sync_one(
        self, program_id: str, sync_id: str, sub: Any, started: datetime, lb: CreateBatchClient, target: LbTarget, pool: asyncpg.Pool
    ) -> SubscriptionOutcome:
        cursors = SubscriberCursors.from_json(self._cursors.get(program_id))
        cursor = cursors.cursor_of(sub)
        try:
            template = parse_payload_template(sub.template, import_process_id=sub.import_process_id)
        except PayloadTemplateError as exc:  # stored templates were validated; be safe all the same
            return SubscriptionOutcome(sub.publisher, status="failed", error=str(exc), error_code="render_failed", last_sync_utc=cursor.last_sync_utc)

        async def on_delivered(new_cursor: SyncCursor) -> None:
            current = SubscriberCursors.from_json(self._cursors.get(program_id))
            self._cursors[program_id] = current.with_cursor(sub.publisher, new_cursor).to_json()
            # The changelog record must be on the broker before the next batch goes
            # out: a worker killed now must not send these rows again after restart.
            await self._app.producer.flush()

        async def on_batch(batch: PlannedBatch, outcome: BatchOutcome) -> None:
            await ledger.record_batch(
                pool,
                sync_id,
                publisher_program_id=sub.publisher,
                import_process_id=batch.import_process_id,
                row_count=len(batch.rows),
                first_offset=batch.first_offset,
                last_offset=batch.last_offset,
                status="accepted" if outcome.ok else "rejected",
                lb_status=outcome.status,
                lb_message=outcome.message,
                batch_id=outcome.batch_id,
                batch_url=outcome.batch_url,
            )

        outcome, _ = await sync_subscription(
            publisher=sub.publisher,
            template=template,
            cursor=cursor,
            source=self._source,
            lb=lb,
            target=target,
            started=started,
            row_cap=self._app.hub_settings.lb_batch_row_cap,
            on_delivered=on_delivered,
            on_batch=on_batch,
        )
        return outcome
