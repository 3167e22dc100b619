"""Request/reply round trip (API side → worker → reply), p50/p99, on a broker.

    .venv/bin/python benchmarks/bench_ping.py [--bootstrap HOST:PORT | --broker kafka|tansu] [--calls 1000] [--concurrency 1]

Without --bootstrap it starts the embedded Apache Kafka (``--broker tansu``:
Tansu). It starts one
`hub worker` process, waits for it to answer, then times ``--calls`` pings
through hub_stream.platform.request_reply (the same path the API uses). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import HubProcess, add_stack_args, embedded_stack, make_settings

from hub_stream.platform.request_reply import RpcClient, RpcTimeout
from hub_stream.platform.topics import ensure_topics


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(bootstrap: str, calls: int, concurrency: int, tmp: Path) -> None:
    settings = make_settings(bootstrap, "postgresql://unused/unused", tmp)
    await ensure_topics(settings)
    worker = HubProcess("worker", settings, tmp / "worker.log")
    client = RpcClient(settings)
    await client.start()
    topic = settings.topic("subscriptions.commands")
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                await client.request(topic, "warmup", "ping", timeout=3)
                break
            except RpcTimeout:
                if time.monotonic() > deadline:
                    raise SystemExit(f"worker never answered:\n{worker.log_tail()}")
        for _ in range(50):
            await client.request(topic, uuid.uuid4().hex, "ping")
        latencies: list[float] = []

        async def one_by_one(n: int) -> None:
            for _ in range(n):
                started = time.perf_counter()
                await client.request(topic, uuid.uuid4().hex, "ping")
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(one_by_one(calls // concurrency) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        print(f"broker {bootstrap}: {len(latencies)} pings, concurrency {concurrency}")
        print(f"  p50 {pct(latencies, 0.50):.1f} ms  p99 {pct(latencies, 0.99):.1f} ms  "
              f"mean {statistics.mean(latencies):.1f} ms  max {max(latencies):.1f} ms  "
              f"{len(latencies) / elapsed:.0f} calls/s")
    finally:
        await client.stop()
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_stack_args(parser, database=False)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    with embedded_stack(args, database=False) as stack:
        asyncio.run(run(stack.bootstrap, args.calls, args.concurrency, stack.tmp))


if __name__ == "__main__":
    main()
