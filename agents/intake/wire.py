"""How the intake sees records: incoming records, header names, changelog bytes, bare requests."""

from __future__ import annotations

import functools
import json
import os
import socket
from typing import Any

from hub_stream.events.intake_rules import (
    Rejection,
    ValidEvent,
)
from hub_stream.events.records import partition_for
from hub_stream.platform.request_reply import (
    H_CORRELATION,
    H_REPLY_PARTITION,
    H_REPLY_TO,
    Request,
)
from hub_stream.platform.settings import HubSettings

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
MAX_DETAILS_BYTES = 8 * 1024

H_REJECT_REASON = "hub-reject-reason"
H_REJECT_MESSAGE = "hub-reject-message"
H_REJECT_DETAILS = "hub-reject-details"
H_SOURCE_TOPIC = "hub-source-topic"
H_SOURCE_PARTITION = "hub-source-partition"
H_SOURCE_OFFSET = "hub-source-offset"
H_SOURCE_TIMESTAMP = "hub-source-timestamp"
H_FORWARDED_FROM = "hub-forwarded-from"


EventT = Any  # an incoming record as the intake sees it: ``RecordEvent``


def intake_group(settings: HubSettings) -> str:
    """The intake's consumer group: its own, beside the Faust app's (other members, other assignor)."""
    return f"{settings.app_id}-intake"


_COMPACT = json.JSONEncoder(separators=(",", ":"))  # one encoder: json.dumps with options builds one a call


def changelog_bytes(obj: Any) -> bytes:
    """A table key or value as Faust's json codec writes it (compact, ASCII; plain JSON types only)."""
    return _COMPACT.encode(obj).encode()


@functools.lru_cache(maxsize=4096)
def home_partition(publisher: str, partitions: int) -> int:
    return partition_for(publisher, partitions)


def header_list(raw: Any) -> list[tuple[str, bytes]]:
    return [(str(k), bytes(v) if v is not None else b"") for k, v in (raw or ())]


def header_value(headers: list[tuple[str, bytes]], name: str) -> str | None:
    return next((v.decode("utf-8", "replace") for k, v in headers if k == name), None)



class RecordMessage:
    """The parts of a record the intake reads (named as Faust names a message's)."""

    def __init__(self, topic: str, record: Any) -> None:
        self.topic = topic
        self.partition = record.partition
        self.offset = record.offset
        self.key = record.key
        self.value = record.value
        self.headers = list(record.headers or ())
        self.timestamp = record.timestamp / 1000  # Faust's are in seconds


class RecordEvent:
    """An incoming record, as the intake handles it."""

    def __init__(self, topic: str, record: Any) -> None:
        self.message = RecordMessage(topic, record)
        self.key = record.key
        self.value = record.value
        self.decoded: ValidEvent | Rejection | None = None  # a stream record's body, by ``_decode_stream_records``


def bare_request(event: EventT, headers: list[tuple[str, bytes]]) -> Request:
    """Enough of a request to reply to, when its value could not be read."""
    reply_partition = header_value(headers, H_REPLY_PARTITION)
    return Request(
        kind="",
        key=(event.message.key or b"").decode("utf-8", "replace"),
        body={},
        command_id="",
        reply_to=header_value(headers, H_REPLY_TO),
        reply_partition=int(reply_partition) if reply_partition and reply_partition.isdigit() else None,
        correlation_id=header_value(headers, H_CORRELATION),
    )

