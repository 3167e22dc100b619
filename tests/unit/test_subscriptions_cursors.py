"""Sync cursors: which cursor a subscription has, and the cursor command (pure logic)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hub_stream.subscriptions.records import Subscription
from hub_stream.sync.cursors import SubscriberCursors, SyncCursor, set_cursor

T0 = "2026-11-22T08:00:00.000Z"
T1 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def sub(sub_id: str = "s1", start: str | None = None) -> Subscription:
    return Subscription("PUB", sub_id, T0, T0, start_utc=start)


def test_a_new_subscription_starts_at_its_creation_start_point() -> None:
    none = SubscriberCursors()
    assert none.cursor_of(sub()) == SyncCursor("s1")
    assert none.last_sync_text(sub()) is None
    started = none.cursor_of(sub(start="2026-01-01T00:00:00.000Z"))
    assert started.from_time == datetime(2026, 1, 1, tzinfo=UTC)
    assert started.next_offset is None
    assert none.last_sync_text(sub(start="2026-01-01T00:00:00.000Z")) == "2026-01-01T00:00:00.000Z"


def test_a_cursor_of_a_deleted_subscription_is_ignored() -> None:
    cursors = SubscriberCursors({"PUB": SyncCursor("old", next_offset=40, last_sync_utc=T1)})
    assert cursors.cursor_of(sub("old")).next_offset == 40
    assert cursors.cursor_of(sub("new")) == SyncCursor("new")


def test_set_cursor_moves_it_and_forgets_the_offset() -> None:
    record = SubscriberCursors({"PUB": SyncCursor("s1", next_offset=40, delivered={7: 39})})
    new, outcome = set_cursor(record, "k1", {"PublisherProgramId": "PUB", "SubscriptionId": "s1", "LastSyncUtc": "2026-11-23T09:30:00.000Z"}, live={"PUB": "s1"})
    assert outcome.status == 204
    assert new.cursors["PUB"] == SyncCursor("s1", next_offset=None, from_time=T1, last_sync_utc=T1, delivered={})
    assert new.last_sync_text(sub()) == "2026-11-23T09:30:00.000Z"


def test_set_cursor_to_null_means_from_the_first_event() -> None:
    record = SubscriberCursors({"PUB": SyncCursor("s1", next_offset=40, last_sync_utc=T1)})
    new, _ = set_cursor(record, "k1", {"PublisherProgramId": "PUB", "SubscriptionId": "s1", "LastSyncUtc": None}, live={"PUB": "s1"})
    assert new.cursors["PUB"] == SyncCursor("s1")
    assert new.last_sync_text(sub()) is None


def test_a_redelivered_cursor_command_does_not_rewind_a_later_sync() -> None:
    body = {"PublisherProgramId": "PUB", "SubscriptionId": "s1", "LastSyncUtc": None}
    record, first = set_cursor(SubscriberCursors(), "k1", body, live={"PUB": "s1"})
    synced = record.with_cursor("PUB", record.cursors["PUB"].advanced(120, T1))
    again, second = set_cursor(synced, "k1", body, live={"PUB": "s1"})
    assert second == first
    assert again is synced
    assert again.cursors["PUB"].next_offset == 120


def test_set_cursor_for_a_subscription_gone_meanwhile_is_404_and_prunes() -> None:
    record = SubscriberCursors({"OLD": SyncCursor("x")})
    new, outcome = set_cursor(record, "k1", {"PublisherProgramId": "PUB", "SubscriptionId": "s1", "LastSyncUtc": None}, live={})
    assert outcome.status == 404
    assert new.cursors == {}


def test_advanced_cursor() -> None:
    c = SyncCursor("s1", next_offset=None, from_time=T1, delivered={3: 9}).advanced(50, T1)
    assert (c.next_offset, c.from_time, c.last_sync_utc, dict(c.delivered)) == (50, None, T1, {})


def test_cursors_round_trip_through_json() -> None:
    record = SubscriberCursors({"PUB": SyncCursor("s1", 12, T1, T1, {4: 11})})
    record, _ = set_cursor(record, "k1", {"PublisherProgramId": "P2", "SubscriptionId": "s2", "LastSyncUtc": None}, live={"PUB": "s1", "P2": "s2"})
    assert SubscriberCursors.from_json(json.loads(json.dumps(record.to_json()))) == record
    assert SubscriberCursors.from_json(None) == SubscriberCursors()
