"""Consumer lag of every partition this worker consumes, for the worker's metrics.

``hub_consumer_lag_records{topic,partition}`` = log end − position, where the
position is
- for the agents' topics (Faust's consumer): the offset Faust last committed,
  or, before its first commit since the assignment, the consumer's fetch
  position (where it resumed);
- for hub.events.incoming (the intake's own consumer): the partition's mark,
  the first offset not yet made durable (agents/intake).
The log end is a fetch's high watermark (hub_stream.platform.offsets: Tansu's
ListOffsets can be short), read for every owned partition, so a partition
without traffic shows 0 rather than nothing.

Table changelogs and Faust's internal topics are left out: the worker writes
its changelogs and reads them only to recover a table, so "records behind"
means nothing there. A partition revoked from this worker loses its series at
the next tick.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import TopicPartition

from agents.intake import Intake
from hub_stream.platform.faust_app import HubApp
from hub_stream.platform.metrics import CONSUMER_LAG
from hub_stream.platform.offsets import log_ends
from hub_stream.platform.topics import table_topics

logger = logging.getLogger(__name__)

LAG_INTERVAL_S = 15.0
POSITION_TIMEOUT_S = 5.0


def consumed_partitions(app: HubApp) -> list[TopicPartition]:
    """The partitions of hub topics assigned to this worker's Faust consumer (not table changelogs)."""
    changelogs = {spec.name for spec in table_topics(app.hub_settings).values()}
    prefix = app.hub_settings.topic("")
    return sorted(
        (
            TopicPartition(tp.topic, tp.partition)
            for tp in app.consumer.assignment()
            if tp.topic.startswith(prefix) and tp.topic not in changelogs
        ),
        key=lambda tp: (tp.topic, tp.partition),
    )


def intake_positions(intake: Intake) -> dict[TopicPartition, int]:
    """The incoming partitions the intake owns, each at its mark (the first offset not yet durable)."""
    return {
        TopicPartition(intake.incoming_topic, p): max(0, state.mark.offset + 1)
        for p, state in list(intake.states.items())
    }


async def group_position(app: HubApp, tp: TopicPartition) -> int | None:
    """The offset of the next record the group will process in ``tp``, None if not known yet."""
    consumer = app.consumer
    committed = consumer._committed_offset.get(tp)  # type: ignore[attr-defined]  # Faust: next offset, None for 0
    if committed is not None:
        return int(committed)
    try:
        position = await asyncio.wait_for(consumer.position(tp), POSITION_TIMEOUT_S)  # type: ignore[arg-type]
    except Exception:  # not known yet (being assigned, or the broker is slow): no value this time
        logger.debug("position of %s not available", tp, exc_info=True)
        return None
    return int(position) if position is not None else None


async def measure_lag(app: HubApp, intake: Intake | None) -> dict[TopicPartition, int]:
    """Records behind per owned partition (partitions whose position is unknown are left out)."""
    positions: dict[TopicPartition, int | None] = {tp: await group_position(app, tp) for tp in consumed_partitions(app)}
    if intake is not None:
        positions.update(intake_positions(intake))
    ends = await log_ends(app.hub_settings.kafka_bootstrap or "", positions)
    return {
        tp: max(0, ends[tp] - position) for tp, position in positions.items() if position is not None and tp in ends
    }


def register(app: HubApp, intake: Intake | None = None) -> None:
    """Every 15 s, set hub_consumer_lag_records for exactly the partitions this worker owns now."""

    @app.timer(interval=LAG_INTERVAL_S)
    async def report_lag() -> None:
        try:
            lag = await measure_lag(app, intake)
        except Exception:  # a metric must never take the worker down
            logger.debug("consumer lag not available", exc_info=True)
            return
        CONSUMER_LAG.clear()
        for tp, records in lag.items():
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(records)
