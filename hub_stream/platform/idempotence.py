"""Whether the broker gives producers idempotence (one producer id, sequence numbers).

Apache Kafka does; Tansu answers InitProducerId with UnknownError
(BROKER-FACTS.md), and an idempotent aiokafka producer would then retry that
request forever. Every producer of the hub asks here once per bootstrap and
turns idempotence on where it works: a retried produce is then never written
twice.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)

_known: dict[str, bool] = {}
RETRIABLE = {14, 15}  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE


async def supports_idempotence(bootstrap: str) -> bool:
    """One InitProducerId round trip (no transactional id), remembered per bootstrap.

    A broker that does not answer is asked again next time (off meanwhile):
    a producer started during an outage must not stay without idempotence.
    """
    if bootstrap in _known:  # two concurrent first asks both ask: harmless
        return _known[bootstrap]
    answer = await _ask(bootstrap)
    if answer is None:
        return False
    _known[bootstrap] = answer
    logger.info("producer idempotence %s on %s", "on" if answer else "off", bootstrap)
    return answer


async def _ask(bootstrap: str) -> bool | None:
    """The broker's answer; None when it could not be asked."""
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError
    from aiokafka.protocol.transaction import InitProducerIdRequest

    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    try:
        await client.bootstrap()
        node = next(iter(client.cluster.brokers())).nodeId
        for _ in range(50):  # a fresh broker answers "loading" / "not available" for a moment
            response = await client.send(node, InitProducerIdRequest(None, 60000))  # type: ignore[arg-type]
            if response.error_code not in RETRIABLE:
                return response.error_code == 0
            await asyncio.sleep(0.2)
        return None
    except (KafkaError, OSError, StopIteration):
        return None
    finally:
        await client.close()
