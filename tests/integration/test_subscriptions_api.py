"""Event subscriptions through the API and a real worker (one `hub worker` process)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from json import dumps
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import HubProcess, basic, make_settings

from api.app import create_app
from api.subscriptions import install_subscription_refs
from hub_stream.access.keys import create_key
from hub_stream.platform.request_reply import RpcClient, RpcTimeout
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics

pytestmark = pytest.mark.integration

UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
OBJECT_TEMPLATE = {
    "COURSE": {"action": "import", "label": "Course", "importProcessId": 12, "batchRowTemplate": '{"Id": "{{id}}", "Score": {{json score}}}'},
    "_default": {"action": "ignore"},
}
PLAIN_TEMPLATE = '{"Person": "{{@event.PublisherParticipantId}}", "Hours": {{json hours}}}'


async def wait_for_worker(client: RpcClient, settings: HubSettings, worker: HubProcess, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if worker.process.poll() is not None:
            raise AssertionError(f"worker exited:\n{worker.log_tail()}")
        try:
            await client.request(settings.topic("subscriptions.commands"), "warmup", "ping", timeout=3)
            await client.request(settings.topic("sync.requests"), "warmup", "ping", timeout=3)
            return
        except RpcTimeout:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker never answered:\n{worker.log_tail()}") from None


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap: str, database_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[HubSettings, RpcClient]]:
    """One worker process for the module, and the RPC client the in-process API uses."""
    tmp = Path(tmp_path_factory.mktemp("subs"))
    settings = make_settings(kafka_bootstrap, database_dsn, tmp, request_timeout_s=30.0)
    await ensure_topics(settings)
    worker = HubProcess("worker", settings, tmp / "worker.log")
    client = RpcClient(settings)
    await client.start()
    try:
        await wait_for_worker(client, settings, worker)
        yield settings, client
    finally:
        await client.stop()
        worker.stop()


@pytest.fixture
async def http(stack: tuple[HubSettings, RpcClient], pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    settings, rpc = stack
    app = create_app(settings, rpc=rpc, pool=pool)
    install_subscription_refs(app)
    async with TestClient(TestServer(app)) as c:
        yield c


async def register(pool: asyncpg.Pool, *program_ids: str) -> None:
    await pool.executemany("INSERT INTO programs (program_id, name) VALUES ($1, $2)", [(p, f"Program {p}") for p in program_ids])


def ids(n: int) -> list[str]:
    """Fresh program ids: the worker's tables live for the whole module."""
    tag = uuid.uuid4().hex[:8]
    return [f"P{tag}-{i}" for i in range(n)]


def is_problem(body: Any, code: str) -> bool:
    return isinstance(body, dict) and set(body) == {"error", "message", "details"} and body["error"] == code


async def call(http: TestClient, method: str, path: str, headers: dict[str, str], json: Any = None, data: Any = None) -> tuple[int, Any, Any]:
    async with http.request(method, path, headers=headers, json=json, data=data) as r:
        text = await r.text()
        body = await r.json() if text and r.content_type == "application/json" else text
        return r.status, body, r.headers


async def test_crud_round_trip(http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    sub, pub, pub2 = ids(3)
    await register(pool, sub, pub, pub2)
    base = f"/api/programs/{sub}/eventSubs"

    assert (await call(http, "GET", base, system))[:2] == (200, [])
    status, body, headers = await call(http, "POST", base, system, {"PublisherProgramId": pub2, "SynEnabled": True, "LbApiPayloadTemplate": OBJECT_TEMPLATE})
    assert (status, body) == (201, "")
    assert headers["Location"] == f"/api/programs/{sub}/eventSubs/{pub2}"
    status, _, _ = await call(http, "POST", base, system, {"PublisherProgramId": pub, "LbApiPayloadTemplate": PLAIN_TEMPLATE, "ImportProcessId": 44})
    assert status == 201

    status, one, _ = await call(http, "GET", f"{base}/{pub2}", system)
    assert status == 200
    assert set(one) == {"ProgramId", "PublisherProgramId", "CreatedUtc", "UpdatedUtc", "LastSyncUtc", "SyncEnabled", "LbApiPayloadTemplate", "ImportProcessId", "OnRenderError"}
    assert (one["ProgramId"], one["PublisherProgramId"], one["SyncEnabled"], one["LastSyncUtc"]) == (sub, pub2, True, None)
    assert one["LbApiPayloadTemplate"] == OBJECT_TEMPLATE
    assert list(one["LbApiPayloadTemplate"]) == list(OBJECT_TEMPLATE)  # as given, order too
    assert UTC_MS.fullmatch(one["CreatedUtc"]) and one["UpdatedUtc"] == one["CreatedUtc"]
    assert one["ImportProcessId"] is None and one["OnRenderError"] == "stop"

    status, listed, _ = await call(http, "GET", base, system)
    assert status == 200
    assert [s["PublisherProgramId"] for s in listed] == sorted([pub, pub2])
    plain = next(s for s in listed if s["PublisherProgramId"] == pub)
    assert (plain["LbApiPayloadTemplate"], plain["ImportProcessId"], plain["SyncEnabled"]) == (PLAIN_TEMPLATE, 44, False)

    await asyncio.sleep(0.01)  # UpdatedUtc has millisecond precision
    assert (await call(http, "PATCH", f"{base}/{pub2}", system, {"SyncEnabled": False}))[0] == 204
    _, one2, _ = await call(http, "GET", f"{base}/{pub2}", system)
    assert one2["SyncEnabled"] is False and one2["UpdatedUtc"] > one2["CreatedUtc"] == one["CreatedUtc"]

    # LastSyncUtc goes to the sync agent's cursor; the very next read shows it (as UTC ms Z).
    assert (await call(http, "PATCH", f"{base}/{pub2}", system, {"LastSyncUtc": "2026-11-22T09:00:00+01:00"}))[0] == 204
    assert (await call(http, "GET", f"{base}/{pub2}", system))[1]["LastSyncUtc"] == "2026-11-22T08:00:00.000Z"
    assert (await call(http, "PATCH", f"{base}/{pub2}", system, {"LastSyncUtc": None}))[0] == 204
    assert (await call(http, "GET", f"{base}/{pub2}", system))[1]["LastSyncUtc"] is None

    # Switch the plain one to the object form: its ImportProcessId goes away.
    assert (await call(http, "PATCH", f"{base}/{pub}", system, {"LbApiPayloadTemplate": OBJECT_TEMPLATE}))[0] == 204
    _, switched, _ = await call(http, "GET", f"{base}/{pub}", system)
    assert (switched["LbApiPayloadTemplate"], switched["ImportProcessId"]) == (OBJECT_TEMPLATE, None)

    assert (await call(http, "DELETE", f"{base}/{pub2}", system))[0] == 204
    status, body, _ = await call(http, "GET", f"{base}/{pub2}", system)
    assert status == 404 and is_problem(body, "subscription_not_found")
    status, body, _ = await call(http, "DELETE", f"{base}/{pub2}", system)
    assert status == 404 and is_problem(body, "subscription_not_found")
    assert [s["PublisherProgramId"] for s in (await call(http, "GET", base, system))[1]] == [pub]

    # Created again: a new subscription, with no cursor of the old one.
    assert (await call(http, "POST", base, system, {"PublisherProgramId": pub2}))[0] == 201
    _, again, _ = await call(http, "GET", f"{base}/{pub2}", system)
    assert again["LastSyncUtc"] is None and again["CreatedUtc"] >= one["CreatedUtc"]


async def test_post_with_a_start_point_shows_it(http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    sub, pub = ids(2)
    await register(pool, sub, pub)
    base = f"/api/programs/{sub}/eventSubs"
    assert (await call(http, "POST", base, system, {"PublisherProgramId": pub, "SyncEnabled": True, "LastSyncUtc": "2026-01-02T03:04:05.678901Z"}))[0] == 201
    _, one, _ = await call(http, "GET", f"{base}/{pub}", system)
    assert one["LastSyncUtc"] == "2026-01-02T03:04:05.678Z"


async def test_a_plain_template_whose_text_is_json_and_the_string_category_map(http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    """CONTRACT.md: a string is the category map only when every value of its JSON object is an entry."""
    sub, plain_pub, map_pub = ids(3)
    await register(pool, sub, plain_pub, map_pub)
    base = f"/api/programs/{sub}/eventSubs"
    json_row = '{"e": "{{email}}"}'
    status, body, _ = await call(http, "POST", base, system, {"PublisherProgramId": plain_pub, "LbApiPayloadTemplate": json_row})
    assert status == 422 and body["details"]["field"] == "ImportProcessId"
    assert (await call(http, "POST", base, system, {"PublisherProgramId": plain_pub, "LbApiPayloadTemplate": json_row, "ImportProcessId": 8}))[0] == 201
    _, one, _ = await call(http, "GET", f"{base}/{plain_pub}", system)
    assert (one["LbApiPayloadTemplate"], one["ImportProcessId"]) == (json_row, 8)

    category_map = dumps({"COURSE": {"importProcessId": 3, "batchRowTemplate": json_row}})
    status, body, _ = await call(http, "POST", base, system, {"PublisherProgramId": map_pub, "LbApiPayloadTemplate": category_map, "ImportProcessId": 8})
    assert status == 422 and body["details"]["field"] == "ImportProcessId"
    assert (await call(http, "POST", base, system, {"PublisherProgramId": map_pub, "LbApiPayloadTemplate": category_map}))[0] == 201
    # PATCH the plain one to another JSON-text row template: it stays plain, its ImportProcessId stays.
    assert (await call(http, "PATCH", f"{base}/{plain_pub}", system, {"LbApiPayloadTemplate": '{"f": "{{name}}"}'}))[0] == 204
    _, patched, _ = await call(http, "GET", f"{base}/{plain_pub}", system)
    assert (patched["LbApiPayloadTemplate"], patched["ImportProcessId"]) == ('{"f": "{{name}}"}', 8)


async def test_errors(http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    sub, pub, ghost = ids(3)
    await register(pool, sub, pub)
    base = f"/api/programs/{sub}/eventSubs"

    async def expect(method: str, path: str, status: int, code: str, body: Any = None, data: Any = None, headers: dict[str, str] = system) -> dict[str, Any]:
        got, answer, _ = await call(http, method, path, headers, json=body, data=data)
        assert (got, is_problem(answer, code)) == (status, True), (method, path, body, got, answer)
        return answer

    await expect("GET", f"/api/programs/{ghost}/eventSubs", 404, "unknown_program")
    await expect("GET", "/api/programs/has%20space/eventSubs", 400, "invalid_program_id")
    await expect("GET", f"/api/programs/{'x' * 26}/eventSubs/{pub}", 400, "invalid_program_id")
    await expect("GET", f"{base}/bad!id", 400, "invalid_program_id")
    await expect("GET", f"{base}/{pub}", 404, "subscription_not_found")
    await expect("POST", base, 422, "self_subscription", {"PublisherProgramId": sub})
    unknown = await expect("POST", base, 422, "unknown_program", {"PublisherProgramId": ghost})
    assert unknown["details"]["ProgramIds"] == [ghost]
    await expect("POST", f"/api/programs/{ghost}/eventSubs", 422, "unknown_program", {"PublisherProgramId": pub})
    await expect("POST", base, 400, "invalid_json", data=b"{not json")
    await expect("POST", base, 400, "invalid_body", [1, 2])
    extra = await expect("POST", base, 400, "unknown_fields", {"PublisherProgramId": pub, "Colour": "red"})
    assert extra["details"]["unknown_fields"] == ["Colour"]
    await expect("POST", base, 400, "invalid_body", {"SyncEnabled": True})  # no PublisherProgramId
    await expect("POST", base, 400, "invalid_body", {"PublisherProgramId": pub, "SyncEnabled": "yes"})
    await expect("POST", base, 400, "invalid_body", {"PublisherProgramId": pub, "LastSyncUtc": "yesterday"})
    await expect("POST", base, 400, "conflicting_fields", {"PublisherProgramId": pub, "SyncEnabled": True, "SynEnabled": True})
    await expect("POST", base, 400, "read_only_fields", {"PublisherProgramId": pub, "ProgramId": sub})
    bad = await expect("POST", base, 422, "invalid_template", {"PublisherProgramId": pub, "LbApiPayloadTemplate": {"COURSE": {"importProcessId": 1, "batchRowTemplate": '{"a":\n "{{#if x}}"}'}}})
    assert bad["details"]["entry"] == "COURSE" and bad["details"]["line"] == 2 and isinstance(bad["details"]["column"], int)
    helper = await expect("POST", base, 422, "invalid_template", {"PublisherProgramId": pub, "LbApiPayloadTemplate": {"COURSE": {"importProcessId": 1, "batchRowTemplate": '{"a": 1,\n "b": "{{Strng.Uppercase x}}"}'}}})
    assert (helper["details"]["line"], helper["details"]["column"]) == (2, 8) and helper["details"]["reason"] == "unknown helper 'Strng.Uppercase'"
    await expect("POST", base, 422, "invalid_template", {"PublisherProgramId": pub, "LbApiPayloadTemplate": PLAIN_TEMPLATE})
    await expect("POST", base, 422, "invalid_template", {"PublisherProgramId": pub, "LbApiPayloadTemplate": OBJECT_TEMPLATE, "ImportProcessId": 3})

    assert (await call(http, "POST", base, system, {"PublisherProgramId": pub, "LbApiPayloadTemplate": OBJECT_TEMPLATE}))[0] == 201
    await expect("POST", base, 409, "subscription_exists", {"PublisherProgramId": pub})
    for field in ("ProgramId", "PublisherProgramId", "CreatedUtc", "UpdatedUtc"):
        answer = await expect("PATCH", f"{base}/{pub}", 400, "read_only_fields", {field: "x", "SyncEnabled": True})
        assert answer["details"]["read_only_fields"] == [field]
    await expect("PATCH", f"{base}/{pub}", 400, "empty_patch", {})
    await expect("PATCH", f"{base}/{pub}", 400, "unknown_fields", {"Nope": 1})
    await expect("PATCH", f"{base}/{pub}", 400, "invalid_body", {"SyncEnabled": None})
    await expect("PATCH", f"{base}/{ghost}", 404, "subscription_not_found", {"SyncEnabled": True})
    await expect("PATCH", f"{base}/{ghost}", 404, "subscription_not_found", {"LastSyncUtc": None})
    await expect("PATCH", f"{base}/{pub}", 422, "invalid_template", {"LbApiPayloadTemplate": "{{#each}}"}, )
    await expect("PATCH", f"{base}/{pub}", 422, "invalid_template", {"LbApiPayloadTemplate": PLAIN_TEMPLATE})
    await expect("DELETE", f"{base}/{ghost}", 404, "subscription_not_found")
    # The failed PATCHes changed nothing.
    _, one, _ = await call(http, "GET", f"{base}/{pub}", system)
    assert one["LbApiPayloadTemplate"] == OBJECT_TEMPLATE and one["UpdatedUtc"] == one["CreatedUtc"]

    # Keys: none (401), program-scoped even with write access (403).
    got, _, headers = await call(http, "GET", base, {})
    assert got == 401 and "Basic" in headers["WWW-Authenticate"]
    scoped = await create_key(pool, programs={sub: "write"})
    await expect("GET", base, 403, "forbidden", headers=basic(scoped.user_id, scoped.api_key))
    await expect("POST", base, 403, "forbidden", {"PublisherProgramId": pub}, headers=basic(scoped.user_id, scoped.api_key))


async def test_the_same_command_twice_changes_nothing_the_second_time(stack: tuple[HubSettings, RpcClient], http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    settings, rpc = stack
    sub, pub = ids(2)
    await register(pool, sub, pub)
    topic = settings.topic("subscriptions.commands")
    create = {"PublisherProgramId": pub, "SyncEnabled": False, "At": "2026-11-22T08:00:00.000Z"}
    first = await rpc.request(topic, sub, "create", create, command_id="cmd-create-1")
    second = await rpc.request(topic, sub, "create", create, command_id="cmd-create-1")
    assert first.status == second.status == 201 and first.body == second.body
    other = await rpc.request(topic, sub, "create", create, command_id="cmd-create-2")
    assert other.status == 409

    patch = {"PublisherProgramId": pub, "Changes": {"SyncEnabled": True}, "At": "2026-11-22T09:00:00.000Z"}
    assert (await rpc.request(topic, sub, "patch", patch, command_id="cmd-patch-1")).status == 200
    later = {**patch, "At": "2026-11-22T10:00:00.000Z"}  # a redelivery changes nothing, whatever it carries
    assert (await rpc.request(topic, sub, "patch", later, command_id="cmd-patch-1")).status == 200
    _, one, _ = await call(http, "GET", f"/api/programs/{sub}/eventSubs/{pub}", system)
    assert (one["UpdatedUtc"], one["SyncEnabled"]) == ("2026-11-22T09:00:00.000Z", True)

    delete = {"PublisherProgramId": pub, "At": "2026-11-22T11:00:00.000Z"}
    assert (await rpc.request(topic, sub, "delete", delete, command_id="cmd-delete-1")).status == 204
    assert (await rpc.request(topic, sub, "delete", delete, command_id="cmd-delete-1")).status == 204
    # The create redelivered after the delete does not bring the subscription back.
    assert (await rpc.request(topic, sub, "create", create, command_id="cmd-create-1")).status == 201
    assert (await call(http, "GET", f"/api/programs/{sub}/eventSubs", system))[1] == []


async def test_program_delete_is_refused_while_subscriptions_reference_it(http: TestClient, pool: asyncpg.Pool, system: dict[str, str]) -> None:
    sub, pub, other = ids(3)
    await register(pool, sub, pub, other)
    assert (await call(http, "POST", f"/api/programs/{sub}/eventSubs", system, {"PublisherProgramId": pub}))[0] == 201
    for program in (pub, sub):  # as publisher (found by scanning every partition) and as subscriber
        status, body, _ = await call(http, "DELETE", f"/api/programs/{program}", system)
        assert status == 409 and is_problem(body, "program_in_use"), body
        assert body["details"]["Subscriptions"] == [f"{sub}<-{pub}"]
    assert (await call(http, "DELETE", f"/api/programs/{other}", system))[0] == 204
    assert (await call(http, "DELETE", f"/api/programs/{sub}/eventSubs/{pub}", system))[0] == 204
    assert (await call(http, "DELETE", f"/api/programs/{pub}", system))[0] == 204
    assert (await call(http, "DELETE", f"/api/programs/{sub}", system))[0] == 204
