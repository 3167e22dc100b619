"""Sync cursors: where a subscription's next sync starts (the cursors table value).

The sync agent is the only writer of the cursors table; key = subscriber
ProgramId, value = ``SubscriberCursors``: one ``SyncCursor`` per publisher,
plus the outcomes of the last cursor commands (idempotency, as in
hub_stream.subscriptions.records).

A cursor belongs to one subscription (``subscription_id``: the id of the
command that created it). A cursor whose id is not the live subscription's
is a leftover of a deleted one and is ignored: the subscription then starts
where its creation said (``Subscription.start_utc``, None = the publisher's
first event). So creating and deleting a subscription never needs the sync
agent, and a subscription created again never inherits an old cursor.

``PATCH LastSyncUtc = T`` sets ``from_time = T`` and forgets the offset: the
next sync starts at the first offset whose record timestamp (= CreatedUtc) is
>= T, found by binary search (hub_stream.events.log.offset_at_time;
offsets_for_times is wrong on Tansu, BROKER-FACTS.md). ``last_sync_utc`` shows
T until a sync succeeds.

A running sync writes its progress with ``store_cursor``: a compare-and-set
against the cursor the sync started from (or last wrote), so a ``PATCH
LastSyncUtc`` applied meanwhile is never overwritten by a sync that read the
cursor before it.

A run of a sync first ``claim``s the subscriber (``Lease``: the run's token
and SyncId), through the same partition as its cursor writes; a cursor write
carries the token of the run that sends it and is refused (``superseded``)
when another run claimed the subscriber since. The claim is a barrier as
well: the sync agent applies the partition's records in order, so once the
claim is applied every earlier write (of a run stopped on another worker,
still in flight when the partition moved) has been applied or refused, and
the cursor the new run reads is final.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from hub_stream.subscriptions.records import CommandLog, Outcome, Subscription
from schemas.timefmt import format_utc, parse_utc


@dataclass(frozen=True)
class ParkedEvent:
    """An event the subscription's template failed on, skipped under ``OnRenderError: park``."""

    event_id: str
    offset: int  # in the publisher's partition of hub.events
    entry_key: str | None
    reason: str
    parked_utc: datetime
    redeliver: bool = False  # queued: the next sync renders it again with the current template

    def to_json(self) -> dict[str, Any]:
        return {
            "EventId": self.event_id,
            "Offset": self.offset,
            "EntryKey": self.entry_key,
            "Reason": self.reason,
            "ParkedUtc": format_utc(self.parked_utc),
            "Redeliver": self.redeliver,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ParkedEvent:
        return cls(
            str(doc["EventId"]),
            int(doc["Offset"]),
            doc.get("EntryKey"),
            str(doc.get("Reason") or ""),
            parse_utc(doc["ParkedUtc"]),
            bool(doc.get("Redeliver")),
        )


def parked_changed(
    parked: Iterable[ParkedEvent], changes: Mapping[str, Any] | None
) -> tuple[ParkedEvent, ...]:
    """``parked`` after a sync's ``ParkedChanges``, kept in offset order (oldest first).

    ``Resolved``: EventIds sent (or now ignored by the template): no longer
    parked. ``Failed``: [{EventId, Reason}] redelivered and failing again:
    stay parked with the new reason, no longer queued. ``Add``: newly parked
    events (JSON of ParkedEvent); one already parked is not added twice.
    """
    if not changes:
        return tuple(parked)
    resolved = set(changes.get("Resolved") or ())
    failed = {f["EventId"]: f["Reason"] for f in changes.get("Failed") or ()}
    kept: dict[str, ParkedEvent] = {}
    for p in parked:
        if p.event_id in resolved:
            continue
        if p.event_id in failed:
            p = replace(p, reason=failed[p.event_id], redeliver=False)
        kept[p.event_id] = p
    for doc in changes.get("Add") or ():
        new = ParkedEvent.from_json(doc)
        kept.setdefault(new.event_id, new)
    return tuple(sorted(kept.values(), key=lambda p: p.offset))


@dataclass(frozen=True)
class SyncCursor:
    """Where one subscription's next sync starts, and the events it parked."""

    subscription_id: str
    next_offset: int | None = None  # None: from the start of the publisher's partition
    from_time: datetime | None = None  # deliver only events with CreatedUtc >= this
    last_sync_utc: datetime | None = None  # what GET shows as LastSyncUtc
    delivered: Mapping[int, int] = field(default_factory=dict)  # importProcessId -> last offset LB accepted
    parked: tuple[ParkedEvent, ...] = ()  # offset order; changed only by ``parked_changed`` and the parked commands

    @classmethod
    def starting_at(cls, subscription_id: str, start: datetime | None) -> SyncCursor:
        """A cursor that delivers from ``start`` (None: from the publisher's first event)."""
        return cls(subscription_id, next_offset=None, from_time=start, last_sync_utc=start)

    def in_window(self, start: int, delivered: Mapping[int, int]) -> SyncCursor:
        """The same window, its start resolved to ``start``, with ``delivered`` accepted by LB so far."""
        return replace(self, next_offset=start, from_time=None, delivered=dict(delivered))

    def advanced(self, end: int, started: datetime) -> SyncCursor:
        """After a sync in which LB accepted every row up to offset ``end``."""
        return replace(self, next_offset=end, from_time=None, last_sync_utc=started, delivered={})

    def to_json(self) -> dict[str, Any]:
        return {
            "SubscriptionId": self.subscription_id,
            "NextOffset": self.next_offset,
            "FromTime": format_utc(self.from_time) if self.from_time else None,
            "LastSyncUtc": format_utc(self.last_sync_utc) if self.last_sync_utc else None,
            "Delivered": {str(k): v for k, v in sorted(self.delivered.items())},
            "Parked": [p.to_json() for p in self.parked],
        }

    def position(self) -> dict[str, Any]:
        """The JSON a sync's compare-and-set compares: all but the parked events (their changes merge)."""
        doc = self.to_json()
        del doc["Parked"]
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SyncCursor:
        return cls(
            subscription_id=doc["SubscriptionId"],
            next_offset=doc.get("NextOffset"),
            from_time=parse_utc(doc["FromTime"]) if doc.get("FromTime") else None,
            last_sync_utc=parse_utc(doc["LastSyncUtc"]) if doc.get("LastSyncUtc") else None,
            delivered={int(k): int(v) for k, v in (doc.get("Delivered") or {}).items()},
            parked=tuple(ParkedEvent.from_json(p) for p in doc.get("Parked") or ()),
        )


@dataclass(frozen=True)
class Lease:
    """The run of a sync that may write a subscriber's cursors: the last to claim it."""

    token: str
    sync_id: str

    def to_json(self) -> dict[str, Any]:
        return {"Token": self.token, "SyncId": self.sync_id}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> Lease | None:
        return cls(str(doc["Token"]), str(doc.get("SyncId") or "")) if doc else None


@dataclass(frozen=True)
class SubscriberCursors:
    """The cursors table value of one subscriber."""

    cursors: Mapping[str, SyncCursor] = field(default_factory=dict)
    log: CommandLog = field(default_factory=CommandLog)
    lease: Lease | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "Cursors": {pub: c.to_json() for pub, c in sorted(self.cursors.items())},
            "Applied": self.log.to_json(),
        }
        if self.lease is not None:
            doc["Lease"] = self.lease.to_json()
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> SubscriberCursors:
        if not doc:
            return cls()
        cursors = {pub: SyncCursor.from_json(c) for pub, c in (doc.get("Cursors") or {}).items()}
        return cls(cursors, CommandLog.from_json(doc.get("Applied")), Lease.from_json(doc.get("Lease")))

    def cursor_of(self, sub: Subscription) -> SyncCursor:
        """The cursor of ``sub``: the stored one if it is this subscription's, else its start."""
        stored = self.cursors.get(sub.publisher)
        if stored is not None and stored.subscription_id == sub.subscription_id:
            return stored
        start = parse_utc(sub.start_utc) if sub.start_utc else None
        return SyncCursor.starting_at(sub.subscription_id, start)

    def last_sync_text(self, sub: Subscription) -> str | None:
        moment = self.cursor_of(sub).last_sync_utc
        return format_utc(moment) if moment else None

    def with_cursor(self, publisher: str, cursor: SyncCursor) -> SubscriberCursors:
        return replace(self, cursors={**self.cursors, publisher: cursor})

    def pruned(self, live: Mapping[str, str]) -> SubscriberCursors:
        """Without cursors of subscriptions that no longer exist (``live``: publisher -> id)."""
        kept = {p: c for p, c in self.cursors.items() if live.get(p) == c.subscription_id}
        return self if len(kept) == len(self.cursors) else replace(self, cursors=kept)


def set_cursor(
    record: SubscriberCursors,
    command_id: str,
    body: Mapping[str, Any],
    *,
    live: Mapping[str, str],
) -> tuple[SubscriberCursors, Outcome]:
    """Move a subscription's cursor to ``LastSyncUtc`` (None: the publisher's first event).

    Body: ``PublisherProgramId``, ``SubscriptionId``, ``LastSyncUtc``. ``live``
    maps each existing subscription's publisher to its id: a cursor for a
    subscription deleted meanwhile is not stored (404), and leftovers are
    pruned. A command applied before returns ``record`` itself and its first outcome.
    """
    seen = record.log.outcome_of(command_id)
    if seen is not None:
        return record, seen
    publisher = body["PublisherProgramId"]
    subscription_id = body["SubscriptionId"]
    if live.get(publisher) != subscription_id:
        outcome = Outcome(
            404,
            {
                "error": "subscription_not_found",
                "message": f"The subscription to {publisher!r} was deleted or replaced meanwhile; its cursor was not moved.",
                "details": {"PublisherProgramId": publisher},
            },
        )
        new = record.pruned(live)
    else:
        text = body.get("LastSyncUtc")
        start = parse_utc(text) if text else None
        kept = record.pruned(live)
        parked = kept.cursors[publisher].parked if publisher in kept.cursors else ()
        moved = replace(SyncCursor.starting_at(subscription_id, start), parked=parked)  # parked events stay parked
        new = kept.with_cursor(publisher, moved)
        outcome = Outcome(204)
    return replace(new, log=new.log.recording(command_id, outcome)), outcome


def claim(record: SubscriberCursors, body: Mapping[str, Any]) -> SubscriberCursors:
    """A run of a sync takes the subscriber: body ``Token``, ``SyncId``. Writes of earlier runs are refused from now on."""
    return replace(record, lease=Lease(str(body["Token"]), str(body.get("SyncId") or "")))


def superseded(record: SubscriberCursors, body: Mapping[str, Any]) -> bool:
    """A cursor write (body ``Lease``: the sending run's token) from a run that no longer holds the subscriber.

    A write without a token is from before claims existed: it is refused only
    once a run has claimed the subscriber.
    """
    return record.lease is not None and body.get("Lease") != record.lease.token


def store_cursor(
    record: SubscriberCursors, sub: Subscription | None, body: Mapping[str, Any]
) -> tuple[SubscriberCursors, bool]:
    """Compare-and-set a subscription's cursor, as a running sync does after each batch.

    Body: ``PublisherProgramId``, ``SubscriptionId``, ``Expected`` (the cursor
    the sync believes is stored, JSON), ``Cursor`` (the new one, JSON),
    optional ``ParkedChanges`` (``parked_changed``). ``sub`` is the live
    subscription to that publisher (None if deleted). Stored only when ``sub``
    is still the sync's subscription and its cursor's position is still
    ``Expected``'s; otherwise ``record`` is returned unchanged with False. A
    redelivered write finds the cursor already moved and changes nothing.

    The parked events are not compared: a redeliver or drop applied while the
    sync runs must not stop it. The stored list gets the sync's changes instead.
    A write of a ``superseded`` run is refused as well.
    """
    if superseded(record, body):
        return record, False
    if sub is None or sub.subscription_id != body.get("SubscriptionId"):
        return record, False
    current = record.cursor_of(sub)
    if current.position() != SyncCursor.from_json(body.get("Expected") or {"SubscriptionId": ""}).position():
        return record, False
    new = SyncCursor.from_json(body["Cursor"])
    if new.subscription_id != sub.subscription_id:
        return record, False
    new = replace(new, parked=parked_changed(current.parked, body.get("ParkedChanges")))
    return record.with_cursor(sub.publisher, new), True
