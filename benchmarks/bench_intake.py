"""Event intake throughput: from the stream, and over HTTP, on the embedded stack.

    .venv/bin/python benchmarks/bench_intake.py [--bootstrap HOST:PORT | --broker kafka|tansu] [--database DSN]
        [--events 100000] [--requests 20000] [--concurrency 32] [--skip-baseline]

Without --bootstrap it starts the embedded Apache Kafka (``--broker tansu``:
Tansu); without --database, embedded PostgreSQL in a temporary directory (--broker-pid: an
external broker's process, so its CPU is counted). Then:

1. baseline, plain aiokafka: produce ``--events`` records onto a topic, and
   read them back;
2. baseline, a trivial Faust agent (the hub's own app settings) that moves
   each record of a topic to another, one at a time;
3. stream intake: one `hub worker`; ``--events`` valid events produced onto
   the incoming topic with a plain producer; timed from the first send until
   hub.events holds them all;
4. HTTP: one `hub api` process and the same worker; ``--requests`` POST
   /api/events at ``--concurrency``, each a new event; p50/p99 latency;
5. baseline, the floor of that design here: an "echo" API process (aiohttp,
   no auth, no validation) that puts each POST's body on a topic and awaits
   a reply from an "echo" worker process (plain aiokafka: read a batch,
   produce one reply per record, await the acks), the same requests at the
   same concurrency. What any API → broker → worker → broker → API path
   costs on this machine before the hub does any work of its own.

``--transactions ROUNDS`` instead measures only the intake's way of making
a batch durable: today's crash-order protocol (`hub worker`) against one
Kafka transaction per batch (``intake_transactional.py``, the same worker
with that intake), ``--events`` from the stream into a new worker on new
topics each time, ROUNDS of each, alternating; their medians and ratio.

Prints figures; asserts nothing. `--run-trivial-agent` is the worker of (2),
`--run-echo-worker` and `--run-echo-api PORT` the processes of (5),
`--run-transactional-worker` the transactional variant.
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
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import intake_transactional
from intake_load import (
    PUBLISHERS,
    CpuMeter,
    event,
    produce,
    register_publishers,
    total_end,
    wait_for_total,
)
from support import (
    HubProcess,
    add_stack_args,
    embedded_stack,
    make_settings,
    pct,
    settings_env,
    wait_ready,
)

from hub_stream.local.embedded import free_port
from hub_stream.platform import db
from hub_stream.platform.request_reply import (
    H_CORRELATION,
    H_REPLY_PARTITION,
    H_REPLY_TO,
)
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics


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
    # Its own consumer group: the hub worker's comes later.
    return _start_bench_process(settings, tmp, "trivial", "--run-trivial-agent", HUB_APP_ID=_trivial_app_id(settings))


ECHO_REPLY = b'{"status": 201, "body": {"EventId": "E:echo"}}'


async def run_echo_worker() -> None:
    """Baseline (5), the worker: each request record gets one reply record; a batch at a time."""
    settings = HubSettings()
    requests, replies = settings.topic("bench.echo.requests"), settings.topic("bench.echo.replies")
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, fetch_max_wait_ms=settings.fetch_max_wait_ms)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    consumer.assign([TopicPartition(requests, p) for p in range(settings.events_partitions)])
    await consumer.seek_to_beginning()
    while True:
        batches = await consumer.getmany(timeout_ms=1000)
        sent = []
        for records in batches.values():
            for r in records:
                h = dict(r.headers)
                sent.append(await producer.send(replies, ECHO_REPLY, headers=list(r.headers), partition=int(h[H_REPLY_PARTITION])))
        if sent:
            await asyncio.gather(*sent)


async def run_echo_api(port: int) -> None:
    """Baseline (5), the API: POST /api/events puts the body on a topic and answers the worker's reply."""
    from aiohttp import web

    settings = HubSettings()
    requests, replies = settings.topic("bench.echo.requests"), settings.topic("bench.echo.replies")
    client_id = uuid.uuid4().hex.encode()
    pending: dict[bytes, asyncio.Future[bytes]] = {}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, fetch_max_wait_ms=settings.fetch_max_wait_ms)
    await producer.start()
    await consumer.start()
    tp = TopicPartition(replies, 0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    await consumer.position(tp)

    async def read_replies() -> None:
        while True:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    h = dict(r.headers)
                    fut = pending.pop(h.get(H_CORRELATION, b""), None) if h.get(H_REPLY_TO) == client_id else None
                    if fut is not None and not fut.done():
                        fut.set_result(r.value)

    async def post(request: web.Request) -> web.Response:
        doc = json.loads(await request.read())
        correlation = uuid.uuid4().hex.encode()
        fut = pending[correlation] = asyncio.get_running_loop().create_future()
        headers = [(H_REPLY_TO, client_id), (H_REPLY_PARTITION, b"0"), (H_CORRELATION, correlation)]
        await producer.send_and_wait(requests, json.dumps(doc).encode(), key=doc["PublisherProgramId"].encode(), headers=headers)
        reply = json.loads(await asyncio.wait_for(fut, 15))
        return web.json_response(reply["body"], status=reply["status"])

    async def readyz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    reader = asyncio.create_task(read_replies())
    app = web.Application()
    app.router.add_post("/api/events", post)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.Event().wait()
    finally:
        reader.cancel()


async def echo_floor(
    settings: HubSettings, headers: dict[str, str], requests: int, concurrency: int, tmp: Path, broker_pid: int | None
) -> tuple[float, list[float], str]:
    """Baseline (5): the same POSTs through the echo API and echo worker."""
    await create_topics(settings, settings.topic("bench.echo.requests"))
    await create_topics(settings, settings.topic("bench.echo.replies"), partitions=1)
    port = free_port()
    procs = [_start_bench_process(settings, tmp, "echo-worker", "--run-echo-worker"), _start_bench_process(settings, tmp, "echo-api", "--run-echo-api", str(port))]
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, timeout_s=30)
        meter = CpuMeter({"echo API": procs[1].pid, "echo worker": procs[0].pid, "broker": broker_pid})
        elapsed, latencies = await http_intake(url, headers, requests, concurrency, meter)
        return elapsed, latencies, meter.report(requests, "request")
    finally:
        for p in procs:
            p.terminate()
            await asyncio.to_thread(p.wait, 15)


def _start_bench_process(settings: HubSettings, tmp: Path, name: str, *args: str, **env_overrides: str) -> subprocess.Popen[bytes]:
    """This script again, in ``--run-...`` mode, with the hub's settings in its environment; its log in ``tmp``."""
    env = settings_env(settings)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    env.update(env_overrides)
    with open(tmp / f"{name}.log", "ab") as log:
        return subprocess.Popen([sys.executable, __file__, *args], env=env, stdout=log, stderr=log, start_new_session=True)


def run_trivial_agent() -> None:
    """A Faust worker with one agent that moves each record to another topic (baseline 2)."""
    import faust

    from hub_stream.platform.faust_app import create_faust_app, raw_topic

    settings = HubSettings()
    app = create_faust_app(settings)
    src = raw_topic(app, settings.topic("bench.trivial.in"), settings.events_partitions)
    dst = raw_topic(app, settings.topic("bench.trivial.out"), settings.events_partitions)

    @app.agent(src, name="trivial")
    async def move(stream: Any) -> None:
        async for record in stream.events():
            await dst.send(key=record.key, value=record.value, partition=record.message.partition)

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


async def http_intake(
    url: str, headers: dict[str, str], requests: int, concurrency: int, meter: CpuMeter | None = None
) -> tuple[float, list[float]]:
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
        if meter:
            meter.restart()  # the warm-up does not count
        started = time.perf_counter()
        await asyncio.gather(*(client(20_000_000) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if set(statuses) != {201}:
        raise SystemExit(f"unexpected statuses {statuses}")
    return elapsed, latencies


async def run(bootstrap: str, dsn: str, args: argparse.Namespace, tmp: Path, broker_pid: int | None) -> None:
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

    user_id, secret = await register_publishers(dsn)
    headers = {"Authorization": "Basic " + base64.b64encode(f"{user_id}:{secret}".encode()).decode()}

    port = free_port()
    worker = HubProcess("worker", settings, tmp / "worker.log")
    api = HubProcess("api", settings, tmp / "api.log", HUB_API_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, [worker, api], timeout_s=120)
        hub_pids = {"API": api.process.pid, "worker": worker.process.pid, "broker": broker_pid}
        meter = CpuMeter(hub_pids)
        rate = await stream_intake(settings, args.events, worker)
        print(meter.report(args.events, "event"))
        meter = CpuMeter(hub_pids)
        elapsed, latencies = await http_intake(url, headers, args.requests, args.concurrency, meter)
        print(
            f"  HTTP POST          {args.requests} requests, concurrency {args.concurrency}: {elapsed:6.2f} s  "
            f"{args.requests / elapsed:9,.0f} requests/s  p50 {pct(latencies, 0.5):.1f} ms  p99 {pct(latencies, 0.99):.1f} ms  "
            f"mean {statistics.mean(latencies):.1f} ms  max {max(latencies):.1f} ms"
        )
        print(meter.report(args.requests, "request"))
        if not args.skip_echo:
            echo_s, echo_latencies, echo_cpu = await echo_floor(settings, headers, args.requests, args.concurrency, tmp, broker_pid)
            print(
                f"  echo API + worker  {args.requests} requests, concurrency {args.concurrency}: {echo_s:6.2f} s  "
                f"{args.requests / echo_s:9,.0f} requests/s  p50 {pct(echo_latencies, 0.5):.1f} ms  p99 {pct(echo_latencies, 0.99):.1f} ms"
                "  (the floor of API -> broker -> worker -> broker -> API here)"
            )
            print(echo_cpu)
            print(f"  HTTP POST / echo floor: {(args.requests / elapsed) / (args.requests / echo_s):.2f}")
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
    add_stack_args(parser)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--broker-pid", type=int, help="with --bootstrap: the broker's process, to count its CPU too")
    parser.add_argument("--skip-echo", action="store_true", help="leave out baseline (5), the echo floor")
    parser.add_argument("--run-trivial-agent", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-echo-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-echo-api", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--transactions", type=int, default=0, metavar="ROUNDS",
                        help="only compare the intake's crash-order protocol with Kafka transactions, ROUNDS of each")
    parser.add_argument("--run-transactional-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_transactional_worker:
        intake_transactional.run_worker()
        return
    if args.run_trivial_agent:
        run_trivial_agent()
        return
    if args.run_echo_worker:
        asyncio.run(run_echo_worker())
        return
    if args.run_echo_api:
        asyncio.run(run_echo_api(args.run_echo_api))
        return
    with embedded_stack(args) as stack:
        measure = intake_transactional.compare if args.transactions else run
        asyncio.run(measure(stack.bootstrap, stack.dsn, args, stack.tmp, stack.broker_pid))


if __name__ == "__main__":
    main()
