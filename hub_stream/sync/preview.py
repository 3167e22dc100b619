"""Seeing before sending: what a template makes of events, with nothing sent or stored.

Pure logic over a ``PayloadTemplate`` and event envelopes (the API wires it
to a request, docs/subscriptions.md "Preview"):

- ``preview_event``: one event's routing decision (category, entry, action,
  importProcessId) and its row, or the error that stops it, with line and
  column where the engine knows them (a row that is not JSON: its position
  in the rendered text).
- ``preview``: every event's result in the order given, and a summary.
- ``latest_live_events``: a publisher's newest live events from hub.events,
  read backwards from the log end a block at a time (the partition is shared
  with other publishers), deleted ones left out. A deletion marker always
  follows the event it names, so the markers of the blocks already read
  (later in the log) and of the block itself are all that can delete an
  event of the block: no block is read twice.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub_stream.sync.delivery import REGISTRATION_CLOCK_MARGIN, EventSource
from hub_stream.templating import PayloadTemplate, RowRenderError

DEFAULT_LATEST = 10
MAX_EVENTS = 100
FIRST_BLOCK = 256
"""Records read in the first block back from the log end (other publishers' included), at least."""
FIRST_PER_EVENT = 16
"""... and this many per event asked for: on Tansu every fetch costs time in proportion to the
partition's size, so one larger read beats two (measured: docs/subscriptions.md "Latency")."""
GROWTH = 8
"""Each further block back is this many times larger than the one before."""
FLOOR_AFTER = FIRST_BLOCK * GROWTH * GROWTH
"""The floor (a search by time, ~20 single-record fetches) is asked only once this many records
would have been read: reading fewer costs less than the search."""


def category_of(event: Mapping[str, Any]) -> str | None:
    category = event.get("PublisherEventCategory")
    value = category.get("value") if isinstance(category, dict) else None
    return value if isinstance(value, str) else None


def row_error(exc: RowRenderError) -> dict[str, Any]:
    """``{"error", "message", "line", "column"}`` of a row that failed."""
    return {"error": exc.code, "message": exc.reason, "line": exc.line, "column": exc.column}


def preview_event(template: PayloadTemplate, event: Mapping[str, Any]) -> dict[str, Any]:
    """One event's result: routing decision, then its row or its error."""
    entry = template.route(event)
    importing = entry is not None and entry.action == "import"
    result: dict[str, Any] = {
        "EventId": event.get("EventId"),
        "PublisherEventId": event.get("PublisherEventId"),
        "Category": category_of(event),
        "EntryKey": entry.key if entry is not None else None,
        "Action": "import" if importing else "ignore",
        "ImportProcessId": entry.import_process_id if importing and entry is not None else None,
        "Row": None,
        "Error": None,
    }
    if importing:
        try:
            row = template.render_row(event)
        except RowRenderError as exc:
            result["Error"] = row_error(exc)
        else:
            assert row is not None
            result["Row"] = json.loads(row.line)
    return result


@dataclass(frozen=True)
class Preview:
    results: list[dict[str, Any]]

    def summary(self) -> dict[str, int]:
        failed = sum(1 for r in self.results if r["Error"] is not None)
        imported = sum(1 for r in self.results if r["Action"] == "import") - failed
        return {"Import": imported, "Ignore": len(self.results) - imported - failed, "Failed": failed}

    def as_json(self) -> dict[str, Any]:
        return {"Results": self.results, "Summary": self.summary()}


def preview(template: PayloadTemplate, events: Iterable[Mapping[str, Any]]) -> Preview:
    return Preview([preview_event(template, e) for e in events])


def first_failure(template: PayloadTemplate, events: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The result of the first event whose row fails (the save-time check), else None."""
    for event in events:
        result = preview_event(template, event)
        if result["Error"] is not None:
            return result
    return None


async def latest_live_events(
    source: EventSource, publisher: str, count: int, *, floor: Callable[[int], Awaitable[int]]
) -> list[dict[str, Any]]:
    """The publisher's newest ``count`` live events, oldest first.

    The first block is the partition's last ``FIRST_BLOCK`` records (more
    for a larger ``count``: ``FIRST_PER_EVENT``); each
    further block is sized from the share of the publisher's events in what
    was read so far, at most ``GROWTH`` times the last one.
    ``floor(end)``: the first offset worth reading (no record of the
    publisher lies before it); asked only before ``FLOOR_AFTER`` records are read.
    """
    newest_first: list[dict[str, Any]] = []
    deleted: set[str] = set()
    end = stop = await source.log_end(publisher)
    block, asked_floor = max(FIRST_BLOCK, FIRST_PER_EVENT * count), False
    start, lowest, read = max(end - block, 0), 0, 0
    while len(newest_first) < count and start < stop:
        events: list[dict[str, Any]] = []
        async with source.window(publisher, start, stop) as window:
            async for chunk in window.chunks():
                for record in chunk:
                    if record.event is not None:
                        events.append(record.event)
                    elif record.deleted_event_id is not None:
                        deleted.add(record.deleted_event_id)
        newest_first.extend(e for e in reversed(events) if e.get("EventId") not in deleted)
        read, stop = read + stop - start, start
        if stop <= lowest:
            break
        wanted = (count - len(newest_first)) * read // max(len(newest_first), 1) * 5 // 4 + 1
        block = max(FIRST_BLOCK, min(wanted, block * GROWTH))
        if not asked_floor and read + block >= FLOOR_AFTER:
            asked_floor, lowest = True, await floor(end)
        start = max(stop - block, lowest)
    return newest_first[:count][::-1]


def registration_floor(source: EventSource, publisher: str, registered: datetime | None) -> Callable[[int], Awaitable[int]]:
    """``floor`` for ``latest_live_events``: where the publisher's first event may be (as a sync's first window)."""

    async def floor(end: int) -> int:
        if registered is None:
            return 0
        since = registered - REGISTRATION_CLOCK_MARGIN
        return await source.offset_at_time(publisher, int(since.timestamp() * 1000), end=end)

    return floor
