"""The intake's consumer loop: its own consumer group on the incoming topic, batches in flight."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ConsumerStoppedError

from agents.intake.durable import Batch
from agents.intake.wire import RecordEvent, intake_group
from hub_stream.platform.faust_app import HubApp
from hub_stream.platform.giving_up import give_up
from hub_stream.platform.idempotence import supports_idempotence
from hub_stream.platform.settings import HubSettings

if TYPE_CHECKING:
    from agents.intake import Intake

logger = logging.getLogger(__name__)

GROUP_MAX = 4000  # records made durable together (at most one getmany)
POLL_TIMEOUT_MS = 1000
MAX_IN_FLIGHT = 4  # batches being made durable at once (Intake.commit keeps their steps in order)
COMMIT_EVERY_S = 1.0  # the group's committed offsets follow the marks this often (for lag tools)
PRODUCE_BATCH_BYTES = 512 * 1024  # a larger single record still goes, alone in its batch


def intake_producer(settings: HubSettings, **options: Any) -> AIOKafkaProducer:
    """The intake's producer: every write acknowledged by all replicas, sent at once, in large batches."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=0,
        max_batch_size=PRODUCE_BATCH_BYTES,
        **options,
    )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: IntakeService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.service.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.service.assigned(assigned)


class IntakeService(mode.Service):
    """The intake's consumer loop, started and stopped with the worker's Faust app.

    ``getmany`` (aiokafka keeps fetching meanwhile), decide, and hand the
    batch to ``Intake.commit`` in a task of its own: up to ``MAX_IN_FLIGHT``
    batches are being made durable at once, each step in batch order, so a
    lone publish waits for one round of broker writes, not for the batches
    queued before it. A rebalance or a stop first waits for every batch in
    hand (the lock, then ``settled``); then the partitions given up are
    forgotten and the ones taken over are loaded and read from their marks.
    A broker failure while making a batch durable stops the worker: after a
    restart the marks repair the batch.
    """

    def __init__(self, app: HubApp, intake: Intake, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.intake = intake
        self.lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None
        self._committed: dict[TopicPartition, int] = {}
        self._last_commit = 0.0
        self._in_flight: list[asyncio.Task[None]] = []

    async def on_start(self) -> None:
        s = self.intake.settings
        self.intake.producer = intake_producer(s, enable_idempotence=await supports_idempotence(s.kafka_bootstrap or ""))
        await self.intake.producer.start()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=intake_group(s),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            session_timeout_ms=int(s.broker_session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.broker_heartbeat_interval_s * 1000),
            rebalance_timeout_ms=int(s.broker_rebalance_timeout_s * 1000),
            request_timeout_ms=int(s.broker_request_timeout_s * 1000),
        )
        await self.consumer.start()
        self.consumer.subscribe([self.intake.incoming_topic], listener=_Rebalance(self))

    async def on_stop(self) -> None:
        async with self.lock:  # the batches in hand first
            await self.intake.settled()
            if self.consumer is not None:
                await self.consumer.stop()
            if self.intake.producer is not None:
                await self.intake.producer.stop()
            await self.intake.close()

    async def revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.lock:
            await self.intake.settled()
            await self._commit_marks(force=True)
            for tp in revoked:
                self.intake.forget(tp.partition)
                self._committed.pop(tp, None)

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        assert self.consumer is not None
        async with self.lock:
            # All at once: a take-over is mostly waiting on the broker (on
            # Tansu ~0.5 s even for an empty partition), and one after the
            # other they held a worker's start, a rebalance and a stop
            # arriving meanwhile for seconds.
            tps = sorted(assigned)
            started = time.perf_counter()
            states = await asyncio.gather(*(self.intake.take_over(tp.partition) for tp in tps))
            for tp, state in zip(tps, states):
                # From the mark: everything before it is durable. A log that
                # starts later (retention) resets to its start (auto_offset_reset).
                self.consumer.seek(tp, state.next_offset)
            if tps:
                logger.info(
                    "intake took over partition(s) %s: %d keys, %d event(s) after the marks, in %.2f s",
                    ",".join(str(tp.partition) for tp in tps),
                    sum(len(self.intake.stores.get(tp.partition, ())) for tp in tps),
                    sum(len(state.tail_events) for state in states),
                    time.perf_counter() - started,
                )

    @mode.Service.task
    async def _run(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        topic = self.intake.incoming_topic
        while not self.should_stop:
            try:
                batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=GROUP_MAX)
            except ConsumerStoppedError:
                return
            async with self.lock:
                events = [RecordEvent(topic, r) for records in batches.values() for r in records]
                try:
                    if events:
                        batch = await self.intake.decide(events)
                        self._in_flight.append(asyncio.create_task(self._make_durable(batch), name="intake-commit"))
                    self._in_flight = [t for t in self._in_flight if not t.done()]
                    if len(self._in_flight) >= MAX_IN_FLIGHT:
                        await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                    await self._commit_marks()
                except Exception as exc:
                    logger.exception("intake failed")
                    give_up("the intake failed", exc)
                    await self.app.crash(exc)
                    return

    async def _make_durable(self, batch: Batch) -> None:
        try:
            await self.intake.commit(batch)
        except Exception as exc:
            # Effects may be half made: stop the worker; after a restart the
            # batch comes again and the marks repair it.
            logger.exception("intake could not make a batch durable")
            give_up("the intake could not make a batch durable (the broker refused or did not answer)", exc)
            await self.app.crash(exc)

    async def _commit_marks(self, *, force: bool = False) -> None:
        """Let the group's committed offsets follow the marks (for lag tools), about once a second."""
        now = time.monotonic()
        if self.consumer is None or (not force and now - self._last_commit < COMMIT_EVERY_S):
            return
        self._last_commit = now
        offsets = {
            TopicPartition(self.intake.incoming_topic, p): state.mark.offset + 1
            for p, state in self.intake.states.items()
            if state.mark.offset >= 0
        }
        offsets = {tp: o for tp, o in offsets.items() if self._committed.get(tp) != o}
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
            self._committed.update(offsets)
        except Exception:  # the marks are what counts; a missed commit only shows as lag
            logger.warning("intake: committing %s failed", offsets, exc_info=True)

