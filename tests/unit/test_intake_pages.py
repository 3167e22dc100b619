"""Listing a publisher's events: filters, page tokens, and one page from a stream of records."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from hub_stream.events.listing import (
    BadQuery,
    EventQuery,
    decode_page_token,
    encode_page_token,
    scan_page,
)
from schemas.timefmt import from_millis, parse_utc

T0 = 1_795_000_000_000  # epoch ms


@dataclass
class FakeRecord:
    offset: int
    key: bytes
    value: bytes
    timestamp: int
    headers: list[tuple[str, bytes]]


def record(offset: int, publisher: str, n: int, *, ms: int | None = None, event_type: str = "A") -> FakeRecord:
    doc = {"EventId": f"E:{publisher}-{n}", "EventType": event_type, "n": n}
    return FakeRecord(offset, publisher.encode(), json.dumps(doc).encode(), T0 + n if ms is None else ms, [("hub-kind", b"event")])


def marker(offset: int, publisher: str, event_id: str) -> FakeRecord:
    return FakeRecord(offset, publisher.encode(), json.dumps({"EventId": event_id}).encode(), T0, [("hub-kind", b"deleted")])


async def feed(records: list[FakeRecord]) -> AsyncIterator[Any]:
    for r in records:
        yield r


def deleted_of(gone: set[str], calls: list[list[str]]) -> Any:
    async def ask(event_ids: list[str]) -> set[str]:
        calls.append(event_ids)
        return gone & set(event_ids)

    return ask


def test_page_tokens_round_trip_and_are_bound_to_the_filters() -> None:
    query = EventQuery("ACME", parse_utc("2026-01-01T00:00:00Z"), None, "A", limit=10)
    token = encode_page_token(query, 1234)
    assert "=" not in token and decode_page_token(token, query) == 1234
    assert decode_page_token(token, EventQuery("ACME", parse_utc("2026-01-01T01:00:00+01:00"), None, "A", limit=500)) == 1234
    for other in (EventQuery("ACME2", query.created_after, None, "A"), EventQuery("ACME", None, None, "A"), EventQuery("ACME", query.created_after, None, "B"), EventQuery("ACME", query.created_after, parse_utc("2027-01-01T00:00:00Z"), "A")):
        with pytest.raises(BadQuery, match="other filters"):
            decode_page_token(token, other)
    for garbage in ("", "abc", "!!!", encode_page_token(query, 1)[:-3], "eyJ2IjoxfQ", "WzFd"):
        with pytest.raises(BadQuery) as caught:
            decode_page_token(garbage, query)
        assert set(caught.value.problems) == {"pageToken"}


def test_time_bounds_are_exclusive_and_exact() -> None:
    after = parse_utc("2026-11-20T10:00:00.000500Z")  # half a millisecond past T
    t_ms = int(parse_utc("2026-11-20T10:00:00Z").timestamp() * 1000)
    q = EventQuery("P", created_after=after)
    assert q.after_ms() == t_ms
    assert not q.matches({}, t_ms) and q.matches({}, t_ms + 1)
    before = EventQuery("P", created_before=parse_utc("2026-11-20T10:00:00Z"))
    assert before.matches({}, t_ms - 1) and not before.matches({}, t_ms) and before.too_late(t_ms)
    typed = EventQuery("P", event_type="EXAM")
    assert typed.matches({"EventType": "EXAM"}, 0) and not typed.matches({"EventType": "exam"}, 0)


async def test_a_page_holds_live_events_of_the_publisher_in_order() -> None:
    records = [
        record(0, "P", 0),
        record(1, "OTHER", 1),
        record(2, "P", 2, event_type="B"),
        record(3, "P", 3),
        record(4, "P", 4),
        record(5, "P", 5),
        marker(6, "P", "E:P-3"),
        record(7, "P", 7),
        record(8, "P", 8),
    ]
    calls: list[list[str]] = []
    page = await scan_page(feed(records), EventQuery("P", event_type="A", limit=2), deleted_of({"E:P-3", "E:P-7"}, calls))
    assert [e["n"] for e in page.events] == [0, 4]
    assert page.next_offset == 5  # where the first event of the next page is
    rest = await scan_page(feed(records[5:]), EventQuery("P", event_type="A", limit=2), deleted_of({"E:P-3", "E:P-7"}, calls))
    assert ([e["n"] for e in rest.events], rest.next_offset) == ([5, 8], None)
    assert all(len(c) <= 3 for c in calls)  # asked in chunks of at most limit + 1


async def test_the_last_page_has_no_token_and_before_stops_the_scan() -> None:
    records = [record(i, "P", i) for i in range(5)]
    page = await scan_page(feed(records), EventQuery("P", limit=5), deleted_of(set(), []))
    assert (len(page.events), page.next_offset) == (5, None)

    consumed: list[int] = []

    async def watched() -> AsyncIterator[Any]:
        for r in records:
            consumed.append(r.offset)
            yield r

    before = EventQuery("P", created_before=from_millis(T0 + 2), limit=100)
    page = await scan_page(watched(), before, deleted_of(set(), []))
    assert [e["n"] for e in page.events] == [0, 1] and page.next_offset is None
    assert consumed == [0, 1, 2]  # timestamps never go backwards: nothing after is read
