"""One broker against a three-broker cluster, in one run: intake, sync, and failover time.

    .venv/bin/python benchmarks/bench_cluster.py [--events 2000] [--sync-events 20000] [--kills 2]

Starts embedded PostgreSQL, then in turn one Apache Kafka node (RF 1) and a
three-node loopback cluster (hub_stream/local/kafka_cluster.py; RF 3, min
ISR 2), each with one `hub worker` and one `hub api` process and the
LearningBuilder stand-in in this process:

1. Intake: four HTTP publishers post ``--events`` events in all (8 calls in
   flight each); events/s from the first call to the last answer.
2. Sync: ``--sync-events`` events of one publisher appended to hub.events,
   one subscription, one POST /api/processEvents (batches of 5,000 rows);
   rows/s as LB receives them.
Then the ratio three brokers / one broker for both.
3. Failover (cluster only, ``--kills`` times): SIGKILL the leader of a
   hub.events partition, then time to the first successful write on every
   partition it led, (a) with a plain idempotent acks=all producer that was
   writing before the kill and (b) as an HTTP publisher sees it (a POST for
   a publisher on that partition answered 201); the node is restarted and
   back in sync before the next round.

Prints figures; asserts nothing but the arrival of what was sent. On a
shared 2-core machine the three JVMs compete with the hub for CPU: the
ratio says what replication costs here, not what a real cluster gains.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "integration" / "cluster")]

import asyncpg
from cluster_support import (
    Hub,
    Seen,
    append_events,
    event_body,
    hub_on_cluster,
    imported,
    program_ids,
    register,
    subscribe,
    topic_names,
)
from support import make_settings

from hub_stream.events.records import partition_for
from hub_stream.local.embedded import start_postgres
from hub_stream.local.kafka import start_kafka
from hub_stream.local.kafka_cluster import KafkaCluster, start_cluster
from hub_stream.platform import db

PARTITIONS = 4


def say(line: str) -> None:
    print(line, flush=True)


async def intake(hub: Hub, pool: asyncpg.Pool, events: int) -> float:
    publishers = program_ids("BP", 4)
    await register(pool, hub.lb, [], publishers)
    for pub in publishers:  # warm: the first call of each publisher waits for nothing later
        await hub.publish(pub, range(1), Seen(), {})
    seen, accepted = Seen(), dict[tuple[str, int], str]()
    started = time.monotonic()
    per_pub = events // len(publishers)
    await asyncio.gather(*(hub.publish_lanes(pub, range(1, per_pub + 1), seen, accepted) for pub in publishers))
    took = time.monotonic() - started
    say(f"   intake: {len(accepted)} events in {took:.1f} s = {len(accepted) / took:,.0f} events/s ({seen})")
    return len(accepted) / took


async def sync(hub: Hub, pool: asyncpg.Pool, events: int) -> float:
    [pub], [sub] = program_ids("SP", 1), program_ids("SS", 1)
    await register(pool, hub.lb, [sub], [pub])
    await subscribe(hub, sub, pub)
    await append_events(hub.settings, pub, range(1, events + 1))
    started = time.monotonic()
    answers = await hub.sync(sub)
    took = time.monotonic() - started
    assert imported(answers) == events, answers
    say(f"   sync: {events} rows in {took:.1f} s = {events / took:,.0f} rows/s")
    return events / took


async def one_kill(hub: Hub, cluster: KafkaCluster, publishers: dict[int, str], round_no: int) -> tuple[float, float]:
    """Kill the leader of hub.events[0]: seconds to the first write on each partition it led (max)."""
    topic = hub.settings.topic("events")
    await cluster.wait_in_sync(topic_names(hub.settings))
    leaders = {p: await cluster.leader(topic, p) for p in range(PARTITIONS)}
    victim = leaders[0]
    assert victim is not None
    led = [p for p, node in leaders.items() if node == victim]
    producer = AIOKafkaProducer(bootstrap_servers=hub.settings.kafka_bootstrap, acks="all", enable_idempotence=True,
                                request_timeout_ms=30000)
    await producer.start()
    try:
        for p in led:  # the producer knows the old leaders, as a running client would
            await producer.send_and_wait(topic, b"before", key=b"bench", partition=p)
        cluster.kill(victim)
        killed = time.monotonic()

        async def raw(p: int) -> float:
            await producer.send_and_wait(topic, b"after", key=b"bench", partition=p)
            return time.monotonic() - killed

        async def http(p: int) -> float:
            n = 1_000 * round_no
            while True:
                status, _, _ = await hub.call("POST", "/api/events", json=event_body(publishers[p], n))
                if status in (200, 201):
                    return time.monotonic() - killed
                n += 1
                await asyncio.sleep(0.05)

        raw_s, http_s = await asyncio.gather(asyncio.gather(*(raw(p) for p in led)),
                                             asyncio.gather(*(http(p) for p in led)))
    finally:
        await producer.stop()
    say(f"   kill {round_no}: node {victim} led hub.events partitions {led}; first write after"
        f" {max(raw_s):.1f} s (producer), {max(http_s):.1f} s (HTTP publisher)")
    await asyncio.to_thread(cluster.restart, victim)
    return max(raw_s), max(http_s)


async def failover(hub: Hub, cluster: KafkaCluster, pool: asyncpg.Pool, rounds: int) -> None:
    publishers = {partition_for(p, PARTITIONS): p for p in program_ids("FP", 40)}
    await register(pool, hub.lb, [], list(publishers.values()))
    times = [await one_kill(hub, cluster, publishers, n) for n in range(1, rounds + 1)]
    say(f"   failover, median of {rounds}: {statistics.median(t[0] for t in times):.1f} s producer,"
        f" {statistics.median(t[1] for t in times):.1f} s HTTP publisher (broker.session.timeout.ms=4000)")


async def measure(name: str, bootstrap: str, dsn: str, tmp: Path, args: argparse.Namespace, rf: int,
                  cluster: KafkaCluster | None = None) -> tuple[float, float]:
    say(f"== {name} (RF {rf})")
    tmp.mkdir(parents=True, exist_ok=True)
    settings = make_settings(bootstrap, dsn, tmp, replication_factor=rf, request_timeout_s=30.0,
                             lb_batch_row_cap=5000, sync_timeout_s=300.0)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        async with hub_on_cluster(settings, tmp) as hub:
            if cluster:
                await cluster.wait_in_sync(topic_names(settings))
            rates = (await intake(hub, pool, args.events), await sync(hub, pool, args.sync_events))
            if cluster and args.kills:
                await failover(hub, cluster, pool, args.kills)
            return rates
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--sync-events", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    tmp.chmod(0o755)
    postgres = start_postgres(tmp / "pg")
    try:
        asyncio.run(db.migrate(postgres.dsn))
        one = start_kafka(tmp / "one", heap="256m", progress=say)
        try:
            single = asyncio.run(measure("one broker", one.bootstrap, postgres.dsn, tmp / "h1", args, rf=1))
        finally:
            one.stop()
        three = start_cluster(tmp / "three", progress=say)
        try:
            triple = asyncio.run(measure("three brokers", three.bootstrap, postgres.dsn, tmp / "h3", args, rf=3,
                                         cluster=three))
        finally:
            three.stop()
        say(f"== three brokers / one broker: intake {triple[0] / single[0]:.2f}x"
            f" ({triple[0]:,.0f} vs {single[0]:,.0f} events/s), sync {triple[1] / single[1]:.2f}x"
            f" ({triple[1]:,.0f} vs {single[1]:,.0f} rows/s)")
    finally:
        postgres.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
