"""The subscriptions agent: the only writer of the subscriptions table.

Requests on the subscriptions command topic, keyed by the subscriber's
ProgramId (hub_stream.platform.request_reply format):

- ``list`` {} -> 200 [subscription, ...] sorted by PublisherProgramId
- ``get`` {PublisherProgramId} -> 200 subscription | 404
- ``create`` {PublisherProgramId, SyncEnabled, LbApiPayloadTemplate, ImportProcessId, LastSyncUtc, At}
  -> 201 {SubscriptionId} | 409 | 422
- ``patch`` {PublisherProgramId, Changes, At} -> 200 {SubscriptionId} | 404 | 422
- ``delete`` {PublisherProgramId, At} -> 204 | 404
- ``find_by_publisher`` {PublisherProgramId}, sent to one explicit partition
  -> 200 ["{subscriber}<-{publisher}", ...] of that partition

Answers show ``LastSyncUtc`` from the cursors table, which the sync agent
writes and this agent only reads: both tables are keyed by subscriber on
topics with the same partition count, so a subscriber's cursors are local
here, and a cursor the sync agent wrote before answering is seen by the next
read (same process, same memory).
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from aiokafka.partitioner import murmur2

from agents.request_agent import request_agent
from agents.tables import cursors_table, subscriptions_table
from hub_stream.platform.faust_app import HubApp, HubTopics
from hub_stream.platform.request_reply import Reply, Request
from hub_stream.subscriptions import records as subs
from hub_stream.sync.cursors import SubscriberCursors

logger = logging.getLogger(__name__)


def partition_of(key: str, partitions: int) -> int:
    """The partition a keyed record goes to (the Java client's and aiokafka's default partitioner)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class SubscriptionsHandlers:
    """The request handlers, over one app's subscriptions and cursors tables."""

    def __init__(self, app: HubApp, subscriptions: faust.Table, cursors: faust.Table) -> None:
        self.app = app
        self.subscriptions = subscriptions
        self.cursors = cursors

    def record(self, program_id: str) -> subs.SubscriberRecord:
        return subs.SubscriberRecord.from_json(self.subscriptions.get(program_id))

    def _resource(self, program_id: str, sub: subs.Subscription, cursors: SubscriberCursors) -> dict[str, Any]:
        return sub.resource(program_id, cursors.last_sync_text(sub))

    async def list(self, request: Request) -> Reply:
        cursors = SubscriberCursors.from_json(self.cursors.get(request.key))
        return Reply(200, [self._resource(request.key, s, cursors) for s in self.record(request.key).sorted()])

    async def get(self, request: Request) -> Reply:
        publisher = str(request.body.get("PublisherProgramId", ""))
        sub = self.record(request.key).subscriptions.get(publisher)
        if sub is None:
            outcome = subs.not_found(request.key, publisher)
            return Reply(outcome.status, outcome.body)
        cursors = SubscriberCursors.from_json(self.cursors.get(request.key))
        return Reply(200, self._resource(request.key, sub, cursors))

    async def mutate(self, request: Request) -> Reply:
        record = self.record(request.key)
        new, outcome = subs.apply(record, request.key, request.kind, request.command_id, request.body)
        if new is not record:
            self.subscriptions[request.key] = new.to_json()
        else:
            logger.info("command %s (%s) was applied before; answering its first outcome", request.command_id, request.kind)
        return Reply(outcome.status, outcome.body)

    async def find_by_publisher(self, request: Request) -> Reply:
        """Subscriptions naming a publisher, among the subscribers of this request's partition.

        The memory store may keep keys of partitions this worker owned
        before; only keys that hash to the request's partition are answered.
        """
        publisher = str(request.body.get("PublisherProgramId", ""))
        n = self.app.hub_settings.subscriber_partitions
        found = []
        for key, value in list(self.subscriptions.items()):
            if request.partition is not None and partition_of(key, n) != request.partition:
                continue
            if publisher in subs.SubscriberRecord.from_json(value).subscriptions:
                found.append(f"{key}<-{publisher}")
        return Reply(200, sorted(found))


def register(app: HubApp, topics: HubTopics) -> SubscriptionsHandlers:

    handlers = SubscriptionsHandlers(app, subscriptions_table(app), cursors_table(app))
    request_agent(
        app,
        topics.subscription_commands,
        topics.replies,
        {
            "list": handlers.list,
            "get": handlers.get,
            "create": handlers.mutate,
            "patch": handlers.mutate,
            "delete": handlers.mutate,
            "find_by_publisher": handlers.find_by_publisher,
        },
        name="subscriptions",
    )
    return handlers
