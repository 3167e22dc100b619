"""The records of hub.events: canonical events and deletion markers.

- key: the PublisherProgramId (UTF-8), so one publisher's records are ordered
  in one partition; the partition is Kafka's default (murmur2) of the key,
  the same on every client (``partition_for``).
- an event: header ``hub-kind: event``; value = the canonical event as JSON
  (``EventId``, ``PublisherProgramId``, …, ``CreatedUtc``); record timestamp =
  CreatedUtc in epoch milliseconds.
- a deletion: header ``hub-kind: deleted``; value ``{"EventId", "DeletedUtc"}``.
  The event stays in the log (it is kept forever); readers skip it when a
  marker for it follows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from aiokafka.partitioner import murmur2

KIND_HEADER = "hub-kind"
KIND_EVENT = b"event"
KIND_DELETED = b"deleted"


class StoredEvent(NamedTuple):
    """A record of hub.events: an event, or a deletion marker.

    A named tuple, not a dataclass: a sync makes one per record, and a frozen
    dataclass costs several times more to build.
    """

    offset: int
    publisher: str
    event: dict[str, Any] | None = None  # None for a deletion marker
    deleted_event_id: str | None = None


def partition_for(publisher: str, partitions: int) -> int:
    """The partition of hub.events that holds ``publisher``'s records (Kafka's default partitioner)."""
    return (murmur2(publisher.encode()) & 0x7FFFFFFF) % partitions


def encode_event(event: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of an event record."""
    return (
        str(event["PublisherProgramId"]).encode(),
        json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode(),
        [(KIND_HEADER, KIND_EVENT)],
    )


def encode_deletion(publisher: str, event_id: str, deleted_utc: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a deletion marker."""
    return (
        publisher.encode(),
        json.dumps({"EventId": event_id, "DeletedUtc": deleted_utc}, separators=(",", ":")).encode(),
        [(KIND_HEADER, KIND_DELETED)],
    )


def decode_record(record: Any) -> StoredEvent | None:
    """A StoredEvent from an aiokafka ConsumerRecord of hub.events (None: not ours)."""
    kind = next((v for k, v in (record.headers or ()) if k == KIND_HEADER), KIND_EVENT)
    try:
        doc = json.loads(record.value)
    except (TypeError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    publisher = (record.key or b"").decode("utf-8", "replace")
    if kind == KIND_DELETED:
        return StoredEvent(offset=record.offset, publisher=publisher, deleted_event_id=str(doc.get("EventId")))
    return StoredEvent(offset=record.offset, publisher=publisher, event=doc)


_decode_json = json.JSONDecoder().decode


def decode_publisher_records(records: Iterable[Any], key: bytes) -> list[StoredEvent]:
    """StoredEvents of the records whose key is ``key``, skipping the others and any not ours.

    The range-read path of ``decode_record``, with the per-record costs that
    matter at 100k records taken out: other publishers' records cost one
    bytes comparison, and the kind header is found without a generator.
    """
    out: list[StoredEvent] = []
    publisher = key.decode("utf-8", "replace")
    for record in records:
        if record.key != key:
            continue
        deleted = False
        for name, value in record.headers or ():
            if name == KIND_HEADER:
                deleted = value == KIND_DELETED
                break
        try:
            doc = _decode_json(record.value.decode("utf-8"))
        except (AttributeError, ValueError):  # no value; not UTF-8 or not JSON
            continue
        if not isinstance(doc, dict):
            continue
        if deleted:
            out.append(StoredEvent(record.offset, publisher, None, str(doc.get("EventId"))))
        else:
            out.append(StoredEvent(record.offset, publisher, doc))
    return out


def record_kind(record: Any) -> bytes:
    return next((bytes(v) for k, v in (record.headers or ()) if k == KIND_HEADER), b"event")


def is_deletion(record: Any) -> bool:
    return record_kind(record) == KIND_DELETED
