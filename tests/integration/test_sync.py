"""processEvents end to end: a real worker, broker, PostgreSQL and the LB stand-in over HTTP.

Events are appended to hub.events in their canonical record format
(hub_stream.events.records) with a plain producer, as the intake agent does.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer
from support import HubProcess, make_settings

from api.app import create_app
from hub_stream.events.records import encode_deletion, encode_event, partition_for
from hub_stream.local.lb_standin import FakeLB, start_fake_lb
from hub_stream.platform.request_reply import RpcClient, RpcTimeout
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics
from schemas.timefmt import parse_utc, to_millis, utc_now_text

pytestmark = pytest.mark.integration

LB_KEY = "lb-key-sync-test"
TEMPLATE = {
    "COURSE": {"importProcessId": 11, "batchRowTemplate": '{"email": "{{email}}", "n": {{json n}}}'},
    "EXAM": {"importProcessId": 22, "batchRowTemplate": '{"email": "{{email}}", "exam": {{json n}}}'},
    "_default": {"action": "ignore"},
}


@pytest.fixture(scope="module")
async def stack(kafka_bootstrap: str, database_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[HubSettings, RpcClient, FakeLB]]:
    tmp = Path(tmp_path_factory.mktemp("sync"))
    settings = make_settings(kafka_bootstrap, database_dsn, tmp, lb_max_retries=1, lb_batch_row_cap=3)
    await ensure_topics(settings)
    worker = HubProcess("worker", settings, tmp / "worker.log")
    rpc = RpcClient(settings)
    await rpc.start()
    lb, runner = await start_fake_lb(api_keys={LB_KEY})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                await rpc.request(settings.topic("sync.requests"), "warmup", "ping", timeout=3)
                break
            except RpcTimeout:
                assert time.monotonic() < deadline and worker.process.poll() is None, worker.log_tail()
        yield settings, rpc, lb
    finally:
        await runner.cleanup()
        await rpc.stop()
        worker.stop()


@pytest.fixture
async def http(stack: tuple[HubSettings, RpcClient, FakeLB], pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    settings, rpc, lb = stack
    lb.reset()
    async with TestClient(TestServer(create_app(settings, rpc=rpc, pool=pool))) as c:
        yield c


def names() -> tuple[str, str, str]:
    """A subscriber, its publisher and another publisher sharing the publisher's partition."""
    tag = uuid.uuid4().hex[:6]
    pub = f"PUB{tag}"
    other = next(f"OTH{tag}{i}" for i in range(1000) if partition_for(f"OTH{tag}{i}", 4) == partition_for(pub, 4))
    return f"SUB{tag}", pub, other


async def register(pool: asyncpg.Pool, lb: FakeLB | str, sub: str, *publishers: str) -> None:
    base_url = lb if isinstance(lb, str) else lb.base_url
    await pool.execute(
        "INSERT INTO programs (program_id, name, lb_base_url, lb_api_key) VALUES ($1, 'Subscriber', $2, $3)", sub, base_url, LB_KEY
    )
    for p in publishers:
        await pool.execute("INSERT INTO programs (program_id, name) VALUES ($1, 'Publisher')", p)


async def subscribe(http: TestClient, system: dict[str, str], sub: str, pub: str, template: Any = TEMPLATE) -> None:
    r = await http.post(
        f"/api/programs/{sub}/eventSubs", json={"PublisherProgramId": pub, "SyncEnabled": True, "LbApiPayloadTemplate": template}, headers=system
    )
    assert r.status == 201, await r.text()


def event(pub: str, n: int, category: str = "COURSE", **data: Any) -> dict[str, Any]:
    return {
        "EventId": f"E:{pub}-{uuid.uuid4()}",
        "PublisherProgramId": pub,
        "PublisherEventId": f"ev-{n}",
        "EventType": "AI_COMP_SUCCESS",
        "PublisherParticipantId": f"p{n}@example.org",
        "PublisherEventCategory": {"value": category, "label": category},
        "PublisherEventData": {"email": f"p{n}@example.org", "n": n, **data},
        "EventStartUtc": "2026-11-20T10:00:00.000Z",
        "CreatedUtc": utc_now_text(),
    }


async def append(settings: HubSettings, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    """Append records as the intake does: record timestamp = the event's CreatedUtc (markers: now)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        sent = []
        for key, value, headers in records:
            created = json.loads(value).get("CreatedUtc")
            stamp = to_millis(parse_utc(created)) if created else None
            sent.append(await producer.send(settings.topic("events"), value, key=key, headers=headers, timestamp_ms=stamp))
        await asyncio.gather(*sent)  # raises if the broker refused a record
    finally:
        await producer.stop()


async def process(http: TestClient, system: dict[str, str], sub: str) -> tuple[int, dict[str, Any]]:
    r = await http.post(f"/api/processEvents?programId={sub}", headers=system)
    return r.status, await r.json()


def delivered(lb: FakeLB) -> list[tuple[int | None, int]]:
    return [(b.import_process_id, row.get("n", row.get("exam"))) for b in lb.accepted for row in b.rows]


async def test_sync_delivers_in_order_once_and_skips_deleted_and_others(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, other = names()
    await register(pool, lb, sub, pub, other)
    await subscribe(http, system, sub, pub)
    events = [event(pub, 1), event(pub, 2, "EXAM"), event(pub, 3), event(other, 99), event(pub, 4), event(pub, 5, "SPAM"), event(pub, 6)]
    await append(settings, [encode_event(e) for e in events] + [encode_deletion(pub, events[4]["EventId"], utc_now_text())])

    status, body = await process(http, system, sub)
    assert status == 200, body
    [result] = body["Subscriptions"]
    assert (result["Status"], result["Events"], result["Imported"], result["Ignored"]) == ("ok", 5, 4, 1)
    assert delivered(lb) == [(11, 1), (11, 3), (11, 6), (22, 2)]
    prefix = f"Learning Hub {pub} {body['StartedUtc'][:10]} {body['SyncId']}"
    assert [b.file_name for b in lb.accepted] == [f"{prefix}-1", f"{prefix}-2"]  # unique per batch
    assert result["Resent"] == 0
    assert all(b.creation_path == "LH" for b in lb.accepted)
    assert result["LastSyncUtc"] == body["StartedUtc"]

    status, body = await process(http, system, sub)  # nothing new
    assert status == 200 and body["Subscriptions"][0]["Imported"] == 0 and len(lb.accepted) == 2

    r = await http.get(f"/api/programs/{sub}/eventSubs/{pub}", headers=system)
    assert (await r.json())["LastSyncUtc"] == body["StartedUtc"]
    r = await http.get(f"/api/programs/{sub}/syncs", headers=system)
    syncs = (await r.json())["Syncs"]
    assert len(syncs) == 2 and [b["ImportProcessId"] for b in syncs[1]["Batches"]] == [11, 22]


async def test_lb_unreachable_then_back_delivers_everything_exactly_once(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, _ = names()
    await register(pool, "http://127.0.0.1:9", sub, pub)  # discard port: nothing listens
    await subscribe(http, system, sub, pub)
    await append(settings, [encode_event(event(pub, n)) for n in range(1, 5)])
    status, body = await process(http, system, sub)
    assert status == 502 and body["error"] == "lb_rejected", body
    assert "Could not reach LB" in body["message"] and body["details"]["Subscriptions"][0]["LbStatus"] is None
    await pool.execute("UPDATE programs SET lb_base_url = $2 WHERE program_id = $1", sub, lb.base_url)
    status, body = await process(http, system, sub)
    assert status == 200, body
    assert delivered(lb) == [(11, n) for n in range(1, 5)]


async def test_lb_down_then_back_delivers_everything_exactly_once(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, _ = names()
    await register(pool, lb, sub, pub)
    await subscribe(http, system, sub, pub)
    await append(settings, [encode_event(event(pub, n)) for n in range(1, 8)])
    lb.fail(503, times=-1, message="maintenance window")
    status, body = await process(http, system, sub)
    assert status == 502 and body["error"] == "lb_rejected" and "maintenance window" in body["message"]
    assert body["Subscriptions"][0]["Status"] == "failed" and body["Subscriptions"][0]["LastSyncUtc"] is None
    lb.behaviour.fail_times = 0
    status, body = await process(http, system, sub)
    assert status == 200, body
    assert delivered(lb) == [(11, n) for n in range(1, 8)]  # row cap 3: three batches, every row once


async def test_partial_rejection_retry_sends_only_rejected_rows(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, _ = names()
    await register(pool, lb, sub, pub)
    await subscribe(http, system, sub, pub)
    await append(settings, [encode_event(event(pub, 1)), encode_event(event(pub, 2, "EXAM")), encode_event(event(pub, 3))])
    lb.reject_process(22)
    status, body = await process(http, system, sub)
    assert status == 502 and delivered(lb) == [(11, 1), (11, 3)]
    assert body["details"]["Subscriptions"][0]["LbStatus"] == 400 and "22 refused" in body["message"]
    lb.behaviour.reject_import_process_ids.clear()
    status, body = await process(http, system, sub)
    assert status == 200 and delivered(lb) == [(11, 1), (11, 3), (22, 2)]


async def test_render_failure_names_the_event_and_other_subscriptions_still_sync(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, other = names()
    await register(pool, lb, sub, pub, other)
    fragile = {"_default": {"importProcessId": 5, "batchRowTemplate": '{"n": {{n}}{{#if broken}}, broken{{/if}}}'}}
    await subscribe(http, system, sub, pub, fragile)
    await subscribe(http, system, sub, other)
    bad = event(pub, 2, broken=True)
    await append(settings, [encode_event(event(pub, 1)), encode_event(bad), encode_event(event(other, 7))])
    status, body = await process(http, system, sub)
    assert status == 422 and body["error"] == "render_failed"
    assert bad["EventId"] in body["message"] or bad["EventId"] in str(body["details"])
    by_pub = {s["PublisherProgramId"]: s for s in body["Subscriptions"]}
    assert by_pub[pub]["Status"] == "failed" and by_pub[other]["Status"] == "ok"
    assert delivered(lb) == [(11, 7)]  # the other subscription synced; nothing of the failed one
    # Fixing the template delivers the failed subscription's events.
    r = await http.patch(f"/api/programs/{sub}/eventSubs/{pub}", json={"LbApiPayloadTemplate": {"_default": {"importProcessId": 5, "batchRowTemplate": '{"n": {{n}}}'}}}, headers=system)
    assert r.status == 204
    status, body = await process(http, system, sub)
    assert status == 200 and delivered(lb) == [(11, 7), (5, 1), (5, 2)]


async def test_concurrent_calls_run_one_after_the_other(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, _ = names()
    await register(pool, lb, sub, pub)
    await subscribe(http, system, sub, pub)
    await append(settings, [encode_event(event(pub, n)) for n in range(1, 6)])
    lb.behaviour.delay_s = 0.3
    results = await asyncio.gather(process(http, system, sub), process(http, system, sub))
    assert [s for s, _ in results] == [200, 200]
    assert sorted(r["Subscriptions"][0]["Imported"] for _, r in results) == [0, 5]
    assert delivered(lb) == [(11, n) for n in range(1, 6)]


async def test_patch_last_sync_utc_replays_from_that_time(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, _ = names()
    await register(pool, lb, sub, pub)
    await subscribe(http, system, sub, pub)
    first = [event(pub, 1), event(pub, 2)]
    await append(settings, [encode_event(e) for e in first])
    await asyncio.sleep(0.05)
    replay_from = utc_now_text()
    await asyncio.sleep(0.05)
    await append(settings, [encode_event(event(pub, 3))])
    assert (await process(http, system, sub))[0] == 200
    assert delivered(lb) == [(11, 1), (11, 2), (11, 3)]
    r = await http.patch(f"/api/programs/{sub}/eventSubs/{pub}", json={"LastSyncUtc": replay_from}, headers=system)
    assert r.status == 204
    assert (await process(http, system, sub))[0] == 200
    assert delivered(lb)[3:] == [(11, 3)]  # only events created since that time, again


async def test_unknown_and_unconfigured_programs(http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    assert (await http.post("/api/processEvents?programId=NOPE", headers=system)).status == 404
    assert (await http.post("/api/processEvents?programId=bad%20id", headers=system)).status == 400
    await pool.execute("INSERT INTO programs (program_id, name) VALUES ('PUBONLY', 'x')")
    r = await http.post("/api/processEvents?programId=PUBONLY", headers=system)
    assert r.status == 422 and (await r.json())["error"] == "program_not_configured"


async def test_a_new_subscription_starts_from_the_publishers_first_event(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    sub, pub, other = names()
    await register(pool, lb, sub, pub, other)
    # Published before anyone subscribed, among another publisher's records.
    await append(settings, [encode_event(event(other, 100)), encode_event(event(pub, 1)), encode_event(event(other, 101)), encode_event(event(pub, 2))])
    await subscribe(http, system, sub, pub)
    await append(settings, [encode_event(event(pub, 3))])
    status, body = await process(http, system, sub)
    assert status == 200, body
    assert delivered(lb) == [(11, 1), (11, 2), (11, 3)]
    # PATCH LastSyncUtc = null: from the publisher's first event again.
    r = await http.patch(f"/api/programs/{sub}/eventSubs/{pub}", json={"LastSyncUtc": None}, headers=system)
    assert r.status == 204
    assert (await process(http, system, sub))[0] == 200
    assert delivered(lb)[3:] == [(11, 1), (11, 2), (11, 3)]


async def test_a_long_sync_blocks_neither_cursor_commands_nor_other_programs(
    stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, _, lb = stack
    slow_lb, slow_runner = await start_fake_lb(api_keys={LB_KEY})
    try:
        slow_lb.behaviour.hang = True
        a, pub, other = names()
        b = f"B{a}"
        await register(pool, slow_lb, a, pub, other)
        await register(pool, lb, b)
        await subscribe(http, system, a, pub)
        await subscribe(http, system, a, other)
        await subscribe(http, system, b, pub)
        await append(settings, [encode_event(event(pub, 1)), encode_event(event(other, 2))])
        await asyncio.sleep(0.05)
        replay_from = utc_now_text()
        long_sync = asyncio.create_task(process(http, system, a))
        while slow_lb.hanging < 1:  # A's sync is now waiting on its LB, at its first subscription
            await asyncio.sleep(0.02)
        first = min(pub, other)
        clock = time.monotonic()
        r = await http.patch(f"/api/programs/{a}/eventSubs/{first}", json={"LastSyncUtc": replay_from}, headers=system)
        assert r.status == 204
        status, body = await process(http, system, b)
        assert status == 200 and body["Subscriptions"][0]["Imported"] == 1
        assert time.monotonic() - clock < 5  # served while A's sync waits
        assert not long_sync.done()
        slow_lb.reset()  # the held request is answered 503; the retry is accepted
        status, body = await long_sync
        # The first batch went through, but the PATCH moved that cursor meanwhile: the PATCH wins.
        assert status == 409 and body["error"] == "cursor_moved", body
        by_pub = {s["PublisherProgramId"]: s for s in body["Subscriptions"]}
        assert by_pub[first]["Status"] == "failed" and by_pub[first]["Imported"] == 1
        assert by_pub[max(pub, other)]["Status"] == "ok"
        r = await http.get(f"/api/programs/{a}/eventSubs/{first}", headers=system)
        assert (await r.json())["LastSyncUtc"] == replay_from
        status, body = await process(http, system, a)
        assert status == 200 and [s["Imported"] for s in body["Subscriptions"]] == [0, 0]  # nothing since replay_from
    finally:
        await slow_runner.cleanup()


async def test_past_the_timeout_504_and_the_sync_still_finishes_and_is_recorded(
    stack: Any, pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    settings, rpc, lb = stack
    lb.reset()
    impatient = settings.model_copy(update={"sync_timeout_s": 1.0})
    async with TestClient(TestServer(create_app(impatient, rpc=rpc, pool=pool))) as http:
        sub, pub, _ = names()
        await register(pool, lb, sub, pub)
        await subscribe(http, system, sub, pub)
        await append(settings, [encode_event(event(pub, n)) for n in range(1, 5)])
        lb.behaviour.delay_s = 1.5
        status, body = await process(http, system, sub)
        assert status == 504 and body["error"] == "sync_timeout", body
        sync_id = body["details"]["SyncId"]
        deadline = time.monotonic() + 30
        while True:
            r = await http.get(f"/api/programs/{sub}/syncs", headers=system)
            [recorded] = (await r.json())["Syncs"]
            if recorded["Status"] != "running" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert recorded["SyncId"] == sync_id and recorded["Status"] == "ok" and recorded["HttpStatus"] == 200
        assert [(b["Rows"], b["Status"]) for b in recorded["Batches"]] == [(3, "accepted"), (1, "accepted")]
        assert delivered(lb) == [(11, n) for n in range(1, 5)]


async def start_worker_and_wait(settings: HubSettings, rpc: RpcClient, key: str, log: Path, **env: str) -> HubProcess:
    worker = HubProcess("worker", settings, log, **env)
    deadline = time.monotonic() + 120
    while True:
        try:
            await rpc.request(settings.topic("sync.requests"), key, "ping", timeout=3)
            return worker
        except RpcTimeout:
            assert time.monotonic() < deadline and worker.process.poll() is None, worker.log_tail()


@pytest.mark.parametrize("moment", ["between_batches", "batch_in_flight", "sigterm"])
async def test_worker_killed_mid_sync(
    kafka_bootstrap: str, database_dsn: str, tmp_path: Path, pool: asyncpg.Pool, system: dict[str, str], moment: str
) -> None:
    """The guarantee of docs/sync.md: a batch whose acceptance was recorded is never sent
    again; a batch whose answer never came is sent again (LB may then hold it twice).
    The only worker dies (or is told to stop, "sigterm"); the caller keeps waiting, and the
    next worker resumes the sync under its SyncId and answers it."""
    settings = make_settings(kafka_bootstrap, database_dsn, tmp_path, lb_max_retries=0, lb_batch_row_cap=3, request_timeout_s=60)
    await ensure_topics(settings)
    rpc = RpcClient(settings)
    await rpc.start()
    lb, runner = await start_fake_lb(api_keys={LB_KEY})
    sub, pub, _ = names()
    worker = await start_worker_and_wait(settings, rpc, sub, tmp_path / "worker1.log")
    try:
        async with TestClient(TestServer(create_app(settings, rpc=rpc, pool=pool))) as http:
            await register(pool, lb, sub, pub)
            await subscribe(http, system, sub, pub)
            await append(settings, [encode_event(event(pub, n)) for n in range(1, 10)])  # three batches of 3
            lb.behaviour.delay_s = 1.0 if moment == "between_batches" else 30.0
            first_call = asyncio.create_task(process(http, system, sub))
            while len(lb.accepted) < 1:  # LB has queued batch 1; its answer is delayed
                await asyncio.sleep(0.02)
            if moment in ("between_batches", "sigterm"):
                lb.behaviour.hang, lb.behaviour.delay_s = True, 0.0
                while lb.hanging < 1:  # batch 1's answer was recorded; batch 2 is held unread
                    await asyncio.sleep(0.02)
            if moment == "sigterm":
                worker.stop()
                await asyncio.sleep(1)
                assert not first_call.done()  # no 503: the sync is handed over, not given up
            else:
                worker.kill()
            lb.behaviour.hang, lb.behaviour.delay_s = False, 0.0
            worker = await start_worker_and_wait(settings, rpc, sub, tmp_path / "worker2.log")
            status, body = await asyncio.wait_for(first_call, 60)  # the new worker resumed it
            assert status == 200, (body, worker.log_tail())
            assert body["Subscriptions"][0]["Imported"] == 9 and body["Subscriptions"][0]["Resent"] == 1
            rows = Counter(n for _, n in delivered(lb))
            assert set(rows) == set(range(1, 10))  # everything delivered ...
            twice = {n for n, c in rows.items() if c > 1}
            status, again = await process(http, system, sub)
            assert status == 200 and again["Subscriptions"][0]["Imported"] == 0  # nothing left behind
            r = await http.get(f"/api/programs/{sub}/syncs", headers=system)
            latest, resumed = (await r.json())["Syncs"]
            assert resumed["SyncId"] == body["SyncId"] and resumed["Status"] == "ok" and resumed["Resumed"] == 1
            assert latest["Status"] == "ok" and latest["Batches"] == []
            if moment in ("between_batches", "sigterm"):
                assert twice == set()  # ... and batch 1, accepted and recorded, not again
                assert [b["Status"] for b in resumed["Batches"]] == ["accepted", "unanswered", "accepted", "accepted"]
            else:
                assert twice == {1, 2, 3}  # batch 1 was queued at LB but its answer never came
                assert [b["Status"] for b in resumed["Batches"]] == ["unanswered", "accepted", "accepted", "accepted"]
                assert "may hold them twice" in resumed["Batches"][0]["LbMessage"]
            assert resumed["Batches"][0]["FileName"] != resumed["Batches"][2]["FileName"]
    finally:
        worker.stop()
        await runner.cleanup()
        await rpc.stop()
