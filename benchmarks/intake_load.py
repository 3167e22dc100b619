"""What bench_intake.py and its transactional comparison share: the events, the producer, the waits, the CPU meter."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition
from support import HubProcess

from hub_stream.access.keys import create_key
from hub_stream.platform import db
from hub_stream.platform.offsets import log_ends
from hub_stream.platform.settings import HubSettings

PUBLISHERS = [f"BENCH{i}" for i in range(16)]


def event(pub: str, n: int) -> dict[str, Any]:
    """About 450 bytes of JSON, like a typical learning event."""
    return {
        "PublisherProgramId": pub,
        "PublisherSystemId": "LMS",
        "PublisherEventId": f"ev-{n}",
        "EventType": "COURSE_COMPLETED",
        "PublisherParticipantId": f"person{n}@example.org",
        "PublisherEventCategory": {"value": "COURSE", "label": "Course"},
        "PublisherEventData": {"course": f"C-{n % 97}", "hours": 1.5, "score": n % 100, "email": f"person{n}@example.org"},
        "EventStartUtc": "2026-11-20T10:00:00Z",
        "EventEndUtc": "2026-11-20T11:30:00Z",
    }


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc; None elsewhere or once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used by named processes during one phase, per unit of work.

    ``client`` is this process (the load generator). Printed as milliseconds
    per request (or event) and the rate that cost allows on this machine's
    CPUs if nothing else ran: a ceiling no tuning of latency gets past.
    """

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self.pids["client"] = os.getpid()
        self.restart()

    def restart(self) -> None:
        self.started = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def report(self, units: int, unit: str) -> str:
        used = {}
        for name, pid in self.pids.items():
            now, then = cpu_seconds(pid), self.started[name]
            if now is not None and then is not None:
                used[name] = now - then
        if not used:
            return "  (no CPU figures: /proc is not available)"
        per = {name: 1000 * sec / units for name, sec in used.items()}
        total = sum(per.values())
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in per.items())
        return (
            f"    CPU per {unit}: {parts} = {total:.2f} ms; at that cost {os.cpu_count()} CPUs"
            f" allow at most {1000 * (os.cpu_count() or 1) / total:,.0f} {unit}s/s"
        )


async def total_end(settings: HubSettings, topic: str, partitions: int) -> int:
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    return sum((await log_ends(settings.kafka_bootstrap or "", tps)).values())


async def wait_for_total(settings: HubSettings, topic: str, partitions: int, want: int, timeout_s: float, procs: list[HubProcess]) -> float:
    """Seconds until the topic holds ``want`` records (polled every 50 ms)."""
    started = time.perf_counter()
    while True:
        try:
            if await total_end(settings, topic, partitions) >= want:
                return time.perf_counter() - started
        except TimeoutError:  # a busy machine: ask again
            pass
        for p in procs:
            if p.process.poll() is not None:
                raise SystemExit(f"{p.command} exited:\n{p.log_tail()}")
        if time.perf_counter() - started > timeout_s:
            raise SystemExit(f"{topic} did not reach {want} records in {timeout_s:.0f} s")
        await asyncio.sleep(0.05)


async def produce(settings: HubSettings, topic: str, docs: list[dict[str, Any]]) -> float:
    """Seconds to produce every doc (keyed by publisher) with a plain producer, flushed."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        started = time.perf_counter()
        for i, doc in enumerate(docs):
            await producer.send(topic, json.dumps(doc).encode(), key=doc["PublisherProgramId"].encode())
            if i % 5000 == 4999:
                await producer.flush()
        await producer.flush()
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def register_publishers(dsn: str) -> tuple[str, str]:
    """Migrate the database and register ``PUBLISHERS``; (user id, secret) of a new key that may write for them."""
    await db.migrate(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        await pool.executemany("INSERT INTO programs (program_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", [(p,) for p in PUBLISHERS])
        key = await create_key(pool, programs=dict.fromkeys(PUBLISHERS, "write"))
    finally:
        await pool.close()
    return key.user_id, key.api_key
