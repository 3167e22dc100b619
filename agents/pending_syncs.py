"""Sync requests the hub has not answered yet, in a Faust table: a sync outlives its worker.

The sync agent acknowledges a "sync" request as soon as it hands it to the
runner (agents/sync_runner.py), so Kafka alone would forget a sync whose
worker dies. Before handing it over, the agent records the request here
(keyed by the subscriber, on the request's own partition: the table's
changelog record is on the broker before the request's offset is committed).
When the sync has answered, the runner sends ``sync_done`` to the request
partition and the agent removes the entry. The table has a single writer,
the agent, inside its stream.

After every rebalance (``app.on_rebalance_complete``: the tables are
recovered by then) the worker resumes the recorded syncs of the request
partitions it owns that it is not running: a sync whose worker died, was
stopped or handed the partition over is taken up by the new owner within
seconds, under its SyncId, and its answer goes to the waiting caller's reply
partition and correlation id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import faust

from hub_stream.platform.request_reply import Request, encode_request

SYNC_DONE = "sync_done"


@dataclass(frozen=True)
class PendingSync:
    """What it takes to run a sync and answer its caller, by any worker."""

    ProgramId: str
    SyncId: str
    Partition: int | None
    ReplyTo: str | None
    ReplyPartition: int | None
    CorrelationId: str | None

    @classmethod
    def of(cls, request: Request) -> PendingSync:
        return cls(
            str(request.body.get("ProgramId") or request.key),
            str(request.body.get("SyncId") or request.command_id),
            request.partition,
            request.reply_to,
            request.reply_partition,
            request.correlation_id,
        )

    def request(self) -> Request:
        """The request as the agent first saw it (what the runner and the reply need)."""
        return Request(
            kind="sync",
            key=self.ProgramId,
            body={"ProgramId": self.ProgramId, "SyncId": self.SyncId},
            command_id=self.SyncId,
            reply_to=self.ReplyTo,
            reply_partition=self.ReplyPartition,
            correlation_id=self.CorrelationId,
            partition=self.Partition,
        )


def _decode(value: Any) -> list[PendingSync]:
    if not value:
        return []
    return [PendingSync(**doc) for doc in value]


class PendingSyncs:
    """The pending-syncs table of one app; ``add``/``remove`` must run inside the sync agent's stream."""

    def __init__(self, table: faust.Table, topic: faust.TopicT) -> None:
        self.table = table
        self.topic = topic  # the sync request topic

    def of(self, program_id: str) -> list[PendingSync]:
        return _decode(self.table.get(program_id))

    def add(self, request: Request) -> PendingSync:
        entry = PendingSync.of(request)
        entries = self.of(entry.ProgramId)
        if all(e.SyncId != entry.SyncId for e in entries):  # a redelivered request: recorded already
            self.table[entry.ProgramId] = [asdict(e) for e in [*entries, entry]]
        return entry

    def remove(self, program_id: str, sync_id: str) -> None:
        entries = self.of(program_id)
        left = [e for e in entries if e.SyncId != sync_id]
        if len(left) == len(entries):
            return
        if left:
            self.table[program_id] = [asdict(e) for e in left]
        else:
            del self.table[program_id]

    def owned(self, partitions: set[int]) -> Iterator[PendingSync]:
        """The recorded syncs of these request partitions, oldest first per program."""
        for _, value in list(self.table.items()):
            for entry in _decode(value):
                if entry.Partition in partitions:
                    yield entry

    async def send_done(self, program_id: str, partition: int | None, sync_id: str) -> None:
        """Ask the agent (of whichever worker owns the partition now) to forget an answered sync."""
        await self.topic.send(
            key=program_id.encode(), value=encode_request(SYNC_DONE, {"SyncId": sync_id}, f"done-{sync_id}"), partition=partition, force=True
        )
