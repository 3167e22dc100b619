"""The per-partition state: what the worker knows of each incoming partition it owns, and loading it."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from agents.intake.base import IntakeBase
from agents.intake.wire import EventT, RecordEvent
from hub_stream.events.intake_rules import (
    PartitionMark,
    mark_key,
    next_created_ms,
)
from hub_stream.events.log import EventLogReader
from hub_stream.events.records import decode_record

logger = logging.getLogger(__name__)


@dataclass
class PartitionState:
    """What the worker knows of one incoming partition (= hub.events partition) it owns."""

    mark: PartitionMark
    floor_ms: int  # the last CreatedUtc (ms) given out in the partition
    # EventIds appended after the mark: found on hub.events at assignment, or
    # appended by a batch still being made durable (a failed batch stops the
    # worker, so counting those as appended is safe). A batch's own leave
    # once its mark covers them.
    tail_events: set[str]
    tail_deleted: set[str]  # EventIds with a deletion marker after the mark, likewise
    next_offset: int = 0  # the incoming offset expected next: every one below is done or in hand

    def created_ms(self) -> int:
        self.floor_ms = next_created_ms(int(time.time() * 1000), self.floor_ms)
        return self.floor_ms



class PartitionStates(IntakeBase):
    """Taking over and giving up partitions; reading what the consumer skipped (part of ``Intake``)."""

    def forget(self, partition: int) -> None:
        """A partition this worker no longer owns: another may write it from now on."""
        self.states.pop(partition, None)
        self.stores.pop(partition, None)

    async def take_over(self, partition: int) -> PartitionState:
        """Load a partition's table entries and state; from now on this worker is its only writer."""
        self.forget(partition)
        async with self._reader() as reader:
            self.stores[partition] = await self._load_store(reader, partition)
            state = self.states[partition] = await self._load_state(reader, partition)
        return state

    def _reader(self) -> EventLogReader:
        s = self.settings
        return EventLogReader(s.kafka_bootstrap or "", fetch_max_wait_ms=s.fetch_max_wait_ms)

    async def _load_store(self, reader: EventLogReader, partition: int) -> dict[str, Any]:
        """The partition's changelog, replayed: the last value of each key (a null value deletes it)."""
        store: dict[str, Any] = {}
        tp = TopicPartition(self.changelog_topic, partition)
        started = time.perf_counter()
        records = 0
        begin, end = await reader.bounds(tp)
        async for record in reader.records(tp, begin, end):
            records += 1
            if record.key is None:
                continue
            key = json.loads(record.key)
            if record.value is None:
                store.pop(key, None)
            else:
                store[key] = json.loads(record.value)
        logger.debug(  # one INFO line sums up a take-over (IntakeService.assigned)
            "intake partition %d: %d keys from %d changelog records in %.2f s",
            partition,
            len(store),
            records,
            time.perf_counter() - started,
            extra={"partition": partition},
        )
        return store

    async def _load_state(self, reader: EventLogReader, partition: int) -> PartitionState:
        """The mark from the table, and hub.events after it: EventIds and markers there, the last timestamp."""
        mark = PartitionMark.from_json(self.stores[partition].get(mark_key(partition)))
        tp = TopicPartition(self.events_topic, partition)
        events: set[str] = set()
        deleted: set[str] = set()
        last_ms = 0
        begin, end = await reader.bounds(tp)
        # At least the last record, for its timestamp: the floor of CreatedUtc.
        start = max(begin, min(mark.events_end, end - 1))
        async for record in reader.records(tp, start, end):
            last_ms = max(last_ms, record.timestamp)
            stored = decode_record(record)
            if stored is None:
                continue
            if stored.deleted_event_id:
                deleted.add(stored.deleted_event_id)
            elif stored.event:
                events.add(str(stored.event.get("EventId")))
        logger.debug(
            "intake partition %d: mark at incoming offset %d, hub.events %d..%d read (%d events, %d deletions after the mark)",
            partition,
            mark.offset,
            start,
            end,
            len(events),
            len(deleted),
            extra={"partition": partition},
        )
        return PartitionState(mark, max(mark.created_ms, last_ms), events, deleted, mark.offset + 1)

    async def _without_gaps(self, events: list[EventT]) -> list[Any]:
        """The batch, with any incoming offset the consumer skipped read directly and put in its place.

        Faust drops a record it fetched while flow was stopped or under an old
        generation (a rebalance), and its commit then lets the committed
        offset step over exactly one unacked record (``_new_offset`` allows
        ``min(acked) - committed == 1``): the record would be lost. Every
        offset from the partition's mark on must reach us, so a hole is read
        from the topic; processing a record twice is harmless (idempotent).
        """
        by_partition: dict[int, list[Any]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        complete: list[Any] = []
        for partition, items in by_partition.items():
            state = self.states[partition]
            for event in items:
                offset = event.message.offset
                if offset > state.next_offset:
                    complete.extend(await self._read_hole(partition, state.next_offset, offset))
                complete.append(event)
                state.next_offset = max(state.next_offset, offset + 1)
        return complete

    async def _read_hole(self, partition: int, start: int, end: int) -> list[Any]:
        tp = TopicPartition(self.incoming_topic, partition)
        async with self._reader() as reader:
            records = [RecordEvent(self.incoming_topic, r) async for r in reader.records(tp, start, end)]
        logger.warning(
            "incoming %d: offsets %d..%d did not come through the consumer; read %d record(s) directly",
            partition,
            start,
            end - 1,
            len(records),
            extra={"partition": partition, "offset": start},
        )
        return records

