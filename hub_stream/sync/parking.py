"""Parked events (``OnRenderError: park``): what the parked commands do, and reading parked events back.

A subscription's parked events live in its cursor (hub_stream.sync.cursors,
``SyncCursor.parked``), so they have the cursors table's one writer, the
sync agent, and its changelog: they survive restarts, SIGKILL and partition
handover like the cursor itself. A running sync never overwrites them: it
sends changes (``ParkedChanges``) that the agent merges into the stored list.
The commands here (list, queue for redelivery, drop) are applied by the sync
agent too. docs/sync.md, "When one event cannot be rendered".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hub_stream.subscriptions.records import Subscription
from hub_stream.sync.cursors import ParkedEvent, SubscriberCursors
from hub_stream.sync.outcome import SubscriptionOutcome
from hub_stream.sync.plan import RowAt
from hub_stream.templating import PayloadTemplate, RowRenderError

if TYPE_CHECKING:
    from hub_stream.sync.delivery import EventSource

DEFAULT_PAGE = 100
MAX_PAGE = 500


def parked_page(parked: Iterable[ParkedEvent], *, limit: int, after: int | None) -> dict[str, Any]:
    """One page of parked events, oldest first; ``after``: the offset the previous page ended at."""
    rest = [p for p in parked if after is None or p.offset > after]
    page = rest[:limit]
    more = len(rest) > limit
    return {
        "Parked": [p.to_json() for p in page],
        "NextPageToken": str(page[-1].offset) if more and page else None,
    }


def queue_redelivery(
    record: SubscriberCursors, sub: Subscription, event_ids: list[str] | None
) -> tuple[SubscriberCursors, list[str], list[str]]:
    """Mark parked events for redelivery by the next sync; (record, queued ids, ids not parked).

    ``event_ids`` None: every parked event of the subscription.
    """
    cursor = record.cursor_of(sub)
    wanted = None if event_ids is None else set(event_ids)
    queued = [p.event_id for p in cursor.parked if wanted is None or p.event_id in wanted]
    missing = [] if event_ids is None else [e for e in event_ids if e not in set(queued)]
    if not queued:
        return record, [], missing
    marked = tuple(replace(p, redeliver=True) if p.event_id in set(queued) else p for p in cursor.parked)
    return record.with_cursor(sub.publisher, replace(cursor, parked=marked)), queued, missing


def drop_parked(record: SubscriberCursors, sub: Subscription, event_id: str) -> tuple[SubscriberCursors, ParkedEvent | None]:
    """Forget one parked event (it is never delivered); None when it is not parked."""
    cursor = record.cursor_of(sub)
    dropped = next((p for p in cursor.parked if p.event_id == event_id), None)
    if dropped is None:
        return record, None
    kept = tuple(p for p in cursor.parked if p.event_id != event_id)
    return record.with_cursor(sub.publisher, replace(cursor, parked=kept)), dropped


async def read_parked(
    source: EventSource, publisher: str, parked: Iterable[ParkedEvent]
) -> list[tuple[ParkedEvent, dict[str, Any] | None]]:
    """The events queued for redelivery, read again from hub.events by offset, in offset order.

    None for one that is gone (retention) or whose record is not that event any more.
    """
    found: list[tuple[ParkedEvent, dict[str, Any] | None]] = []
    for p in sorted((p for p in parked if p.redeliver), key=lambda p: p.offset):
        event = None
        async with source.window(publisher, p.offset, p.offset + 1) as window:
            async for chunk in window.chunks():
                for record in chunk:
                    if record.offset == p.offset and record.event is not None and str(record.event.get("EventId")) == p.event_id:
                        event = record.event
        found.append((p, event))
    return found


def render_parked(
    template: PayloadTemplate, found: list[tuple[ParkedEvent, dict[str, Any] | None]], outcome: SubscriptionOutcome
) -> list[RowAt]:
    """Rows of parked events queued for redelivery, with the current template, in their original order.

    One that renders is sent (``outcome.redelivering``); one the template now
    ignores is no longer parked (``outcome.resolved``); one that fails again,
    or that hub.events no longer holds, stays parked with the new reason.
    """
    rows: list[RowAt] = []
    for parked, event in found:
        if event is None:
            outcome.refailed.append(_again(parked, "The event is no longer in hub.events (retention); drop it."))
            continue
        try:
            row = template.render_row(event)
        except RowRenderError as exc:
            outcome.refailed.append(_again(parked, str(exc)))
            continue
        if row is None:
            outcome.resolved.append(parked.event_id)
        else:
            rows.append(RowAt(parked.offset, row.import_process_id, row.line))
            outcome.redelivering[parked.offset] = (row.import_process_id, parked.event_id)
    return rows


def _again(parked: ParkedEvent, reason: str) -> ParkedEvent:
    return ParkedEvent(parked.event_id, parked.offset, parked.entry_key, reason, parked.parked_utc, redeliver=False)


def parked_changes(outcome: SubscriptionOutcome) -> dict[str, Any]:
    """What the sync's final cursor write changes in the stored parked events (cursors.parked_changed)."""
    return {
        "Resolved": list(outcome.resolved),
        "Failed": [{"EventId": p.event_id, "Reason": p.reason} for p in outcome.refailed],
        "Add": [p.to_json() for p in outcome.parked],
    }
