"""Every topic of the hub, with its partition count and config, and their creation.

Topics are created here, before any Faust app or producer touches them:
Tansu auto-creates an unknown topic with 4 partitions on first produce
(Apache Kafka with 1), and a subscriber-keyed topic with the wrong count
would route a subscriber's commands away from its table partition.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from hub_stream.platform.settings import HubSettings

logger = logging.getLogger(__name__)

FOREVER = {"retention.ms": "-1", "retention.bytes": "-1"}
COMPACTED = {"cleanup.policy": "compact"}
SHORT_LIVED = {"retention.ms": str(24 * 3600 * 1000)}

# Table names; their changelog topics are "{app_id}-{table}-changelog" (Faust's naming).
SUBSCRIPTIONS_TABLE = "subscriptions"
CURSORS_TABLE = "sync-cursors"
INTAKE_TABLE = "intake"
COMMANDS_TABLE = "applied-commands"
PENDING_SYNCS_TABLE = "pending-syncs"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


class TopicMismatch(RuntimeError):
    """An existing topic has another partition count than the hub declares."""


def table_topics(settings: HubSettings) -> dict[str, TopicSpec]:
    """Changelog topics of the Faust tables, keyed by table name."""
    subs = settings.subscriber_partitions
    pubs = settings.events_partitions
    parts = {
        SUBSCRIPTIONS_TABLE: subs,
        CURSORS_TABLE: subs,
        COMMANDS_TABLE: subs,
        PENDING_SYNCS_TABLE: subs,
        INTAKE_TABLE: pubs,
    }
    return {
        table: TopicSpec(f"{settings.app_id}-{table}-changelog", n, dict(COMPACTED))
        for table, n in parts.items()
    }


def all_topics(settings: HubSettings) -> list[TopicSpec]:
    """Every topic the hub uses, as it must exist before anything runs."""
    t = settings.topic
    pubs = settings.events_partitions
    subs = settings.subscriber_partitions
    specs = [
        TopicSpec(t("events"), pubs, dict(FOREVER)),
        TopicSpec(t("events.incoming"), pubs, dict(SHORT_LIVED)),
        TopicSpec(t("events.rejected"), settings.rejected_partitions, dict(FOREVER)),
        TopicSpec(t("subscriptions.commands"), subs, dict(SHORT_LIVED)),
        TopicSpec(t("sync.requests"), subs, dict(SHORT_LIVED)),
        TopicSpec(t("replies"), settings.replies_partitions, dict(SHORT_LIVED)),
        # Faust's own leader topic for the partition assignor.
        TopicSpec(f"{settings.app_id}-__assignor-__leader", 1, {}),
    ]
    specs.extend(table_topics(settings).values())
    return specs


async def ensure_topics(settings: HubSettings, *, timeout_s: float = 30.0) -> list[str]:
    """Create every missing topic; verify the partition count of existing ones.

    Idempotent: safe on every start of every process. Returns the names it created.
    Raises TopicMismatch when an existing topic has another partition count.
    """
    assert settings.kafka_bootstrap, "HUB_KAFKA_BOOTSTRAP is not set"
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        wanted = {spec.name: spec for spec in all_topics(settings)}
        existing = await _partition_counts(admin, list(wanted))
        missing = [spec for name, spec in wanted.items() if name not in existing]
        created: list[str] = []
        if missing:
            new = [
                NewTopic(
                    name=spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=settings.replication_factor,
                    topic_configs={**spec.config, **durability_config(settings)},
                )
                for spec in missing
            ]
            try:
                _raise_create_errors(await admin.create_topics(new), settings)
            except TopicAlreadyExistsError:
                pass  # another process won the race; counts are checked below
            created = [spec.name for spec in missing]
            existing = await _wait_for_topics(admin, list(wanted), timeout_s)
        bad = {
            name: (existing.get(name), spec.partitions)
            for name, spec in wanted.items()
            if existing.get(name) != spec.partitions
        }
        if bad:
            raise TopicMismatch(
                "topics exist with other partition counts than configured "
                + ", ".join(f"{n}: has {h}, wants {w}" for n, (h, w) in sorted(bad.items()))
                + "; recreate them or set the HUB_*_PARTITIONS settings to match"
            )
        if created:
            logger.info("created topics %s", ", ".join(created))
        _warn_under_replicated(await _replication_factors(admin, list(wanted)), settings)
        return created
    finally:
        await admin.close()


def durability_config(settings: HubSettings) -> dict[str, str]:
    """The topic configs that make an acknowledged record survive a broker's loss."""
    return {
        "min.insync.replicas": str(settings.min_insync_replicas),
        "unclean.leader.election.enable": str(settings.unclean_leader_election).lower(),
    }


TOPIC_ALREADY_EXISTS = 36


def _raise_create_errors(response: object, settings: HubSettings) -> None:
    """A topic the broker refused to create (too few brokers for the replication factor, a bad
    config): a TopicMismatch that says so, instead of a wait for topics that never come."""
    errors = [
        (topic, code, message)
        for topic, code, *rest in getattr(response, "topic_errors", [])
        for message in [rest[0] if rest else None]
        if code not in (0, TOPIC_ALREADY_EXISTS)
    ]
    if errors:
        topic, code, message = errors[0]
        raise TopicMismatch(
            f"the broker refused to create {len(errors)} topic(s), e.g. {topic}: error {code}"
            f" {message or ''} (HUB_REPLICATION_FACTOR={settings.replication_factor},"
            f" HUB_MIN_INSYNC_REPLICAS={settings.min_insync_replicas}: a cluster needs at least"
            " as many brokers as the replication factor)"
        )


def under_replicated(factors: dict[str, int], settings: HubSettings) -> dict[str, int]:
    """Topics whose replication factor is lower than HUB_REPLICATION_FACTOR, with theirs."""
    return {name: rf for name, rf in sorted(factors.items()) if rf < settings.replication_factor}


def _warn_under_replicated(factors: dict[str, int], settings: HubSettings) -> None:
    low = under_replicated(factors, settings)
    if low:
        logger.warning(
            "%d hub topic(s) have a lower replication factor than HUB_REPLICATION_FACTOR=%d: %s;"
            " they were created before it was raised and are not changed by the hub: losing the"
            " broker that holds their only replica loses their records (docs/scaling.md says how"
            " to raise it with kafka-reassign-partitions)",
            len(low), settings.replication_factor,
            ", ".join(f"{name} (RF {rf})" for name, rf in low.items()),
        )


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Partition count of each of ``names`` that exists, without creating any."""
    return {name: len(partitions) for name, partitions in (await _described(admin, names)).items()}


async def _replication_factors(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """The replication factor (replicas of its first partition) of each of ``names`` that exists."""
    return {name: len(partitions[0]["replicas"]) for name, partitions in (await _described(admin, names)).items()}


async def _described(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The partitions (as described) of each of ``names`` that exists, without creating any.

    Only listed topics are described: a Metadata request naming an unknown
    topic makes Tansu auto-create it with 4 partitions.
    """
    present = [n for n in names if n in set(await admin.list_topics())]
    if not present:
        return {}
    try:
        described = await admin.describe_topics(present)
    except KafkaError:
        described = []
    return {
        topic["topic"]: topic["partitions"]
        for topic in described
        if topic.get("error_code", 0) == 0 and topic.get("partitions")
    }


async def _wait_for_topics(
    admin: AIOKafkaAdminClient, names: list[str], timeout_s: float
) -> dict[str, int]:
    """Metadata can lag a create; poll until every topic is described."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        counts = await _partition_counts(admin, names)
        if all(n in counts for n in names) or asyncio.get_running_loop().time() > deadline:
            return counts
        await asyncio.sleep(0.1)
