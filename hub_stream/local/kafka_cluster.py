"""A three-node Apache Kafka cluster on loopback, for the cluster tests and benchmarks.

Each node is one JVM that is broker and controller at once (KRaft combined
mode), started by ``kafka.start_kafka`` from the same pinned jars on the same
Java runtime as the single embedded node, with its own data directory
(``ROOT/node-N``) and its own client and controller ports. The three
controllers form the metadata quorum (static voters), so the cluster serves
while two of three nodes run. Kafka's own topics (consumer offsets,
transaction state) get replication factor 3 and min ISR 2; unclean leader
election is off.

    cluster = start_cluster(tmp / "kafka")     # returns when every node answers
    settings = ... kafka_bootstrap=cluster.bootstrap ...
    leader = await cluster.leader("hub.events", 0)   # a node id, or None
    cluster.kill(leader)                       # SIGKILL, like a machine lost
    cluster.restart(leader)                    # same ports and data; blocks until it answers
    await cluster.wait_in_sync(["hub.events"]) # every replica back in the ISR
    cluster.stop()

Node ids are 1..N and equal the broker ids in client metadata. ``kill`` and
``restart`` are synchronous; from a coroutine, call ``restart`` through
``asyncio.to_thread`` so the event loop keeps running while the node boots.
Each JVM takes about 350 MB resident with the default 256 MB heap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hub_stream.local.kafka import (
    HOST,
    KafkaError,
    KafkaNode,
    Progress,
    QuorumSeat,
    _cluster_id,
    free_port,
    start_kafka,
)

CLUSTER_HEAP = "256m"


def _quiet(_line: str) -> None:
    pass


@dataclass
class ClusterNode:
    """One node's fixed place: its id, ports and data directory (kept across restarts)."""

    node_id: int
    port: int
    controller_port: int
    workdir: Path
    process: KafkaNode | None = None  # the running JVM, None while killed

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"


@dataclass
class KafkaCluster:
    """A running loopback cluster; see the module docstring for its use."""

    root: Path
    cluster_id: str
    nodes: dict[int, ClusterNode]
    heap: str = CLUSTER_HEAP
    progress: Progress = field(default=_quiet, repr=False)

    @property
    def bootstrap(self) -> str:
        """Every node's client address, comma-separated (what HUB_KAFKA_BOOTSTRAP takes)."""
        return ",".join(node.bootstrap for node in self.nodes.values())

    def _seat(self, node_id: int) -> QuorumSeat:
        voters = {n.node_id: n.controller_port for n in self.nodes.values()}
        return QuorumSeat(node_id, voters, self.cluster_id, replication=min(3, len(self.nodes)))

    def alive(self, node_id: int) -> bool:
        node = self.nodes[node_id].process
        return node is not None and node.process is not None and node.process.poll() is None

    def alive_ids(self) -> list[int]:
        return [n for n in self.nodes if self.alive(n)]

    def launch(self, node_id: int) -> KafkaNode:
        """Start node ``node_id`` on its ports and data; return at once (``restart`` waits)."""
        node = self.nodes[node_id]
        if self.alive(node_id):
            raise KafkaError(f"node {node_id} is running")
        node.process = start_kafka(
            node.workdir, port=node.port, controller_port=node.controller_port, heap=self.heap,
            progress=self.progress, lock_wait_s=10.0, wait=False,
            seat=self._seat(node_id),
        )
        return node.process

    def kill(self, node_id: int) -> None:
        """SIGKILL node ``node_id`` (no controlled shutdown, no flush) and wait until it is gone."""
        node = self.nodes[node_id]
        running = node.process
        if running is None or running.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(running.pid, signal.SIGKILL)
        running.process.wait(10)
        node.process = None

    def restart(self, node_id: int) -> None:
        """Start a killed node again (same ports, same data) and block until it answers clients."""
        self.launch(node_id).wait_ready(self.progress)

    def stop(self) -> None:
        """Stop every node at once (SIGTERM, SIGKILL after 5 s): the data is throwaway."""
        running = [n.process for n in self.nodes.values() if n.process is not None]
        with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
            list(pool.map(lambda node: node.stop(timeout_s=5), running))
        for node in self.nodes.values():
            node.process = None

    async def leader(self, topic: str, partition: int) -> int | None:
        """The node id that leads ``topic``/``partition`` now, None while it has no leader.

        Asks the running nodes with a fresh client each time: a long-lived
        client's metadata can be stale right after a node dies.
        """
        return (await self._describe([topic])).get((topic, partition), (None, [], []))[0]

    async def wait_in_sync(self, topics: list[str], timeout_s: float = 60.0) -> None:
        """Return when every partition of ``topics`` has a leader and all its replicas in the ISR."""
        deadline = time.monotonic() + timeout_s
        while True:
            described = await self._describe(topics)
            lagging = {tp: state for tp, state in described.items()
                       if state[0] is None or set(state[1]) != set(state[2])}
            if described and not lagging:
                return
            if time.monotonic() > deadline:
                raise KafkaError(f"partitions not fully replicated after {timeout_s:.0f} s: "
                                 f"{sorted(lagging.items())[:5]} (leader, replicas, isr)")
            await asyncio.sleep(0.5)

    async def _describe(self, topics: list[str]) -> dict[tuple[str, int], tuple[int | None, list[int], list[int]]]:
        """(topic, partition) -> (leader or None, replicas, isr), asked of the running nodes."""
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.errors import KafkaError as ClientError

        bootstrap = ",".join(self.nodes[n].bootstrap for n in self.alive_ids())
        if not bootstrap:
            return {}
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        out: dict[tuple[str, int], tuple[int | None, list[int], list[int]]] = {}
        try:
            await asyncio.wait_for(admin.start(), 10)
            for described in await admin.describe_topics(topics):
                for p in described.get("partitions") or []:
                    leader = p["leader"] if p["leader"] >= 0 else None
                    out[(described["topic"], p["partition"])] = (leader, list(p["replicas"]), list(p["isr"]))
        except (ClientError, OSError, TimeoutError):
            return {}
        finally:
            await admin.close()
        return out


def start_cluster(
    root: Path,
    *,
    nodes: int = 3,
    heap: str = CLUSTER_HEAP,
    progress: Progress = _quiet,
) -> KafkaCluster:
    """Format and start ``nodes`` combined KRaft nodes under ``root``; return when all answer.

    Ports are free ones picked now and kept for the cluster's life (a
    restarted node comes back on the same ports). The nodes are formatted
    and launched side by side: a node serves only once a majority of the
    quorum runs. On failure every node started is stopped before the
    KafkaError propagates.
    """
    started = time.monotonic()
    root = root.expanduser().resolve()
    cluster = KafkaCluster(
        root=root, cluster_id=_cluster_id(), heap=heap, progress=progress,
        nodes={n: ClusterNode(n, free_port(), free_port(), root / f"node-{n}") for n in range(1, nodes + 1)},
    )
    try:
        with ThreadPoolExecutor(max_workers=nodes) as pool:
            list(pool.map(cluster.launch, cluster.nodes))
        for node in cluster.nodes.values():
            assert node.process is not None
            node.process.wait_ready(_quiet)
    except BaseException:
        cluster.stop()
        raise
    progress(f"hub: Kafka cluster of {nodes} nodes ready on {cluster.bootstrap} in"
             f" {time.monotonic() - started:.1f} s (data in {root})")
    return cluster


if __name__ == "__main__":  # a manual check: start, print the bootstrap, stop on Enter
    c = start_cluster(Path(sys.argv[1] if len(sys.argv) > 1 else ".hub/kafka-cluster"),
                      progress=lambda line: print(line, file=sys.stderr))
    try:
        print(c.bootstrap, flush=True)
        input()
    finally:
        c.stop()
