"""Event intake, the pure part: validation, content hash, dedupe decisions, EventIds.

No Faust and no I/O. The intake agent (agents/intake/) and the API
(api/events.py) both validate with ``validate_event``, so a record produced
straight onto the incoming topic and a POST get exactly the same treatment;
the agent then decides with ``decide_publish`` / ``decide_delete`` against
its table (the only writer of it).

The intake table holds, per incoming partition (= hub.events partition):

- ``p:{publisher}:{PublisherEventId}`` -> ``PublishedEntry``: the EventId, the
  content hash, the incoming offset of the record that created it, and the
  deletion if any. One small value per event: nothing grows with a publisher.
- ``e:{EventId}`` -> ``{"PublisherEventId"}``: to find an event by its id.
- ``m:{partition}`` -> ``PartitionMark``: every incoming record up to
  ``offset`` has its effect durably in hub.events, which ended at
  ``events_end`` then; the last ``created_ms`` given out.

docs/events.md explains how these make intake lose nothing and duplicate
nothing when a worker dies at any point.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import ValidationError

from hub_stream.platform import safe_json
from schemas.events import EventIn
from schemas.programs import PROGRAM_ID_RULE, is_program_id
from schemas.timefmt import format_utc, from_millis

EVENT_ID_PREFIX = "E:"
_UUID_LEN = 36

Outcome = Literal["accepted", "deduplicated", "rejected"]


# --- validation ----------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field (``PublisherEventCategory.value`` for a nested one)."""

    field: str
    problem: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class InvalidEvent(ValueError):
    """An event body that breaks the contract; ``errors`` has one entry per field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        self.unknown_fields = [e.field for e in errors if e.problem == UNKNOWN_FIELD]
        first = errors[0] if errors else FieldError("(body)", "invalid")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first.field}: {first.problem}{more}")

    @property
    def code(self) -> str:
        return "unknown_fields" if self.unknown_fields else "invalid_event"

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"errors": [e.to_json() for e in self.errors]}
        if self.unknown_fields:
            details["unknown_fields"] = self.unknown_fields
        return details


UNKNOWN_FIELD = "unknown field; the contract has no such field"
_PROBLEMS = {
    "extra_forbidden": UNKNOWN_FIELD,
    "missing": "required",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "string_type": "must be a string",
}


def _problem(err: Mapping[str, Any]) -> str:
    if err["type"] == "string_pattern_mismatch" and tuple(err["loc"]) == ("PublisherProgramId",):
        return f"must be {PROGRAM_ID_RULE}"
    text = _PROBLEMS.get(err["type"]) or str(err["msg"])
    return text.removeprefix("Value error, ")


def field_errors(exc: ValidationError) -> list[FieldError]:
    """One entry per field, in the order pydantic reports them (several problems joined)."""
    merged: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        name = ".".join(str(p) for p in err["loc"]) or "(body)"
        problems = merged.setdefault(name, [])
        text = _problem(err)
        if text not in problems:
            problems.append(text)
    return [FieldError(name, "; ".join(problems)) for name, problems in merged.items()]


@dataclass(frozen=True)
class ValidEvent:
    """A valid event body, normalised: every contract field, absent optional ones null."""

    body: dict[str, Any]
    content_hash: str
    size: int = 0  # bytes of the body as canonical JSON: about the hub.events record, less ~150

    @property
    def publisher(self) -> str:
        return str(self.body["PublisherProgramId"])

    @property
    def publisher_event_id(self) -> str:
        return str(self.body["PublisherEventId"])


def content_hash(body: Mapping[str, Any]) -> str:
    """Hash of the normalised body: key order and timestamp spelling do not matter."""
    return _valid(dict(body)).content_hash


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _valid(body: dict[str, Any]) -> ValidEvent:
    canonical = _CANONICAL.encode(body).encode()
    return ValidEvent(body, hashlib.sha256(canonical).hexdigest()[:32], len(canonical))


MAX_EVENT_BYTES = 1_000_000
"""An event must fit one Kafka record (brokers refuse ~1 MiB by default), with its EventId and CreatedUtc."""


def ensure_fits(event: ValidEvent) -> ValidEvent:
    """The event, or Rejection ``event_too_large``: a record the broker refuses would stop the intake."""
    if event.size + 200 > MAX_EVENT_BYTES:
        raise Rejection(
            "event_too_large",
            f"The event is {event.size} bytes as JSON; the limit is {MAX_EVENT_BYTES - 200}."
            " Keep PublisherEventData smaller.",
            {"size": event.size, "limit": MAX_EVENT_BYTES - 200},
        )
    return event


def validate_event(doc: Any) -> ValidEvent:
    """The normalised event, or InvalidEvent listing every field error at once."""
    if not isinstance(doc, dict):
        raise InvalidEvent([FieldError("(body)", "must be a JSON object")])
    try:
        model = EventIn.model_validate(doc)
    except ValidationError as exc:
        raise InvalidEvent(field_errors(exc)) from None
    return _valid(model.model_dump())


@dataclass(frozen=True)
class Rejection(Exception):
    """Why a record was refused: a code, one sentence, and details (a problem body)."""

    code: str
    message: str
    details: dict[str, Any]

    def problem(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


def decode_event_record(value: bytes | None) -> ValidEvent:
    """A record of a stream publisher (the event JSON) validated; raises Rejection.

    The rules of HTTP bodies (hub_stream.platform.safe_json: depth, numbers,
    real Unicode) and the same model as ``validate_event``. Text that is
    plainly safe is parsed straight from bytes by pydantic (one pass instead
    of two); any other goes through ``safe_json.loads``, which decides.
    """
    if value is None:
        raise Rejection("not_json", "The record has no value (a tombstone); produce the event as JSON.", {})
    if safe_json.plainly_safe(value):
        model = _parsed_event(value)
        if safe_json.numbers_fit(model.PublisherEventData):
            return ensure_fits(_valid(model.model_dump()))
    try:
        doc = safe_json.loads(value)
    except safe_json.JsonRefused as exc:
        code = "not_json" if exc.code == "invalid_json" else exc.code
        raise Rejection(code, f"The record value is refused: {exc.message}", {}) from None
    if not isinstance(doc, dict):
        raise Rejection("not_an_object", "The record value is JSON but not an object.", {})
    return validate_or_reject(doc)


def _parsed_event(value: bytes) -> EventIn:
    try:
        return EventIn.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
        if first["type"] == "json_invalid":
            raise Rejection("not_json", f"The record value is not UTF-8 JSON: {first['msg']}.", {}) from None
        if first["type"] == "model_type" and not first["loc"]:
            raise Rejection("not_an_object", "The record value is JSON but not an object.", {}) from None
        invalid = InvalidEvent(field_errors(exc))
        raise Rejection(invalid.code, f"The event is invalid: {invalid}.", invalid.details()) from None


def validate_or_reject(doc: Any) -> ValidEvent:
    """``validate_event``, with every refusal (invalid, too large) as a Rejection."""
    try:
        return ensure_fits(validate_event(doc))
    except InvalidEvent as exc:
        raise Rejection(exc.code, f"The event is invalid: {exc}.", exc.details()) from None


# --- EventIds and times ------------------------------------------------------


_RANDOM_POOL = 4096  # bytes: 256 uuids per read of os.urandom
_random = bytearray()


def new_event_id(publisher: str) -> str:
    """``E:{publisher}-{uuid4}``; the randomness is os.urandom's, read 256 ids at a time (a syscall each is slow)."""
    global _random
    if not _random:
        _random = bytearray(os.urandom(_RANDOM_POOL))
    raw = bytes(_random[-16:])
    del _random[-16:]
    return f"{EVENT_ID_PREFIX}{publisher}-{uuid.UUID(bytes=raw, version=4)}"


def publisher_of(event_id: str) -> str | None:
    """The publisher named by ``E:{publisher}-{uuid4}`` (None: not an EventId).

    The uuid is the last 36 characters: publisher ids may contain ``-``.
    """
    if not isinstance(event_id, str) or not event_id.startswith(EVENT_ID_PREFIX):
        return None
    head, tail = event_id[len(EVENT_ID_PREFIX) : -_UUID_LEN - 1], event_id[-_UUID_LEN - 1 :]
    if not tail.startswith("-") or not is_program_id(head):
        return None
    try:
        parsed = uuid.UUID(tail[1:])
    except ValueError:
        return None
    return head if str(parsed) == tail[1:] else None


@functools.lru_cache(maxsize=64)
def utc_text(ms: int) -> str:
    """Epoch milliseconds as contract text (UTC, ms, Z); cached: a batch gives out few distinct ones."""
    return format_utc(from_millis(ms))


def next_created_ms(now_ms: int, floor_ms: int) -> int:
    """A CreatedUtc that never goes backwards: the clock, or the last one given if the clock is behind."""
    return max(now_ms, floor_ms)


def stored_event(event: ValidEvent, event_id: str, created_ms: int) -> dict[str, Any]:
    """The canonical event as hub.events holds it and GET answers it."""
    return {"EventId": event_id, **event.body, "CreatedUtc": utc_text(created_ms)}


# --- the intake table ----------------------------------------------------------


def entry_key(publisher: str, publisher_event_id: str) -> str:
    # Publisher ids have no ':', so the first ':' after the prefix ends it.
    return f"p:{publisher}:{publisher_event_id}"


def id_key(event_id: str) -> str:
    return f"e:{event_id}"


def mark_key(partition: int) -> str:
    return f"m:{partition}"


@dataclass(frozen=True)
class PublishedEntry:
    """The intake table's record of one (publisher, PublisherEventId)."""

    event_id: str
    content_hash: str
    offset: int  # incoming offset of the record that created it
    deleted_utc: str | None = None
    delete_id: str | None = None  # command id of the delete that removed it
    delete_offset: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"EventId": self.event_id, "Hash": self.content_hash, "Offset": self.offset}
        if self.deleted_utc is not None:
            doc.update(DeletedUtc=self.deleted_utc, DeleteId=self.delete_id, DeleteOffset=self.delete_offset)
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> PublishedEntry | None:
        if not isinstance(doc, dict):
            return None
        return cls(
            event_id=str(doc["EventId"]),
            content_hash=str(doc["Hash"]),
            offset=int(doc["Offset"]),
            deleted_utc=doc.get("DeletedUtc"),
            delete_id=doc.get("DeleteId"),
            delete_offset=doc.get("DeleteOffset"),
        )

    def deleted(self, deleted_utc: str, delete_id: str, offset: int) -> PublishedEntry:
        return replace(self, deleted_utc=deleted_utc, delete_id=delete_id, delete_offset=offset)


@dataclass(frozen=True)
class PartitionMark:
    """Records up to ``offset`` of an incoming partition are durably in hub.events (which ended at ``events_end``)."""

    offset: int = -1
    events_end: int = 0
    created_ms: int = 0

    def advanced(self, offset: int, events_end: int, created_ms: int) -> PartitionMark:
        """The mark after a batch; it never moves back (a redelivered batch lies below it)."""
        return PartitionMark(
            max(self.offset, offset), max(self.events_end, events_end), max(self.created_ms, created_ms)
        )

    def to_json(self) -> dict[str, int]:
        return {"Offset": self.offset, "EventsEnd": self.events_end, "CreatedMs": self.created_ms}

    @classmethod
    def from_json(cls, doc: Any) -> PartitionMark:
        if not isinstance(doc, dict):
            return cls()
        return cls(int(doc["Offset"]), int(doc["EventsEnd"]), int(doc["CreatedMs"]))


# --- decisions -----------------------------------------------------------------


@dataclass(frozen=True)
class PublishDecision:
    """What to do with one publish: the answer, and whether to write and append."""

    status: int  # 201 new (or its own redelivery), 200 same event again, 409 refused
    outcome: Outcome
    event_id: str | None = None
    write_entry: bool = False  # a new (publisher, PublisherEventId): write its table entries
    append: bool = False  # put the event on hub.events now (new, or a repair after a crash)
    rejection: Rejection | None = None


def decide_publish(
    entry: PublishedEntry | None,
    event: ValidEvent,
    offset: int,
    *,
    appended: Callable[[PublishedEntry], bool],
    new_id: Callable[[str], str] = new_event_id,
) -> PublishDecision:
    """Deduplicate by (publisher, PublisherEventId).

    ``offset`` is the incoming offset of this record: an entry it created
    itself means this is a redelivery (at-least-once) and gets its first
    answer. ``appended(entry)`` tells whether the entry's event is surely on
    hub.events; when not (the worker died between the table write and the
    append), the event is appended now, under the EventId already given.
    """
    if entry is None:
        return PublishDecision(201, "accepted", new_id(event.publisher), write_entry=True, append=True)
    own = entry.offset == offset
    if entry.content_hash != event.content_hash:
        return PublishDecision(409, "rejected", entry.event_id, rejection=_conflict(event, entry))
    if entry.deleted_utc is not None:
        if own:  # its deletion came later; the publish itself was answered 201
            return PublishDecision(201, "deduplicated", entry.event_id)
        return PublishDecision(409, "rejected", entry.event_id, rejection=_deleted(event, entry))
    repair = not appended(entry)
    return PublishDecision(
        201 if own else 200, "accepted" if repair else "deduplicated", entry.event_id, append=repair
    )


def _conflict(event: ValidEvent, entry: PublishedEntry) -> Rejection:
    return Rejection(
        "duplicate_publisher_event_id",
        f"PublisherEventId {event.publisher_event_id!r} of {event.publisher!r} was published before"
        f" as {entry.event_id} with other content; use a new PublisherEventId for a new event.",
        {"PublisherProgramId": event.publisher, "PublisherEventId": event.publisher_event_id, "EventId": entry.event_id},
    )


def _deleted(event: ValidEvent, entry: PublishedEntry) -> Rejection:
    return Rejection(
        "publisher_event_deleted",
        f"PublisherEventId {event.publisher_event_id!r} of {event.publisher!r} was published as"
        f" {entry.event_id} and deleted; publish it again under a new PublisherEventId.",
        {"PublisherProgramId": event.publisher, "PublisherEventId": event.publisher_event_id, "EventId": entry.event_id},
    )


def unknown_program(publisher: str) -> Rejection:
    """A stream record of a publisher not in the registry (the API answers the same as a 422)."""
    return Rejection(
        "unknown_program",
        f"Program {publisher!r} is not registered; staff register publishers with PUT /api/programs.",
        {"PublisherProgramId": publisher},
    )


@dataclass(frozen=True)
class DeleteDecision:
    status: int  # 204 or 404
    write_entry: bool = False
    append_marker: bool = False


def decide_delete(
    entry: PublishedEntry | None,
    event_id: str,
    command_id: str,
    *,
    marker_appended: Callable[[PublishedEntry], bool],
) -> DeleteDecision:
    """Delete an event: 204 once; 404 for an unknown or already deleted one.

    A redelivered delete (same command id) answers 204 again and appends the
    marker if the worker died before it did.
    """
    if entry is None or entry.event_id != event_id:
        return DeleteDecision(404)
    if entry.deleted_utc is not None:
        if entry.delete_id == command_id:
            return DeleteDecision(204, append_marker=not marker_appended(entry))
        return DeleteDecision(404)
    return DeleteDecision(204, write_entry=True, append_marker=True)


def not_found(event_id: str) -> dict[str, Any]:
    """The 404 problem body of an unknown (or deleted) EventId."""
    return {
        "error": "event_not_found",
        "message": f"There is no event {event_id!r} (unknown, or deleted).",
        "details": {"EventId": event_id},
    }
