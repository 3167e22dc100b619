"""The intake agent: the only writer of the intake table and of hub.events.

It reads the incoming topic (key = PublisherProgramId) in batches, with a
plain aiokafka consumer of its own consumer group (``{app_id}-intake``), not
a Faust stream: Faust's per-record delivery path costs ~270 µs a record here
and held the intake near 1,300 events/s; ``getmany`` hands over thousands of
records at once. Its state (dedupe entries and per-partition marks) is a dict
per owned partition, loaded from the intake changelog topic when the
partition is assigned and written through to it in bulk (docs/events.md). A
record
is either a stream publisher's event JSON (no reply headers), or a request of
the API in hub_stream.rpc format:

- ``publish`` {event fields} -> 201 {EventId} | 200 {EventId} | 409 | 400 | 413
- ``delete`` {EventId} -> 204 | 404
- ``deleted`` {EventIds} -> 200 {Deleted: [...]}: which of them are deleted (for GET)
- ``ping`` -> 200

Both kinds of publish go through one path: ``hub_stream.intake`` validates
and decides; invalid stream records and stream conflicts go to the rejected
topic with the reason and the original bytes. A stream record whose
publisher is not in the programs registry (PostgreSQL) is rejected too
(``unknown_program``), as the API refuses it with a 422: the registry is
asked once per batch, and a yes is remembered for a few seconds
(``PublisherRegistry``).

A batch is made durable in an order that survives a SIGKILL anywhere
(docs/events.md, "Crash safety"), each step acknowledged by the broker
before the next: table entries; hub.events appends, rejections and
forwards; the per-partition marks and the replies. A partition is read from
its mark on when assigned, so the mark, not the group's committed offset,
says where work resumes (the committed offset follows it, for lag tools).
Offsets the consumer skipped, should any be, are read from the topic
directly (``Intake._without_gaps``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import mode
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ConsumerStoppedError

from hub_stream import db, metrics
from hub_stream.event_reads import EventLogReader
from hub_stream.event_records import decode_record, encode_deletion, encode_event, partition_for
from hub_stream.faust_app import HubApp, HubTopics
from hub_stream.idempotence import supports_idempotence
from hub_stream.intake import (
    PartitionMark,
    PublishedEntry,
    Rejection,
    ValidEvent,
    decide_delete,
    decide_publish,
    decode_event_record,
    entry_key,
    id_key,
    mark_key,
    next_created_ms,
    not_found,
    publisher_of,
    stored_event,
    unknown_program,
    utc_text,
    validate_or_reject,
)
from hub_stream.programs import PublisherRegistry, registered_programs
from hub_stream.rpc import (
    H_CORRELATION,
    H_REPLY_PARTITION,
    H_REPLY_TO,
    Reply,
    Request,
    decode_request,
    encode_reply,
)
from hub_stream.settings import HubSettings
from hub_stream.topics import INTAKE_TABLE, table_topics

logger = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
GROUP_MAX = 4000  # records made durable together (at most one getmany)
POLL_TIMEOUT_MS = 1000
MAX_IN_FLIGHT = 4  # batches being made durable at once (Intake.commit keeps their steps in order)
COMMIT_EVERY_S = 1.0  # the group's committed offsets follow the marks this often (for lag tools)
PRODUCE_BATCH_BYTES = 512 * 1024  # a larger single record still goes, alone in its batch
MAX_DETAILS_BYTES = 8 * 1024

H_REJECT_REASON = "hub-reject-reason"
H_REJECT_MESSAGE = "hub-reject-message"
H_REJECT_DETAILS = "hub-reject-details"
H_SOURCE_TOPIC = "hub-source-topic"
H_SOURCE_PARTITION = "hub-source-partition"
H_SOURCE_OFFSET = "hub-source-offset"
H_SOURCE_TIMESTAMP = "hub-source-timestamp"
H_FORWARDED_FROM = "hub-forwarded-from"


EventT = Any  # an incoming record as the intake sees it: ``_RecordEvent``


def intake_group(settings: HubSettings) -> str:
    """The intake's consumer group: its own, beside the Faust app's (other members, other assignor)."""
    return f"{settings.app_id}-intake"


_COMPACT = json.JSONEncoder(separators=(",", ":"))  # one encoder: json.dumps with options builds one a call


def changelog_bytes(obj: Any) -> bytes:
    """A table key or value as Faust's json codec writes it (compact, ASCII; plain JSON types only)."""
    return _COMPACT.encode(obj).encode()


@functools.lru_cache(maxsize=4096)
def _home_partition(publisher: str, partitions: int) -> int:
    return partition_for(publisher, partitions)


def _headers(raw: Any) -> list[tuple[str, bytes]]:
    return [(str(k), bytes(v) if v is not None else b"") for k, v in (raw or ())]


def _header(headers: list[tuple[str, bytes]], name: str) -> str | None:
    return next((v.decode("utf-8", "replace") for k, v in headers if k == name), None)


@dataclass
class PartitionState:
    """What the worker knows of one incoming partition (= hub.events partition) it owns."""

    mark: PartitionMark
    floor_ms: int  # the last CreatedUtc (ms) given out in the partition
    # EventIds appended after the mark: found on hub.events at assignment, or
    # appended by a batch still being made durable (a failed batch stops the
    # worker, so counting those as appended is safe). A batch's own leave
    # once its mark covers them.
    tail_events: set[str]
    tail_deleted: set[str]  # EventIds with a deletion marker after the mark, likewise
    next_offset: int = 0  # the incoming offset expected next: every one below is done or in hand

    def created_ms(self) -> int:
        self.floor_ms = next_created_ms(int(time.time() * 1000), self.floor_ms)
        return self.floor_ms


@dataclass(frozen=True)
class Outgoing:
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int | None = None


@dataclass
class Batch:
    """What one batch decided, made durable by ``Intake._commit`` in a safe order."""

    writes: list[tuple[EventT, str, Any]] = field(default_factory=list)
    overlay: dict[str, Any] = field(default_factory=dict)  # this batch's writes, seen by its later records
    produce: list[Outgoing] = field(default_factory=list)  # appends, rejections, forwards (in order)
    replies: list[tuple[Request, Reply]] = field(default_factory=list)
    pending_events: set[str] = field(default_factory=set)
    pending_markers: set[str] = field(default_factory=set)
    last_event: dict[int, EventT] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    registered: set[str] = field(default_factory=set)  # publishers of its stream records found registered
    entries: list[Outgoing] = field(default_factory=list)  # the changelog records of ``writes``
    after: _Stages | None = None  # the batch decided before this one, while it is not durable
    stages: _Stages | None = None

    def write(self, event: EventT, key: str, value: Any) -> None:
        self.writes.append((event, key, value))
        self.overlay[key] = value


class _Stages:
    """When each step of a batch's ``_commit`` is acknowledged (or failed)."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.entries: asyncio.Future[None] = loop.create_future()
        self.appends: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()

    def fail(self, exc: BaseException) -> None:
        """Fail every step not yet acknowledged, so the batches after this one fail too."""
        reason = exc if isinstance(exc, Exception) else RuntimeError("batch cancelled")
        for future in (self.entries, self.appends, self.done):
            if not future.done():
                future.set_exception(reason)
                future.exception()  # marked retrieved: the batches after this one report it


class Intake:
    """Batches of incoming records -> decisions -> durable effects -> replies."""

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
        self._last_stages: _Stages | None = None  # of the last batch decided, until it is durable

    async def _registered_programs(self, program_ids: list[str]) -> set[str]:
        if self.pool is None:
            self.pool = await db.create_pool(self.settings)
        return await registered_programs(self.pool, program_ids)

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()

    # --- partition state -------------------------------------------------------

    def forget(self, partition: int) -> None:
        """A partition this worker no longer owns: another may write it from now on."""
        self.states.pop(partition, None)
        self.stores.pop(partition, None)

    async def take_over(self, partition: int) -> PartitionState:
        """Load a partition's table entries and state; from now on this worker is its only writer."""
        self.forget(partition)
        async with self._reader() as reader:
            self.stores[partition] = await self._load_store(reader, partition)
            state = self.states[partition] = await self._load_state(reader, partition)
        return state

    def _reader(self) -> EventLogReader:
        s = self.settings
        return EventLogReader(s.kafka_bootstrap or "", fetch_max_wait_ms=s.fetch_max_wait_ms)

    async def _load_store(self, reader: EventLogReader, partition: int) -> dict[str, Any]:
        """The partition's changelog, replayed: the last value of each key (a null value deletes it)."""
        store: dict[str, Any] = {}
        tp = TopicPartition(self.changelog_topic, partition)
        started = time.perf_counter()
        records = 0
        begin, end = await reader.bounds(tp)
        async for record in reader.records(tp, begin, end):
            records += 1
            if record.key is None:
                continue
            key = json.loads(record.key)
            if record.value is None:
                store.pop(key, None)
            else:
                store[key] = json.loads(record.value)
        logger.info(
            "intake partition %d: %d keys from %d changelog records in %.2f s",
            partition,
            len(store),
            records,
            time.perf_counter() - started,
            extra={"partition": partition},
        )
        return store

    async def _load_state(self, reader: EventLogReader, partition: int) -> PartitionState:
        """The mark from the table, and hub.events after it: EventIds and markers there, the last timestamp."""
        mark = PartitionMark.from_json(self.stores[partition].get(mark_key(partition)))
        tp = TopicPartition(self.events_topic, partition)
        events: set[str] = set()
        deleted: set[str] = set()
        last_ms = 0
        begin, end = await reader.bounds(tp)
        # At least the last record, for its timestamp: the floor of CreatedUtc.
        start = max(begin, min(mark.events_end, end - 1))
        async for record in reader.records(tp, start, end):
            last_ms = max(last_ms, record.timestamp)
            stored = decode_record(record)
            if stored is None:
                continue
            if stored.deleted_event_id:
                deleted.add(stored.deleted_event_id)
            elif stored.event:
                events.add(str(stored.event.get("EventId")))
        logger.info(
            "intake partition %d: mark at incoming offset %d, hub.events %d..%d read (%d events, %d deletions after the mark)",
            partition,
            mark.offset,
            start,
            end,
            len(events),
            len(deleted),
            extra={"partition": partition},
        )
        return PartitionState(mark, max(mark.created_ms, last_ms), events, deleted, mark.offset + 1)

    # --- one batch -------------------------------------------------------------

    async def decide(self, events: list[EventT]) -> Batch:
        """Every record's outcome, and the writes that make it so; the partitions' state already counts them.

        Runs while earlier batches are still being made durable (``commit``):
        their entries are in the stores and their appends in the states'
        tails, so a record that repeats one of theirs is a duplicate. The
        batch joins the chain ``settled`` waits for here, before its commit
        task first runs; every decided batch must be committed.

        Before any record is handled, the publishers of its stream records
        are checked against the programs registry in one lookup; if the
        registry does not answer this raises (the worker stops, nothing of
        the batch is made durable, and it comes again after a restart).
        """
        events = [e for e in events if e.message.partition in self.states]  # never write a partition not owned
        batch = Batch()
        events = await self._without_gaps(events)
        batch.registered = await self.publishers.registered(self._decode_stream_records(events))
        for event in events:
            batch.last_event[event.message.partition] = event
            try:
                self._handle(event, batch)
            except Exception:
                logger.exception(
                    "intake failed on %s[%d]@%d",
                    event.message.topic,
                    event.message.partition,
                    event.message.offset,
                    extra={"partition": event.message.partition, "offset": event.message.offset},
                )
                self._fail(event, batch)
        batch.entries = self._table_writes(batch.writes)
        batch.after, batch.stages = self._last_stages, _Stages()
        self._last_stages = batch.stages
        return batch

    def _decode_stream_records(self, events: list[EventT]) -> set[str]:
        """Decode every stream record once (``_handle_stream_record`` takes the result); their publishers at home.

        Only a record on its publisher's own partition is checked against the
        registry: one on another partition is forwarded as it is and checked
        there, where its publisher's dedupe entries are.
        """
        publishers: set[str] = set()
        for event in events:
            message = event.message
            if any(k == H_REPLY_TO for k, _ in message.headers or ()):
                continue
            try:
                event.decoded = decoded = decode_event_record(message.value)
            except Rejection as rejection:
                event.decoded = rejection
                continue
            except Exception:  # a bug, not the record's fault: decoded again by the handler, which reports it
                logger.debug("intake: decoding %s[%d]@%d failed", message.topic, message.partition, message.offset, exc_info=True)
                continue
            if _home_partition(decoded.publisher, self.partitions) == message.partition:
                publishers.add(decoded.publisher)
        return publishers

    async def commit(self, batch: Batch) -> None:
        """Make a decided batch durable, in step with the batches before it (``_commit``)."""
        assert batch.stages is not None, "commit takes a batch from decide"
        try:
            await self._commit(batch, batch.after, batch.stages)
        except BaseException as exc:
            batch.stages.fail(exc)
            raise
        finally:
            if self._last_stages is batch.stages:
                self._last_stages = None
        for outcome, n in batch.outcomes.items():
            metrics.EVENTS.labels(outcome).inc(n)

    async def settled(self) -> None:
        """Return once every batch handed to ``commit`` is durable (or has failed)."""
        if self._last_stages is not None:
            await asyncio.gather(self._last_stages.done, return_exceptions=True)

    async def _without_gaps(self, events: list[EventT]) -> list[Any]:
        """The batch, with any incoming offset the consumer skipped read directly and put in its place.

        Faust drops a record it fetched while flow was stopped or under an old
        generation (a rebalance), and its commit then lets the committed
        offset step over exactly one unacked record (``_new_offset`` allows
        ``min(acked) - committed == 1``): the record would be lost. Every
        offset from the partition's mark on must reach us, so a hole is read
        from the topic; processing a record twice is harmless (idempotent).
        """
        by_partition: dict[int, list[Any]] = {}
        for event in events:
            by_partition.setdefault(event.message.partition, []).append(event)
        complete: list[Any] = []
        for partition, items in by_partition.items():
            state = self.states[partition]
            for event in items:
                offset = event.message.offset
                if offset > state.next_offset:
                    complete.extend(await self._read_hole(partition, state.next_offset, offset))
                complete.append(event)
                state.next_offset = max(state.next_offset, offset + 1)
        return complete

    async def _read_hole(self, partition: int, start: int, end: int) -> list[Any]:
        tp = TopicPartition(self.incoming_topic, partition)
        async with self._reader() as reader:
            records = [_RecordEvent(self.incoming_topic, r) async for r in reader.records(tp, start, end)]
        logger.warning(
            "incoming %d: offsets %d..%d did not come through the consumer; read %d record(s) directly",
            partition,
            start,
            end - 1,
            len(records),
            extra={"partition": partition, "offset": start},
        )
        return records

    def _handle(self, event: EventT, batch: Batch) -> None:
        headers = _headers(event.message.headers)
        if _header(headers, H_REPLY_TO) is not None:
            self._handle_request(event, headers, batch)
        else:
            self._handle_stream_record(event, headers, batch)

    def _handle_stream_record(self, event: EventT, headers: list[tuple[str, bytes]], batch: Batch) -> None:
        decoded = event.decoded
        if decoded is None:
            try:
                decoded = decode_event_record(event.message.value)
            except Rejection as rejection:
                decoded = rejection
        if isinstance(decoded, Rejection):
            self._reject(event, headers, decoded, batch)
            return
        valid = decoded
        if self._forwarded(event, headers, valid.publisher, batch):
            return
        if valid.publisher not in batch.registered and self._get(
            batch, event.message.partition, entry_key(valid.publisher, valid.publisher_event_id)
        ) is None:
            # A new event of an unregistered publisher. A record that has an
            # entry already was accepted before (a redelivery, maybe one whose
            # append a crash cut short) and goes on to the dedupe decision.
            self._reject(event, headers, unknown_program(valid.publisher), batch)
            return
        conflict = self._publish(event, valid, batch)
        if conflict is not None:
            self._reject(event, headers, conflict, batch)

    def _handle_request(self, event: EventT, headers: list[tuple[str, bytes]], batch: Batch) -> None:
        message = event.message
        try:
            request = decode_request(message.key, message.value, headers, partition=message.partition, offset=message.offset)
        except ValueError as exc:
            bare = _bare_request(event, headers)
            batch.replies.append((bare, Reply(400, {"error": "malformed_request", "message": str(exc), "details": {}})))
            return
        if request.kind == "publish":
            self._publish_request(event, headers, request, batch)
        elif request.kind == "delete":
            self._delete_request(event, headers, request, batch)
        elif request.kind == "deleted":
            self._deleted_request(event, headers, request, batch)
        elif request.kind == "ping":
            batch.replies.append((request, Reply(200, {"worker": WORKER_ID, "partition": message.partition})))
        else:
            problem = {"error": "unknown_request", "message": f"No handler for {request.kind!r}.", "details": {}}
            batch.replies.append((request, Reply(400, problem)))

    def _publish_request(self, event: EventT, headers: list[tuple[str, bytes]], request: Request, batch: Batch) -> None:
        try:
            valid = validate_or_reject(request.body)
        except Rejection as rejection:
            status = 413 if rejection.code == "event_too_large" else 400
            batch.replies.append((request, Reply(status, rejection.problem())))
            batch.outcomes["rejected"] += 1
            return
        if self._forwarded(event, headers, valid.publisher, batch):
            return
        conflict = self._publish(event, valid, batch, request)
        if conflict is not None:
            batch.replies.append((request, Reply(409, conflict.problem())))

    def _publish(self, event: EventT, valid: ValidEvent, batch: Batch, request: Request | None = None) -> Rejection | None:
        """Deduplicate and plan the writes; returns the rejection of a conflict (None otherwise)."""
        partition, offset = event.message.partition, event.message.offset
        state = self.states[partition]
        key = entry_key(valid.publisher, valid.publisher_event_id)
        entry = PublishedEntry.from_json(self._get(batch, partition, key))

        def appended(found: PublishedEntry) -> bool:
            return (
                found.offset <= state.mark.offset
                or found.event_id in state.tail_events
            )

        decision = decide_publish(entry, valid, offset, appended=appended)
        batch.outcomes[decision.outcome] += 1
        if decision.rejection is not None:
            return decision.rejection
        assert decision.event_id is not None
        if decision.write_entry:
            batch.write(event, key, PublishedEntry(decision.event_id, valid.content_hash, offset).to_json())
            batch.write(event, id_key(decision.event_id), {"PublisherEventId": valid.publisher_event_id})
        if decision.append and entry is not None:
            logger.info(
                "appending %s again: its first append did not complete (incoming %d@%d)",
                decision.event_id,
                partition,
                offset,
                extra={"partition": partition, "offset": offset},
            )
        if decision.append:
            created = state.created_ms()
            k, v, h = encode_event(stored_event(valid, decision.event_id, created))
            batch.produce.append(Outgoing(self.events_topic, partition, k, v, h, created))
            batch.pending_events.add(decision.event_id)
            state.tail_events.add(decision.event_id)
        if request is not None:
            batch.replies.append((request, Reply(decision.status, {"EventId": decision.event_id})))
        return None

    def _delete_request(self, event: EventT, headers: list[tuple[str, bytes]], request: Request, batch: Batch) -> None:
        event_id = str(request.body.get("EventId") or "")
        publisher = publisher_of(event_id)
        if publisher is None:
            batch.replies.append((request, Reply(404, not_found(event_id))))
            return
        if self._forwarded(event, headers, publisher, batch):
            return
        partition, offset = event.message.partition, event.message.offset
        state = self.states[partition]
        key, entry = self._entry_of(batch, partition, publisher, event_id)

        def marker_appended(found: PublishedEntry) -> bool:
            return (
                (found.delete_offset is not None and found.delete_offset <= state.mark.offset)
                or event_id in state.tail_deleted
            )

        decision = decide_delete(entry, event_id, request.command_id, marker_appended=marker_appended)
        if decision.write_entry or decision.append_marker:
            assert entry is not None and key is not None
            deleted_ms = state.created_ms()
            if decision.write_entry:
                batch.write(event, key, entry.deleted(utc_text(deleted_ms), request.command_id, offset).to_json())
            k, v, h = encode_deletion(publisher, event_id, utc_text(deleted_ms))
            batch.produce.append(Outgoing(self.events_topic, partition, k, v, h, deleted_ms))
            batch.pending_markers.add(event_id)
            state.tail_deleted.add(event_id)
        reply = Reply(204) if decision.status == 204 else Reply(404, not_found(event_id))
        batch.replies.append((request, reply))

    def _deleted_request(self, event: EventT, headers: list[tuple[str, bytes]], request: Request, batch: Batch) -> None:
        if self._forwarded(event, headers, request.key, batch):
            return
        asked = request.body.get("EventIds")
        deleted = []
        for event_id in asked if isinstance(asked, list) else []:
            if publisher_of(str(event_id)) != request.key:
                continue
            _, entry = self._entry_of(batch, event.message.partition, request.key, str(event_id))
            if entry is not None and entry.event_id == event_id and entry.deleted_utc is not None:
                deleted.append(event_id)
        batch.replies.append((request, Reply(200, {"Deleted": deleted})))

    def _entry_of(
        self, batch: Batch, partition: int, publisher: str, event_id: str
    ) -> tuple[str | None, PublishedEntry | None]:
        ref = self._get(batch, partition, id_key(event_id))
        if not isinstance(ref, dict) or "PublisherEventId" not in ref:
            return None, None
        key = entry_key(publisher, str(ref["PublisherEventId"]))
        return key, PublishedEntry.from_json(self._get(batch, partition, key))

    def _get(self, batch: Batch, partition: int, key: str) -> Any:
        """This batch's value of ``key`` if it wrote one, else the partition's table entry."""
        return batch.overlay[key] if key in batch.overlay else self.stores[partition].get(key)

    # --- rejections and forwards ---------------------------------------------

    def _forwarded(self, event: EventT, headers: list[tuple[str, bytes]], publisher: str, batch: Batch) -> bool:
        """Send a record that came in on another partition than its publisher's to the right one.

        A publisher's dedupe entries, clock and hub.events partition belong to
        one partition; a producer with another partitioner (librdkafka's
        default is not Kafka's) would otherwise split them.
        """
        target = _home_partition(publisher, self.partitions)
        message = event.message
        if message.partition == target:
            return False
        origin = f"{message.topic}/{message.partition}/{message.offset}".encode()
        forwarded = [*headers, (H_FORWARDED_FROM, origin)]
        batch.produce.append(Outgoing(self.incoming_topic, target, publisher.encode(), message.value, forwarded))
        logger.info("forwarding %s to partition %d, where %r's records belong", origin.decode(), target, publisher)
        return True

    def _reject(self, event: EventT, headers: list[tuple[str, bytes]], rejection: Rejection, batch: Batch) -> None:
        """The original record, byte for byte, to the rejected topic, with the reason in headers."""
        message = event.message
        details = json.dumps(rejection.details, ensure_ascii=False).encode()
        if len(details) > MAX_DETAILS_BYTES:  # a record must stay within the broker's limit
            details = json.dumps({"truncated": True, "errors": len(rejection.details.get("errors", []))}).encode()
        extra = [
            (H_REJECT_REASON, rejection.code.encode()),
            (H_REJECT_MESSAGE, rejection.message[:1000].encode()),
            (H_REJECT_DETAILS, details),
            (H_SOURCE_TOPIC, str(message.topic).encode()),
            (H_SOURCE_PARTITION, str(message.partition).encode()),
            (H_SOURCE_OFFSET, str(message.offset).encode()),
            (H_SOURCE_TIMESTAMP, str(int(message.timestamp * 1000)).encode()),
        ]
        # Partition by source partition: one source's rejections stay in order.
        target = message.partition % self.rejected_partitions
        batch.produce.append(Outgoing(self.rejected_topic, target, message.key, message.value, [*headers, *extra]))
        if rejection.code not in ("duplicate_publisher_event_id", "publisher_event_deleted"):
            batch.outcomes["rejected"] += 1  # conflicts were counted by the decision
        logger.info(
            "rejected %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            rejection.code,
            extra={"topic": message.topic, "partition": message.partition, "offset": message.offset},
        )

    def _fail(self, event: EventT, batch: Batch) -> None:
        """A record the intake itself failed on: a 500 reply, or the rejected topic; never silence."""
        headers = _headers(event.message.headers)
        problem = Rejection("internal_error", "The intake failed on this record; it has been logged.", {})
        if _header(headers, H_REPLY_TO) is not None:
            batch.replies.append((_bare_request(event, headers), Reply(500, problem.problem())))
        else:
            self._reject(event, headers, problem, batch)

    # --- making a batch durable ----------------------------------------------------

    async def _commit(self, batch: Batch, previous: _Stages | None, stages: _Stages) -> None:
        """Entries; then appends, rejections, forwards; then marks and replies: each step acked before the next.

        Batches overlap: a batch's step starts once its own previous step and
        the same step of the batch before it are acknowledged. So whatever a
        crash leaves durable is, step by step, a prefix of the batches, which
        is what the repair after a restart relies on (docs/events.md).
        """
        if previous is not None:
            await previous.entries
        if batch.entries:
            await self._send_all(batch.entries)
        stages.entries.set_result(None)
        if previous is not None:
            await previous.appends
        ends = await self._send_all(batch.produce)
        stages.appends.set_result(None)
        if previous is not None:
            await previous.done
        marks = []
        for partition, last in batch.last_event.items():
            state = self.states[partition]  # still owned: a rebalance waits for ``settled`` first
            # Never backwards: records redelivered from an older committed offset are below the mark.
            state.mark = state.mark.advanced(last.message.offset, ends.get(partition, 0), state.floor_ms)
            state.tail_events -= batch.pending_events  # the mark covers them now
            state.tail_deleted -= batch.pending_markers
            marks.append((last, mark_key(partition), state.mark.to_json()))
        replies = self._table_writes(marks)
        for request, reply in batch.replies:
            if request.reply_to and request.reply_partition is not None:
                value, headers = encode_reply(request, reply)
                replies.append(
                    Outgoing(self.replies_topic, request.reply_partition, request.reply_to.encode(), value, headers)
                )
        await self._send_all(replies)
        stages.done.set_result(None)

    def _table_writes(self, writes: list[tuple[EventT, str, Any]]) -> list[Outgoing]:
        """Write the partition's store now, and return the changelog records to send in bulk.

        The changelog is the store's durable copy: same partition as the
        event, JSON key and value (``changelog_bytes``, the bytes a Faust
        table writes, so the changelog of earlier versions reads the same).
        """
        topic = self.changelog_topic
        records = []
        for event, key, value in writes:
            partition = event.message.partition
            self.stores[partition][key] = value
            records.append(Outgoing(topic, partition, changelog_bytes(key), changelog_bytes(value), []))
        return records

    async def _send_all(self, records: list[Outgoing]) -> dict[int, int]:
        """Produce every record, one batch per partition, and wait for all; returns hub.events ends.

        Batches (aiokafka ``send_batch``) cost one future per batch instead of
        one per record; order within a partition is kept.
        """
        assert self.producer is not None, "the intake agent has not started its producer"
        producer = self.producer
        by_partition: dict[tuple[str, int], list[Outgoing]] = {}
        for out in records:
            by_partition.setdefault((out.topic, out.partition), []).append(out)
        sent: list[tuple[str, int, int, asyncio.Future[Any]]] = []
        for (topic, partition), outs in by_partition.items():
            batch, count = producer.create_batch(), 0
            for out in outs:
                if batch.append(key=out.key, value=out.value, timestamp=out.timestamp_ms, headers=out.headers) is None:
                    sent.append((topic, partition, count, await producer.send_batch(batch, topic, partition=partition)))
                    batch, count = producer.create_batch(), 0
                    # An empty batch takes any one record, however large.
                    batch.append(key=out.key, value=out.value, timestamp=out.timestamp_ms, headers=out.headers)
                count += 1
            sent.append((topic, partition, count, await producer.send_batch(batch, topic, partition=partition)))
        results = await asyncio.gather(*(f for *_, f in sent))
        ends: dict[int, int] = {}
        for (topic, partition, count, _), meta in zip(sent, results, strict=True):
            if topic == self.events_topic:
                ends[partition] = max(ends.get(partition, 0), meta.offset + count)
        return ends


class _RecordMessage:
    """The parts of a record the intake reads (named as Faust names a message's)."""

    def __init__(self, topic: str, record: Any) -> None:
        self.topic = topic
        self.partition = record.partition
        self.offset = record.offset
        self.key = record.key
        self.value = record.value
        self.headers = list(record.headers or ())
        self.timestamp = record.timestamp / 1000  # Faust's are in seconds


class _RecordEvent:
    """An incoming record, as the intake handles it."""

    def __init__(self, topic: str, record: Any) -> None:
        self.message = _RecordMessage(topic, record)
        self.key = record.key
        self.value = record.value
        self.decoded: ValidEvent | Rejection | None = None  # a stream record's body, by ``_decode_stream_records``


def _bare_request(event: EventT, headers: list[tuple[str, bytes]]) -> Request:
    """Enough of a request to reply to, when its value could not be read."""
    reply_partition = _header(headers, H_REPLY_PARTITION)
    return Request(
        kind="",
        key=(event.message.key or b"").decode("utf-8", "replace"),
        body={},
        command_id="",
        reply_to=_header(headers, H_REPLY_TO),
        reply_partition=int(reply_partition) if reply_partition and reply_partition.isdigit() else None,
        correlation_id=_header(headers, H_CORRELATION),
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
        self.intake.producer = AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap, acks="all", linger_ms=0, max_batch_size=PRODUCE_BATCH_BYTES,
            enable_idempotence=await supports_idempotence(s.kafka_bootstrap or ""),
        )
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
            states = await asyncio.gather(*(self.intake.take_over(tp.partition) for tp in tps))
            for tp, state in zip(tps, states):
                # From the mark: everything before it is durable. A log that
                # starts later (retention) resets to its start (auto_offset_reset).
                self.consumer.seek(tp, state.next_offset)

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
                events = [_RecordEvent(topic, r) for records in batches.values() for r in records]
                try:
                    if events:
                        batch = await self.intake.decide(events)
                        self._in_flight.append(asyncio.create_task(self._make_durable(batch), name="intake-commit"))
                    self._in_flight = [t for t in self._in_flight if not t.done()]
                    if len(self._in_flight) >= MAX_IN_FLIGHT:
                        await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                    await self._commit_marks()
                except Exception as exc:
                    logger.exception("intake failed; stopping the worker")
                    await self.app.crash(exc)
                    return

    async def _make_durable(self, batch: Batch) -> None:
        try:
            await self.intake.commit(batch)
        except Exception as exc:
            # Effects may be half made: stop the worker; after a restart the
            # batch comes again and the marks repair it.
            logger.exception("intake could not make a batch durable; stopping the worker")
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
        for tp, offset in offsets.items():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - offset))


def register(app: HubApp, topics: HubTopics) -> Intake:
    """Start the intake with ``app``'s worker (see ``IntakeService``)."""
    intake = Intake(app.hub_settings)
    app.add_dependency(IntakeService(app, intake, beacon=app.beacon))
    return intake
