"""Basic authentication on every /api request: 401 shapes, 403, and revocation across instances."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from support import basic

from api.app import create_app
from api.auth import require_read, require_write
from hub_stream.access.keys import create_key
from hub_stream.platform.request_reply import RpcClient
from hub_stream.platform.settings import HubSettings

pytestmark = pytest.mark.integration


async def _probe(request: web.Request) -> web.Response:
    """A stand-in for program-scoped endpoints: ?access=read|write on {programId}."""
    program_id = request.match_info["programId"]
    if request.query.get("access") == "write":
        require_write(request, program_id)
    else:
        require_read(request, program_id)
    return web.json_response({"ok": True})


def _app(rpc: tuple[HubSettings, RpcClient], pool: asyncpg.Pool) -> web.Application:
    app = create_app(rpc[0], rpc=rpc[1], pool=pool)
    app.router.add_get("/api/probe/{programId}", _probe)
    return app


@pytest.fixture
async def client(rpc: tuple[HubSettings, RpcClient], pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(_app(rpc, pool))) as c:
        yield c


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def is_problem(body: Any, code: str) -> bool:
    return isinstance(body, dict) and set(body) == {"error", "message", "details"} and body["error"] == code


async def _assert_401(client: TestClient, headers: dict[str, str], path: str = "/api/programs") -> None:
    r = await client.get(path, headers=headers)
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic ")
    assert r.content_type == "application/json"
    assert is_problem(await r.json(), "unauthorized")


async def test_missing_header_is_401(client: TestClient) -> None:
    await _assert_401(client, {})


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Basic",
        "Basic ",
        "Bearer abc",
        "Digest username=x",
        "Basic !!!not-base64!!!",
        "Basic " + b64("no-colon-here"),
        "Basic " + b64(":secret-only"),
        "Basic " + b64("user-only:"),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    ],
    ids=["empty", "scheme-only", "scheme-space", "bearer", "digest", "bad-base64", "no-colon", "no-user",
         "no-secret", "not-utf8"],
)
async def test_malformed_credentials_are_401(client: TestClient, value: str) -> None:
    await _assert_401(client, {"Authorization": value})


async def test_wrong_secret_unknown_user_and_revoked_are_401(client: TestClient, pool: asyncpg.Pool) -> None:
    key = await create_key(pool, system=True)
    assert (await client.get("/api/programs", headers=basic(key.user_id, key.api_key))).status == 200
    await _assert_401(client, basic(key.user_id, key.api_key + "x"))
    await _assert_401(client, basic(key.user_id, key.api_key[:-1]))
    await _assert_401(client, basic(key.user_id.upper(), key.api_key))
    await _assert_401(client, basic("u_" + "0" * 32, key.api_key))
    await pool.execute("UPDATE api_keys SET revoked_utc = now() WHERE user_id = $1", key.user_id)
    await _until_401(client, basic(key.user_id, key.api_key))
    await _assert_401(client, basic(key.user_id, key.api_key))


async def _until_401(client: TestClient, headers: dict[str, str], within_s: float = 1.0) -> None:
    """Requests until one is refused, failing after ``within_s``.

    A change made straight in the database reaches the API's key cache by
    PostgreSQL's notification, a few milliseconds after the commit.
    """
    started = time.monotonic()
    while (await client.get("/api/programs", headers=headers)).status != 401:
        assert time.monotonic() - started < within_s, f"the key still worked {within_s} s after its change"


async def test_a_grant_changed_in_the_database_applies_to_a_cached_key(client: TestClient, pool: asyncpg.Pool) -> None:
    await pool.execute("INSERT INTO programs (program_id, name) VALUES ('ACME', 'Acme') ON CONFLICT DO NOTHING")
    key = await create_key(pool, programs={"ACME": "read"})
    user = basic(key.user_id, key.api_key)
    for _ in range(3):  # the key's row is cached after the first
        assert (await client.get("/api/probe/ACME?access=write", headers=user)).status == 403
    await pool.execute("""UPDATE api_keys SET grants = '{"ACME": "write"}' WHERE user_id = $1""", key.user_id)
    started = time.monotonic()
    while (await client.get("/api/probe/ACME?access=write", headers=user)).status != 200:
        assert time.monotonic() - started < 1.0, "the new grant did not reach the API within a second"


async def test_a_revocation_while_the_cache_is_not_listening_takes_effect(client: TestClient, pool: asyncpg.Pool) -> None:
    key = await create_key(pool, system=True)
    user = basic(key.user_id, key.api_key)
    for _ in range(3):
        assert (await client.get("/api/programs", headers=user)).status == 200
    # Cut the cache's listening connection, as a database restart or a network cut would:
    # the revocation below is announced to nobody.
    cut = await pool.fetchval(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE query = 'LISTEN \"hub_api_keys\"' AND pid <> pg_backend_pid()"
    )
    assert cut >= 1
    await pool.execute("UPDATE api_keys SET revoked_utc = now() WHERE user_id = $1", key.user_id)
    await _until_401(client, user)
    other = await create_key(pool, system=True)  # and the cache works again after reconnecting
    assert (await client.get("/api/programs", headers=basic(other.user_id, other.api_key))).status == 200


async def test_the_scheme_name_is_case_insensitive(client: TestClient, pool: asyncpg.Pool) -> None:
    key = await create_key(pool, system=True)
    r = await client.get("/api/programs", headers={"Authorization": "basic " + b64(f"{key.user_id}:{key.api_key}")})
    assert r.status == 200


async def test_unknown_api_paths_still_need_credentials(client: TestClient) -> None:
    await _assert_401(client, {}, "/api/no/such/thing")


async def test_paths_outside_api_need_no_credentials(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200


async def test_program_keys_get_403_outside_their_grants(client: TestClient, pool: asyncpg.Pool) -> None:
    key = await create_key(pool, programs={"ACME": "write", "BETA": "read"})
    user = basic(key.user_id, key.api_key)

    async def status(path: str) -> int:
        r = await client.get(path, headers=user)
        if r.status == 403:
            assert is_problem(await r.json(), "forbidden")
            assert "WWW-Authenticate" not in r.headers
        return r.status

    assert await status("/api/probe/ACME?access=write") == 200
    assert await status("/api/probe/ACME?access=read") == 200
    assert await status("/api/probe/BETA?access=read") == 200
    assert await status("/api/probe/BETA?access=write") == 403
    assert await status("/api/probe/acme?access=read") == 403  # ids are case-sensitive
    assert await status("/api/probe/GAMMA?access=read") == 403
    assert await status("/api/programs") == 403  # system-only
    assert await status("/api/keys") == 403


async def test_system_keys_may_do_everything(client: TestClient, pool: asyncpg.Pool) -> None:
    key = await create_key(pool, system=True)
    system = basic(key.user_id, key.api_key)
    for path in ("/api/probe/ANY?access=write", "/api/probe/X?access=read", "/api/programs", "/api/keys"):
        assert (await client.get(path, headers=system)).status == 200


async def test_a_revocation_reaches_another_api_instance_within_a_second(
    rpc: tuple[HubSettings, RpcClient], database_dsn: str, pool: asyncpg.Pool
) -> None:
    # Two app instances, each with its own pool, as two processes behind a load balancer.
    other_pool = await asyncpg.create_pool(database_dsn, min_size=1, max_size=2)
    assert other_pool is not None
    admin_key = await create_key(pool, system=True)
    admin = basic(admin_key.user_id, admin_key.api_key)
    try:
        async with (
            TestClient(TestServer(_app(rpc, pool))) as first,
            TestClient(TestServer(_app(rpc, other_pool))) as second,
        ):
            made = await (await first.post("/api/keys", json={"System": True}, headers=admin)).json()
            user = basic(made["UserId"], made["ApiKey"])
            for _ in range(3):  # warm: the second instance has answered this key before
                assert (await second.get("/api/programs", headers=user)).status == 200
            assert (await first.delete(f"/api/keys/{made['UserId']}", headers=admin)).status == 204
            revoked_at = time.monotonic()
            while (await second.get("/api/programs", headers=user)).status != 401:
                assert time.monotonic() - revoked_at < 1.0, "the revocation did not reach the other instance"
            assert time.monotonic() - revoked_at < 1.0
            assert (await first.get("/api/programs", headers=user)).status == 401
    finally:
        await other_pool.close()
