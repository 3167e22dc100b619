"""The one reader of hub.events (and of other topics by offset range).

- ``KafkaEventSource`` / ``Window``: a publisher's records in its partition by
  offset range, decoded (the sync), and time → offset (``offset_at_time``).
- ``EventLogReader``: every record of a partition in [start, end), raw (the
  intake's state at takeover, the events listing, holes in the incoming topic).
- ``ConsumerPool``: started consumers a long-lived process (the API) lends to
  its reads, so a preview does not pay a consumer's start (connection,
  metadata) each time.

hub.events is the event store (ARCHITECTURE.md): key = PublisherProgramId,
so one publisher's records are in one partition, in publication order,
shared with other publishers whose keys hash there. Record timestamp =
CreatedUtc in ms, non-decreasing within a partition (the intake guarantees
it). Two broker facts shape this module (BROKER-FACTS.md):

- Tansu's ListOffsets "latest" is short of the log end: log ends come from
  ``offsets.log_ends`` (a fetch's high watermark).
- Tansu's ``offsets_for_times`` looks up arrival time, not the record
  timestamp, and answers offset 0 when nothing matches. ``offset_at_time``
  therefore searches the record timestamps themselves with single-record
  fetches, back from the log end: O(log d) fetches for an answer d records
  before the end, the same on every broker.
- Tansu ignores a fetch's per-partition byte limit and fills it up to the
  request's limit: every consumer here sets both (``PROBE_FETCH_BYTES``).

Plain aiokafka, no Faust: these are bounded reads by offset, not a stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from hub_stream.events.records import StoredEvent, decode_publisher_records, partition_for
from hub_stream.platform.offsets import log_ends, log_ends_of
from hub_stream.platform.settings import HubSettings

PROBE_FETCH_BYTES = 1
"""Fetch size of a probe: brokers send at least the one batch holding the offset anyway.

Tansu ignores the per-partition limit (max_partition_fetch_bytes) and fills
a fetch up to the request's limit (fetch_max_bytes): with the usual 50 MiB a
probe in a partition of a million events cost 40-60 ms instead of 5 ms. Both
limits are therefore set, here and for range reads.
"""
RANGE_FETCH_BYTES = 16 * 1024 * 1024
"""Fetch size of range reads: few, large fetches."""
RANGE_MAX_RECORDS = 1_000
"""Records per chunk of a range read (a fetch holds many chunks).

A chunk is decoded at once and its events live until the reader is done
with them: a sync renders each chunk before it asks for the next, so small
chunks keep the decoded events few and their memory reused. With 20,000 a
30k-event sync took 60,000 page faults of fresh memory (~0.3 s of system
time on a 2-vCPU machine); with 1,000, a third as many and a fifth of the time.
"""
FIRST_FETCH_POLL_MS = 10
FETCH_TIMEOUT_MS = 500
LOG_END_TIMEOUT_S = 10.0
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
        fetch_max_bytes=fetch_bytes,
        # The broker has checked each batch's CRC on produce; checking again
        # here costs per batch and buys nothing on a local read.
        check_crcs=False,
    )


async def _start(consumer: AIOKafkaConsumer) -> None:
    """Start a consumer; one that fails to (no broker) is closed, not left for the garbage collector to report."""
    try:
        await consumer.start()
    except BaseException:
        await _stop(consumer)
        raise


async def _stop(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer; aiokafka's close of an unused consumer can leak a CancelledError of its own."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # we are being cancelled: not aiokafka's


ConsumerLender = Callable[[], AbstractAsyncContextManager[AIOKafkaConsumer]]
"""Where a read gets its started range consumer from: a new one (``fresh_consumers``) or a pool's."""


def fresh_consumers(bootstrap: str) -> ConsumerLender:
    """A new range consumer for each read, stopped after it."""

    @asynccontextmanager
    async def lend() -> AsyncIterator[AIOKafkaConsumer]:
        consumer = _consumer(bootstrap, fetch_bytes=RANGE_FETCH_BYTES)
        await _start(consumer)
        try:
            yield consumer
        finally:
            await _stop(consumer)

    return lend


class ConsumerPool:
    """Up to ``size`` started range consumers, lent one per read (``lend``) and kept between reads.

    A read assigns and seeks the consumer it borrows, as it would a new one;
    on return its partitions are paused, so an idle consumer fetches nothing.
    A read that fails stops its consumer instead of returning it (its state is
    unknown); the next read starts a new one. Starting a consumer costs a
    connection and metadata requests: tens of ms on a busy machine, more than
    the reads of a preview themselves.
    """

    def __init__(self, bootstrap: str, *, size: int = 4) -> None:
        self._bootstrap = bootstrap
        self._slots = asyncio.Semaphore(size)
        self._idle: list[AIOKafkaConsumer] = []
        self._closed = False

    @asynccontextmanager
    async def lend(self) -> AsyncIterator[AIOKafkaConsumer]:
        async with self._slots:
            if self._idle:
                consumer = self._idle.pop()
            else:
                consumer = _consumer(self._bootstrap, fetch_bytes=RANGE_FETCH_BYTES)
                await _start(consumer)
            try:
                yield consumer
            except BaseException:
                await _stop(consumer)
                raise
            if self._closed:
                await _stop(consumer)
            else:
                consumer.pause(*consumer.assignment())
                self._idle.append(consumer)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for consumer in idle:
            await _stop(consumer)


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


async def offset_at_time(bootstrap: str, tp: TopicPartition, ms: int, *, end: int | None = None) -> int:
    """The first offset of ``tp`` whose record timestamp is >= ``ms``; the log end if none.

    A search over record timestamps (valid because they are non-decreasing
    within a partition of hub.events), one single-record fetch per step,
    O(log d) fetches for an answer d records before the end (``_search``).
    ``end``: the log end if the caller has just read it (saves reading it again).
    """
    consumer = _consumer(bootstrap, fetch_bytes=PROBE_FETCH_BYTES)
    await _start(consumer)
    try:
        consumer.assign([tp])
        start = (await consumer.beginning_offsets([tp]))[tp]
        if end is None:
            end = (await log_ends_of(consumer, [tp]))[tp]
        return await _search(consumer, tp, start, end, ms)
    finally:
        await _stop(consumer)


GALLOP = 8
"""Each step back from the log end goes this many times further than the last."""


async def _search(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int, ms: int) -> int:
    """The first offset in [start, end) with timestamp >= ms, else ``end``.

    Galloping back from the log end, then bisecting: every record before
    ``lo`` is older than ms, the record at ``hi`` is not, so the answer is in
    [lo, hi]. A sync asks for a time in order to read from there to the end,
    so the answer is usually near the end: the probes then number about
    log2(d) + log8(d), d = records from the answer to the end, i.e. they follow
    what the sync reads anyway, not the size of the partition.
    """
    last = await _record_at_or_after(consumer, tp, end - 1, end) if end > start else None
    if last is None or last[1] < ms:
        return end
    hi, lo, step = last[0], start, 1
    while True:
        probe = hi - step
        found = await _record_at_or_after(consumer, tp, max(probe, start), end)
        assert found is not None and found[0] <= hi  # the record at hi exists
        if found[1] < ms:
            lo = found[0] + 1
            break
        hi = found[0]
        if probe <= start:
            return hi  # even the first record is new enough
        step *= GALLOP
    while lo < hi:
        found = await _record_at_or_after(consumer, tp, (lo + hi) // 2, end)
        assert found is not None and found[0] <= hi
        if found[1] >= ms:
            hi = found[0]  # nothing between the probe and it: the answer is at most here
        else:
            lo = found[0] + 1
    return hi


class KafkaEventSource:
    """Range reads of one publisher's partition of hub.events (the sync's EventSource)."""

    def __init__(
        self,
        settings: HubSettings,
        *,
        decode: Callable[[Iterable[Any], bytes], list[StoredEvent]] = decode_publisher_records,
        partition_of: Callable[[str], int] | None = None,
        consumers: ConsumerPool | None = None,
    ) -> None:
        self._bootstrap = settings.kafka_bootstrap or ""
        self._lend = consumers.lend if consumers is not None else fresh_consumers(self._bootstrap)
        self._pooled = consumers is not None
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
        if not self._pooled:
            return (await log_ends(self._bootstrap, [tp]))[tp]
        async with self._lend() as consumer:
            return (await asyncio.wait_for(log_ends_of(consumer, [tp]), LOG_END_TIMEOUT_S))[tp]

    async def offset_at_time(self, publisher: str, ms: int, *, end: int | None = None) -> int:
        """The first offset of the publisher's partition at or after time ``ms`` (epoch ms)."""
        return await offset_at_time(self._bootstrap, self.partition(publisher), ms, end=end)

    def window(self, publisher: str, start: int, end: int | None = None) -> Window:
        """A read of the publisher's records from ``start`` to ``end`` (None: the log end met first)."""
        return Window(self._lend, self.partition(publisher), publisher.encode(), self._decode, start, end)

    async def read_chunks(self, publisher: str, start: int, end: int | None = None) -> AsyncIterator[list[StoredEvent]]:
        """The publisher's own records in [start, end), decoded, in log order, a fetch at a time."""
        async with self.window(publisher, start, end) as window:
            async for chunk in window.chunks():
                yield chunk

    async def read(self, publisher: str, start: int, end: int | None = None) -> AsyncIterator[StoredEvent]:
        """``read_chunks``, one record at a time."""
        async for chunk in self.read_chunks(publisher, start, end):
            for stored in chunk:
                yield stored


class Window:
    """One read of a publisher's records in its partition, with one consumer.

    Without an ``end``, the window ends where the log ended at its first
    fetch: that fetch's high watermark (right on Tansu too), so a sync that
    knows where it starts needs no separate log-end lookup — on Tansu every
    request costs time in proportion to the partition's size, so the fewer
    the better. Other publishers sharing the partition are skipped by key
    before any decoding: one bytes comparison per record.
    """

    def __init__(
        self,
        lend: ConsumerLender,
        tp: TopicPartition,
        key: bytes,
        decode: Callable[[Iterable[Any], bytes], list[StoredEvent]],
        start: int,
        end: int | None,
    ) -> None:
        self._lend = lend
        self._lent: AbstractAsyncContextManager[AIOKafkaConsumer] | None = None
        self._consumer: AIOKafkaConsumer
        self._tp = tp
        self._key = key
        self._decode = decode
        self.start = start
        self._end = end
        self._first: list[Any] = []
        self._started = False

    @property
    def end(self) -> int:
        """The offset after the window (known once the window is entered)."""
        assert self._end is not None, "enter the window first"
        return self._end

    async def __aenter__(self) -> Self:
        if self._end is not None and self._end <= self.start:
            self._started = False  # an empty window: no consumer at all
            return self
        lent = self._lend()
        self._consumer = await lent.__aenter__()
        self._lent, self._started = lent, True
        try:
            self._consumer.assign([self._tp])
            self._consumer.seek(self._tp, self.start)
            if self._end is None:
                self._end = await self._first_fetch()
        except BaseException as exc:
            self._lent, self._started = None, False
            await lent.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._started and self._lent is not None:
            lent, self._lent, self._started = self._lent, None, False
            await lent.__aexit__(*exc)

    async def _first_fetch(self) -> int:
        """Fetch from the start until the broker has told the partition's high watermark."""
        deadline = time.monotonic() + STALL_TIMEOUT_S
        while True:
            batches = await self._consumer.getmany(self._tp, timeout_ms=FIRST_FETCH_POLL_MS, max_records=RANGE_MAX_RECORDS)
            self._first.extend(batches.get(self._tp, []))
            highwater = self._consumer.highwater(self._tp)
            if highwater is not None:
                return max(highwater, self.start)
            if time.monotonic() > deadline:
                raise EventLogError(f"no answer from {self._tp.topic}[{self._tp.partition}] at offset {self.start}")

    async def chunks(self) -> AsyncIterator[list[StoredEvent]]:
        """The publisher's records of the window, decoded, in log order, a fetch at a time."""
        end = self.end
        if end <= self.start:
            return
        first, self._first = [r for r in self._first if self.start <= r.offset < end], []
        position = first[-1].offset + 1 if first else self.start
        if first:
            chunk = self._decode(first, self._key)
            if chunk:
                yield chunk
        async for records in _range(self._consumer, self._tp, position, end):
            if records[0].offset < self.start:
                # Only if the log was reset under us (the consumer then rewinds to
                # its start): never deliver what lies before the window.
                records = [r for r in records if r.offset >= self.start]
            chunk = self._decode(records, self._key)
            if chunk:
                yield chunk


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


# --- whole ranges of any partition (the intake's state, the listing) ---------------

READER_FETCH_BYTES = 4 * 1024 * 1024
READ_TIMEOUT_MS = 500
MAX_RECORDS_PER_FETCH = 5000
MAX_EMPTY_POLLS = 20  # x READ_TIMEOUT_MS: then the broker is not answering


class EventLogReader:
    """One manually assigned consumer for range reads of a topic's partitions."""

    def __init__(self, bootstrap: str, *, fetch_max_wait_ms: int = 10) -> None:
        self._bootstrap = bootstrap
        self._consumer = _consumer(bootstrap, fetch_bytes=READER_FETCH_BYTES, fetch_max_wait_ms=fetch_max_wait_ms)
        self._assigned: set[TopicPartition] = set()

    async def __aenter__(self) -> Self:
        await _start(self._consumer)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await _stop(self._consumer)

    async def bounds(self, tp: TopicPartition) -> tuple[int, int]:
        """(first offset, true log end) of a partition (offsets.log_ends: Tansu's end_offsets is short)."""
        self._assign(tp)
        begin = (await self._consumer.beginning_offsets([tp]))[tp]
        end = (await log_ends(self._bootstrap, [tp]))[tp]
        return begin, end

    def _assign(self, tp: TopicPartition) -> None:
        if tp not in self._assigned:
            self._assigned.add(tp)
            self._consumer.assign(sorted(self._assigned))

    async def records(self, tp: TopicPartition, start: int, end: int) -> AsyncIterator[ConsumerRecord]:
        """Every record with ``start <= offset < end``, in order."""
        if start >= end:
            return
        self._assign(tp)
        self._consumer.seek(tp, start)
        position = start
        empty_polls = 0
        while position < end:
            batches = await self._consumer.getmany(tp, timeout_ms=READ_TIMEOUT_MS, max_records=MAX_RECORDS_PER_FETCH)
            records = batches.get(tp, [])
            for record in records:
                if record.offset >= end:
                    return
                position = record.offset + 1
                yield record
            if records:
                empty_polls = 0
                continue
            # Nothing came: past a gap, the log is shorter than ``end``, or the broker is slow.
            highwater = self._consumer.highwater(tp)
            if highwater is not None and highwater <= position:
                return
            position = max(position, await self._consumer.position(tp))
            empty_polls += 1
            if empty_polls > MAX_EMPTY_POLLS:
                raise TimeoutError(f"{tp.topic}[{tp.partition}] gave nothing at offset {position} for {MAX_EMPTY_POLLS} polls")
