"""The cluster tests' broker: three Apache Kafka nodes on loopback (hub_stream/local/kafka_cluster.py).

One cluster for the whole session (about 10 s to start, ~1 GB resident);
the ``cluster`` fixture hands it to one test and, afterwards, restarts every
node that test killed and waits until all replicas are back in sync, so
the next test starts from three healthy brokers. These tests carry the
``cluster`` marker: a plain ``./hubw test`` leaves them out (tests/conftest.py),
``./hubw test -m cluster`` or naming this directory runs them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from support import make_settings

from hub_stream.local.kafka_cluster import KafkaCluster, start_cluster
from hub_stream.platform.settings import HubSettings


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    cluster = start_cluster(tmp_path_factory.mktemp("kafka-cluster"), progress=_say)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def cluster(kafka_cluster: KafkaCluster) -> AsyncIterator[KafkaCluster]:
    """The session's cluster with all nodes running; nodes the test killed are restarted after it."""
    await _heal(kafka_cluster)
    yield kafka_cluster
    await _heal(kafka_cluster)


async def _heal(cluster: KafkaCluster) -> None:
    for node_id in cluster.nodes:
        if not cluster.alive(node_id):
            await asyncio.to_thread(cluster.restart, node_id)


@pytest.fixture
def cluster_settings(cluster: KafkaCluster, database_dsn: str, tmp_path: Path) -> HubSettings:
    """Settings isolated to this test on the cluster: RF 3, min ISR 2, 4+4 partitions."""
    return make_settings(cluster.bootstrap, database_dsn, tmp_path, replication_factor=3)


def topic_names(settings: HubSettings) -> list[str]:
    """Every topic of ``settings`` (to wait until all are fully replicated)."""
    from hub_stream.platform.topics import all_topics

    return [spec.name for spec in all_topics(settings)]
