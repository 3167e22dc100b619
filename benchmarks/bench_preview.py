"""Preview latency for 100 events (target p99 <= 200 ms), beside same-run baselines.

    .venv/bin/python benchmarks/bench_preview.py [--bootstrap HOST:PORT | --broker kafka|tansu] [--database DSN]
        [--calls 200] [--others 20000] [--spread 10]

Without --bootstrap it starts the embedded Apache Kafka (``--broker tansu``:
Tansu); without --database, embedded PostgreSQL in a temporary directory
(the default stack). It starts one `hub worker` and one `hub api` process, subscribes a
program to a publisher with a 20-field row template, appends 100 of the
publisher's events to hub.events among ``--others`` records of another
publisher in the same partition (``--spread`` of those between two of its
events, so the latest 100 span about 1,000 records), then times one call at a time on loopback:

- latest:   POST .../preview {"Latest": 100}: the stored template (asked of
            the worker), the latest 100 live events read back from hub.events;
- body:     the same with the template in the body (no worker asked);
- given:    the template and the 100 events in the body (no hub.events read);
- GET:      GET .../eventSubs/{pub}, the floor of an API call that asks a worker;
- render:   rendering the 100 events in this process, no HTTP (the engine's share);
- read new / read kept: reading the latest 100 in this process, no HTTP,
            with a new consumer per read (as the API did before) and with
            consumers kept between reads (``ConsumerPool``, as the API does now).

Prints p50/p99 and ratios to the baselines; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import HubProcess, add_stack_args, make_settings, on_stack, pct, wait_ready

from hub_stream.access.keys import create_key
from hub_stream.events.log import ConsumerPool, KafkaEventSource
from hub_stream.events.records import encode_event, partition_for
from hub_stream.local.embedded import free_port
from hub_stream.platform import db
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics
from hub_stream.sync.preview import latest_live_events, preview
from hub_stream.templating import parse_payload_template
from schemas.timefmt import utc_now_text

EVENTS = 100
TARGET_P99_MS = 200.0
FIELDS = [f"f{i}" for i in range(16)]
ROW = (
    "{"
    + "".join(f'"{name}": "{{{{{name}}}}}", ' for name in FIELDS)
    + '"email": "{{person.email}}", "who": "{{@event.PublisherParticipantId}}", "score": {{json score}}, "passed": {{json passed}}}'
)
TEMPLATE = {"COURSE": {"importProcessId": 12, "batchRowTemplate": ROW}, "_default": {"action": "ignore"}}


def body_of(publisher: str, i: int) -> dict[str, Any]:
    data: dict[str, Any] = {name: f"value {name} {i}" for name in FIELDS}
    data.update(person={"email": f"p{i}@example.org"}, score=float(i % 100), passed=i % 3 != 0)
    return {
        "PublisherProgramId": publisher,
        "PublisherEventId": f"ev-{i}",
        "EventType": "AI_COMP_SUCCESS",
        "PublisherParticipantId": f"P{i}",
        "PublisherEventCategory": {"value": "COURSE", "label": "Course"},
        "PublisherEventData": data,
        "EventStartUtc": "2026-11-20T10:00:00.000Z",
    }


async def append(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key, headers=headers) for key, value, headers in map(encode_event, events)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def timed(calls: int, call: Callable[[], Awaitable[int]]) -> list[float]:
    latencies: list[float] = []
    for _ in range(calls):
        t0 = time.perf_counter()
        status = await call()
        latencies.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise SystemExit(f"unexpected status {status}")
    return latencies


async def run(bootstrap: str, dsn: str, calls: int, others: int, spread: int, tmp: Path) -> None:
    settings = make_settings(bootstrap, dsn, tmp)
    await db.migrate(dsn)
    await ensure_topics(settings)
    sub, pub = "BENCHSUB", "BENCHPUB"
    other = next(f"OTHER{i}" for i in range(1000) if partition_for(f"OTHER{i}", settings.events_partitions) == partition_for(pub, settings.events_partitions))
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        await pool.executemany("INSERT INTO programs (program_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", [(sub,), (pub,), (other,)])
        key = await create_key(pool, system=True)
    finally:
        await pool.close()
    headers = {"Authorization": "Basic " + base64.b64encode(f"{key.user_id}:{key.api_key}".encode()).decode()}
    bodies = [body_of(pub, i) for i in range(EVENTS)]
    now = utc_now_text()
    noise = [{**body_of(other, i), "EventId": f"E:{other}-{uuid.uuid4()}", "CreatedUtc": now} for i in range(others)]
    stored = [{**b, "EventId": f"E:{pub}-{uuid.uuid4()}", "CreatedUtc": now} for b in bodies]
    records: list[dict[str, Any]] = []
    for i, event in enumerate(stored):  # the publisher's events among the last of the others' records
        records += noise[: spread] if i else noise[: len(noise) - spread * (EVENTS - 1)]
        noise = noise[spread:] if i else noise[len(noise) - spread * (EVENTS - 1) :]
        records.append(event)
    await append(bootstrap, settings.topic("events"), records)

    port = free_port()
    worker = HubProcess("worker", settings, tmp / "worker.log")
    api = HubProcess("api", settings, tmp / "api.log", HUB_API_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, [worker, api], timeout_s=120)
        async with aiohttp.ClientSession() as http:
            created = {"PublisherProgramId": pub, "SyncEnabled": True, "LbApiPayloadTemplate": TEMPLATE}
            async with http.post(f"{url}/api/programs/{sub}/eventSubs", json=created, headers=headers) as r:
                assert r.status == 201, await r.text()
            preview_url = f"{url}/api/programs/{sub}/eventSubs/{pub}/preview"

            async def post(body: dict[str, Any]) -> int:
                async with http.post(preview_url, data=json.dumps(body), headers={**headers, "Content-Type": "application/json"}) as r:
                    answer = await r.json()
                    if r.status == 200 and answer["Summary"]["Import"] != EVENTS:
                        raise SystemExit(f"expected {EVENTS} rows, got {answer['Summary']}")
                    return r.status

            async def get() -> int:
                async with http.get(f"{url}/api/programs/{sub}/eventSubs/{pub}", headers=headers) as r:
                    await r.read()
                    return r.status

            for _ in range(20):  # warm up connections and caches
                await post({"Latest": EVENTS})
                await get()
            rounds = {
                "latest": lambda: post({"Latest": EVENTS}),
                "body": lambda: post({"Latest": EVENTS, "LbApiPayloadTemplate": TEMPLATE}),
                "given": lambda: post({"Events": bodies, "LbApiPayloadTemplate": TEMPLATE}),
                "GET": get,
            }
            results: dict[str, list[float]] = {name: [] for name in rounds}
            for _ in range(calls // 10):  # interleaved, so load from other work falls on all alike
                for name, call in rounds.items():
                    results[name] += await timed(10, call)
        template = parse_payload_template(TEMPLATE)
        render: list[float] = []
        for _ in range(calls):
            t0 = time.perf_counter()
            preview(template, stored)
            render.append((time.perf_counter() - t0) * 1000)
        results["render"] = render
        results.update(await reads(settings, pub, calls))
        print(f"broker {bootstrap}: 1 worker, 1 API process, loopback, one call at a time; load average {os.getloadavg()[0]:.1f} at the end")
        print(f"{EVENTS} events of the publisher, {spread} records of another between two, {others} of the other's in all; {calls} calls each")
        for name, lat in results.items():
            print(f"  {name:<9} p50 {pct(lat, 0.5):7.1f} ms  p95 {pct(lat, 0.95):7.1f} ms  p99 {pct(lat, 0.99):7.1f} ms  max {max(lat):7.1f} ms")
        latest = pct(results["latest"], 0.99)
        verdict = "meets" if latest <= TARGET_P99_MS else "misses"
        print(f"preview of the latest {EVENTS}: p99 {latest:.1f} ms, {verdict} the target of {TARGET_P99_MS:.0f} ms")
        print(f"  p50 read new / read kept: {pct(results['read new'], 0.5) / pct(results['read kept'], 0.5):.2f}")
        for base in ("given", "GET", "render"):
            print(f"  p50 latest / {base}: {pct(results['latest'], 0.5) / pct(results[base], 0.5):.2f}")
    finally:
        api.stop()
        worker.stop()


async def reads(settings: HubSettings, publisher: str, calls: int) -> dict[str, list[float]]:
    """The latest 100 read in this process: a new consumer per read against kept ones, interleaved."""
    pool = ConsumerPool(settings.kafka_bootstrap or "")
    sources = {"read new": KafkaEventSource(settings), "read kept": KafkaEventSource(settings, consumers=pool)}

    async def nothing_before(end: int) -> int:
        return 0

    results: dict[str, list[float]] = {name: [] for name in sources}
    try:
        for _ in range(calls):
            for name, source in sources.items():
                t0 = time.perf_counter()
                events = await latest_live_events(source, publisher, EVENTS, floor=nothing_before)
                results[name].append((time.perf_counter() - t0) * 1000)
                if len(events) != EVENTS:
                    raise SystemExit(f"read {len(events)} events, not {EVENTS}")
    finally:
        await pool.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_args(parser)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--others", type=int, default=20_000, help="records of another publisher in the same partition")
    parser.add_argument("--spread", type=int, default=10, help="the others' records between two of the publisher's events")
    args = parser.parse_args()
    on_stack(args, lambda bootstrap, dsn, tmp: run(bootstrap, dsn, args.calls, args.others, args.spread, tmp))


if __name__ == "__main__":
    main()
