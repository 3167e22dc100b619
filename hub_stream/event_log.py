"""Reads of hub.events: a publisher's partition by offset range, and time → offset.

hub.events is the event store (ARCHITECTURE.md): key = PublisherProgramId,
so one publisher's records are in one partition, in publication order,
shared with other publishers whose keys hash there. Record timestamp =
CreatedUtc in ms, non-decreasing within a partition (the intake guarantees
it). Two broker facts shape this module (BROKER-FACTS.md):

- Tansu's ListOffsets "latest" is short of the log end: log ends come from
  ``offsets.log_ends`` (a fetch's high watermark).
- Tansu's ``offsets_for_times`` looks up arrival time, not the record
  timestamp, and answers offset 0 when nothing matches. ``offset_at_time``
  therefore binary-searches the record timestamps themselves with
  single-record fetches: about log2(n) fetches, the same on every broker.

Plain aiokafka, no Faust: these are bounded reads by offset, not a stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from hub_stream.event_records import decode_record, partition_for
from hub_stream.offsets import log_ends
from hub_stream.settings import HubSettings
from hub_stream.sync import StoredEvent

PROBE_FETCH_BYTES = 1024 * 1024
"""Per-partition fetch size of a probe: the broker sends at least one whole batch anyway."""
RANGE_FETCH_BYTES = 16 * 1024 * 1024
"""Per-partition fetch size of range reads: few, large fetches."""
RANGE_MAX_RECORDS = 20_000
FETCH_TIMEOUT_MS = 500
STALL_TIMEOUT_S = 30.0
"""A read that gets no record for this long, short of an end the broker reported, fails."""


class EventLogError(RuntimeError):
    """hub.events did not answer as expected (a read stalled short of the log end)."""


def _consumer(bootstrap: str, *, fetch_bytes: int, fetch_max_wait_ms: int = 10) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a seek before the log start reads from the start
        fetch_max_wait_ms=fetch_max_wait_ms,
        max_partition_fetch_bytes=fetch_bytes,
        fetch_max_bytes=max(fetch_bytes, 52428800),
        # The broker has checked each batch's CRC on produce; checking again
        # here costs per batch and buys nothing on a local read.
        check_crcs=False,
    )


async def _record_at_or_after(
    consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, end: int
) -> tuple[int, int] | None:
    """(offset, timestamp ms) of the first record at or after ``offset`` and before ``end``; None if none."""
    if offset >= end:
        return None
    consumer.seek(tp, offset)
    deadline = time.monotonic() + STALL_TIMEOUT_S
    while True:
        batches = await consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=1)
        records = batches.get(tp)
        if records:
            record = records[0]
            return (record.offset, record.timestamp) if record.offset < end else None
        if await consumer.position(tp) >= end:
            return None  # only control records or gaps up to the end
        if time.monotonic() > deadline:
            raise EventLogError(
                f"no record of {tp.topic}[{tp.partition}] at or after {offset} (end {end})"
            )


async def offset_at_time(bootstrap: str, tp: TopicPartition, ms: int) -> int:
    """The first offset of ``tp`` whose record timestamp is >= ``ms``; the log end if none.

    Binary search over record timestamps (valid because they are
    non-decreasing within a partition of hub.events), one single-record
    fetch per step: O(log n) fetches whatever the partition holds.
    """
    end = (await log_ends(bootstrap, [tp]))[tp]
    consumer = _consumer(bootstrap, fetch_bytes=PROBE_FETCH_BYTES)
    await consumer.start()
    try:
        consumer.assign([tp])
        start = (await consumer.beginning_offsets([tp]))[tp]
        return await _search(consumer, tp, start, end, ms)
    finally:
        await consumer.stop()


async def _search(consumer: AIOKafkaConsumer, tp: TopicPartition, lo: int, hi: int, ms: int) -> int:
    """Narrow [lo, hi) to the first offset with timestamp >= ms (invariant: the answer is in [lo, hi])."""
    end = hi
    while lo < hi:
        mid = (lo + hi) // 2
        found = await _record_at_or_after(consumer, tp, mid, end)
        if found is None:
            hi = mid  # nothing from mid to the end: the answer is at most mid
        elif found[1] >= ms:
            hi = mid  # the first record at/after mid qualifies; none lies between mid and it
        else:
            lo = found[0] + 1
    return lo


class KafkaEventSource:
    """Range reads of one publisher's partition of hub.events (the sync's EventSource)."""

    def __init__(
        self,
        settings: HubSettings,
        *,
        decode: Callable[[Any], StoredEvent | None] = decode_record,
        partition_of: Callable[[str], int] | None = None,
    ) -> None:
        self._bootstrap = settings.kafka_bootstrap or ""
        self._topic = settings.topic("events")
        self._decode = decode
        partitions = settings.events_partitions
        self._partition_of = partition_of or (
            lambda publisher: partition_for(publisher, partitions)
        )

    def partition(self, publisher: str) -> TopicPartition:
        """The partition of hub.events holding ``publisher``'s records."""
        return TopicPartition(self._topic, self._partition_of(publisher))

    async def log_end(self, publisher: str) -> int:
        tp = self.partition(publisher)
        return (await log_ends(self._bootstrap, [tp]))[tp]

    async def offset_at_time(self, publisher: str, ms: int) -> int:
        """The first offset of the publisher's partition at or after time ``ms`` (epoch ms)."""
        return await offset_at_time(self._bootstrap, self.partition(publisher), ms)

    async def read(self, publisher: str, start: int, end: int) -> AsyncIterator[StoredEvent]:
        """The publisher's own records in [start, end), decoded, in log order.

        Other publishers sharing the partition are skipped by key before any
        decoding, so their cost is one bytes comparison per record.
        """
        if start >= end:
            return
        tp = self.partition(publisher)
        key = publisher.encode()
        consumer = _consumer(self._bootstrap, fetch_bytes=RANGE_FETCH_BYTES)
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, start)
            async for records in _range(consumer, tp, start, end):
                for record in records:
                    if record.key == key:
                        stored = self._decode(record)
                        if stored is not None:
                            yield stored
        finally:
            await consumer.stop()


async def _range(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int
) -> AsyncIterator[list[Any]]:
    """Chunks of the records of [start, end), in order; raises EventLogError when the read stalls."""
    position = start
    deadline = time.monotonic() + STALL_TIMEOUT_S
    while position < end:
        batches = await consumer.getmany(
            tp, timeout_ms=FETCH_TIMEOUT_MS, max_records=RANGE_MAX_RECORDS
        )
        records = batches.get(tp, [])
        if records:
            deadline = time.monotonic() + STALL_TIMEOUT_S
            if records[-1].offset >= end:
                records = [r for r in records if r.offset < end]
                position = end
            else:
                position = records[-1].offset + 1
            if records:
                yield records
            continue
        position = max(position, await consumer.position(tp))
        if time.monotonic() > deadline:
            raise EventLogError(
                f"reading {tp.topic}[{tp.partition}] stalled at {position} of {end}"
            )
        await asyncio.sleep(0)
