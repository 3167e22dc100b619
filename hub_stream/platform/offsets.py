"""The true end of a partition's log, on every broker.

Tansu answers ListOffsets "latest" (aiokafka ``end_offsets``) with the last
batch's base offset + 1 when that batch held several records, short of the
real end. The high watermark a Fetch response carries is right on Tansu and
on Apache Kafka alike, so the log end is read from a fetch: seek just before
the end the broker reported and fetch; the response's high watermark is the
end. Faust's table recovery stops at the end it is given, so a short answer
loses the last updates of a table (reproduced by
tests/integration/test_table_recovery.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition

FETCH_TIMEOUT_MS = 200


async def log_ends(
    bootstrap: str, partitions: Iterable[TopicPartition], *, timeout_s: float = 10.0
) -> dict[TopicPartition, int]:
    """The offset after the last record of each partition (its high watermark)."""
    tps = list(partitions)
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        max_partition_fetch_bytes=64 * 1024,
    )
    await consumer.start()
    try:
        return await asyncio.wait_for(_log_ends(consumer, tps), timeout_s)
    finally:
        await consumer.stop()


async def log_ends_of(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """``log_ends`` with a started consumer of the caller's (it is assigned ``tps`` and moved)."""
    return await _log_ends(consumer, tps)


async def _log_ends(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer.assign(tps)
    # Paused until the seeks below: otherwise, while the offsets are asked, aiokafka resets each
    # position by the consumer's auto_offset_reset and fetches from there; with "earliest" and a
    # large fetch size that is a read of the partition's start, which the seek then throws away.
    consumer.pause(*tps)
    starts = await consumer.beginning_offsets(tps)
    reported = await consumer.end_offsets(tps)
    ends: dict[TopicPartition, int] = {}
    pending = []
    for tp in tps:
        if reported[tp] <= starts[tp]:
            # Empty as far as the broker says; a fetch from the start tells for sure.
            consumer.seek(tp, starts[tp])
        else:
            consumer.seek(tp, reported[tp] - 1)
        pending.append(tp)
    consumer.resume(*tps)
    while pending:
        await consumer.getmany(*pending, timeout_ms=FETCH_TIMEOUT_MS)
        still = []
        for tp in pending:
            hw = consumer.highwater(tp)
            if hw is None:
                still.append(tp)
            else:
                ends[tp] = max(hw, reported[tp])
        pending = still
    return ends


def merge_reported(reported: Mapping[TopicPartition, int], true_ends: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
    """The larger of each pair: a fetch can only correct a short answer upwards."""
    return {tp: max(off, true_ends.get(tp, off)) for tp, off in reported.items()}
