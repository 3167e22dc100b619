"""Deciding a batch: every incoming record's outcome, and the writes that make it so."""

from __future__ import annotations

import json
import logging
from typing import Any

from agents.intake.base import IntakeBase
from agents.intake.durable import Batch, Outgoing, Stages
from agents.intake.wire import (
    H_FORWARDED_FROM,
    H_REJECT_DETAILS,
    H_REJECT_MESSAGE,
    H_REJECT_REASON,
    H_SOURCE_OFFSET,
    H_SOURCE_PARTITION,
    H_SOURCE_TIMESTAMP,
    H_SOURCE_TOPIC,
    MAX_DETAILS_BYTES,
    WORKER_ID,
    EventT,
    bare_request,
    header_list,
    header_value,
    home_partition,
)
from hub_stream.events.intake_rules import (
    PublishedEntry,
    Rejection,
    ValidEvent,
    decide_delete,
    decide_publish,
    decode_event_record,
    entry_key,
    id_key,
    not_found,
    publisher_of,
    stored_event,
    unknown_program,
    utc_text,
    validate_or_reject,
)
from hub_stream.events.records import encode_deletion, encode_event
from hub_stream.platform import metrics
from hub_stream.platform.request_reply import (
    H_REPLY_TO,
    Reply,
    Request,
    decode_request,
)

logger = logging.getLogger(__name__)


class RecordDecisions(IntakeBase):
    """Per-record decisions of a batch (part of ``Intake``)."""

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
        batch.after, batch.stages = self._last_stages, Stages()
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
            if home_partition(decoded.publisher, self.partitions) == message.partition:
                publishers.add(decoded.publisher)
        return publishers

    def _handle(self, event: EventT, batch: Batch) -> None:
        headers = header_list(event.message.headers)
        if header_value(headers, H_REPLY_TO) is not None:
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
            bare = bare_request(event, headers)
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
        target = home_partition(publisher, self.partitions)
        message = event.message
        if message.partition == target:
            return False
        origin = f"{message.topic}/{message.partition}/{message.offset}".encode()
        forwarded = [*headers, (H_FORWARDED_FROM, origin)]
        # The producer's key, value and headers as they were (docs/events.md): only the partition changes.
        batch.produce.append(Outgoing(self.incoming_topic, target, message.key, message.value, forwarded))
        metrics.FORWARDED_RECORDS.inc()  # counted, not logged: a producer with another partitioner forwards most records
        return True

    def _reject(self, event: EventT, headers: list[tuple[str, bytes]], rejection: Rejection, batch: Batch) -> None:
        """The original record, byte for byte, to the rejected topic, with the reason in headers."""
        message = event.message
        details = json.dumps(rejection.details, ensure_ascii=False).encode()
        if len(details) > MAX_DETAILS_BYTES:  # a record must stay within the broker's limit
            details = json.dumps({"truncated": True, "errors": len(rejection.details.get("errors", []))}).encode()
        metrics.REJECTED_RECORDS.labels(rejection.code).inc()
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
        headers = header_list(event.message.headers)
        problem = Rejection("internal_error", "The intake failed on this record; it has been logged.", {})
        if header_value(headers, H_REPLY_TO) is not None:
            batch.replies.append((bare_request(event, headers), Reply(500, problem.problem())))
        else:
            self._reject(event, headers, problem, batch)
