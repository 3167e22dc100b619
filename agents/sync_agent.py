"""The sync agent: the only writer of the sync cursors table.

Requests on the sync request topic, keyed by the subscriber's ProgramId:

- ``set_cursor`` {PublisherProgramId, SubscriptionId, LastSyncUtc} -> 204 | 404
  (``PATCH LastSyncUtc``; see hub_stream.sync.cursors)
- ``get_cursors`` {} -> 200 {publisher: cursor} of the live subscriptions
- ``sync`` {ProgramId, SyncId} -> the processEvents answer. Recorded in the
  pending-syncs table (agents/pending_syncs.py) and handed to ``SyncRunner``
  (agents/sync_runner.py), which replies when the sync is done; the agent
  goes straight back to its stream. After each rebalance the worker resumes
  the recorded syncs of the partitions it owns.
- ``sync_done`` {SyncId}: the runner answered that sync; forget it (no reply).
- ``claim_sync`` {SyncId, Token}: a run of a sync takes the subscriber
  before it reads a cursor (hub_stream.sync.cursors.claim): from now on only
  its cursor writes are applied. Sent by the worker to itself; acknowledged
  in memory (no reply record).
- ``store_cursor`` {PublisherProgramId, SubscriptionId, Expected, Cursor,
  Lease}: a running sync's progress, sent by the worker to itself; applied
  here as a compare-and-set and acknowledged in memory (no reply record).
- ``list_parked`` {PublisherProgramId, Limit, After} -> 200 a page of parked
  events; ``redeliver_parked`` {PublisherProgramId, EventIds|null} -> 200
  {Queued, NotParked}; ``drop_parked`` {PublisherProgramId, EventId} -> 200
  the dropped event | 404 (hub_stream.sync.parking). The parked events live
  in the cursors, so these are written here too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import faust

from agents.pending_syncs import SYNC_DONE, PendingSyncs
from agents.request_agent import ping
from agents.sync_runner import MOVED, STORED, SUPERSEDED, CursorWriter, SendReply, SyncRunner
from agents.tables import cursors_table, pending_syncs_table, subscriptions_table
from hub_stream.events.log import KafkaEventSource
from hub_stream.platform.faust_app import HubApp, HubTopics
from hub_stream.platform.request_reply import (
    Handler,
    Reply,
    Request,
    answer,
    decode_request,
    encode_reply,
)
from hub_stream.subscriptions.records import SubscriberRecord
from hub_stream.sync import cursors as cur
from hub_stream.sync import parking

logger = logging.getLogger(__name__)


class CursorHandlers:
    """Cursor commands over one app's cursors table (written here only)."""

    def __init__(self, app: HubApp, cursors: faust.Table, subscriptions: faust.Table, writer: CursorWriter) -> None:
        self.app = app
        self.cursors = cursors
        self.subscriptions = subscriptions  # read only: the subscriptions agent writes it
        self.writer = writer

    def record(self, program_id: str) -> cur.SubscriberCursors:
        return cur.SubscriberCursors.from_json(self.cursors.get(program_id))

    def subscriber(self, program_id: str) -> SubscriberRecord:
        return SubscriberRecord.from_json(self.subscriptions.get(program_id))

    def live(self, program_id: str) -> dict[str, str]:
        """publisher -> SubscriptionId of the subscriber's existing subscriptions."""
        return {pub: s.subscription_id for pub, s in self.subscriber(program_id).subscriptions.items()}

    def store(self, program_id: str, record: cur.SubscriberCursors) -> None:
        """Write a subscriber's cursors (must run inside this agent's stream)."""
        self.cursors[program_id] = record.to_json()

    def _subscription(self, request: Request) -> tuple[cur.SubscriberCursors, Any]:
        publisher = str(request.body.get("PublisherProgramId"))
        sub = self.subscriber(request.key).subscriptions.get(publisher)
        return self.record(request.key), sub

    async def list_parked(self, request: Request) -> Reply:
        record, sub = self._subscription(request)
        if sub is None:
            return _no_subscription(request)
        parked = record.cursor_of(sub).parked
        after = request.body.get("After")
        page = parking.parked_page(parked, limit=int(request.body.get("Limit") or parking.DEFAULT_PAGE), after=after)
        return Reply(200, {**page, "Total": len(parked)})

    async def redeliver_parked(self, request: Request) -> Reply:
        record, sub = self._subscription(request)
        if sub is None:
            return _no_subscription(request)
        ids = request.body.get("EventIds")
        new, queued, missing = parking.queue_redelivery(record, sub, None if ids is None else [str(i) for i in ids])
        if new is not record:
            self.store(request.key, new)
            await self.app.producer.flush()
        return Reply(200, {"Queued": queued, "NotParked": missing})

    async def drop_parked(self, request: Request) -> Reply:
        record, sub = self._subscription(request)
        if sub is None:
            return _no_subscription(request)
        event_id = str(request.body.get("EventId"))
        new, dropped = parking.drop_parked(record, sub, event_id)
        if dropped is None:
            return Reply(
                404,
                {
                    "error": "parked_event_not_found",
                    "message": f"Event {event_id!r} is not parked for the subscription to {sub.publisher!r}.",
                    "details": {"EventId": event_id, "PublisherProgramId": sub.publisher},
                },
            )
        self.store(request.key, new)
        await self.app.producer.flush()
        return Reply(200, dropped.to_json())

    async def set_cursor(self, request: Request) -> Reply:
        record = self.record(request.key)
        new, outcome = cur.set_cursor(record, request.command_id, request.body, live=self.live(request.key))
        if new is not record:
            self.store(request.key, new)
        return Reply(outcome.status, outcome.body)

    async def get_cursors(self, request: Request) -> Reply:
        record = self.record(request.key)
        return Reply(200, {s.publisher: record.cursor_of(s).to_json() for s in self.subscriber(request.key).sorted()})

    async def claim_sync(self, request: Request) -> Reply:
        self.store(request.key, cur.claim(self.record(request.key), request.body))
        await self.app.producer.flush()
        self.writer.settle(request.command_id, STORED)
        return Reply(204)

    async def store_cursor(self, request: Request) -> Reply:
        record = self.record(request.key)
        if cur.superseded(record, request.body):
            self.writer.settle(request.command_id, SUPERSEDED)
            logger.warning(
                "refused a cursor write of %s: sync %s claimed the subscriber since",
                request.key, record.lease.sync_id if record.lease else "?",
                extra={"program_id": request.key},
            )
            return Reply(409)
        sub = self.subscriber(request.key).subscriptions.get(str(request.body.get("PublisherProgramId")))
        new, stored = cur.store_cursor(record, sub, request.body)
        if stored:
            self.store(request.key, new)
            # The changelog record must be on the broker before the sync sends its
            # next batch: a worker killed then must not send these rows again.
            await self.app.producer.flush()
        self.writer.settle(request.command_id, STORED if stored else MOVED)
        return Reply(204 if stored else 409)


def _no_subscription(request: Request) -> Reply:
    publisher = request.body.get("PublisherProgramId")
    return Reply(
        404,
        {
            "error": "subscription_not_found",
            "message": f"Program {request.key!r} has no subscription to {publisher!r}.",
            "details": {"PublisherProgramId": publisher},
        },
    )


def sync_agent(app: HubApp, topics: HubTopics, handlers: Mapping[str, Handler], runner: SyncRunner, pending: PendingSyncs) -> None:
    """Register the agent: "sync" goes to ``runner``; every other kind is answered in the stream."""
    kinds: dict[str, Handler] = {"ping": ping, **handlers}
    replies = topics.replies

    async def send_reply(request: Request, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        # force=True: send now, not when the request's offset is committed.
        await replies.send(key=(request.reply_to or "").encode(), value=value, partition=request.reply_partition, headers=headers, force=True)

    def reply_to(request: Request) -> SendReply:
        async def reply(result: Reply) -> None:
            if request.reply_to and request.reply_partition is not None:
                value, headers = encode_reply(request, result)
                await send_reply(request, value, headers)

        return reply

    async def unknown(request: Request) -> Reply:
        return Reply(400, {"error": "unknown_request", "message": f"No handler for {request.kind!r}."})

    async def serve(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            try:
                request = decode_request(event.key, event.value, message.headers, partition=message.partition, offset=message.offset)
            except ValueError as exc:
                logger.warning("skipping malformed request on %s[%d]@%d: %s", message.topic, message.partition, message.offset, exc)
                continue
            if request.kind == "sync":
                pending.add(request)  # before the request's offset can be committed
                runner.start(request, reply_to(request))
            elif request.kind == SYNC_DONE:
                pending.remove(request.key, str(request.body.get("SyncId")))
            else:
                await answer(request, kinds.get(request.kind, unknown), send_reply)

    async def resume_pending(sender: Any = None, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """After a rebalance (tables recovered): take up the unanswered syncs of the partitions owned now."""
        owned = runner.owned_partitions()
        resumed = [e.SyncId for e in pending.owned(owned) if runner.start(e.request(), reply_to(e.request()))]
        if resumed:
            logger.warning("resuming %d sync(s) left unanswered on request partitions %s: %s", len(resumed), sorted(owned), ", ".join(resumed))

    app.agent(topics.sync_requests, name="sync")(serve)
    app.on_rebalance_complete.connect(resume_pending)


def register(app: HubApp, topics: HubTopics) -> CursorHandlers:
    writer = CursorWriter(topics.sync_requests, timeout_s=app.hub_settings.request_timeout_s)
    cursors = CursorHandlers(app, cursors_table(app), subscriptions_table(app), writer)
    pending = PendingSyncs(pending_syncs_table(app), topics.sync_requests)
    runner = SyncRunner(app, cursors.cursors, cursors.subscriptions, KafkaEventSource(app.hub_settings), writer, pending)
    handlers: dict[str, Handler] = {
        "set_cursor": cursors.set_cursor,
        "get_cursors": cursors.get_cursors,
        "claim_sync": cursors.claim_sync,
        "store_cursor": cursors.store_cursor,
        "list_parked": cursors.list_parked,
        "redeliver_parked": cursors.redeliver_parked,
        "drop_parked": cursors.drop_parked,
    }
    sync_agent(app, topics, handlers, runner, pending)
    app.on_partitions_revoked.connect(runner.on_partitions_revoked)
    app.on_before_shutdown.connect(runner.on_shutdown)
    return cursors
