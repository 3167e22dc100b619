"""One subscription's sync against the LearningBuilder stand-in (real HTTP), events from memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from hub_stream.cursors import SyncCursor
from hub_stream.fake_lb import FakeLB, start_fake_lb
from hub_stream.lb_client import CreateBatchClient, LbTarget
from hub_stream.settings import HubSettings
from hub_stream.sync import StoredEvent, sync_subscription
from hub_stream.templating import parse_payload_template

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
    def __init__(self, records: list[StoredEvent]) -> None:
        self.records = records

    async def log_end(self, publisher: str) -> int:
        return max((r.offset for r in self.records), default=-1) + 1

    async def read(self, publisher: str, start: int, end: int) -> AsyncIterator[StoredEvent]:
        for r in self.records:
            if start <= r.offset < end:
                yield r


@pytest.fixture
async def lb() -> AsyncIterator[FakeLB]:
    fake, runner = await start_fake_lb(api_keys={KEY})
    yield fake
    await runner.cleanup()


async def run(lb: FakeLB, source: MemorySource, cursor: SyncCursor, template: Any = TEMPLATE) -> tuple[Any, SyncCursor, list[SyncCursor]]:
    saved: list[SyncCursor] = []

    async def on_delivered(c: SyncCursor) -> None:
        saved.append(c)

    async def on_batch(batch: Any, outcome: Any) -> None:
        pass

    async with CreateBatchClient(HubSettings(lb_max_retries=0)) as client:
        outcome, after = await sync_subscription(
            publisher="PUB",
            template=parse_payload_template(template),
            cursor=cursor,
            source=source,
            lb=client,
            target=LbTarget(lb.base_url, KEY),
            started=STARTED,
            row_cap=2,
            on_delivered=on_delivered,
            on_batch=on_batch,
        )
    return outcome, after, saved


def rows_of(lb: FakeLB) -> list[tuple[int | None, int]]:
    return [(b.import_process_id, r["n"]) for b in lb.accepted for r in b.rows]


async def test_groups_by_process_in_log_order_skips_deleted_and_ignored(lb: FakeLB) -> None:
    records = [ev(0, 1, "A"), ev(1, 2, "B"), ev(2, 3, "A"), ev(3, 4, "SKIP"), ev(4, 5, "A"), ev(5, 6, "A"),
               StoredEvent(offset=6, publisher="PUB", deleted_event_id="E:PUB-3")]
    outcome, after, saved = await run(lb, MemorySource(records), SyncCursor("s1"))
    assert outcome.status == "ok" and (outcome.events, outcome.imported, outcome.ignored) == (5, 4, 1)
    assert rows_of(lb) == [(1, 1), (1, 5), (1, 6), (2, 2)]  # row cap 2 split process 1 in two batches
    assert [b.file_name for b in lb.accepted] == ["Learning Hub PUB 2026-11-22"] * 3
    assert after.next_offset == 7 and after.last_sync_utc == STARTED and after.delivered == {}
    assert saved[-1] == after


async def test_nothing_new_makes_no_call_and_still_advances(lb: FakeLB) -> None:
    outcome, after, _ = await run(lb, MemorySource([ev(0, 1, "A")]), SyncCursor("s1", next_offset=1))
    assert outcome.status == "ok" and outcome.events == 0 and lb.batches == []
    assert after.last_sync_utc == STARTED


async def test_from_time_replays_only_events_created_since(lb: FakeLB) -> None:
    records = [ev(0, 1, "A", "2026-11-01T00:00:00Z"), ev(1, 2, "A", "2026-11-10T00:00:00Z")]
    cursor = SyncCursor("s1", from_time=datetime(2026, 11, 5, tzinfo=UTC))
    outcome, _, _ = await run(lb, MemorySource(records), cursor)
    assert rows_of(lb) == [(1, 2)]


async def test_render_failure_sends_nothing_and_keeps_the_cursor(lb: FakeLB) -> None:
    template = {"_default": {"importProcessId": 1, "batchRowTemplate": '{"n": {{n}}{{#if bad}}, oops{{/if}}}'}}
    records = [ev(0, 1, "A"), StoredEvent(1, "PUB", {"EventId": "E:PUB-bad", "PublisherEventData": {"n": 2, "bad": True}})]
    cursor = SyncCursor("s1")
    outcome, after, saved = await run(lb, MemorySource(records), cursor, template)
    assert outcome.status == "failed" and outcome.error_code == "render_failed"
    assert outcome.failed_event_ids == ["E:PUB-bad"] and "E:PUB-bad" in (outcome.error or "")
    assert lb.batches == [] and after == cursor and saved == []


async def test_partial_rejection_then_retry_sends_only_the_rejected_rows(lb: FakeLB) -> None:
    records = [ev(0, 1, "A"), ev(1, 2, "B"), ev(2, 3, "A")]
    lb.reject_process(2)
    outcome, after, _ = await run(lb, MemorySource(records), SyncCursor("s1"))
    assert outcome.status == "failed" and outcome.error_code == "lb_rejected" and outcome.lb_status == 400
    assert rows_of(lb) == [(1, 1), (1, 3)]
    assert after.next_offset is None and after.delivered == {1: 2}  # cursor not moved; process 1 remembered

    lb.behaviour.reject_import_process_ids.clear()
    outcome, after, _ = await run(lb, MemorySource(records), after)
    assert outcome.status == "ok"
    assert rows_of(lb) == [(1, 1), (1, 3), (2, 2)]  # nothing sent twice
    assert after.next_offset == 3 and after.delivered == {}
