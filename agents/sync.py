"""The sync agent: the only writer of the sync cursors table.

Requests on the sync request topic, keyed by the subscriber's ProgramId:

- ``set_cursor`` {PublisherProgramId, SubscriptionId, LastSyncUtc} -> 204 | 404
  (``PATCH LastSyncUtc``; see hub_stream.cursors)
- ``get_cursors`` {} -> 200 {publisher: cursor} of the live subscriptions

The sync itself (``sync``) is added beside the cursor handlers: it reads the
subscriptions table (local: same key, same partition count) and writes
cursors through ``CursorHandlers.store``, in this agent only.
"""

from __future__ import annotations

import logging

import faust

from agents.serving import request_agent
from hub_stream import cursors as cur
from hub_stream.event_log import KafkaEventSource
from hub_stream.faust_app import HubApp, HubTopics, table
from hub_stream.rpc import Handler, Reply, Request
from hub_stream.subscriptions import SubscriberRecord
from hub_stream.topics import CURSORS_TABLE

logger = logging.getLogger(__name__)


def cursors_table(app: HubApp) -> faust.Table:
    """The cursors table of ``app`` (declared once; the subscriptions agent reads it too)."""
    if CURSORS_TABLE in app.tables:
        return app.tables[CURSORS_TABLE]
    return table(app, CURSORS_TABLE, partitions=app.hub_settings.subscriber_partitions)


class CursorHandlers:
    """Cursor commands over one app's cursors table (written here only)."""

    def __init__(self, cursors: faust.Table, subscriptions: faust.Table) -> None:
        self.cursors = cursors
        self.subscriptions = subscriptions  # read only: the subscriptions agent writes it

    def record(self, program_id: str) -> cur.SubscriberCursors:
        return cur.SubscriberCursors.from_json(self.cursors.get(program_id))

    def live(self, program_id: str) -> dict[str, str]:
        """publisher -> SubscriptionId of the subscriber's existing subscriptions."""
        record = SubscriberRecord.from_json(self.subscriptions.get(program_id))
        return {pub: s.subscription_id for pub, s in record.subscriptions.items()}

    def store(self, program_id: str, record: cur.SubscriberCursors) -> None:
        """Write a subscriber's cursors (must run inside this agent's stream)."""
        self.cursors[program_id] = record.to_json()

    async def set_cursor(self, request: Request) -> Reply:
        record = self.record(request.key)
        new, outcome = cur.set_cursor(record, request.command_id, request.body, live=self.live(request.key))
        if new is not record:
            self.store(request.key, new)
        return Reply(outcome.status, outcome.body)

    async def get_cursors(self, request: Request) -> Reply:
        record = self.record(request.key)
        subs = SubscriberRecord.from_json(self.subscriptions.get(request.key))
        return Reply(200, {s.publisher: record.cursor_of(s).to_json() for s in subs.sorted()})


def register(app: HubApp, topics: HubTopics) -> CursorHandlers:
    from agents.subscriptions import subscriptions_table
    from agents.syncing import SyncHandler

    cursors = CursorHandlers(cursors_table(app), subscriptions_table(app))
    source = KafkaEventSource(app.hub_settings)
    handlers: dict[str, Handler] = {
        "set_cursor": cursors.set_cursor,
        "get_cursors": cursors.get_cursors,
        "sync": SyncHandler(app, cursors.cursors, cursors.subscriptions, source),
    }
    request_agent(app, topics.sync_requests, topics.replies, handlers, name="sync")
    return cursors
