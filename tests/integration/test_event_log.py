"""Reads of hub.events on a real broker: offset_at_time and range reads.

offset_at_time is checked against a brute-force answer over records with
repeated timestamps, several producer batch sizes and other publishers'
records in between: on Tansu (whose offsets_for_times is wrong) and on
Apache Kafka alike.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from hub_stream.events.log import ConsumerPool, KafkaEventSource, offset_at_time
from hub_stream.events.records import encode_deletion, encode_event, partition_for
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics

pytestmark = pytest.mark.integration

# A day ago: Apache Kafka refuses record timestamps more than an hour ahead
# (log.message.timestamp.after.max.ms), and a refused send must not pass unseen.
T0 = int(time.time() * 1000) - 86_400_000


def same_partition(publisher: str, partitions: int, prefix: str) -> str:
    """Another publisher name whose records share ``publisher``'s partition."""
    want = partition_for(publisher, partitions)
    return next(
        f"{prefix}{i}" for i in range(10_000) if partition_for(f"{prefix}{i}", partitions) == want
    )


def canonical(publisher: str, n: int) -> dict[str, Any]:
    return {
        "EventId": f"E:{publisher}-{n}",
        "PublisherProgramId": publisher,
        "PublisherEventData": {"n": n},
    }


async def produce(
    settings: HubSettings,
    records: list[tuple[bytes, bytes, list[tuple[str, bytes]], int]],
    *,
    chunks: list[int],
) -> None:
    """Produce ``records`` (key, value, headers, timestamp ms) in flushed groups of the given sizes."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=50
    )
    await producer.start()
    try:
        i = 0
        sizes = iter(chunks)
        while i < len(records):
            size = next(sizes, 1)
            sent = [
                await producer.send(
                    settings.topic("events"), value, key=key, headers=headers, timestamp_ms=ts
                )
                for key, value, headers, ts in records[i : i + size]
            ]
            await asyncio.gather(*sent)  # raises if the broker refused a record
            i += size
    finally:
        await producer.stop()


@pytest.fixture
async def topics(settings: HubSettings) -> HubSettings:
    await ensure_topics(settings)
    return settings


@pytest.fixture(params=["fresh", "pooled"])
async def source(request: pytest.FixtureRequest, topics: HubSettings) -> AsyncIterator[KafkaEventSource]:
    """A source that starts a consumer per read, and one that borrows the API's kept consumers:
    the same answers, read after read (a pooled consumer is reassigned and moved each time)."""
    if request.param == "fresh":
        yield KafkaEventSource(topics)
        return
    pool = ConsumerPool(topics.kafka_bootstrap or "", size=1)
    try:
        yield KafkaEventSource(topics, consumers=pool)
    finally:
        await pool.close()


async def test_offset_at_time_matches_brute_force(topics: HubSettings) -> None:
    settings = topics
    pub = "PUBLOG"
    other = same_partition(pub, settings.events_partitions, "OTHLOG")
    tp = TopicPartition(settings.topic("events"), partition_for(pub, settings.events_partitions))
    assert await offset_at_time(settings.kafka_bootstrap or "", tp, T0) == 0  # empty partition

    rng = random.Random(7)
    stamps: list[int] = []
    ts = T0
    records = []
    for n in range(300):
        ts += rng.choice([0, 0, 1, 5, 1000])  # repeats are common: many events in one ms
        stamps.append(ts)
        key, value, headers = encode_event(canonical(rng.choice([pub, other]), n))
        records.append((key, value, headers, ts))
    await produce(settings, records, chunks=[1, 10, 1, 5, 100, 3, 50])

    bootstrap = settings.kafka_bootstrap or ""
    probes = sorted(
        {
            T0 - 1,
            T0,
            stamps[-1],
            stamps[-1] + 1,
            *rng.sample(stamps, 40),
            *(s + 1 for s in rng.sample(stamps, 20)),
        }
    )
    for ms in probes:
        expected = next((i for i, s in enumerate(stamps) if s >= ms), len(stamps))
        assert await offset_at_time(bootstrap, tp, ms) == expected, ms

    # A skewed log, as when a quiet partition gets a burst: interpolation lands badly, bisection takes over.
    burst = stamps[-1] + 10_000_000
    more = []
    for n in range(300, 340):
        stamps.append(burst + (n - 300) // 15)  # 15 records a millisecond
        key, value, headers = encode_event(canonical(pub, n))
        more.append((key, value, headers, stamps[-1]))
    await produce(settings, more, chunks=[40])
    for ms in (stamps[-41] + 1, burst - 1, burst, burst + 1, burst + 2, burst + 3):
        expected = next((i for i, s in enumerate(stamps) if s >= ms), len(stamps))
        assert await offset_at_time(bootstrap, tp, ms) == expected, ms


async def test_range_read_keeps_the_publishers_records_in_order(topics: HubSettings, source: KafkaEventSource) -> None:
    settings = topics
    pub = "PUBRANGE"
    other = same_partition(pub, settings.events_partitions, "OTHRANGE")
    records = []
    for n in range(120):
        who = pub if n % 3 == 0 else other
        key, value, headers = encode_event(canonical(who, n))
        records.append((key, value, headers, T0 + n))
    key, value, headers = encode_deletion(pub, f"E:{pub}-3", "2026-01-15T08:00:00.000Z")
    records.append((key, value, headers, T0 + 200))
    await produce(settings, records, chunks=[7, 40, 1, 73])

    end = await source.log_end(pub)
    assert end == len(records)
    got = [r async for r in source.read(pub, 0, end)]
    assert [r.offset for r in got] == [n for n in range(120) if n % 3 == 0] + [120]
    assert all(r.publisher == pub for r in got)
    assert got[-1].deleted_event_id == f"E:{pub}-3" and got[0].event == canonical(pub, 0)
    window = [r.offset async for r in source.read(pub, 10, 40)]
    assert window == [12, 15, 18, 21, 24, 27, 30, 33, 36, 39]
    assert [r async for r in source.read(pub, end, end)] == []
    assert await source.offset_at_time(pub, T0 + 60) == 60
    assert await source.offset_at_time(pub, T0 + 10_000) == end


async def test_a_window_without_an_end_ends_at_the_log_end_of_its_first_fetch(
    topics: HubSettings, source: KafkaEventSource
) -> None:
    settings = topics
    pub = "PUBWIN"
    records = []
    for n in range(30):
        key, value, headers = encode_event(canonical(pub, n))
        records.append((key, value, headers, T0 + n))
    await produce(settings, records, chunks=[10, 1, 19])
    async with source.window(pub, 5) as window:
        assert window.end == 30
        await produce(settings, records[:3], chunks=[3])  # appended after the window opened: not in it
        got = [r.offset for chunk in [c async for c in window.chunks()] for r in chunk]
    assert got == list(range(5, 30))
    started = time.monotonic()
    async with source.window(pub, 33) as window:  # nothing new
        assert window.end == 33 and [c async for c in window.chunks()] == []
    assert time.monotonic() - started < 2
