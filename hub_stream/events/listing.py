"""Listing one publisher's events page by page (GET /api/events/{programId}).

The records come from ``hub_stream.events.log.EventLogReader``. Record timestamps are CreatedUtc and never
go backwards within a partition (the intake agent keeps them so): a time
becomes an offset by binary search (``hub_stream.events.log.offset_at_time``),
and a scan can stop at the first record past ``createdBefore``.

The listing is split in two: ``EventQuery`` / page tokens / ``scan_page``
here, and the question "which of these EventIds are deleted?" asked by the
caller (the intake table knows; docs/events.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka.structs import ConsumerRecord

from hub_stream.events.records import is_deletion

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class BadQuery(ValueError):
    """A listing query or page token that cannot be served; ``problems`` by parameter."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


def _micros(moment: datetime) -> int:
    return (int(moment.timestamp()) * 1_000_000) + moment.microsecond


@dataclass(frozen=True)
class EventQuery:
    """The filters of GET /api/events/{programId}; times compared exactly (microseconds)."""

    program_id: str
    created_after: datetime | None = None  # exclusive
    created_before: datetime | None = None  # exclusive
    event_type: str | None = None
    limit: int = DEFAULT_LIMIT

    def fingerprint(self) -> str:
        """What a page token is bound to: everything but ``limit``, which may change between pages."""
        doc = [
            self.program_id,
            _micros(self.created_after) if self.created_after else None,
            _micros(self.created_before) if self.created_before else None,
            self.event_type,
        ]
        return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:16]

    def after_ms(self) -> int | None:
        """Records with timestamp (ms) <= this cannot be after ``created_after``."""
        return _micros(self.created_after) // 1000 if self.created_after else None

    def too_late(self, timestamp_ms: int) -> bool:
        """True when a record this late (and every later one) is past ``created_before``."""
        return self.created_before is not None and timestamp_ms * 1000 >= _micros(self.created_before)

    def matches(self, event: dict[str, Any], timestamp_ms: int) -> bool:
        if self.created_after is not None and timestamp_ms * 1000 <= _micros(self.created_after):
            return False
        if self.too_late(timestamp_ms):
            return False
        return self.event_type is None or event.get("EventType") == self.event_type


def encode_page_token(query: EventQuery, offset: int) -> str:
    """Opaque to clients: where the next page starts, bound to the query's filters."""
    raw = json.dumps({"v": 1, "o": offset, "f": query.fingerprint()}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, query: EventQuery) -> int:
    """The offset a token names; BadQuery when it is malformed or from other filters."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw)
        offset, fingerprint = doc["o"], doc["f"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise BadQuery({"pageToken": "is not a token this API gave out; start again without pageToken"}) from None
    if not isinstance(offset, int) or offset < 0 or doc.get("v") != 1:
        raise BadQuery({"pageToken": "is not a token this API gave out; start again without pageToken"})
    if fingerprint != query.fingerprint():
        raise BadQuery(
            {"pageToken": "belongs to a listing with other filters; send the same createdAfter, createdBefore and eventType"}
        )
    return offset


DeletedOf = Callable[[list[str]], Awaitable[set[str]]]
"""``async (EventIds) -> the deleted ones among them``."""


@dataclass(frozen=True)
class Page:
    events: list[dict[str, Any]]
    next_offset: int | None


async def scan_page(
    records: AsyncIterator[ConsumerRecord], query: EventQuery, deleted_of: DeletedOf
) -> Page:
    """Up to ``query.limit`` live events of the publisher, and where the next page starts.

    Reads one more live event than the page holds, so a next page is offered
    only when there is one. Deleted events are asked about in chunks, as the
    candidates pile up, so a deletion marker far after the page still counts.
    """
    key = query.program_id.encode()
    want = query.limit + 1
    kept: list[tuple[int, dict[str, Any]]] = []
    pending: list[tuple[int, dict[str, Any]]] = []

    async def settle() -> None:
        if pending:
            gone = await deleted_of([doc["EventId"] for _, doc in pending])
            kept.extend((o, doc) for o, doc in pending if doc["EventId"] not in gone)
            pending.clear()

    async for record in records:
        if record.key != key or is_deletion(record):
            continue
        if query.too_late(record.timestamp):
            break
        try:
            doc = json.loads(record.value)
        except (TypeError, ValueError):
            continue
        if not isinstance(doc, dict) or not query.matches(doc, record.timestamp):
            continue
        pending.append((record.offset, doc))
        if len(kept) + len(pending) >= want:
            await settle()
            if len(kept) >= want:
                break
    await settle()
    page = [doc for _, doc in kept[: query.limit]]
    next_offset = kept[query.limit][0] if len(kept) > query.limit else None
    return Page(page, next_offset)
