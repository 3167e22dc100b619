"""Kafka clients that find the cluster again after a partial outage.

aiokafka 0.14.0 asks for metadata only the brokers its last metadata named
(``AIOKafkaClient._metadata_update``), never the bootstrap list again. A
broker's metadata lists only the brokers alive when it answered, so after an
outage in which one broker answered, a client knows only that one; when it
later dies alone, every metadata update fails ("Unable to update metadata
from [2]") and the client is stuck until that broker returns, although the
others are back (BROKER-FACTS.md, "Three-broker cluster").

``install()`` wraps that method, for every aiokafka client of the process
(the API's request/reply client, the intake's, Faust's, the range readers):
when no known broker answered, it asks the bootstrap list, as on start. One
metadata request per bootstrap address, on a fresh connection it closes at
once; nothing changes while a known broker answers.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import client as aiokafka_client
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

logger = logging.getLogger(__name__)

_ORIGINAL = aiokafka_client.AIOKafkaClient._metadata_update


async def _metadata_update(self: aiokafka_client.AIOKafkaClient, cluster_metadata: Any, topics: Any) -> bool:
    if await _ORIGINAL(self, cluster_metadata, topics):
        return True
    return await _from_bootstrap_list(self, cluster_metadata, topics)


async def _from_bootstrap_list(client: aiokafka_client.AIOKafkaClient, cluster_metadata: Any, topics: Any) -> bool:
    """Metadata from the first address of the bootstrap list that answers; False if none does."""
    known = sorted(str(b.nodeId) for b in client.cluster.brokers())
    for host, port, _ in client.hosts:
        try:
            conn = await create_conn(
                host,
                port,
                client_id=client._client_id,
                request_timeout_ms=client._request_timeout_ms,
                ssl_context=client._ssl_context,
                security_protocol=client._security_protocol,
                max_idle_ms=client._connections_max_idle_ms,
                sasl_mechanism=client._sasl_mechanism,
                sasl_plain_username=client._sasl_plain_username,
                sasl_plain_password=client._sasl_plain_password,
                sasl_kerberos_service_name=client._sasl_kerberos_service_name,
                sasl_kerberos_domain_name=client._sasl_kerberos_domain_name,
                sasl_oauth_token_provider=client._sasl_oauth_token_provider,
            )
        except (TimeoutError, OSError, KafkaError):
            continue
        try:
            metadata = await conn.send(MetadataRequest(list(topics) if topics else None))
        except (TimeoutError, KafkaError):
            continue
        finally:
            conn.close()
        if not metadata.brokers:
            continue
        cluster_metadata.update_metadata(metadata)
        logger.warning(
            "Kafka metadata came from the bootstrap address %s:%s: the broker(s) known before (%s) did not"
            " answer; now known: %s",
            host,
            port,
            ",".join(known) or "none",
            ",".join(sorted(str(b.nodeId) for b in client.cluster.brokers())),
        )
        return True
    return False


def install() -> None:
    """Make every aiokafka client of this process fall back to its bootstrap list (idempotent)."""
    aiokafka_client.AIOKafkaClient._metadata_update = _metadata_update  # type: ignore[method-assign]


def installed() -> bool:
    return aiokafka_client.AIOKafkaClient._metadata_update is _metadata_update
