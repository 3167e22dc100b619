"""Subscription API round trips (HTTP → API → command → worker → reply), p50/p99.

    .venv/bin/python benchmarks/bench_subscriptions.py [--bootstrap HOST:PORT | --broker kafka|tansu] [--database DSN] [--calls 1000]

Without --bootstrap it starts the embedded Apache Kafka (``--broker tansu``:
Tansu); without --database, embedded PostgreSQL in a temporary directory. It starts one
`hub worker` and one `hub api` process, registers programs and a system key,
then times, one call at a time on loopback: ``--calls`` POSTs (each a new
subscription, with an object template the worker parses) and ``--calls``
GETs of one subscription. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import HubProcess, add_stack_args, make_settings, on_stack, pct, wait_ready

from hub_stream.access.keys import create_key
from hub_stream.local.embedded import free_port
from hub_stream.platform import db
from hub_stream.platform.topics import ensure_topics

TEMPLATE = {
    "COURSE": {"action": "import", "label": "Course", "importProcessId": 12, "batchRowTemplate": '{"Id": "{{id}}", "Hours": {{json hours}}, "Who": "{{@event.PublisherParticipantId}}"}'},
    "_default": {"action": "ignore"},
}


def report(name: str, latencies: list[float], elapsed: float) -> None:
    print(
        f"  {name:<5} {len(latencies)} calls  p50 {pct(latencies, 0.50):.1f} ms  p99 {pct(latencies, 0.99):.1f} ms  "
        f"mean {statistics.mean(latencies):.1f} ms  max {max(latencies):.1f} ms  {len(latencies) / elapsed:.0f} calls/s"
    )


async def timed(calls: list[Callable[[], Awaitable[int]]], expect: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    started = time.perf_counter()
    for call in calls:
        t0 = time.perf_counter()
        status = await call()
        latencies.append((time.perf_counter() - t0) * 1000)
        if status != expect:
            raise SystemExit(f"unexpected status {status} (wanted {expect})")
    return latencies, time.perf_counter() - started


async def run(bootstrap: str, dsn: str, calls: int, tmp: Path) -> None:
    settings = make_settings(bootstrap, dsn, tmp)
    await db.migrate(dsn)
    await ensure_topics(settings)
    subscribers = [f"BS{i}" for i in range(max(1, calls // 20))]
    publishers = [f"BP{i}" for i in range(20)]
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        await pool.executemany(
            "INSERT INTO programs (program_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING",
            [(p,) for p in subscribers + publishers],
        )
        key = await create_key(pool, system=True)
    finally:
        await pool.close()
    headers = {"Authorization": "Basic " + base64.b64encode(f"{key.user_id}:{key.api_key}".encode()).decode()}
    port = free_port()
    worker = HubProcess("worker", settings, tmp / "worker.log")
    api = HubProcess("api", settings, tmp / "api.log", HUB_API_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, [worker, api], timeout_s=120)
        async with aiohttp.ClientSession() as http:

            async def post(sub: str, pub: str) -> int:
                body = {"PublisherProgramId": pub, "SyncEnabled": True, "LbApiPayloadTemplate": TEMPLATE}
                async with http.post(f"{url}/api/programs/{sub}/eventSubs", json=body, headers=headers) as r:
                    await r.read()
                    return r.status

            async def get(sub: str, pub: str) -> int:
                async with http.get(f"{url}/api/programs/{sub}/eventSubs/{pub}", headers=headers) as r:
                    await r.read()
                    return r.status

            pairs = [(s, p) for s in subscribers for p in publishers][:calls]
            for _ in range(50):  # warm up connections, caches and the JIT-less paths
                async with http.get(f"{url}/api/programs/{subscribers[0]}/eventSubs", headers=headers) as r:
                    await r.read()
            post_lat, post_s = await timed([lambda s=s, p=p: post(s, p) for s, p in pairs], 201)
            get_lat, get_s = await timed([lambda s=s, p=p: get(s, p) for s, p in pairs], 200)
        print(f"broker {bootstrap}: 1 worker, 1 API process, loopback, one call at a time")
        report("POST", post_lat, post_s)
        report("GET", get_lat, get_s)
    finally:
        api.stop()
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_args(parser)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    on_stack(args, lambda bootstrap, dsn, tmp: run(bootstrap, dsn, args.calls, tmp))


if __name__ == "__main__":
    main()
