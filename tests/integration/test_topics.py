"""Topics exist with their declared counts, created idempotently, before anything runs."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import TopicMismatch, all_topics, ensure_topics

pytestmark = pytest.mark.integration


async def _counts(settings: HubSettings) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        names = [t.name for t in all_topics(settings)]
        listed = set(await admin.list_topics())
        described = await admin.describe_topics([n for n in names if n in listed])
        return {t["topic"]: len(t["partitions"]) for t in described}
    finally:
        await admin.close()


async def test_creates_all_topics_once_with_declared_counts(settings: HubSettings) -> None:
    created = await ensure_topics(settings)
    assert sorted(created) == sorted(t.name for t in all_topics(settings))
    assert await ensure_topics(settings) == []  # idempotent
    counts = await _counts(settings)
    assert counts == {t.name: t.partitions for t in all_topics(settings)}


async def test_existing_topic_with_other_count_is_refused(settings: HubSettings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(settings.topic("events"), 2, 1)])
    finally:
        await admin.close()
    with pytest.raises(TopicMismatch, match=r"events: has 2, wants 4"):
        await ensure_topics(settings)
