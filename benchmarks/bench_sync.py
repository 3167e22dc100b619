"""processEvents end to end: rows/s of a big sync, and cost against the size of the log.

    .venv/bin/python benchmarks/bench_sync.py [--bootstrap HOST:PORT | --broker kafka|tansu] [--database DSN]
        [--events 100000] [--small 10000] [--large 1000000] [--new 1000] [--template flat|each]

Without --bootstrap it starts the embedded Apache Kafka (``--broker tansu``:
Tansu); without --database, embedded PostgreSQL in a temporary directory. It starts one
`hub worker` and one `hub api` process and serves the LearningBuilder stand-in
in this process; events are appended to hub.events in their canonical record
format with a plain producer (record timestamp = CreatedUtc), as the intake does.

1. Throughput: ``--events`` events of one publisher, one subscription, one
   POST /api/processEvents into the stand-in (batches of 5,000 rows). Printed
   beside two baselines measured in this run on the same records, in this
   process: hand-written Python doing decode + build row + JSON dump + JSON
   check, and our engine's row path (decode + render_row).
2. Cost follows what is delivered: ``--new`` new events synced when the
   publisher's partition also holds ``--small`` versus ``--large`` records
   of other publishers (history from the past month), for three cursors: a
   subscription synced before (incremental), a new subscription (from the
   publisher's first event) and PATCH LastSyncUtc to just before the new
   events (replay). Medians of rounds alternating between the two
   partitions (drift hits both alike), and a full scan of the large
   partition for scale.

``--template each`` syncs with a row template that builds an array with
``#each`` (``@index``, ``@last``, ``json``) from three modules per event
(every event carries them, whichever template runs).

Prints figures; asserts nothing but the rows' arrival.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import HubProcess, add_stack_args, embedded_stack, make_settings, wait_ready

from hub_stream.access.keys import create_key
from hub_stream.events.log import KafkaEventSource
from hub_stream.events.records import KIND_EVENT, KIND_HEADER, partition_for
from hub_stream.local.embedded import free_port
from hub_stream.local.lb_standin import FakeLB, start_fake_lb
from hub_stream.platform import db
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import all_topics, ensure_topics
from hub_stream.templating import parse_payload_template
from schemas.timefmt import format_utc, from_millis

LB_KEY = "bench-lb-key"
PARTITIONS = 4
RUNS = 11
DAY_MS = 86_400_000
ROW_TEMPLATE = (
    '{"Email": "{{email}}", "Participant": "{{@event.PublisherParticipantId}}", "Course": "{{course.code}}",'
    ' "Title": "{{course.title}}", "Hours": {{json hours}}, "Score": {{json score}}, "Passed": {{json passed}},'
    ' "Completed": "{{@event.EventStartUtc}}", "Provider": "{{provider}}", "Event": "{{@event.EventId}}"}'
)
# --template each: a row with an array built by #each (@index, @last, json), from three modules per event
EACH_ROW_TEMPLATE = (
    '{"Email": "{{email}}", "Participant": "{{@event.PublisherParticipantId}}", "Modules": [{{#each modules}}'
    '{"Index": {{@index}}, "Code": "{{code}}", "Score": {{json score}}}{{#unless @last}},{{/unless}}{{/each}}],'
    ' "Passed": {{json passed}}, "Event": "{{@event.EventId}}"}'
)
ROW_TEMPLATES = {"flat": ROW_TEMPLATE, "each": EACH_ROW_TEMPLATE}
TEMPLATE = {"COURSE": {"importProcessId": 12, "batchRowTemplate": ROW_TEMPLATE}, "_default": {"action": "ignore"}}


def event(publisher: str, n: int, created_ms: int) -> dict[str, Any]:
    """A realistic event: about 600 bytes of JSON."""
    return {
        "EventId": f"E:{publisher}-{uuid.uuid4()}",
        "PublisherProgramId": publisher,
        "PublisherSystemId": "LMS-PROD",
        "PublisherEventId": f"completion-{n}",
        "EventType": "AI_COMP_SUCCESS",
        "PublisherParticipantId": f"participant-{n}@example.org",
        "PublisherEventCategory": {"value": "COURSE", "label": "Course completion"},
        "PublisherEventData": {
            "email": f"participant-{n}@example.org",
            "course": {"code": f"CRS-{n % 400:04d}", "title": f"Safety \"basics\" part {n % 7}"},
            "hours": 1.5 + n % 10,
            "score": n % 101,
            "passed": n % 5 != 0,
            "provider": "Example Training Ltd",
            "notes": "x" * 60,
            "modules": [{"code": f"M{k}", "score": (n + k) % 101} for k in range(3)],
        },
        "EventStartUtc": "2026-11-20T10:00:00.000Z",
        "EventEndUtc": "2026-11-20T11:30:00.000Z",
        "CreatedUtc": format_utc(from_millis(created_ms)),
    }


def hand_written_row(value: bytes) -> str:
    """The baseline: decode, build the row by hand, dump, check it is one JSON object, compact."""
    e = json.loads(value)
    d = e["PublisherEventData"]
    if TEMPLATE["COURSE"]["batchRowTemplate"] == EACH_ROW_TEMPLATE:
        modules = [{"Index": i, "Code": m["code"], "Score": m["score"]} for i, m in enumerate(d["modules"])]
        row = {"Email": d["email"], "Participant": e["PublisherParticipantId"], "Modules": modules, "Passed": d["passed"], "Event": e["EventId"]}
        checked = json.loads(json.dumps(row))
        assert isinstance(checked, dict)
        return json.dumps(checked, separators=(",", ":"), ensure_ascii=False)
    row = {
        "Email": d["email"], "Participant": e["PublisherParticipantId"], "Course": d["course"]["code"],
        "Title": d["course"]["title"], "Hours": d["hours"], "Score": d["score"], "Passed": d["passed"],
        "Completed": e["EventStartUtc"], "Provider": d["provider"], "Event": e["EventId"],
    }  # fmt: skip
    text = json.dumps(row)
    checked = json.loads(text)
    assert isinstance(checked, dict)
    return json.dumps(checked, separators=(",", ":"), ensure_ascii=False)


def publisher_in(partition: int, prefix: str) -> str:
    return next(f"{prefix}{i}" for i in range(100_000) if partition_for(f"{prefix}{i}", PARTITIONS) == partition)


async def produce(bootstrap: str, topic: str, partition: int, records: list[tuple[bytes, bytes, int]]) -> None:
    """Append (key, value, timestamp ms) records to one partition, fast: big batches, no per-record send."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=1_000_000, linger_ms=20)
    await producer.start()
    headers = [(KIND_HEADER, KIND_EVENT)]
    try:
        pending = []
        batch = producer.create_batch()
        for key, value, ts in records:
            if batch.append(key=key, value=value, timestamp=ts, headers=headers) is None:
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=ts, headers=headers)
            if len(pending) >= 32:
                await asyncio.gather(*pending)
                pending.clear()
        pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def read_values(bootstrap: str, tp: TopicPartition, start: int, end: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=16 << 20)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        values: list[bytes] = []
        while len(values) < end - start:
            batches = await consumer.getmany(tp, timeout_ms=500)
            values.extend(r.value for r in batches.get(tp, []) if r.offset < end)
        return values
    finally:
        await consumer.stop()


class Hub:
    """The HTTP side of the benchmark: programs, subscriptions, processEvents."""

    def __init__(self, url: str, headers: dict[str, str], pool: asyncpg.Pool, lb: FakeLB) -> None:
        self.url, self.headers, self.pool, self.lb = url, headers, pool, lb
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900))

    async def register(self, program_id: str, *, subscriber: bool) -> None:
        await self.pool.execute(
            "INSERT INTO programs (program_id, name, lb_base_url, lb_api_key) VALUES ($1, $1, $2, $3)",
            program_id,
            self.lb.base_url if subscriber else None,
            LB_KEY if subscriber else None,
        )

    async def subscribe(self, sub: str, pub: str) -> None:
        await self.register(sub, subscriber=True)
        body = {"PublisherProgramId": pub, "SyncEnabled": True, "LbApiPayloadTemplate": TEMPLATE}
        async with self.http.post(f"{self.url}/api/programs/{sub}/eventSubs", json=body, headers=self.headers) as r:
            assert r.status == 201, await r.text()

    async def patch(self, sub: str, pub: str, last_sync_utc: str) -> None:
        body = {"LastSyncUtc": last_sync_utc}
        async with self.http.patch(f"{self.url}/api/programs/{sub}/eventSubs/{pub}", json=body, headers=self.headers) as r:
            assert r.status == 204, await r.text()

    async def sync(self, sub: str, expect_rows: int) -> float:
        """Seconds for one processEvents of ``sub``, which must import ``expect_rows`` rows."""
        started = time.perf_counter()
        async with self.http.post(f"{self.url}/api/processEvents?programId={sub}", headers=self.headers) as r:
            body = await r.json()
        elapsed = time.perf_counter() - started
        imported = sum(s["Imported"] for s in body.get("Subscriptions", []))
        if r.status != 200 or imported != expect_rows:
            raise SystemExit(f"processEvents of {sub}: {r.status}, {imported} rows imported, wanted {expect_rows}: {body}")
        return elapsed


async def throughput(hub: Hub, settings: HubSettings, events: int) -> None:
    pub = publisher_in(0, "TPUB")
    await hub.register(pub, subscriber=False)
    await hub.subscribe("TSUB", pub)
    now = int(time.time() * 1000)
    records = [(pub.encode(), json.dumps(event(pub, n, now), separators=(",", ":")).encode(), now) for n in range(events)]
    await produce(settings.kafka_bootstrap or "", settings.topic("events"), 0, records)
    hub.lb.reset()
    elapsed = await hub.sync("TSUB", events)
    assert sum(len(b.lines) for b in hub.lb.accepted) == events
    values = await read_values(settings.kafka_bootstrap or "", TopicPartition(settings.topic("events"), 0), 0, events)
    payload = parse_payload_template(TEMPLATE)
    t0 = time.perf_counter()
    for v in values:
        hand_written_row(v)
    hand = events / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for v in values:
        payload.render_row(json.loads(v))
    engine = events / (time.perf_counter() - t0)
    rate = events / elapsed
    print(f"1. {events:,} events of one subscription, one processEvents into the stand-in ({len(hub.lb.accepted)} batches)")
    print(f"   end to end:                                   {rate:>9,.0f} rows/s  ({elapsed:.2f} s; target >= 12,000)")
    print(f"   baseline, hand-written decode+row+dump+check: {hand:>9,.0f} rows/s  (end to end = {rate / hand:.2f} x)")
    print(f"   baseline, decode + our render_row:            {engine:>9,.0f} rows/s  (end to end = {rate / engine:.2f} x)")


KINDS = {
    "incremental": "synced before (incremental)",
    "new": "new subscription (first event)",
    "replay": "PATCH LastSyncUtc (replay)",
}


async def append_history(settings: HubSettings, partition: int, size: int) -> None:
    """``size`` records of 500 other publishers, spread over the past month, in one partition."""
    now = int(time.time() * 1000)
    step = 29 * DAY_MS // size
    start = now - 30 * DAY_MS
    others = [
        (f"OTHER{i % 500}".encode(), json.dumps(event(f"OTHER{i % 500}", i, start + i * step), separators=(",", ":")).encode(), start + i * step)
        for i in range(size)
    ]  # fmt: skip
    t0 = time.perf_counter()
    await produce(settings.kafka_bootstrap or "", settings.topic("events"), partition, others)
    print(f"   ({size:,} records of other publishers appended in {time.perf_counter() - t0:.1f} s)")


async def one_round(hub: Hub, settings: HubSettings, partition: int, tag: str, new: int) -> tuple[str, dict[str, float]]:
    """A fresh publisher in ``partition`` and ``new`` events of it, synced three ways; seconds per way."""
    pub = publisher_in(partition, f"{tag}P")
    await hub.register(pub, subscriber=False)
    inc, fresh, rep = (f"{kind}{tag}" for kind in ("INC", "NEW", "REP"))
    for sub in (inc, rep):
        await hub.subscribe(sub, pub)
        await hub.sync(sub, 0)  # the cursor now stands at the log end
    await asyncio.sleep(0.01)
    before = format_utc(from_millis(int(time.time() * 1000) - 1))
    stamp = int(time.time() * 1000)
    records = [(pub.encode(), json.dumps(event(pub, n, stamp), separators=(",", ":")).encode(), stamp) for n in range(new)]
    await produce(settings.kafka_bootstrap or "", settings.topic("events"), partition, records)
    times = {"incremental": await hub.sync(inc, new)}
    await hub.subscribe(fresh, pub)
    times["new"] = await hub.sync(fresh, new)
    await hub.sync(rep, new)
    await hub.patch(rep, pub, before)
    times["replay"] = await hub.sync(rep, new)
    return pub, times


async def log_size(hub: Hub, settings: HubSettings, counts: tuple[int, int], new: int) -> None:
    """Both partitions filled first, then rounds alternating between them, so drift hits both alike."""
    partitions = (1, 2)
    for size, partition in zip(counts, partitions, strict=True):
        await append_history(settings, partition, size)
    times: dict[int, dict[str, list[float]]] = {size: {k: [] for k in KINDS} for size in counts}
    last_pub = ""
    for run in range(RUNS):
        for size, partition in zip(counts, partitions, strict=True):
            last_pub, measured = await one_round(hub, settings, partition, f"L{size}R{run}", new)
            for kind, seconds in measured.items():
                times[size][kind].append(seconds)
    source = KafkaEventSource(settings)
    t0 = time.perf_counter()
    end = await source.log_end(last_pub)
    kept = [r async for r in source.read(last_pub, 0, end)]
    scan_s = time.perf_counter() - t0
    assert len(kept) == new
    small, large = counts
    print(f"2. {new:,} new events synced; the publisher's partition also holds {small:,} vs {large:,} others' records")
    print(f"   {'cursor':<34} {f'{small:,} others':>12} {f'{large:,} others':>14} {'ratio':>7}")
    for kind, label in KINDS.items():
        a, b = statistics.median(times[small][kind]), statistics.median(times[large][kind])
        print(f"   {label:<34} {a * 1000:>9.0f} ms {b * 1000:>11.0f} ms {b / a:>7.2f}")
    print(f"   (medians of {RUNS} alternating rounds; target: within 20%."
          f" A full scan of the {large:,}-record partition alone: {scan_s:.2f} s)")


async def delete_topics(settings: HubSettings) -> None:
    """A broker we were pointed at keeps nothing of the benchmark: its topics hold a gigabyte."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([spec.name for spec in all_topics(settings)])
    finally:
        await admin.close()


async def run(args: argparse.Namespace, bootstrap: str, dsn: str, tmp: Path) -> None:
    settings = make_settings(
        bootstrap, dsn, tmp, events_partitions=PARTITIONS, subscriber_partitions=PARTITIONS, sync_timeout_s=900.0, log_level="INFO"
    )
    await db.migrate(dsn)
    await ensure_topics(settings)
    lb, lb_runner = await start_fake_lb(api_keys={LB_KEY})
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    assert pool is not None
    key = await create_key(pool, system=True)
    headers = {"Authorization": "Basic " + base64.b64encode(f"{key.user_id}:{key.api_key}".encode()).decode()}
    port = free_port()
    worker = HubProcess("worker", settings, tmp / "worker.log")
    api = HubProcess("api", settings, tmp / "api.log", HUB_API_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    hub = Hub(url, headers, pool, lb)
    try:
        await wait_ready(url, [worker, api], timeout_s=120)
        print(f"broker {bootstrap}: 1 worker, 1 API process, the LB stand-in in this process; 2 cores shared")
        if args.events:
            await throughput(hub, settings, args.events)
        if args.new:
            await log_size(hub, settings, (args.small, args.large), args.new)
    finally:
        await hub.http.close()
        api.stop()
        worker.stop()
        if args.logs:
            shutil.copy(tmp / "worker.log", args.logs)
        if args.bootstrap:
            await delete_topics(settings)
        await pool.close()
        await lb_runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_args(parser)
    parser.add_argument("--events", type=int, default=100_000, help="benchmark 1 (0: skip)")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=1_000, help="benchmark 2 (0: skip)")
    parser.add_argument("--logs", help="copy the worker's log (per-phase times of every sync) to this file")
    parser.add_argument("--template", choices=sorted(ROW_TEMPLATES), default="flat", help="the row template (each: #each over an array)")
    args = parser.parse_args()
    TEMPLATE["COURSE"]["batchRowTemplate"] = ROW_TEMPLATES[args.template]
    with embedded_stack(args) as stack:
        asyncio.run(run(args, stack.bootstrap, stack.dsn, stack.tmp))


if __name__ == "__main__":
    main()
