"""Consumer lag: every owned partition, from the right position, changelogs and Faust internals left out."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition

from agents import consumer_lag
from agents.intake.partitions import PartitionMark, PartitionState
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import table_topics

SETTINGS = HubSettings(topic_prefix="t", app_id="hub-x", subscriber_partitions=2, events_partitions=2)


class FakeConsumer:
    def __init__(self, assigned: list[TopicPartition], committed: dict[TopicPartition, int], positions: dict[TopicPartition, int]) -> None:
        self._assigned = assigned
        self._committed_offset = committed
        self._positions = positions

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    async def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]


async def test_lag_of_every_owned_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = [TopicPartition("t.subscriptions.commands", p) for p in (0, 1)]
    changelog = TopicPartition(table_topics(SETTINGS)["subscriptions"].name, 0)
    leader = TopicPartition("hub-x-__assignor-__leader", 0)
    consumer = FakeConsumer(
        [*commands, changelog, leader],
        committed={commands[0]: 7},  # partition 1: nothing committed since the assignment
        positions={commands[1]: 3},
    )
    app: Any = SimpleNamespace(hub_settings=SETTINGS, consumer=consumer)
    intake: Any = SimpleNamespace(
        incoming_topic="t.events.incoming",
        states={0: PartitionState(PartitionMark(offset=9), 0, set(), set()), 1: PartitionState(PartitionMark(), 0, set(), set())},
    )
    ends = {commands[0]: 10, commands[1]: 3, TopicPartition("t.events.incoming", 0): 25, TopicPartition("t.events.incoming", 1): 0}
    asked: list[TopicPartition] = []

    async def fake_log_ends(bootstrap: str, tps: Any) -> dict[TopicPartition, int]:
        asked.extend(tps)
        return {tp: ends[tp] for tp in tps}

    monkeypatch.setattr(consumer_lag, "log_ends", fake_log_ends)
    lag = await consumer_lag.measure_lag(app, intake)
    assert lag == {
        commands[0]: 3,  # end 10 - committed 7
        commands[1]: 0,  # end 3 - resumed at 3: a partition without traffic shows 0, not nothing
        TopicPartition("t.events.incoming", 0): 15,  # end 25 - the mark's next offset 10
        TopicPartition("t.events.incoming", 1): 0,
    }
    assert changelog not in asked and leader not in asked  # written by the worker / Faust's own
