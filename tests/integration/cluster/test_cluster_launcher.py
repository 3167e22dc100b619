"""The loopback cluster itself: three nodes, a partition's leader found, killed, replaced, restarted."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub_stream.local.kafka_cluster import KafkaCluster

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


async def test_killed_leader_is_replaced_and_no_acknowledged_record_is_lost(cluster: KafkaCluster) -> None:
    topic = f"launcher-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 3, topic_configs={"min.insync.replicas": "2"})])
    finally:
        await admin.close()
    await cluster.wait_in_sync([topic])
    before = await cluster.leader(topic, 0)
    assert before in cluster.nodes

    producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", enable_idempotence=True,
                                request_timeout_ms=15000)
    await producer.start()
    try:
        for n in range(100):
            await producer.send_and_wait(topic, f"before-{n}".encode())
        cluster.kill(before)
        killed_at = time.monotonic()
        assert not cluster.alive(before)
        await producer.send_and_wait(topic, b"after")  # the client finds the new leader itself
        failover_s = time.monotonic() - killed_at
    finally:
        await producer.stop()
    after = await cluster.leader(topic, 0)
    assert after is not None and after != before, (before, after)
    print(f"leader {before} killed; node {after} took over; first write after {failover_s:.1f} s")

    await asyncio.to_thread(cluster.restart, before)
    await cluster.wait_in_sync([topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        values: list[bytes] = []
        while len(values) < 101:
            batch = await consumer.getmany(tp, timeout_ms=5000)
            assert batch, f"only {len(values)} records came back"
            values.extend(r.value for r in batch[tp] if r.value is not None)
    finally:
        await consumer.stop()
    assert values == [f"before-{n}".encode() for n in range(100)] + [b"after"]
