"""One subscription's sync against the LearningBuilder stand-in (real HTTP), events from memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from hub_stream.events.records import StoredEvent
from hub_stream.local.lb_standin import FakeLB, start_fake_lb
from hub_stream.platform.settings import HubSettings
from hub_stream.sync.cursors import SyncCursor, parked_changed
from hub_stream.sync.delivery import (
    ProgressNotRecorded,
    SendingBatch,
    SyncJob,
    ledger_status,
    sync_answer,
    sync_subscription,
    window_start,
)
from hub_stream.sync.lb_client import CreateBatchClient, LbTarget
from hub_stream.sync.plan import PlannedBatch, batch_file_name
from hub_stream.templating import parse_payload_template
from schemas.timefmt import parse_utc

KEY = "k-123"
STARTED = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
TEMPLATE = {
    "A": {"importProcessId": 1, "batchRowTemplate": '{"n": {{n}}, "kind": "a"}'},
    "B": {"importProcessId": 2, "batchRowTemplate": '{"n": {{n}}, "kind": "b"}'},
    "SKIP": {"action": "ignore"},
}


def ev(offset: int, n: int, cat: str, created: str = "2026-11-21T10:00:00.000Z") -> StoredEvent:
    event = {"EventId": f"E:PUB-{n}", "CreatedUtc": created, "PublisherEventCategory": {"value": cat}, "PublisherEventData": {"n": n}}
    return StoredEvent(offset=offset, publisher="PUB", event=event)


class MemorySource:
    """hub.events in memory; record timestamps are the events' CreatedUtc."""

    def __init__(self, records: list[StoredEvent]) -> None:
        self.records = records
        self.time_lookups: list[int] = []

    async def log_end(self, publisher: str) -> int:
        return max((r.offset for r in self.records), default=-1) + 1

    async def offset_at_time(self, publisher: str, ms: int, *, end: int | None = None) -> int:
        self.time_lookups.append(ms)
        for r in self.records:
            created = (r.event or {}).get("CreatedUtc")
            if created and parse_utc(created).timestamp() * 1000 >= ms:
                return r.offset
        return await self.log_end(publisher)

    @asynccontextmanager
    async def window(self, publisher: str, start: int, end: int | None = None) -> AsyncIterator[Any]:
        last = await self.log_end(publisher) if end is None else end
        records = [r for r in self.records if start <= r.offset < last]

        async def chunks() -> AsyncIterator[list[StoredEvent]]:
            for r in records:
                yield [r]

        yield SimpleNamespace(end=last, chunks=chunks)


class MemoryCursors:
    """The cursor store: a compare-and-set over one cursor, as the sync agent applies it."""

    def __init__(self, cursor: SyncCursor) -> None:
        self.current = cursor
        self.saved: list[SyncCursor] = []
        self.move_after: int | None = None  # simulate a PATCH after this many writes
        self.fail_after: int | None = None  # simulate an unreachable agent after this many writes

    async def __call__(self, expected: SyncCursor, new: SyncCursor, parked_changes: dict[str, Any] | None = None) -> bool:
        if self.fail_after is not None and len(self.saved) >= self.fail_after:
            raise ProgressNotRecorded("the agent did not answer")
        if self.move_after is not None and len(self.saved) >= self.move_after:
            self.current = SyncCursor(new.subscription_id, from_time=STARTED)
        if expected.position() != self.current.position():  # as cursors.store_cursor compares
            return False
        self.current = replace(new, parked=parked_changed(self.current.parked, parked_changes))
        self.saved.append(new)
        return True


class MemoryLedger:
    """[import process, rows, status, message] per batch, numbered and named as the sync does."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []

    async def sending(self, batch: PlannedBatch) -> SendingBatch:
        self.rows.append([batch.import_process_id, len(batch.rows), "sending", None])
        return SendingBatch(len(self.rows), batch_file_name("PUB", STARTED, "S:SUB-1", len(self.rows)))

    async def answered(self, sending: SendingBatch, batch: Any, outcome: Any, *, note: str | None = None) -> None:
        self.rows[sending.seq - 1][2:] = list(ledger_status(sending, outcome, note))


@pytest.fixture
async def lb() -> AsyncIterator[FakeLB]:
    fake, runner = await start_fake_lb(api_keys={KEY})
    yield fake
    await runner.cleanup()


async def run(
    lb: FakeLB,
    source: MemorySource,
    cursor: SyncCursor | MemoryCursors,
    template: Any = TEMPLATE,
    *,
    registered: datetime | None = None,
    ledger: MemoryLedger | None = None,
    should_stop: Any = lambda: False,
    settings: HubSettings | None = None,
    park: bool = False,
) -> tuple[Any, SyncCursor, list[SyncCursor]]:
    store = cursor if isinstance(cursor, MemoryCursors) else MemoryCursors(cursor)
    async with CreateBatchClient(settings or HubSettings(lb_max_retries=0)) as client:
        outcome = await sync_subscription(
            SyncJob("PUB", parse_payload_template(template), store.current, registered, park=park),
            source=source,
            lb=client,
            target=LbTarget(lb.base_url, KEY),
            started=STARTED,
            row_cap=2,
            store=store,
            batches=ledger or MemoryLedger(),
            should_stop=should_stop,
        )
    return outcome, store.current, store.saved


def rows_of(lb: FakeLB) -> list[tuple[int | None, int]]:
    return [(b.import_process_id, r["n"]) for b in lb.accepted for r in b.rows]


async def test_groups_by_process_in_log_order_skips_deleted_and_ignored(lb: FakeLB) -> None:
    records = [ev(0, 1, "A"), ev(1, 2, "B"), ev(2, 3, "A"), ev(3, 4, "SKIP"), ev(4, 5, "A"), ev(5, 6, "A"),
               StoredEvent(offset=6, publisher="PUB", deleted_event_id="E:PUB-3")]
    outcome, after, saved = await run(lb, MemorySource(records), SyncCursor("s1"))
    assert outcome.status == "ok" and (outcome.events, outcome.imported, outcome.ignored) == (5, 4, 1)
    assert rows_of(lb) == [(1, 1), (1, 5), (1, 6), (2, 2)]  # row cap 2 split process 1 in two batches
    assert [b.file_name for b in lb.accepted] == [f"Learning Hub PUB 2026-11-22 S:SUB-1-{n}" for n in (1, 2, 3)]
    assert outcome.resent == 0 and outcome.as_json()["Resent"] == 0
    assert after.next_offset == 7 and after.last_sync_utc == STARTED and after.delivered == {}
    assert saved[-1] == after


async def test_nothing_new_makes_no_call_and_still_advances(lb: FakeLB) -> None:
    outcome, after, _ = await run(lb, MemorySource([ev(0, 1, "A")]), SyncCursor("s1", next_offset=1))
    assert outcome.status == "ok" and outcome.events == 0 and lb.batches == []
    assert after.last_sync_utc == STARTED


async def test_from_time_replays_only_events_created_since(lb: FakeLB) -> None:
    records = [ev(0, 1, "A", "2026-11-01T00:00:00Z"), ev(1, 2, "A", "2026-11-10T00:00:00Z")]
    cursor = SyncCursor("s1", from_time=datetime(2026, 11, 5, tzinfo=UTC))
    source = MemorySource(records)
    outcome, after, _ = await run(lb, source, cursor)
    assert outcome.status == "ok"
    assert rows_of(lb) == [(1, 2)]
    assert source.time_lookups == [int(datetime(2026, 11, 5, tzinfo=UTC).timestamp() * 1000)]
    assert after.next_offset == 2 and after.from_time is None and after.last_sync_utc == STARTED


async def test_render_failure_sends_nothing_and_keeps_the_cursor(lb: FakeLB) -> None:
    template = {"_default": {"importProcessId": 1, "batchRowTemplate": '{"n": {{n}}{{#if bad}}, oops{{/if}}}'}}
    records = [ev(0, 1, "A"), StoredEvent(1, "PUB", {"EventId": "E:PUB-bad", "PublisherEventData": {"n": 2, "bad": True}})]
    cursor = SyncCursor("s1")
    outcome, after, saved = await run(lb, MemorySource(records), cursor, template)
    assert outcome.status == "failed" and outcome.error_code == "render_failed"
    assert outcome.failed_event_ids == ["E:PUB-bad"] and "E:PUB-bad" in (outcome.error or "")
    assert lb.batches == [] and after == cursor and saved == []


@pytest.mark.parametrize("park", [False, True])
async def test_an_event_deleted_later_in_the_window_neither_fails_nor_counts(lb: FakeLB, park: bool) -> None:
    # Rows are rendered as the window is read, before the markers after them are seen.
    template = {**TEMPLATE, "A": {"importProcessId": 1, "batchRowTemplate": '{"n": {{n}}{{#if bad}}, oops{{/if}}}'}}
    bad = StoredEvent(1, "PUB", {"EventId": "E:PUB-bad", "PublisherEventCategory": {"value": "A"}, "PublisherEventData": {"n": 2, "bad": True}})
    records = [ev(0, 1, "A"), bad, ev(2, 3, "SKIP"), ev(3, 4, "A"), ev(4, 5, "B"),
               StoredEvent(5, "PUB", deleted_event_id="E:PUB-bad"), StoredEvent(6, "PUB", deleted_event_id="E:PUB-3"),
               StoredEvent(7, "PUB", deleted_event_id="E:PUB-4")]  # fmt: skip
    outcome, after, _ = await run(lb, MemorySource(records), SyncCursor("s1"), template, park=park)
    assert outcome.status == "ok" and outcome.parked == [] and outcome.failed_event_ids == []
    assert (outcome.events, outcome.imported, outcome.ignored) == (2, 2, 0)
    assert rows_of(lb) == [(1, 1), (2, 5)]
    assert after.next_offset == 8


async def test_partial_rejection_then_retry_sends_only_the_rejected_rows(lb: FakeLB) -> None:
    records = [ev(0, 1, "A"), ev(1, 2, "B"), ev(2, 3, "A")]
    lb.reject_process(2)
    outcome, after, _ = await run(lb, MemorySource(records), SyncCursor("s1"))
    assert outcome.status == "failed" and outcome.error_code == "lb_rejected" and outcome.lb_status == 400
    assert rows_of(lb) == [(1, 1), (1, 3)]
    assert after.next_offset == 0 and after.delivered == {1: 2}  # window kept; process 1 remembered
    assert after.last_sync_utc is None

    lb.behaviour.reject_import_process_ids.clear()
    outcome, after, _ = await run(lb, MemorySource(records), after)
    assert outcome.status == "ok"
    assert rows_of(lb) == [(1, 1), (1, 3), (2, 2)]  # nothing sent twice
    assert after.next_offset == 3 and after.delivered == {}


async def test_window_start_follows_the_cursor_the_time_or_the_registration() -> None:
    records = [ev(0, 1, "A", "2026-11-01T00:00:00Z"), ev(1, 2, "A", "2026-11-10T00:00:00Z"), ev(2, 3, "A", "2026-11-20T00:00:00Z")]
    source = MemorySource(records)
    template = parse_payload_template(TEMPLATE)
    assert await window_start(SyncJob("PUB", template, SyncCursor("s1", next_offset=2)), source) == 2
    assert source.time_lookups == []  # an offset needs no lookup
    assert await window_start(SyncJob("PUB", template, SyncCursor("s1", from_time=datetime(2026, 11, 9, tzinfo=UTC))), source) == 1
    # From the publisher's first event: no event is older than its registration (less the clock margin).
    registered = datetime(2026, 11, 10, 0, 30, tzinfo=UTC)
    assert await window_start(SyncJob("PUB", template, SyncCursor("s1"), registered), source) == 1
    assert source.time_lookups[-1] == int((registered - timedelta(hours=1)).timestamp() * 1000)
    assert await window_start(SyncJob("PUB", template, SyncCursor("s1")), source) == 0  # registration unknown


async def test_a_cursor_moved_meanwhile_stops_the_sync_and_is_kept(lb: FakeLB) -> None:
    records = [ev(n, n, "A") for n in range(6)]
    store = MemoryCursors(SyncCursor("s1"))
    store.move_after = 1  # a PATCH lands after the first batch was recorded
    outcome, after, saved = await run(lb, MemorySource(records), store)
    assert outcome.status == "failed" and outcome.error_code == "cursor_moved"
    assert len(lb.accepted) == 2 and outcome.imported == 4  # the batch in flight was accepted; no third one
    assert after == SyncCursor("s1", from_time=STARTED) and len(saved) == 1  # the PATCH won


async def test_progress_not_recorded_stops_before_the_next_batch(lb: FakeLB) -> None:
    records = [ev(n, n, "A") for n in range(6)]
    store = MemoryCursors(SyncCursor("s1"))
    store.fail_after = 1
    ledger = MemoryLedger()
    outcome, after, _ = await run(lb, MemorySource(records), store, ledger=ledger)
    assert outcome.error_code == "sync_interrupted" and len(lb.accepted) == 2
    assert after.delivered == {1: 1}
    assert ledger.rows[1][2] == "accepted" and "may send these rows again" in ledger.rows[1][3]


async def test_a_stop_request_is_honoured_between_batches(lb: FakeLB) -> None:
    records = [ev(n, n, "A") for n in range(6)]
    outcome, after, _ = await run(lb, MemorySource(records), SyncCursor("s1"), should_stop=lambda: len(lb.batches) >= 1)
    assert outcome.error_code == "sync_interrupted" and len(lb.batches) == 1
    assert after.delivered == {1: 1} and after.last_sync_utc is None


async def test_the_ledger_sees_every_batch_before_and_after_lb(lb: FakeLB) -> None:
    records = [ev(0, 1, "A"), ev(1, 2, "B"), ev(2, 3, "A")]
    lb.reject_process(2)
    ledger = MemoryLedger()
    await run(lb, MemorySource(records), SyncCursor("s1"), ledger=ledger)
    assert [(r[0], r[1], r[2]) for r in ledger.rows] == [(1, 2, "accepted"), (2, 1, "rejected")]


def test_answer_status_follows_the_worst_failure() -> None:
    from hub_stream.sync.delivery import SubscriptionOutcome

    ok = SubscriptionOutcome("A")
    render = SubscriptionOutcome("B")
    render.fail("render_failed", "event E:B-1: bad")
    render.failed_event_ids = ["E:B-1"]
    rejected = SubscriptionOutcome("C", lb_status=400)
    rejected.fail("lb_rejected", "LearningBuilder answered 400")
    assert sync_answer("P", "S", STARTED, STARTED, [ok])[0] == 200
    status, body = sync_answer("P", "S", STARTED, STARTED, [ok, render])
    assert status == 422 and body["error"] == "render_failed" and body["details"]["Subscriptions"][0]["EventIds"] == ["E:B-1"]
    status, body = sync_answer("P", "S", STARTED, STARTED, [ok, render, rejected])
    assert status == 502 and body["error"] == "lb_rejected" and [d["PublisherProgramId"] for d in body["details"]["Subscriptions"]] == ["B", "C"]
    assert body["details"]["Subscriptions"][1]["LbStatus"] == 400


def test_gc_is_paused_while_any_sync_decodes_and_back_after() -> None:
    import gc

    from hub_stream.sync.delivery import paused_gc

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():  # a second sync at the same time
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


@pytest.mark.parametrize("fault", ["timeout", "drop"])
async def test_a_batch_stored_without_an_answer_and_sent_again_is_visible(lb: FakeLB, fault: str) -> None:
    """LB stored the batch but its answer never came: the retry makes a duplicate, and it shows."""
    records = [ev(n, n, "A") for n in range(4)]  # two batches of 2
    if fault == "timeout":
        lb.store_then_time_out(1, hold_s=3.0)
    else:
        lb.store_then_drop(1)
    ledger = MemoryLedger()
    settings = HubSettings(lb_max_retries=1, lb_total_timeout_s=0.5)
    outcome, after, _ = await run(lb, MemorySource(records), SyncCursor("s1"), ledger=ledger, settings=settings)
    assert outcome.status == "ok" and outcome.imported == 4 and after.next_offset == 4
    assert rows_of(lb) == [(1, 0), (1, 1), (1, 0), (1, 1), (1, 2), (1, 3)]  # batch 1 twice at LB
    assert outcome.resent == 1 and outcome.as_json()["Resent"] == 1
    assert [r[2] for r in ledger.rows] == ["unanswered", "accepted"]
    assert "may hold these rows twice" in ledger.rows[0][3]
    names = [b.file_name for b in lb.accepted]
    assert names[0] == names[1] != names[2]  # the duplicate has its batch's name; each batch its own


async def test_a_batch_never_answered_is_unanswered_not_rejected(lb: FakeLB) -> None:
    lb.store_then_drop(2)
    ledger = MemoryLedger()
    settings = HubSettings(lb_max_retries=1, lb_total_timeout_s=0.5)
    outcome, after, _ = await run(lb, MemorySource([ev(0, 1, "A")]), SyncCursor("s1"), ledger=ledger, settings=settings)
    assert outcome.error_code == "lb_rejected" and outcome.resent == 1 and after.next_offset is None
    assert len(lb.accepted) == 2  # stored twice, never answered
    assert ledger.rows[0][2] == "unanswered" and "the next sync sends them again" in ledger.rows[0][3]
