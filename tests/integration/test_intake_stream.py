"""Stream publishers: records produced straight onto the incoming topic with a plain producer.

Valid ones land on hub.events once; invalid ones, and those of publishers
not in the programs registry, on the rejected topic with the reason and
their original bytes; a worker killed in the middle of a stream loses
nothing and duplicates nothing; a database that does not answer rejects
nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from support import (
    HubProcess,
    event_doc,
    make_settings,
    start_crash_worker,
    wait_for_intake,
)

from hub_stream.events.log import EventLogReader
from hub_stream.events.records import partition_for
from hub_stream.local.embedded import free_port
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics

pytestmark = pytest.mark.integration


def as_bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()


async def register(settings: HubSettings, *publishers: str) -> None:
    """Put publishers in the programs registry: the intake rejects a stream record of any other (unknown_program)."""
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        await conn.executemany(
            "INSERT INTO programs (program_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", [(p,) for p in publishers]
        )
    finally:
        await conn.close()


async def read_topic(settings: HubSettings, name: str, partitions: int) -> list[Any]:
    """Every record of a topic, partition by partition."""
    out: list[Any] = []
    async with EventLogReader(settings.kafka_bootstrap or "") as reader:
        for p in range(partitions):
            tp = TopicPartition(settings.topic(name), p)
            begin, end = await reader.bounds(tp)
            out.extend([r async for r in reader.records(tp, begin, end)])
    return out


async def events_of(settings: HubSettings, publishers: set[str]) -> list[dict[str, Any]]:
    records = await read_topic(settings, "events", settings.events_partitions)
    return [json.loads(r.value) for r in records if r.key and r.key.decode() in publishers and dict(r.headers).get("hub-kind") == b"event"]


async def wait_until(check: Any, timeout_s: float = 90, what: str = "", logs: tuple[Path, ...] = ()) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:]) for p in logs if p.exists())
            raise AssertionError(f"timed out waiting for {what}\n{tails}")
        await asyncio.sleep(0.5)


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, database_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[HubSettings]:
    tmp = Path(tmp_path_factory.mktemp("intake"))
    settings = make_settings(kafka_bootstrap, database_dsn, tmp)
    await ensure_topics(settings)
    worker = HubProcess("worker", settings, tmp / "worker.log")
    try:
        await wait_for_intake(settings, worker)
        yield settings
    finally:
        worker.stop()


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


async def test_valid_invalid_and_non_json_records(stack: HubSettings, producer: AIOKafkaProducer) -> None:
    settings = stack
    tag = uuid.uuid4().hex[:8]
    pub, pub2 = f"S{tag}", f"S{tag}-b"
    await register(settings, pub, pub2)
    topic = settings.topic("events.incoming")
    good = [event_doc(pub, 1), event_doc(pub, 2, PublisherEventCategory={"value": "EXAM"}), event_doc(pub2, 1)]
    # (key, value, what the rejection says)
    bad: list[tuple[bytes | None, bytes | None, str]] = [
        (pub.encode(), b"\xff\xfe not json at all", "not_json"),
        (pub.encode(), b'{"PublisherProgramId": "' + pub.encode() + b'", truncated', "not_json"),
        (pub.encode(), b"[1, 2, 3]", "not_an_object"),
        (pub.encode(), None, "not_json"),
        (pub.encode(), as_bytes(event_doc(pub, 3, EventType="T" * 51, EventStartUtc="soon")), "invalid_event"),
        (pub.encode(), as_bytes(event_doc(pub, 4, Extra=True)), "unknown_fields"),
        (pub.encode(), as_bytes(event_doc(pub, 1, EventType="CHANGED")), "duplicate_publisher_event_id"),
        (pub.encode(), as_bytes(event_doc(pub, 6, PublisherEventData={"x": "y" * 1_000_000})), "event_too_large"),
        # The rules of HTTP bodies (CONTRACT.md "Conventions") hold on the stream too.
        (pub.encode(), as_bytes(event_doc(pub, 7, PublisherEventData={"a": "DEEP"})).replace(b'"DEEP"', b"[" * 10_000 + b"]" * 10_000), "too_deep"),
        (pub.encode(), as_bytes(event_doc(pub, 8, PublisherEventData={"a": "X"})).replace(b'"X"', b'"\\ud800"'), "invalid_text"),
        (pub.encode(), as_bytes(event_doc(pub, 9, PublisherEventData={"a": "X"})).replace(b'"X"', b"NaN"), "not_json"),
        (pub.encode(), as_bytes(event_doc(pub, 10, PublisherEventData={"a": "X"})).replace(b'"X"', b"1e400"), "not_json"),
    ]
    for doc in good:
        await producer.send_and_wait(topic, as_bytes(doc), key=doc["PublisherProgramId"].encode())
    for key, value, _ in bad:
        await producer.send_and_wait(topic, value, key=key, headers=[("trace", b"\x00\x01")])
    # The same event again, and one on a partition that is not its publisher's.
    await producer.send_and_wait(topic, as_bytes(event_doc(pub, 1)), key=pub.encode())
    wrong = (partition_for(pub, settings.events_partitions) + 1) % settings.events_partitions
    await producer.send_and_wait(topic, as_bytes(event_doc(pub, 5)), key=pub.encode(), partition=wrong)

    async def landed() -> list[dict[str, Any]] | None:
        found = await events_of(settings, {pub, pub2})
        return found if len(found) >= 4 else None

    stored = await wait_until(landed, what="the valid events on hub.events")

    async def rejected_all() -> list[Any] | None:
        records = [r for r in await read_topic(settings, "events.rejected", settings.rejected_partitions) if r.key == pub.encode()]
        return records if len(records) >= len(bad) else None

    rejected = await wait_until(rejected_all, what="the rejections")
    await asyncio.sleep(1.0)  # anything extra (a duplicate) would show up by now
    stored = await events_of(settings, {pub, pub2})
    assert sorted((e["PublisherProgramId"], e["PublisherEventId"]) for e in stored) == [
        (pub, "ev-1"), (pub, "ev-2"), (pub, "ev-5"), (pub2, "ev-1")
    ]
    assert next(e for e in stored if e["PublisherEventId"] == "ev-2")["PublisherEventCategory"] == {"value": "EXAM", "label": None}

    rejected = [r for r in await read_topic(settings, "events.rejected", settings.rejected_partitions) if r.key == pub.encode()]
    assert len(rejected) == len(bad)
    by_value = {r.value: r for r in rejected}
    for key, value, reason in bad:
        record = by_value[value]  # the original bytes, exactly (None for the tombstone)
        headers = dict(record.headers)
        assert record.key == key
        assert headers["hub-reject-reason"].decode() == reason
        assert headers["hub-reject-message"]
        assert headers["trace"] == b"\x00\x01"  # the producer's own headers come along
        assert headers["hub-source-topic"].decode() == topic
        assert int(headers["hub-source-partition"]) == partition_for(pub, settings.events_partitions)
        int(headers["hub-source-offset"])
        details = json.loads(headers["hub-reject-details"])
        if reason == "invalid_event":
            assert {e["field"] for e in details["errors"]} == {"EventType", "EventStartUtc"}
        if reason == "unknown_fields":
            assert details["unknown_fields"] == ["Extra"]
        if reason == "duplicate_publisher_event_id":
            first = next(e for e in stored if e["PublisherProgramId"] == pub and e["PublisherEventId"] == "ev-1")
            assert details["EventId"] == first["EventId"]


async def rejections_of(settings: HubSettings, pub: str) -> list[Any]:
    return [r for r in await read_topic(settings, "events.rejected", settings.rejected_partitions) if r.key == pub.encode()]


async def test_an_unregistered_publisher_is_rejected_until_it_is_registered(stack: HubSettings, producer: AIOKafkaProducer) -> None:
    settings = stack
    tag = uuid.uuid4().hex[:8]
    known, unknown = f"R{tag}", f"U{tag}"
    await register(settings, known)
    topic = settings.topic("events.incoming")
    first = [as_bytes(event_doc(unknown, 1)), as_bytes(event_doc(unknown, 2))]
    await producer.send_and_wait(topic, as_bytes(event_doc(known, 1)), key=known.encode())
    for value in first:
        await producer.send_and_wait(topic, value, key=unknown.encode(), headers=[("trace", b"t1")])

    async def rejected_both() -> list[Any] | None:
        records = await rejections_of(settings, unknown)
        return records if len(records) >= 2 else None

    rejected = await wait_until(rejected_both, what="the unknown publisher's records on the rejected topic")
    assert [r.value for r in rejected] == first  # the original bytes, in order
    for record in rejected:
        headers = dict(record.headers)
        assert headers["hub-reject-reason"] == b"unknown_program"
        assert headers["hub-reject-message"].decode() == (
            f"Program '{unknown}' is not registered; staff register publishers with PUT /api/programs."
        )
        assert json.loads(headers["hub-reject-details"]) == {"PublisherProgramId": unknown}
        assert headers["trace"] == b"t1"
        assert int(headers["hub-source-partition"]) == partition_for(unknown, settings.events_partitions)

    async def known_landed() -> bool:
        return len(await events_of(settings, {known})) == 1

    await wait_until(known_landed, what="the registered publisher's event on hub.events")
    assert await events_of(settings, {unknown}) == []

    # Registered now: the same records again are accepted (nothing of the first tries was kept).
    await register(settings, unknown)
    for value in first:
        await producer.send_and_wait(topic, value, key=unknown.encode())

    async def unknown_landed() -> list[dict[str, Any]] | None:
        found = await events_of(settings, {unknown})
        return found if len(found) >= 2 else None

    await wait_until(unknown_landed, what="the newly registered publisher's events on hub.events")
    await asyncio.sleep(1.0)
    assert sorted(e["PublisherEventId"] for e in await events_of(settings, {unknown})) == ["ev-1", "ev-2"]
    assert len(await rejections_of(settings, unknown)) == 2


async def test_a_database_that_does_not_answer_rejects_nothing(kafka_bootstrap: str, database_dsn: str, tmp_path: Path) -> None:
    """The registry cannot be asked: the worker stops without deciding the batch; the next worker accepts it all."""
    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path)
    await ensure_topics(settings)
    publishers = [f"D{uuid.uuid4().hex[:6]}-{i}" for i in range(3)]
    await register(settings, *publishers)
    nowhere = f"postgresql://hub:hub@127.0.0.1:{free_port()}/hub"
    blind = HubProcess("worker", settings, tmp_path / "blind.log", HUB_DATABASE_URL=nowhere)
    second: HubProcess | None = None
    try:
        await wait_for_intake(settings, blind)  # requests need no registry: it runs
        await produce_stream(settings, publishers, range(20))

        async def gave_up() -> bool:
            return "the programs registry did not answer" in blind.log_path.read_text(errors="replace")

        await wait_until(gave_up, what="the worker giving up on the registry", logs=(blind.log_path,))
        deadline = time.monotonic() + 30
        while blind.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert blind.process.poll() is not None, "the worker did not stop:\n" + blind.log_tail()
        assert await appended_so_far(settings) == 0
        assert await read_topic(settings, "events.rejected", settings.rejected_partitions) == []
        second = HubProcess("worker", settings, tmp_path / "worker2.log")
        await assert_exactly_once(settings, publishers, 20, (blind.log_path, second.log_path))
    finally:
        blind.stop()
        if second is not None:
            second.stop()


SLOW_PAUSE_S = 0.5


async def produce_stream(
    settings: HubSettings,
    publishers: list[str],
    numbers: range,
    *,
    chunk: int = 100,
    pause_s: float = 0.05,
    slow_until: asyncio.Event | None = None,
) -> None:
    """Events interleaved across publishers, every 7th sent twice (a publisher's own retry).

    ``slow_until``: until it is set, pause ``SLOW_PAUSE_S`` between chunks, so
    the stream is still flowing when a change of workers that takes long on
    a busy machine happens; then ``pause_s``.
    """
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        topic = settings.topic("events.incoming")
        sent = 0
        for n in numbers:
            for pub in publishers:
                copies = 2 if n % 7 == 0 else 1
                for _ in range(copies):
                    await producer.send(topic, as_bytes(event_doc(pub, n)), key=pub.encode())
                    sent += 1
                    if sent % chunk == 0:
                        await producer.flush()
                        slow = slow_until is not None and not slow_until.is_set()
                        await asyncio.sleep(SLOW_PAUSE_S if slow else pause_s)
        await producer.flush()
    finally:
        await producer.stop()


async def assert_exactly_once(settings: HubSettings, publishers: list[str], per_publisher: int, logs: tuple[Path, ...] = ()) -> None:
    wanted = {(p, f"ev-{n}") for p in publishers for n in range(per_publisher)}
    seen = 0

    async def complete() -> list[dict[str, Any]] | None:
        nonlocal seen
        found = await events_of(settings, set(publishers))
        got = {(e["PublisherProgramId"], e["PublisherEventId"]) for e in found}
        seen = len(got & wanted)
        return found if got >= wanted else None

    try:
        await wait_until(complete, timeout_s=150, what="every event on hub.events", logs=logs)
    except AssertionError as exc:
        found = await events_of(settings, set(publishers))
        missing = sorted(wanted - {(e["PublisherProgramId"], e["PublisherEventId"]) for e in found})
        raise AssertionError(f"{seen} of {len(wanted)} events arrived; missing {missing[:40]}; {exc}") from None
    await asyncio.sleep(1.0)
    found = await events_of(settings, set(publishers))
    counts = Counter((e["PublisherProgramId"], e["PublisherEventId"]) for e in found)
    assert set(counts) == wanted
    assert [k for k, c in counts.items() if c != 1] == []
    assert len({e["EventId"] for e in found}) == len(found)
    for p in range(settings.events_partitions):
        records = await read_topic_partition(settings, p)
        stamps = [r.timestamp for r in records]
        assert stamps == sorted(stamps), f"CreatedUtc went backwards in partition {p}"
    rejected = [r for r in await read_topic(settings, "events.rejected", settings.rejected_partitions)]
    assert rejected == []


async def read_topic_partition(settings: HubSettings, partition: int) -> list[Any]:
    tp = TopicPartition(settings.topic("events"), partition)
    async with EventLogReader(settings.kafka_bootstrap or "") as reader:
        begin, end = await reader.bounds(tp)
        return [r async for r in reader.records(tp, begin, end)]


async def appended_so_far(settings: HubSettings) -> int:
    async with EventLogReader(settings.kafka_bootstrap or "") as reader:
        total = 0
        for p in range(settings.events_partitions):
            begin, end = await reader.bounds(TopicPartition(settings.topic("events"), p))
            total += end - begin
        return total


ChangeOfWorkers = Callable[[HubProcess, "asyncio.Task[None]"], Awaitable[HubProcess]]


async def stream_through_a_change_of_workers(
    settings: HubSettings,
    tmp_path: Path,
    change: ChangeOfWorkers,
    *,
    per_publisher: int,
    then_at: float,
    pause_s: float = 0.05,
    slow_until: asyncio.Event | None = None,
) -> None:
    """8 publishers stream into one worker; once ``then_at`` of the stream is on hub.events, ``change``
    (given the first worker and the producing task) returns the worker that finishes; every event lands once."""
    await ensure_topics(settings)
    publishers = [f"W{uuid.uuid4().hex[:6]}-{i}" for i in range(8)]
    await register(settings, *publishers)
    first = HubProcess("worker", settings, tmp_path / "worker1.log")
    second: HubProcess | None = None
    try:
        await wait_for_intake(settings, first)
        producing = asyncio.create_task(
            produce_stream(settings, publishers, range(per_publisher), pause_s=pause_s, slow_until=slow_until)
        )

        async def under_way() -> bool:
            return await appended_so_far(settings) >= int(len(publishers) * per_publisher * then_at)

        await wait_until(under_way, what=f"{then_at:.0%} of the stream on hub.events")
        second = await change(first, producing)
        await producing
        await assert_exactly_once(settings, publishers, per_publisher, (first.log_path, second.log_path))
    finally:
        first.stop()
        if second is not None:
            second.stop()


async def test_a_worker_killed_mid_stream_loses_and_duplicates_nothing(kafka_bootstrap: str, database_dsn: str, tmp_path: Path) -> None:
    async def kill_and_replace(first: HubProcess, producing: asyncio.Task[None]) -> HubProcess:
        first.kill()
        return HubProcess("worker", settings, tmp_path / "worker2.log")

    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path)
    await stream_through_a_change_of_workers(settings, tmp_path, kill_and_replace, per_publisher=500, then_at=0.25)


async def test_partitions_handed_over_mid_stream_lose_and_duplicate_nothing(kafka_bootstrap: str, database_dsn: str, tmp_path: Path) -> None:
    """A second worker joins while events stream in, then the first stops (SIGTERM): two rebalances mid-batch.

    Each rebalance must wait for the batches in flight before a partition
    changes hands, and the new owner must start from the durable mark. The
    stream goes slowly until both changes are made (a worker's start takes
    from 3 s on a quiet machine to 30 s on a busy one), then at full pace.
    """
    both_changes_made = asyncio.Event()

    async def join_then_leave(first: HubProcess, producing: asyncio.Task[None]) -> HubProcess:
        second = HubProcess("worker", settings, tmp_path / "worker2.log")

        async def second_took_partitions() -> bool:
            return second.log_path.exists() and "intake took over partition" in second.log_path.read_text()

        try:
            await wait_until(second_took_partitions, what="the second worker taking partitions", logs=(first.log_path, second.log_path))
            assert not producing.done(), "the stream ended before the handover: produce more"
        except BaseException:
            second.stop()
            raise
        first.stop()  # SIGTERM: leaves the group cleanly, after its batches in flight
        both_changes_made.set()
        return second

    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path)
    await stream_through_a_change_of_workers(
        settings, tmp_path, join_then_leave, per_publisher=1000, then_at=0.2, pause_s=0.1, slow_until=both_changes_made
    )


@pytest.mark.parametrize("crash_at", ["after_entries", "mid_appends", "after_appends"])
async def test_a_crash_at_each_step_of_a_batch_is_repaired(kafka_bootstrap: str, database_dsn: str, tmp_path: Path, crash_at: str) -> None:
    """Entries written but nothing appended; half appended; all appended but no mark: each comes out exactly once."""
    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path)
    await ensure_topics(settings)
    publishers = [f"C{uuid.uuid4().hex[:6]}-{i}" for i in range(4)]
    await register(settings, *publishers)
    per_publisher = 150
    first_part = range(50)
    # The crash comes in the first batch after the first part is on hub.events: marks, entries and a
    # tail exist from batches that completed, whatever the batching.
    crashing = start_crash_worker(settings, tmp_path / "crashing.log", crash_at, after_appends=len(publishers) * len(first_part))
    second: HubProcess | None = None
    try:
        await wait_for_intake(settings, crashing)
        await produce_stream(settings, publishers, first_part, chunk=40, pause_s=0.02)

        async def first_part_stored() -> bool:
            return len(await events_of(settings, set(publishers))) >= len(publishers) * len(first_part)

        await wait_until(first_part_stored, what="the first part on hub.events", logs=(tmp_path / "crashing.log",))
        await produce_stream(settings, publishers, range(len(first_part), per_publisher), chunk=40, pause_s=0.02)
        deadline = time.monotonic() + 90
        while crashing.poll() is None:
            assert time.monotonic() < deadline, "the crashing worker never reached its crash point:\n" + (tmp_path / "crashing.log").read_text()[-3000:]
            await asyncio.sleep(0.2)
        assert crashing.returncode == 137
        second = HubProcess("worker", settings, tmp_path / "worker2.log")
        await assert_exactly_once(settings, publishers, per_publisher, (tmp_path / "crashing.log", second.log_path))
    finally:
        if crashing.poll() is None:
            crashing.kill()
            crashing.wait(5)
        if second is not None:
            second.stop()


async def test_records_a_committed_offset_stepped_over_are_still_published(kafka_bootstrap: str, database_dsn: str, tmp_path: Path) -> None:
    """Faust can commit one record past the last it delivered (after a rebalance): nothing may be lost.

    Simulated by committing the group's offset past the first records before
    any worker runs; the worker must publish them all the same.
    """
    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path)
    await ensure_topics(settings)
    pub = f"G{uuid.uuid4().hex[:6]}"
    await register(settings, pub)
    tp = TopicPartition(settings.topic("events.incoming"), partition_for(pub, settings.events_partitions))
    await produce_stream(settings, [pub], range(6))  # ev-0 is sent twice: 7 records
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=settings.app_id, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: 4})  # steps over ev-0 (twice), ev-1 and ev-2
    finally:
        await consumer.stop()
    worker = HubProcess("worker", settings, tmp_path / "worker.log")
    try:
        await assert_exactly_once(settings, [pub], 6, (worker.log_path,))
    finally:
        worker.stop()


KCAT = shutil.which("kcat")


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed (scripts/test-deps.sh installs Debian's)")
@pytest.mark.skipif(
    os.environ.get("HUB_EMBEDDED_BROKER") == "tansu" and not os.environ.get("HUB_TEST_KAFKA_BOOTSTRAP"),
    reason="kcat (librdkafka) cannot talk to Tansu",
)
async def test_kcat_publishes_onto_incoming_and_reads_hub_events(stack: HubSettings) -> None:
    """An outside client (librdkafka's kcat): valid and invalid events in, hub.events out, as docs/events.md says."""
    settings = stack
    pub = f"K{uuid.uuid4().hex[:8]}"
    await register(settings, pub)
    bootstrap = settings.kafka_bootstrap or ""
    home = partition_for(pub, settings.events_partitions)

    def kcat(*args: str, stdin: str = "") -> str:
        assert KCAT is not None
        done = subprocess.run([KCAT, "-b", bootstrap, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    valid = json.dumps(event_doc(pub, 1))
    invalid = json.dumps(event_doc(pub, 2, EventStartUtc="soon"))
    # Java's partitioner (murmur2) puts the key on its home partition; librdkafka's default (CRC32) may not:
    # the intake forwards such a record home, so both work.
    kcat("-P", "-t", settings.topic("events.incoming"), "-k", pub, "-X", "partitioner=murmur2_random",
         "-H", "source=kcat", stdin=f"{valid}\n{invalid}\n")
    kcat("-P", "-t", settings.topic("events.incoming"), "-k", pub, stdin=json.dumps(event_doc(pub, 3)) + "\n")

    def consumed() -> list[dict[str, Any]]:
        out = kcat("-C", "-t", settings.topic("events"), "-p", str(home), "-o", "beginning", "-e", "-J", "-q")
        return [m for m in map(json.loads, out.splitlines()) if m["key"] == pub]

    async def both_landed() -> list[dict[str, Any]] | None:
        found = await asyncio.to_thread(consumed)
        return found if len(found) >= 2 else None

    records = await wait_until(both_landed, what="kcat's valid events on hub.events")
    events = [json.loads(m["payload"]) for m in records]
    assert [e["PublisherEventId"] for e in events] == ["ev-1", "ev-3"]
    assert all(e["EventId"].startswith("E:") and e["CreatedUtc"].endswith("Z") for e in events)
    assert all(m["headers"][:2] == ["hub-kind", "event"] and m["partition"] == home for m in records)

    rejected = await wait_until(lambda: rejections_of(settings, pub), what="kcat's invalid event on the rejected topic")
    headers = dict(rejected[0].headers)
    assert rejected[0].value == invalid.encode()  # byte for byte
    assert headers["hub-reject-reason"] == b"invalid_event" and headers["source"] == b"kcat"
    assert int(headers["hub-source-partition"]) == home and "hub-forwarded-from" not in headers  # murmur2: no forward
