"""Preview and dry run as pure logic: results per event, latest live events read backwards, the plan."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

from hub_stream.events.records import StoredEvent
from hub_stream.sync.cursors import SyncCursor
from hub_stream.sync.delivery import SyncJob
from hub_stream.sync.dry_run import dry_run_answer, plan_subscription
from hub_stream.sync.preview import FIRST_BLOCK, first_failure, latest_live_events, preview
from hub_stream.templating import parse_payload_template
from schemas.preview import DryRunOut, PreviewOut
from schemas.timefmt import utc_now

TEMPLATE = parse_payload_template(
    {
        "COURSE": {"importProcessId": 11, "batchRowTemplate": '{"email": "{{email}}",\n "score": {{score}}}'},
        "SPAM": {"action": "ignore"},
    }
)


def event(n: int, category: str | None = "COURSE", **data: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "EventId": f"E:PUB-{n}",
        "PublisherProgramId": "PUB",
        "PublisherEventId": f"ev-{n}",
        "PublisherEventData": {"email": f"p{n}@example.org", "score": n, **data},
    }
    if category is not None:
        doc["PublisherEventCategory"] = {"value": category, "label": category}
    return doc


def test_preview_names_route_row_and_error_with_line_and_column() -> None:
    answer = preview(TEMPLATE, [event(1), event(2, "SPAM"), event(3, None), event(4, score="high")]).as_json()
    PreviewOut.model_validate(answer)
    ok, spam, none, bad = answer["Results"]
    assert ok == {
        "EventId": "E:PUB-1",
        "PublisherEventId": "ev-1",
        "Category": "COURSE",
        "EntryKey": "COURSE",
        "Action": "import",
        "ImportProcessId": 11,
        "Row": {"email": "p1@example.org", "score": 1},
        "Error": None,
    }
    assert (spam["EntryKey"], spam["Action"], spam["Row"], spam["ImportProcessId"]) == ("SPAM", "ignore", None, None)
    assert (none["Category"], none["EntryKey"], none["Action"]) == (None, None, "ignore")
    # "score": high -> not JSON, on the row's second line
    assert bad["Row"] is None and bad["Error"]["error"] == "row_not_json"
    assert (bad["Error"]["line"], bad["Error"]["column"]) == (2, 11)
    assert answer["Summary"] == {"Import": 1, "Ignore": 2, "Failed": 1}


def test_first_failure_is_the_save_time_check() -> None:
    assert first_failure(TEMPLATE, [event(1), event(2, "SPAM")]) is None
    failed = first_failure(TEMPLATE, [event(1), event(7, score="x"), event(8, score="y")])
    assert failed is not None and failed["EventId"] == "E:PUB-7"


class SharedPartition:
    """One partition of hub.events in memory, shared by several publishers; counts records read."""

    def __init__(self, records: list[StoredEvent]) -> None:
        self.records = records
        self.read = 0
        self.floors: list[int] = []

    async def log_end(self, publisher: str) -> int:
        return len(self.records)

    async def offset_at_time(self, publisher: str, ms: int, *, end: int | None = None) -> int:
        raise AssertionError("not used")

    @asynccontextmanager
    async def window(self, publisher: str, start: int, end: int | None = None) -> AsyncIterator[Any]:
        stop = len(self.records) if end is None else end
        part = self.records[start:stop]
        self.read += len(part)

        async def chunks() -> AsyncIterator[list[StoredEvent]]:
            yield [r for r in part if r.publisher == publisher]

        yield SimpleNamespace(end=stop, chunks=chunks)


def partition(layout: list[str]) -> SharedPartition:
    """'p3' = PUB's event 3; 'd3' = deletion of it; 'x' = another publisher's record."""
    records = []
    for offset, item in enumerate(layout):
        if item.startswith("p"):
            records.append(StoredEvent(offset, "PUB", event(int(item[1:]))))
        elif item.startswith("d"):
            records.append(StoredEvent(offset, "PUB", None, f"E:PUB-{item[1:]}"))
        else:
            records.append(StoredEvent(offset, "OTHER", {"EventId": "E:OTHER-x"}))
    return SharedPartition(records)


async def _latest(source: SharedPartition, count: int, floor_at: int = 0) -> list[int]:
    async def floor(end: int) -> int:
        source.floors.append(end)
        return floor_at

    events = await latest_live_events(source, "PUB", count, floor=floor)
    return [e["PublisherEventData"]["score"] for e in events]


async def test_latest_live_events_oldest_first_without_deleted_ones_and_others() -> None:
    source = partition(["p1", "x", "p2", "p3", "x", "d2", "p4", "x", "d4"])
    assert await _latest(source, 10) == [1, 3]
    assert await _latest(source, 1) == [3]


async def test_a_deletion_far_after_its_event_still_counts_across_blocks() -> None:
    # PUB's events sit before a long run of other publishers' records; event 2's marker is at the end.
    source = partition(["p1", "p2", "p3", *["x"] * (FIRST_BLOCK * 3), "d2"])
    assert await _latest(source, 2) == [1, 3]


async def test_the_search_back_stops_at_the_publishers_floor() -> None:
    source = partition(["p1", *["x"] * 50_000, "p2", *["x"] * 10 * FIRST_BLOCK])
    assert await _latest(source, 5, floor_at=50_000) == [2]  # p1 lies before the floor: never reached
    assert source.floors == [len(source.records)]  # asked once, when the blocks grew large
    assert source.read < 20_000  # not a scan of the partition


async def test_latest_of_a_quiet_publisher_reads_little() -> None:
    source = partition([*["x"] * 100_000, "p1", "p2", *["x"] * 10])
    assert await _latest(source, 2) == [1, 2]
    assert source.read <= FIRST_BLOCK


async def test_dry_run_plans_what_the_sync_would_send_and_skips_what_lb_accepted() -> None:
    template = parse_payload_template(
        {
            "A": {"importProcessId": 1, "batchRowTemplate": '{"n": {{n}}}'},
            "B": {"importProcessId": 2, "batchRowTemplate": '{"m": {{n}}}'},
        }
    )
    records = [
        StoredEvent(o, "PUB", {"EventId": f"E:PUB-{o}", "PublisherEventCategory": {"value": "A" if o % 3 else "B"}, "PublisherEventData": {"n": o}})
        for o in range(10)
    ]
    records.append(StoredEvent(10, "PUB", None, "E:PUB-4"))
    source = SharedPartition(records)
    # A retried window: LB accepted process 1's rows up to offset 2 before.
    cursor = SyncCursor("sub-1", next_offset=0, delivered={1: 2})
    outcome = await plan_subscription(SyncJob("PUB", template, cursor), source=source, row_cap=3)
    assert [(b["ImportProcessId"], [r.get("n", r.get("m")) for r in b["Sample"]], b["Rows"]) for b in outcome.batches] == [
        (2, [0, 3, 6], 3),
        (2, [9], 1),
        (1, [5, 7, 8], 3),
    ]
    assert (outcome.events, outcome.imported, outcome.ignored) == (9, 7, 0)
    status, answer = dry_run_answer("SUB", utc_now(), utc_now(), [outcome])
    assert status == 200 and answer["DryRun"] is True and answer["SyncId"] is None
    assert all(b["BatchId"] is None for b in answer["Subscriptions"][0]["Batches"])
    DryRunOut.model_validate(answer)
    json.dumps(answer)


async def test_dry_run_of_a_failing_template_answers_as_the_sync_would() -> None:
    template = parse_payload_template({"_default": {"importProcessId": 1, "batchRowTemplate": '{"n": {{n}}}'}})
    source = SharedPartition([StoredEvent(0, "PUB", {"EventId": "E:PUB-0", "PublisherEventData": {"n": "text"}})])
    outcome = await plan_subscription(SyncJob("PUB", template, SyncCursor("s", next_offset=0)), source=source, row_cap=3)
    status, answer = dry_run_answer("SUB", utc_now(), utc_now(), [outcome])
    assert status == 422 and answer["error"] == "render_failed" and answer["details"]["Subscriptions"][0]["EventIds"] == ["E:PUB-0"]
    assert answer["Subscriptions"][0]["Batches"] == []
