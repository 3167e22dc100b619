"""A Kafka-transactions variant of the intake's batch step, for bench_intake.py only (docs/decisions.md).

Everything but the making durable is the production intake's: the same
consumer loop (``IntakeService``: getmany of up to 4,000 records, up to 4
batches in hand), the same decisions (``Intake.decide``), the same records
out (``Batch.entries``, ``Batch.produce``, the marks, the replies). Only
``commit`` differs: instead of today's three acknowledged steps (entries;
appends, rejections, forwards; marks and replies), one transaction per batch:

    begin; send entries and effects together; then the marks (they hold
    the appends' end, so they wait for those acks, as today) and the
    replies; send the batch's incoming offsets to the transaction (the
    intake's group); commit

The marks stay so that taking over a partition works as today (a worker
of the benchmark can be given partitions again after a rebalance on a busy
machine). One transactional producer per worker (fencing
a zombie per incoming partition would need one per partition, see
docs/decisions.md); transactions of one producer cannot overlap, so the
batches' commits take turns, while the next batches are being decided.

``run_worker`` is `hub worker` with this intake in place of the production one;
``compare`` runs both, alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from intake_load import (
    PUBLISHERS,
    CpuMeter,
    event,
    produce,
    register_publishers,
    total_end,
    wait_for_total,
)
from support import HubProcess, make_settings

from agents.intake import Intake, IntakeService
from agents.intake.consumer import intake_producer
from agents.intake.durable import Batch, Outgoing
from agents.intake.wire import intake_group
from hub_stream.events.intake_rules import mark_key
from hub_stream.events.records import partition_for
from hub_stream.platform import metrics
from hub_stream.platform.faust_app import HubApp, HubTopics
from hub_stream.platform.outages import DependencyUnavailable
from hub_stream.platform.request_reply import RpcClient, RpcTimeout, encode_reply
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics

BENCH_INTAKE = Path(__file__).resolve().with_name("bench_intake.py")


class TransactionalIntake(Intake):
    """``Intake`` whose ``commit`` makes a batch durable in one Kafka transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turn = asyncio.Lock()  # one transaction at a time per producer

    async def commit(self, batch: Batch) -> None:
        stages = batch.stages
        assert stages is not None and self.producer is not None
        producer = self.producer
        try:
            if batch.after is not None:
                await batch.after.done  # in batch order; a failed batch fails the ones after it
            async with self.turn:
                await producer.begin_transaction()
                # Nothing is visible before the commit: entries and effects go together. The marks
                # (as today: the take-over code is unchanged) need the appends' offsets.
                _, ends = await asyncio.gather(self._send_all(batch.entries), self._send_all(batch.produce))
                marks = []
                for partition, last in batch.last_event.items():
                    state = self.states[partition]
                    state.mark = state.mark.advanced(last.message.offset, ends.get(partition, 0), state.floor_ms)
                    state.tail_events -= batch.pending_events
                    state.tail_deleted -= batch.pending_markers
                    marks.append((last, mark_key(partition), state.mark.to_json()))
                replies = self._table_writes(marks) + [
                    Outgoing(self.replies_topic, request.reply_partition, request.reply_to.encode(), *encode_reply(request, reply))
                    for request, reply in batch.replies
                    if request.reply_to and request.reply_partition is not None
                ]
                await self._send_all(replies)
                offsets = {
                    TopicPartition(self.incoming_topic, p): last.message.offset + 1 for p, last in batch.last_event.items()
                }
                await producer.send_offsets_to_transaction(offsets, intake_group(self.settings))
                await producer.commit_transaction()
            for future in (stages.entries, stages.appends, stages.done):
                future.set_result(None)
        except BaseException as exc:
            stages.fail(exc)
            raise
        finally:
            if self._last_stages is stages:
                self._last_stages = None
        for outcome, n in batch.outcomes.items():
            metrics.EVENTS.labels(outcome).inc(n)


class TransactionalIntakeService(IntakeService):
    """``IntakeService`` with a transactional producer; the group's offsets move only in transactions."""

    async def on_start(self) -> None:
        await super().on_start()
        assert self.intake.producer is not None
        await self.intake.producer.stop()  # the production one: replaced by a transactional one
        s = self.intake.settings
        self.intake.producer = intake_producer(s, transactional_id=f"{s.app_id}-intake-txn")
        await self.intake.producer.start()

    async def _commit_marks(self, *, force: bool = False) -> None:
        return None  # committed with each transaction


def register(app: HubApp, topics: HubTopics) -> Intake:
    intake = TransactionalIntake(app.hub_settings)
    app.add_dependency(TransactionalIntakeService(app, intake, beacon=app.beacon))
    return intake


def run_worker() -> None:
    """`hub worker` (settings from the environment) with the transactional intake."""
    import agents.intake
    from hub_stream import cli

    agents.intake.register = register
    raise SystemExit(cli.main(["worker"]))


async def compare(bootstrap: str, dsn: str, args: argparse.Namespace, tmp: Path, broker_pid: int | None) -> None:
    """bench_intake.py ``--transactions``: the crash-order protocol against a transaction per batch, same records, alternating."""
    rates: dict[str, list[float]] = {"protocol": [], "transactions": []}
    docs = [event(PUBLISHERS[i % len(PUBLISHERS)], i) for i in range(args.events)]
    await register_publishers(dsn)
    print(f"broker {bootstrap}; {args.events} events from the stream per round, a new worker on new topics each time")
    for round_ in range(1, args.transactions + 1):
        for name, rates_of in rates.items():
            settings = make_settings(bootstrap, dsn, tmp, log_level="WARNING")
            await ensure_topics(settings)
            argv = [sys.executable, str(BENCH_INTAKE), "--run-transactional-worker"] if name == "transactions" else None
            worker = HubProcess("worker", settings, tmp / f"{name}{round_}.log", argv=argv, PYTHONPATH=str(BENCH_INTAKE.parents[1]))
            try:
                await intake_answers(settings, worker)
                pings = await total_end(settings, settings.topic("events.incoming"), settings.events_partitions)
                meter = CpuMeter({"worker": worker.pid, "broker": broker_pid})
                started = time.perf_counter()
                producing = asyncio.create_task(produce(settings, settings.topic("events.incoming"), docs))
                if name == "protocol":  # done: every append acknowledged (the marks follow)
                    await wait_for_total(settings, settings.topic("events"), settings.events_partitions, args.events, 900, [worker])
                else:  # done: every transaction committed (its offsets are the group's)
                    await wait_for_committed(settings, pings + args.events, 900, worker)
                elapsed = time.perf_counter() - started
                cpu = meter.report(args.events, "event")  # while the worker is there to count
                await producing
            finally:
                worker.stop()
            rates_of.append(args.events / elapsed)
            print(f"  round {round_} {name:<12} {elapsed:6.2f} s  {args.events / elapsed:9,.0f} events/s  load average {os.getloadavg()[0]:.2f}")
            print(cpu)
    protocol, transactions = statistics.median(rates["protocol"]), statistics.median(rates["transactions"])
    print(f"  medians: protocol {protocol:,.0f} events/s, transactions {transactions:,.0f} events/s;"
          f" transactions / protocol: {transactions / protocol:.2f}")


async def intake_answers(settings: HubSettings, worker: HubProcess, timeout_s: float = 180) -> None:
    """Wait until the worker's intake answers a ping on every incoming partition."""
    keys = {partition_for(p, settings.events_partitions): p for p in PUBLISHERS}
    client = RpcClient(settings)
    await client.start()
    deadline = time.monotonic() + timeout_s
    try:
        for key in keys.values():
            while True:
                try:
                    await client.request(settings.topic("events.incoming"), key, "ping", timeout=3)
                    break
                except (RpcTimeout, DependencyUnavailable):
                    if worker.process.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"the intake did not answer:\n{worker.log_tail()}") from None
    finally:
        await client.stop()


async def wait_for_committed(settings: HubSettings, want: int, timeout_s: float, worker: HubProcess) -> None:
    """Until the intake group's committed offsets on the incoming topic add up to ``want`` records."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    topic = settings.topic("events.incoming")
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            committed = await admin.list_consumer_group_offsets(intake_group(settings))
            if sum(o.offset for tp, o in committed.items() if tp.topic == topic) >= want:
                return
            if worker.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the transactional intake did not commit {want} records:\n{worker.log_tail()}")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
