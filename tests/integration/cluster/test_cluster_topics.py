"""Production topic settings on a real three-broker cluster: RF 3, min ISR 2, no unclean election,
idempotent producers; and one warning when existing topics have a lower replication factor."""

from __future__ import annotations

import logging

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hub_stream.local.kafka_cluster import KafkaCluster
from hub_stream.platform import topics
from hub_stream.platform.idempotence import supports_idempotence
from hub_stream.platform.settings import HubSettings

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


async def _topic_config(bootstrap: str, name: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    finally:
        await admin.close()
    [resource] = response.resources
    return {entry[0]: entry[1] for entry in resource[4]}


async def test_topics_are_created_replicated_with_min_isr_and_producers_are_idempotent(
    cluster: KafkaCluster, cluster_settings: HubSettings
) -> None:
    created = await topics.ensure_topics(cluster_settings)
    names = [spec.name for spec in topics.all_topics(cluster_settings)]
    assert sorted(created) == sorted(names)
    await cluster.wait_in_sync(names)
    for name in names:
        config = await _topic_config(cluster.bootstrap, name)
        assert (config["min.insync.replicas"], config["unclean.leader.election.enable"]) == ("2", "false"), name
    assert await supports_idempotence(cluster.bootstrap), "the cluster gives producers idempotence"


async def test_topics_made_with_a_lower_factor_give_one_warning(
    cluster: KafkaCluster, cluster_settings: HubSettings, caplog: pytest.LogCaptureFixture
) -> None:
    single = HubSettings(**{**cluster_settings.model_dump(), "replication_factor": 1, "min_insync_replicas": 1})
    await topics.ensure_topics(single)
    with caplog.at_level(logging.WARNING, logger=topics.__name__):
        assert await topics.ensure_topics(cluster_settings) == []  # nothing recreated, nothing changed
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"{len(topics.all_topics(single))} hub topic(s)" in warnings[0]
    assert f"{cluster_settings.topic('events')} (RF 1)" in warnings[0]
