"""The state one worker's intake keeps, shared by its parts (decisions, durable pipeline, partitions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
from aiokafka import AIOKafkaProducer

from hub_stream.access.programs import PublisherRegistry, registered_programs
from hub_stream.platform import db
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import INTAKE_TABLE, table_topics

if TYPE_CHECKING:
    from agents.intake.durable import Stages
    from agents.intake.partitions import PartitionState


class IntakeBase:
    """Topics, owned partitions' state and stores, the producer and the registry lookup."""


    def __init__(self, settings: HubSettings) -> None:
        s = self.settings = settings
        self.changelog_topic = table_topics(s)[INTAKE_TABLE].name
        self.partitions = s.events_partitions
        self.events_topic = s.topic("events")
        self.incoming_topic = s.topic("events.incoming")
        self.rejected_topic = s.topic("events.rejected")
        self.rejected_partitions = s.rejected_partitions
        self.replies_topic = s.topic("replies")
        self.states: dict[int, PartitionState] = {}  # the partitions this worker owns
        self.stores: dict[int, dict[str, Any]] = {}  # their table entries (key -> JSON value)
        self.producer: AIOKafkaProducer | None = None  # the intake's own, for bulk sends
        self.pool: asyncpg.Pool | None = None  # opened on the first registry lookup, closed with the service
        self.publishers = PublisherRegistry(self._registered_programs)
        self._last_stages: Stages | None = None  # of the last batch decided, until it is durable

    async def _registered_programs(self, program_ids: list[str]) -> set[str]:
        if self.pool is None:
            self.pool = await db.create_pool(self.settings)
        return await registered_programs(self.pool, program_ids)

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()
