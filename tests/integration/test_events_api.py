"""Publishing, deleting and listing events over HTTP, through a real worker (one `hub worker` process)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import TopicPartition
from support import HubProcess, basic, make_settings

from api.app import create_app
from hub_stream.access.keys import create_key
from hub_stream.events.log import EventLogReader
from hub_stream.events.records import partition_for
from hub_stream.platform.request_reply import RpcClient, RpcTimeout
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics
from schemas.timefmt import parse_utc, to_millis

pytestmark = pytest.mark.integration

UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
EVENT_ID = re.compile(r"E:(?P<pub>[A-Za-z0-9_.\-]{1,25})-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


async def wait_for_intake(client: RpcClient, settings: HubSettings, worker: HubProcess, timeout_s: float = 120) -> None:
    """Until the intake agent answers on every partition of the incoming topic."""
    deadline = time.monotonic() + timeout_s
    for partition in range(settings.events_partitions):
        while True:
            assert worker.process.poll() is None, f"worker exited:\n{worker.log_tail()}"
            try:
                await client.request(settings.topic("events.incoming"), "warmup", "ping", timeout=3, partition=partition)
                break
            except RpcTimeout:
                assert time.monotonic() < deadline, f"intake never answered:\n{worker.log_tail()}"


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, database_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[HubSettings, RpcClient, HubProcess]]:
    tmp = Path(tmp_path_factory.mktemp("events"))
    settings = make_settings(kafka_bootstrap, database_dsn, tmp, request_timeout_s=30.0)
    await ensure_topics(settings)
    worker = HubProcess("worker", settings, tmp / "worker.log")
    client = RpcClient(settings)
    await client.start()
    try:
        await wait_for_intake(client, settings, worker)
        yield settings, client, worker
    finally:
        await client.stop()
        worker.stop()


@pytest.fixture
async def http(stack: tuple[HubSettings, RpcClient, HubProcess], pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    settings, rpc, _ = stack
    async with TestClient(TestServer(create_app(settings, rpc=rpc, pool=pool))) as c:
        yield c


async def register(pool: asyncpg.Pool, *program_ids: str) -> None:
    await pool.executemany("INSERT INTO programs (program_id, name) VALUES ($1, $2)", [(p, f"Program {p}") for p in program_ids])


def ids(n: int) -> list[str]:
    """Fresh program ids: the worker's table lives for the whole module."""
    tag = uuid.uuid4().hex[:8]
    return [f"P{tag}-{i}.x" for i in range(n)]


def event(pub: str, n: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "PublisherProgramId": pub,
        "PublisherSystemId": "LMS",
        "PublisherEventId": f"ev-{n}",
        "EventType": "COURSE_DONE" if n % 2 else "EXAM_PASSED",
        "PublisherParticipantId": f"p{n}@example.org",
        "PublisherEventCategory": {"value": "COURSE", "label": "Course"},
        "PublisherEventData": {"n": n, "score": n * 1.5, "tags": ["a", "b"]},
        "EventStartUtc": "2026-11-20T10:00:00+01:00",
    }
    body.update(overrides)
    return body


def is_problem(body: Any, code: str) -> bool:
    return isinstance(body, dict) and set(body) == {"error", "message", "details"} and body["error"] == code


async def call(http: TestClient, method: str, path: str, headers: dict[str, str], json: Any = None, data: Any = None, params: Any = None) -> tuple[int, Any, Any]:
    async with http.request(method, path, headers=headers, json=json, data=data, params=params) as r:
        text = await r.text()
        body = await r.json() if text and r.content_type == "application/json" else text
        return r.status, body, r.headers


async def read_partition(settings: HubSettings, publisher: str) -> list[Any]:
    """Every record of the publisher's hub.events partition."""
    tp = TopicPartition(settings.topic("events"), partition_for(publisher, settings.events_partitions))
    async with EventLogReader(settings.kafka_bootstrap or "") as reader:
        begin, end = await reader.bounds(tp)
        return [r async for r in reader.records(tp, begin, end)]


async def list_all(http: TestClient, headers: dict[str, str], pub: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a listing, following NextPageToken."""
    found: list[dict[str, Any]] = []
    query = {k: str(v) for k, v in params.items()}
    while True:
        status, body, _ = await call(http, "GET", f"/api/events/{pub}", headers, params=query)
        assert status == 200, body
        found.extend(body["Events"])
        if body["NextPageToken"] is None:
            return found
        query["pageToken"] = body["NextPageToken"]


async def test_publish_is_idempotent_and_lands_on_the_stream(stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    settings, _, _ = stack
    (pub,) = ids(1)
    await register(pool, pub)

    status, body, headers = await call(http, "POST", "/api/events", system, event(pub, 1))
    assert status == 201, body
    event_id = body["EventId"]
    assert body == {"EventId": event_id} and EVENT_ID.fullmatch(event_id)["pub"] == pub
    assert headers["Location"] == f"/api/events/{event_id}"

    # The same content again (key order and timestamp spelling do not matter): 200, same EventId.
    same = event(pub, 1, EventStartUtc="2026-11-20T09:00:00.000Z")
    same = dict(reversed(list(same.items())))
    status, body, _ = await call(http, "POST", "/api/events", system, same)
    assert (status, body) == (200, {"EventId": event_id})

    # Other content under the same PublisherEventId: 409.
    status, body, _ = await call(http, "POST", "/api/events", system, event(pub, 1, EventType="OTHER"))
    assert status == 409 and is_problem(body, "duplicate_publisher_event_id")
    assert body["details"]["EventId"] == event_id

    records = [r for r in await read_partition(settings, pub) if r.key == pub.encode()]
    assert len(records) == 1
    stored = records[0]
    doc = json.loads(stored.value)
    assert doc == {
        "EventId": event_id,
        **event(pub, 1, EventStartUtc="2026-11-20T09:00:00.000Z"),
        "EventEndUtc": None,
        "CreatedUtc": doc["CreatedUtc"],
    }
    assert UTC_MS.fullmatch(doc["CreatedUtc"])
    assert stored.timestamp == to_millis(parse_utc(doc["CreatedUtc"]))
    assert dict(stored.headers) == {"hub-kind": b"event"}

    _, listed, _ = await call(http, "GET", f"/api/events/{pub}", system)
    assert listed == {"Events": [doc], "NextPageToken": None}


async def test_every_field_error_is_listed_at_once(http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    (pub,) = ids(1)
    await register(pool, pub)
    bad = {
        "PublisherProgramId": pub,
        "PublisherSystemId": "S" * 26,
        "PublisherEventId": "x" * 201,
        "EventType": "T" * 51,
        "PublisherParticipantId": 42,
        "PublisherEventCategory": {"label": "no value"},
        "PublisherEventData": [1, 2],
        "EventStartUtc": "yesterday",
        "EventEndUtc": "2026-13-01T00:00:00Z",
        "Colour": "red",
    }
    status, body, _ = await call(http, "POST", "/api/events", system, bad)
    assert status == 400 and is_problem(body, "unknown_fields"), body
    fields = [e["field"] for e in body["details"]["errors"]]
    assert sorted(fields) == sorted(
        ["PublisherSystemId", "PublisherEventId", "EventType", "PublisherParticipantId", "PublisherEventCategory.value",
         "PublisherEventData", "EventStartUtc", "EventEndUtc", "Colour"]
    )
    assert body["details"]["unknown_fields"] == ["Colour"]

    status, body, _ = await call(http, "POST", "/api/events", system, {})
    assert status == 400 and is_problem(body, "invalid_event")
    assert {e["field"] for e in body["details"]["errors"]} == {
        "PublisherProgramId", "PublisherEventId", "EventType", "PublisherParticipantId", "PublisherEventData", "EventStartUtc"
    }
    # Exactly at the limits is fine.
    edge = event(pub, 2, PublisherSystemId="S" * 25, PublisherEventId="x" * 200, EventType="T" * 50, PublisherParticipantId="p" * 200)
    assert (await call(http, "POST", "/api/events", system, edge))[0] == 201
    assert (await call(http, "POST", "/api/events", system, data=b"{nope"))[1]["error"] == "invalid_json"
    assert (await call(http, "POST", "/api/events", system, [event(pub, 3)]))[1]["error"] == "invalid_event"
    status, body, _ = await call(http, "POST", "/api/events", system, event(pub, 4, PublisherEventData={"x": "y" * 1_000_000}))
    assert status == 413 and is_problem(body, "event_too_large")
    status, body, _ = await call(http, "POST", "/api/events", system, event("bad id", 3))
    assert status == 400 and body["details"]["errors"][0]["field"] == "PublisherProgramId"


async def test_access_and_registration(http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    pub, other, ghost = ids(3)
    await register(pool, pub, other)
    writer = await create_key(pool, programs={pub: "write"})
    reader = await create_key(pool, programs={pub: "read", other: "write"})
    w, r = basic(writer.user_id, writer.api_key), basic(reader.user_id, reader.api_key)

    assert (await call(http, "POST", "/api/events", {}, event(pub, 1)))[0] == 401
    status, body, _ = await call(http, "POST", "/api/events", r, event(pub, 1))
    assert status == 403 and is_problem(body, "forbidden")
    status, body, _ = await call(http, "POST", "/api/events", w, event(pub, 1))
    assert status == 201
    event_id = body["EventId"]
    status, body, _ = await call(http, "POST", "/api/events", system, event(ghost, 1))
    assert status == 422 and is_problem(body, "unknown_program")

    # Reading needs read (write includes it); deleting needs write on the owner.
    assert (await call(http, "GET", f"/api/events/{pub}", r))[0] == 200
    assert (await call(http, "GET", f"/api/events/{pub}", w))[0] == 200
    assert (await call(http, "GET", f"/api/events/{other}", w))[0] == 403
    status, body, _ = await call(http, "DELETE", f"/api/events/{event_id}", r)
    assert status == 403 and is_problem(body, "forbidden")
    assert (await call(http, "DELETE", f"/api/events/{event_id}", w))[0] == 204


async def test_delete(stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    settings, _, _ = stack
    (pub,) = ids(1)
    await register(pool, pub)
    posted = [(await call(http, "POST", "/api/events", system, event(pub, n)))[1]["EventId"] for n in range(3)]

    status, body, _ = await call(http, "DELETE", f"/api/events/{posted[1]}", system)
    assert (status, body) == (204, "")
    records = [r for r in await read_partition(settings, pub) if r.key == pub.encode()]
    marker = records[-1]
    assert dict(marker.headers) == {"hub-kind": b"deleted"}
    doc = json.loads(marker.value)
    assert doc["EventId"] == posted[1] and marker.timestamp == to_millis(parse_utc(doc["DeletedUtc"]))
    assert [e["EventId"] for e in await list_all(http, system, pub)] == [posted[0], posted[2]]

    status, body, _ = await call(http, "DELETE", f"/api/events/{posted[1]}", system)
    assert status == 404 and is_problem(body, "event_not_found")
    unknown = f"E:{pub}-{uuid.uuid4()}"
    assert (await call(http, "DELETE", f"/api/events/{unknown}", system))[0] == 404
    for malformed in ("E:nope", f"E:{pub}-not-a-uuid", f"X:{pub}-{uuid.uuid4()}"):
        status, body, _ = await call(http, "DELETE", f"/api/events/{malformed}", system)
        assert status == 404 and is_problem(body, "event_not_found"), malformed
    # No ":": a program id, whose URL lists events (docs/api.md); an EventId is not listed.
    status, body, headers = await call(http, "DELETE", "/api/events/whatever", system)
    assert status == 405 and is_problem(body, "method_not_allowed") and headers["Allow"] == "GET,HEAD"
    status, body, headers = await call(http, "GET", f"/api/events/{posted[0]}", system)
    assert status == 405 and headers["Allow"] == "DELETE"
    # The PublisherEventId stays taken: publishing it again is refused, not resurrected.
    status, body, _ = await call(http, "POST", "/api/events", system, event(pub, 1))
    assert status == 409 and is_problem(body, "publisher_event_deleted")


async def test_listing_filters_and_pages(http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    pub, neighbour = ids(2)
    await register(pool, pub, neighbour)
    posted: list[str] = []
    for n in range(25):
        posted.append((await call(http, "POST", "/api/events", system, event(pub, n)))[1]["EventId"])
        if n == 11:
            await asyncio.sleep(0.05)  # a gap in CreatedUtc to filter on
    await call(http, "POST", "/api/events", system, event(neighbour, 1))

    everything = await list_all(http, system, pub, limit=7)
    assert [e["EventId"] for e in everything] == posted
    created = [e["CreatedUtc"] for e in everything]
    assert created == sorted(created)
    assert len((await call(http, "GET", f"/api/events/{pub}", system, params={"limit": "7"}))[1]["Events"]) == 7
    assert (await call(http, "GET", f"/api/events/{pub}", system))[1]["NextPageToken"] is None  # 25 < default 100

    boundary = everything[11]["CreatedUtc"]
    later = await list_all(http, system, pub, createdAfter=boundary, limit=5)
    assert [e["EventId"] for e in later] == posted[12:]
    earlier = await list_all(http, system, pub, createdBefore=everything[12]["CreatedUtc"], limit=5)
    assert [e["EventId"] for e in earlier] == posted[:12]
    exams = await list_all(http, system, pub, eventType="EXAM_PASSED", limit=4)
    assert [e["EventId"] for e in exams] == posted[0::2]
    both = await list_all(http, system, pub, eventType="COURSE_DONE", createdAfter=boundary, createdBefore="2999-01-01T00:00:00+05:00")
    assert [e["EventId"] for e in both] == posted[13::2]

    # A deletion whose marker comes after the page still hides the event on that page.
    _, page, _ = await call(http, "GET", f"/api/events/{pub}", system, params={"limit": "5"})
    assert (await call(http, "DELETE", f"/api/events/{posted[2]}", system))[0] == 204
    assert (await call(http, "POST", "/api/events", system, event(pub, 99)))[0] == 201
    _, again, _ = await call(http, "GET", f"/api/events/{pub}", system, params={"limit": "5"})
    assert [e["EventId"] for e in again["Events"]] == posted[:2] + posted[3:6]
    # The old token still works: it names a position, not a count.
    _, following, _ = await call(http, "GET", f"/api/events/{pub}", system, params={"limit": "5", "pageToken": page["NextPageToken"]})
    assert [e["EventId"] for e in following["Events"]] == posted[5:10]


async def test_listing_errors(http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    (pub,) = ids(1)
    await register(pool, pub)
    for n in range(3):
        await call(http, "POST", "/api/events", system, event(pub, n))
    _, page, _ = await call(http, "GET", f"/api/events/{pub}", system, params={"limit": "1", "eventType": "EXAM_PASSED"})
    token = page["NextPageToken"]
    assert token

    async def bad(params: dict[str, str], path: str = f"/api/events/{pub}", code: str = "invalid_query") -> dict[str, Any]:
        status, body, _ = await call(http, "GET", path, system, params=params)
        assert status == 400 and is_problem(body, code), (params, status, body)
        return body

    for limit in ("0", "1001", "-1", "ten", "1.5", ""):
        assert "limit" in (await bad({"limit": limit}))["details"]["parameters"]
    assert (await call(http, "GET", f"/api/events/{pub}", system, params={"limit": "1000"}))[0] == 200
    await bad({"createdAfter": "last tuesday"})
    await bad({"createdBefore": "2026-02-30T00:00:00Z"})
    await bad({"createdafter": "2026-01-01T00:00:00Z"})
    await bad({"pageToken": "not-a-token"})
    await bad({"pageToken": token})  # made for eventType=EXAM_PASSED
    await bad({"pageToken": token, "eventType": "COURSE_DONE"})
    assert (await call(http, "GET", f"/api/events/{pub}", system, params={"pageToken": token, "eventType": "EXAM_PASSED", "limit": "50"}))[0] == 200
    await bad({}, path="/api/events/bad!id", code="invalid_program_id")
    # A program with no events (registered or not) simply has none.
    assert (await call(http, "GET", f"/api/events/{ids(1)[0]}", system))[1] == {"Events": [], "NextPageToken": None}


async def test_created_utc_never_goes_backwards_in_a_partition(stack: Any, http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    settings, _, _ = stack
    pubs = ids(6)
    await register(pool, *pubs)
    posts = [call(http, "POST", "/api/events", system, event(pubs[i % 6], i)) for i in range(120)]
    assert {r[0] for r in await asyncio.gather(*posts)} == {201}
    for pub in pubs:
        stamps = [r.timestamp for r in await read_partition(settings, pub)]
        assert stamps == sorted(stamps)
