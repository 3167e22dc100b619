"""OnRenderError park: one subscription's sync parks, skips, redelivers (stand-in LB over HTTP, events in memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from test_sync_subscription import KEY, STARTED, MemoryCursors, MemorySource, ev, rows_of, run

from hub_stream.events.records import StoredEvent
from hub_stream.local.lb_standin import FakeLB, start_fake_lb
from hub_stream.subscriptions.records import Subscription
from hub_stream.sync.cursors import (
    ParkedEvent,
    SubscriberCursors,
    SyncCursor,
    set_cursor,
    store_cursor,
)
from hub_stream.sync.parking import drop_parked, parked_page, queue_redelivery

STRICT = {"A": {"importProcessId": 1, "batchRowTemplate": '{"n": {{n}}}'}, "B": {"importProcessId": 2, "batchRowTemplate": '{"n": {{n}}}'}}
FIXED = {"A": {"importProcessId": 1, "batchRowTemplate": '{"n": "{{n}}"}'}, "B": {"importProcessId": 2, "batchRowTemplate": '{"n": "{{n}}"}'}}
PARKED_AT = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)


@pytest.fixture
async def lb() -> AsyncIterator[FakeLB]:
    fake, runner = await start_fake_lb(api_keys={KEY})
    yield fake
    await runner.cleanup()


def text_event(offset: int, n: int, cat: str = "A") -> StoredEvent:
    """An event whose ``n`` arrives as text: STRICT's row is then not JSON."""
    record = ev(offset, n, cat)
    assert record.event is not None
    record.event["PublisherEventData"] = {"n": f"bad {n}"}
    return record


def parked(offset: int, n: int, *, redeliver: bool = True) -> ParkedEvent:
    return ParkedEvent(f"E:PUB-{n}", offset, "A", "row is not JSON", PARKED_AT, redeliver)


async def test_park_skips_the_failing_event_delivers_the_rest_and_advances(lb: FakeLB) -> None:
    records = [ev(0, 1, "A"), text_event(1, 2), ev(2, 3, "A"), ev(3, 4, "B")]
    outcome, after, _ = await run(lb, MemorySource(records), SyncCursor("s1"), STRICT, park=True)
    assert outcome.status == "ok" and outcome.error_code is None
    assert rows_of(lb) == [(1, 1), (1, 3), (2, 4)]
    assert after.next_offset == 4 and after.last_sync_utc == STARTED
    assert [(p.event_id, p.offset, p.entry_key, p.redeliver) for p in after.parked] == [("E:PUB-2", 1, "A", False)]
    answer = outcome.as_json()
    assert [p["EventId"] for p in answer["Parked"]] == ["E:PUB-2"] and "not JSON" in answer["Parked"][0]["Reason"].replace("valid JSON", "JSON")


async def test_stop_policy_is_unchanged(lb: FakeLB) -> None:
    records = [ev(0, 1, "A"), text_event(1, 2)]
    outcome, after, saved = await run(lb, MemorySource(records), SyncCursor("s1"), STRICT)
    assert outcome.error_code == "render_failed" and outcome.failed_event_ids == ["E:PUB-2"]
    assert lb.batches == [] and saved == [] and after.parked == ()
    assert outcome.as_json()["Parked"] == []


async def test_redelivery_sends_parked_events_first_in_order_with_the_current_template(lb: FakeLB) -> None:
    # parked at offsets 1 and 3 by an earlier sync; the cursor is at 5; new events 5, 6
    records = [ev(0, 1, "A"), text_event(1, 2), ev(2, 3, "A"), text_event(3, 4), ev(4, 5, "A"), ev(5, 6, "A"), ev(6, 7, "B")]
    cursor = SyncCursor("s1", next_offset=5, parked=(parked(1, 2), parked(3, 4)))
    outcome, after, _ = await run(lb, MemorySource(records), cursor, FIXED, park=True)
    assert outcome.status == "ok" and outcome.redelivered == 2
    assert rows_of(lb) == [(1, "bad 2"), (1, "bad 4"), (1, "6"), (2, "7")]  # row cap 2: [2, 4], [6], [7]
    assert after.parked == () and after.next_offset == 7


async def test_a_parked_event_failing_again_stays_parked_and_is_no_longer_queued(lb: FakeLB) -> None:
    records = [text_event(0, 1), ev(1, 2, "A")]
    cursor = SyncCursor("s1", next_offset=1, parked=(parked(0, 1),))
    outcome, after, _ = await run(lb, MemorySource(records), cursor, STRICT, park=True)
    assert outcome.status == "ok" and outcome.redelivered == 0 and rows_of(lb) == [(1, 2)]
    assert [(p.event_id, p.redeliver, p.parked_utc) for p in after.parked] == [("E:PUB-1", False, PARKED_AT)]
    assert [p["EventId"] for p in outcome.as_json()["Parked"]] == ["E:PUB-1"]


async def test_a_parked_event_not_queued_waits(lb: FakeLB) -> None:
    records = [text_event(0, 1), ev(1, 2, "A")]
    cursor = SyncCursor("s1", next_offset=1, parked=(parked(0, 1, redeliver=False),))
    outcome, after, _ = await run(lb, MemorySource(records), cursor, FIXED, park=True)
    assert rows_of(lb) == [(1, "2")] and outcome.redelivered == 0 and after.parked == cursor.parked


async def test_a_redelivered_event_accepted_before_a_refusal_is_not_sent_again(lb: FakeLB) -> None:
    records = [text_event(0, 1), ev(1, 2, "A"), ev(2, 3, "B")]
    store = MemoryCursors(SyncCursor("s1", next_offset=1, parked=(parked(0, 1),)))
    lb.reject_process(2)
    outcome, after, _ = await run(lb, MemorySource(records), store, FIXED, park=True)
    assert outcome.error_code == "lb_rejected" and after.parked == () and after.next_offset == 1  # window kept
    lb.behaviour.reject_import_process_ids.clear()
    outcome, after, _ = await run(lb, MemorySource(records), store, FIXED, park=True)
    assert outcome.status == "ok" and rows_of(lb) == [(1, "bad 1"), (1, "2"), (2, "3")]  # each once
    assert after.parked == () and after.next_offset == 3


async def test_a_cursor_moved_back_does_not_send_parked_events_with_the_window(lb: FakeLB) -> None:
    records = [text_event(0, 1), ev(1, 2, "A")]
    cursor = SyncCursor("s1", next_offset=0, parked=(parked(0, 1, redeliver=False),))
    _, after, _ = await run(lb, MemorySource(records), cursor, FIXED, park=True)
    assert rows_of(lb) == [(1, "2")] and after.parked == cursor.parked


# --- the cursor record: one writer, changes merged --------------------------
SUB = Subscription(publisher="PUB", subscription_id="s1", created_utc="2026-11-01T00:00:00.000Z", updated_utc="2026-11-01T00:00:00.000Z")


def write(expected: SyncCursor, new: SyncCursor, changes: dict | None = None) -> dict:
    return {"PublisherProgramId": "PUB", "SubscriptionId": "s1", "Expected": expected.to_json(), "Cursor": new.to_json(), "ParkedChanges": changes}


def test_a_drop_while_a_sync_runs_does_not_stop_it_and_its_changes_merge() -> None:
    started = SyncCursor("s1", next_offset=5, parked=(parked(1, 2), parked(3, 4)))
    record = SubscriberCursors().with_cursor("PUB", started)
    record, dropped = drop_parked(record, SUB, "E:PUB-4")  # staff drop one meanwhile
    assert dropped is not None and dropped.offset == 3
    new_parked = ParkedEvent("E:PUB-9", 7, "A", "bad", STARTED)
    changes = {"Resolved": ["E:PUB-2"], "Failed": [], "Add": [new_parked.to_json()]}
    record, stored = store_cursor(record, SUB, write(started, started.advanced(9, STARTED), changes))
    assert stored
    after = record.cursor_of(SUB)
    assert after.next_offset == 9 and [p.event_id for p in after.parked] == ["E:PUB-9"]


def test_position_still_guards_against_a_moved_cursor() -> None:
    started = SyncCursor("s1", next_offset=5)
    record = SubscriberCursors().with_cursor("PUB", replace(started, next_offset=2))
    _, stored = store_cursor(record, SUB, write(started, started.advanced(9, STARTED)))
    assert not stored


def test_moving_the_cursor_keeps_parked_events() -> None:
    record = SubscriberCursors().with_cursor("PUB", SyncCursor("s1", next_offset=5, parked=(parked(1, 2),)))
    new, outcome = set_cursor(record, "c1", {"PublisherProgramId": "PUB", "SubscriptionId": "s1", "LastSyncUtc": None}, live={"PUB": "s1"})
    assert outcome.status == 204 and new.cursor_of(SUB).next_offset is None and new.cursor_of(SUB).parked == (parked(1, 2),)


def test_queue_page_and_json_round_trip() -> None:
    events = tuple(parked(o, o + 1, redeliver=False) for o in range(5))
    record = SubscriberCursors().with_cursor("PUB", SyncCursor("s1", next_offset=9, parked=events))
    record, queued, missing = queue_redelivery(record, SUB, ["E:PUB-2", "E:PUB-99"])
    assert queued == ["E:PUB-2"] and missing == ["E:PUB-99"]
    record, queued, _ = queue_redelivery(record, SUB, None)
    assert len(queued) == 5 and all(p.redeliver for p in record.cursor_of(SUB).parked)
    again = SubscriberCursors.from_json(record.to_json()).cursor_of(SUB)
    assert again.parked == record.cursor_of(SUB).parked
    first = parked_page(again.parked, limit=2, after=None)
    assert [p["Offset"] for p in first["Parked"]] == [0, 1] and first["NextPageToken"] == "1"
    last = parked_page(again.parked, limit=3, after=int(first["NextPageToken"]))
    assert [p["Offset"] for p in last["Parked"]] == [2, 3, 4] and last["NextPageToken"] is None
