"""The crash-safe batch pipeline: a decided batch made durable, step by step, in batch order."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agents.intake.base import IntakeBase
from agents.intake.wire import EventT, changelog_bytes
from hub_stream.events.intake_rules import (
    mark_key,
)
from hub_stream.platform import metrics
from hub_stream.platform.request_reply import (
    Reply,
    Request,
    encode_reply,
)


@dataclass(frozen=True)
class Outgoing:
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int | None = None


@dataclass
class Batch:
    """What one batch decided, made durable by ``Intake._commit`` in a safe order."""

    writes: list[tuple[EventT, str, Any]] = field(default_factory=list)
    overlay: dict[str, Any] = field(default_factory=dict)  # this batch's writes, seen by its later records
    produce: list[Outgoing] = field(default_factory=list)  # appends, rejections, forwards (in order)
    replies: list[tuple[Request, Reply]] = field(default_factory=list)
    pending_events: set[str] = field(default_factory=set)
    pending_markers: set[str] = field(default_factory=set)
    last_event: dict[int, EventT] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    registered: set[str] = field(default_factory=set)  # publishers of its stream records found registered
    entries: list[Outgoing] = field(default_factory=list)  # the changelog records of ``writes``
    after: Stages | None = None  # the batch decided before this one, while it is not durable
    stages: Stages | None = None

    def write(self, event: EventT, key: str, value: Any) -> None:
        self.writes.append((event, key, value))
        self.overlay[key] = value


class Stages:
    """When each step of a batch's ``_commit`` is acknowledged (or failed)."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.entries: asyncio.Future[None] = loop.create_future()
        self.appends: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()

    def fail(self, exc: BaseException) -> None:
        """Fail every step not yet acknowledged, so the batches after this one fail too."""
        reason = exc if isinstance(exc, Exception) else RuntimeError("batch cancelled")
        for future in (self.entries, self.appends, self.done):
            if not future.done():
                future.set_exception(reason)
                future.exception()  # marked retrieved: the batches after this one report it



class DurableBatches(IntakeBase):
    """Making decided batches durable (part of ``Intake``); docs/events.md, "Crash safety"."""

    async def commit(self, batch: Batch) -> None:
        """Make a decided batch durable, in step with the batches before it (``_commit``)."""
        assert batch.stages is not None, "commit takes a batch from decide"
        try:
            await self._commit(batch, batch.after, batch.stages)
        except BaseException as exc:
            batch.stages.fail(exc)
            raise
        finally:
            if self._last_stages is batch.stages:
                self._last_stages = None
        for outcome, n in batch.outcomes.items():
            metrics.EVENTS.labels(outcome).inc(n)

    async def settled(self) -> None:
        """Return once every batch handed to ``commit`` is durable (or has failed)."""
        if self._last_stages is not None:
            await asyncio.gather(self._last_stages.done, return_exceptions=True)

    # --- making a batch durable ----------------------------------------------------

    async def _commit(self, batch: Batch, previous: Stages | None, stages: Stages) -> None:
        """Entries; then appends, rejections, forwards; then marks and replies: each step acked before the next.

        Batches overlap: a batch's step starts once its own previous step and
        the same step of the batch before it are acknowledged. So whatever a
        crash leaves durable is, step by step, a prefix of the batches, which
        is what the repair after a restart relies on (docs/events.md).
        """
        if previous is not None:
            await previous.entries
        if batch.entries:
            await self._send_all(batch.entries)
        stages.entries.set_result(None)
        if previous is not None:
            await previous.appends
        ends = await self._send_all(batch.produce)
        stages.appends.set_result(None)
        if previous is not None:
            await previous.done
        marks = []
        for partition, last in batch.last_event.items():
            state = self.states[partition]  # still owned: a rebalance waits for ``settled`` first
            # Never backwards: records redelivered from an older committed offset are below the mark.
            state.mark = state.mark.advanced(last.message.offset, ends.get(partition, 0), state.floor_ms)
            state.tail_events -= batch.pending_events  # the mark covers them now
            state.tail_deleted -= batch.pending_markers
            marks.append((last, mark_key(partition), state.mark.to_json()))
        replies = self._table_writes(marks)
        for request, reply in batch.replies:
            if request.reply_to and request.reply_partition is not None:
                value, headers = encode_reply(request, reply)
                replies.append(
                    Outgoing(self.replies_topic, request.reply_partition, request.reply_to.encode(), value, headers)
                )
        await self._send_all(replies)
        stages.done.set_result(None)

    def _table_writes(self, writes: list[tuple[EventT, str, Any]]) -> list[Outgoing]:
        """Write the partition's store now, and return the changelog records to send in bulk.

        The changelog is the store's durable copy: same partition as the
        event, JSON key and value (``changelog_bytes``, the bytes a Faust
        table writes, so the changelog of earlier versions reads the same).
        """
        topic = self.changelog_topic
        records = []
        for event, key, value in writes:
            partition = event.message.partition
            self.stores[partition][key] = value
            records.append(Outgoing(topic, partition, changelog_bytes(key), changelog_bytes(value), []))
        return records

    async def _send_all(self, records: list[Outgoing]) -> dict[int, int]:
        """Produce every record, one batch per partition, and wait for all; returns hub.events ends.

        Batches (aiokafka ``send_batch``) cost one future per batch instead of
        one per record; order within a partition is kept.
        """
        assert self.producer is not None, "the intake agent has not started its producer"
        producer = self.producer
        by_partition: dict[tuple[str, int], list[Outgoing]] = {}
        for out in records:
            by_partition.setdefault((out.topic, out.partition), []).append(out)
        sent: list[tuple[str, int, int, asyncio.Future[Any]]] = []
        for (topic, partition), outs in by_partition.items():
            batch, count = producer.create_batch(), 0
            for out in outs:
                if batch.append(key=out.key, value=out.value, timestamp=out.timestamp_ms, headers=out.headers) is None:
                    sent.append((topic, partition, count, await producer.send_batch(batch, topic, partition=partition)))
                    batch, count = producer.create_batch(), 0
                    # An empty batch takes any one record, however large.
                    batch.append(key=out.key, value=out.value, timestamp=out.timestamp_ms, headers=out.headers)
                count += 1
            sent.append((topic, partition, count, await producer.send_batch(batch, topic, partition=partition)))
        results = await asyncio.gather(*(f for *_, f in sent))
        ends: dict[int, int] = {}
        for (topic, partition, count, _), meta in zip(sent, results, strict=True):
            if topic == self.events_topic:
                ends[partition] = max(ends.get(partition, 0), meta.offset + count)
        return ends

