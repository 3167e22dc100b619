"""store_cursor: a running sync's progress is a compare-and-set (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

from hub_stream.subscriptions.records import Subscription
from hub_stream.sync.cursors import SubscriberCursors, SyncCursor, claim, set_cursor, store_cursor, superseded

T0 = "2026-11-22T08:00:00.000Z"
STARTED = datetime(2026, 11, 23, 3, 0, 0, 123000, tzinfo=UTC)


def sub(sub_id: str = "s1") -> Subscription:
    return Subscription("PUB", sub_id, T0, T0)


def body(expected: SyncCursor, new: SyncCursor, sub_id: str = "s1") -> dict[str, object]:
    return {"PublisherProgramId": "PUB", "SubscriptionId": sub_id, "Expected": expected.to_json(), "Cursor": new.to_json()}


def test_a_write_from_the_expected_cursor_is_stored() -> None:
    start = SubscriberCursors().cursor_of(sub())  # no cursor stored yet: the subscription's start
    progress = start.in_window(40, {7: 45})
    record, stored = store_cursor(SubscriberCursors(), sub(), body(start, progress))
    assert stored and record.cursor_of(sub()) == progress
    done = progress.advanced(60, STARTED)
    record, stored = store_cursor(record, sub(), body(progress, done))
    assert stored and record.cursor_of(sub()) == SyncCursor("s1", next_offset=60, last_sync_utc=STARTED)


def test_a_patch_meanwhile_wins_over_the_running_sync() -> None:
    start = SyncCursor("s1", next_offset=40)
    record = SubscriberCursors({"PUB": start})
    record, _ = set_cursor(record, "k1", {"PublisherProgramId": "PUB", "SubscriptionId": "s1", "LastSyncUtc": T0}, live={"PUB": "s1"})
    after, stored = store_cursor(record, sub(), body(start, start.advanced(60, STARTED)))
    assert not stored and after is record and after.cursors["PUB"].from_time is not None


def test_a_redelivered_write_changes_nothing() -> None:
    start = SyncCursor("s1", next_offset=40)
    done = start.advanced(60, STARTED)
    record, _ = store_cursor(SubscriberCursors({"PUB": start}), sub(), body(start, done))
    again, stored = store_cursor(record, sub(), body(start, done))
    assert not stored and again is record


def test_a_deleted_or_replaced_subscription_gets_no_write() -> None:
    start = SyncCursor("s1", next_offset=40)
    record = SubscriberCursors({"PUB": start})
    assert store_cursor(record, None, body(start, start.advanced(60, STARTED)))[1] is False
    assert store_cursor(record, sub("s2"), body(start, start.advanced(60, STARTED)))[1] is False


def test_after_a_claim_only_the_claiming_run_writes_and_the_claim_survives_the_table() -> None:
    """Issue 21: a run that lost the subscriber to a newer run cannot move its cursor, even from the right one."""
    start = SyncCursor("s1", next_offset=40)
    record = claim(SubscriberCursors({"PUB": start}), {"Token": "old", "SyncId": "S:1"})
    record = claim(record, {"Token": "new", "SyncId": "S:2"})  # the partition moved; the new owner's run
    stale = {**body(start, start.advanced(60, STARTED)), "Lease": "old"}
    after, stored = store_cursor(record, sub(), stale)
    assert superseded(record, stale) and not stored and after is record
    unsigned = body(start, start.advanced(60, STARTED))  # a write from before claims existed
    assert store_cursor(record, sub(), unsigned)[1] is False
    restored = SubscriberCursors.from_json(record.to_json())  # as the table's changelog gives it back
    current, stored = store_cursor(restored, sub(), {**body(start, start.advanced(60, STARTED)), "Lease": "new"})
    assert stored and current.cursor_of(sub()).next_offset == 60 and current.lease == record.lease


def test_before_any_claim_an_unsigned_write_is_stored() -> None:
    start = SyncCursor("s1", next_offset=40)
    record, stored = store_cursor(SubscriberCursors({"PUB": start}), sub(), body(start, start.advanced(60, STARTED)))
    assert stored and record.lease is None and "Lease" not in record.to_json()
