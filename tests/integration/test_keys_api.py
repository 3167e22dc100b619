"""The API keys endpoints on real PostgreSQL (and a real broker for the app's RPC client)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import basic

from api.app import create_app
from hub_stream.access.keys import hash_secret, lookup_grants
from hub_stream.platform.request_reply import RpcClient
from hub_stream.platform.settings import HubSettings

pytestmark = pytest.mark.integration

UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
async def client(rpc: tuple[HubSettings, RpcClient], pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    settings, rpc_client = rpc
    async with TestClient(TestServer(create_app(settings, rpc=rpc_client, pool=pool))) as c:
        yield c


@pytest.fixture
async def registered(client: TestClient, system: dict[str, str]) -> None:
    for program_id in ("ACME", "BETA"):
        r = await client.put(f"/api/programs/{program_id}", json={"Name": program_id}, headers=system)
        assert r.status == 201


def is_problem(body: Any, code: str) -> bool:
    return isinstance(body, dict) and set(body) == {"error", "message", "details"} and body["error"] == code


async def _create(client: TestClient, system: dict[str, str], doc: dict[str, Any]) -> dict[str, str]:
    r = await client.post("/api/keys", json=doc, headers=system)
    assert r.status == 201, await r.text()
    return await r.json()


# --- POST -------------------------------------------------------------------------


async def test_create_system_key_shows_the_secret_once(
    client: TestClient, system: dict[str, str], pool: asyncpg.Pool
) -> None:
    r = await client.post("/api/keys", json={"System": True}, headers=system)
    assert r.status == 201
    assert r.headers["Cache-Control"] == "no-store"
    body = await r.json()
    assert set(body) == {"UserId", "ApiKey"}
    assert r.headers["Location"] == f"/api/keys/{body['UserId']}"
    assert re.fullmatch(r"u_[0-9a-f]{32}", body["UserId"])  # 128 random bits
    assert len(body["ApiKey"]) >= 43  # 256 random bits, url-safe base64
    # It works, and only its hash is stored.
    new = basic(body["UserId"], body["ApiKey"])
    assert (await client.get("/api/programs", headers=new)).status == 200
    row = await pool.fetchrow("SELECT * FROM api_keys WHERE user_id = $1", body["UserId"])
    assert bytes(row["secret_hash"]) == hash_secret(body["ApiKey"])
    assert body["ApiKey"] not in str(dict(row))
    # Never again: not in the list, not in the single view.
    for path in ("/api/keys", f"/api/keys/{body['UserId']}"):
        r = await client.get(path, headers=system)
        assert r.status == 200 and body["ApiKey"] not in await r.text()


async def test_create_program_key_with_read_and_write(
    client: TestClient, system: dict[str, str], registered: None, pool: asyncpg.Pool
) -> None:
    body = await _create(client, system, {"Programs": {"ACME": "write", "BETA": "read"}})
    grants = await lookup_grants(pool, body["UserId"], body["ApiKey"])
    assert grants is not None and not grants.system
    assert grants.programs == {"ACME": "write", "BETA": "read"}
    r = await client.get(f"/api/keys/{body['UserId']}", headers=system)
    shown = await r.json()
    assert shown["System"] is False and shown["Programs"] == {"ACME": "write", "BETA": "read"}


async def test_granting_unregistered_programs_is_422_naming_them(
    client: TestClient, system: dict[str, str], registered: None, pool: asyncpg.Pool
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM api_keys")
    doc = {"Programs": {"ACME": "write", "ZULU": "read", "NOPE": "write"}}
    r = await client.post("/api/keys", json=doc, headers=system)
    assert r.status == 422
    body = await r.json()
    assert is_problem(body, "unknown_program")
    assert body["details"]["ProgramIds"] == ["NOPE", "ZULU"]
    assert "NOPE" in body["message"] and "ZULU" in body["message"]
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == before


async def test_invalid_program_ids_in_grants_are_400(client: TestClient, system: dict[str, str]) -> None:
    r = await client.post("/api/keys", json={"Programs": {"a b": "read", "x" * 26: "write"}}, headers=system)
    assert r.status == 400
    body = await r.json()
    assert is_problem(body, "invalid_program_id")
    assert sorted(body["details"]["ProgramIds"]) == sorted(["a b", "x" * 26])


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({}, "invalid_body"),
        ({"System": False}, "invalid_body"),
        ({"System": True, "Programs": {"ACME": "read"}}, "invalid_body"),
        ({"Programs": {}}, "invalid_body"),
        ({"Programs": {"ACME": "admin"}}, "invalid_body"),
        ({"Programs": ["ACME"]}, "invalid_body"),
        ({"System": "true"}, "invalid_body"),
        ({"System": 1}, "invalid_body"),
        ({"System": True, "UserId": "u_mine"}, "unknown_fields"),
        ({"system": True}, "unknown_fields"),
        ([{"System": True}], "invalid_body"),
    ],
)
async def test_bad_key_bodies_are_400(
    client: TestClient, system: dict[str, str], registered: None, pool: asyncpg.Pool, doc: Any, code: str
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM api_keys")
    r = await client.post("/api/keys", json=doc, headers=system)
    assert r.status == 400
    assert is_problem(await r.json(), code)
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == before


async def test_non_json_key_body_is_400(client: TestClient, system: dict[str, str]) -> None:
    r = await client.post("/api/keys", data=b"System=true", headers={**system, "Content-Type": "application/json"})
    assert r.status == 400
    assert is_problem(await r.json(), "invalid_json")


async def test_key_body_over_one_mib_is_413(client: TestClient, system: dict[str, str]) -> None:
    big = b'{"System": true, "x": "' + b"y" * (1024 * 1024) + b'"}'
    r = await client.post("/api/keys", data=big, headers={**system, "Content-Type": "application/json"})
    assert r.status == 413
    assert is_problem(await r.json(), "payload_too_large")


# --- GET --------------------------------------------------------------------------


async def test_list_shows_every_key_without_secrets(
    client: TestClient, system: dict[str, str], registered: None
) -> None:
    made = [
        await _create(client, system, {"System": True}),
        await _create(client, system, {"Programs": {"BETA": "read"}}),
    ]
    r = await client.get("/api/keys", headers=system)
    assert r.status == 200
    text = await r.text()
    listed = await r.json()
    assert len(listed) == 3  # the fixture's system key too
    for item in listed:
        assert set(item) == {"UserId", "System", "Programs", "CreatedUtc", "RevokedUtc"}
        assert UTC_MS.fullmatch(item["CreatedUtc"]) and item["RevokedUtc"] is None
    by_id = {k["UserId"]: k for k in listed}
    assert by_id[made[0]["UserId"]]["System"] is True and by_id[made[0]["UserId"]]["Programs"] == {}
    assert by_id[made[1]["UserId"]]["Programs"] == {"BETA": "read"}
    for key in made:
        assert key["ApiKey"] not in text
    assert "hash" not in text.lower()


async def test_get_unknown_key_is_404(client: TestClient, system: dict[str, str]) -> None:
    r = await client.get("/api/keys/u_nobody", headers=system)
    assert r.status == 404
    body = await r.json()
    assert is_problem(body, "unknown_key") and body["details"] == {"UserId": "u_nobody"}


# --- DELETE (revoke) ---------------------------------------------------------------


async def test_revoke_stops_the_key_at_once_and_is_listed(
    client: TestClient, system: dict[str, str], registered: None
) -> None:
    made = await _create(client, system, {"Programs": {"ACME": "write"}})
    user = basic(made["UserId"], made["ApiKey"])
    assert (await client.get("/api/programs", headers=user)).status == 403  # authenticated, not allowed
    r = await client.delete(f"/api/keys/{made['UserId']}", headers=system)
    assert r.status == 204
    r = await client.get("/api/programs", headers=user)
    assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    shown = await (await client.get(f"/api/keys/{made['UserId']}", headers=system)).json()
    assert UTC_MS.fullmatch(shown["RevokedUtc"])
    # Revoking again changes nothing: still 204, same revocation time.
    await asyncio.sleep(0.01)
    assert (await client.delete(f"/api/keys/{made['UserId']}", headers=system)).status == 204
    again = await (await client.get(f"/api/keys/{made['UserId']}", headers=system)).json()
    assert again["RevokedUtc"] == shown["RevokedUtc"]


async def test_revoke_unknown_is_404(client: TestClient, system: dict[str, str]) -> None:
    r = await client.delete("/api/keys/u_nobody", headers=system)
    assert r.status == 404
    assert is_problem(await r.json(), "unknown_key")


async def test_a_key_may_revoke_itself(client: TestClient, system: dict[str, str]) -> None:
    made = await _create(client, system, {"System": True})
    own = basic(made["UserId"], made["ApiKey"])
    assert (await client.delete(f"/api/keys/{made['UserId']}", headers=own)).status == 204
    assert (await client.get("/api/keys", headers=own)).status == 401
    assert (await client.get("/api/keys", headers=system)).status == 200  # others unaffected


# --- authentication and access ------------------------------------------------------


ENDPOINTS = [
    ("POST", "/api/keys"),
    ("GET", "/api/keys"),
    ("GET", "/api/keys/u_x"),
    ("DELETE", "/api/keys/u_x"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_every_key_endpoint_needs_credentials(client: TestClient, method: str, path: str) -> None:
    r = await client.request(method, path, json={"System": True})
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert is_problem(await r.json(), "unauthorized")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_program_keys_may_not_manage_keys(
    client: TestClient, system: dict[str, str], registered: None, pool: asyncpg.Pool, method: str, path: str
) -> None:
    made = await _create(client, system, {"Programs": {"ACME": "write"}})
    before = await pool.fetchval("SELECT count(*) FROM api_keys")
    r = await client.request(method, path, json={"System": True}, headers=basic(made["UserId"], made["ApiKey"]))
    assert r.status == 403
    assert is_problem(await r.json(), "forbidden")
    assert await pool.fetchval("SELECT count(*) FROM api_keys") == before


async def test_program_key_may_not_revoke_even_itself(
    client: TestClient, system: dict[str, str], registered: None
) -> None:
    made = await _create(client, system, {"Programs": {"ACME": "write"}})
    own = basic(made["UserId"], made["ApiKey"])
    assert (await client.delete(f"/api/keys/{made['UserId']}", headers=own)).status == 403
    shown = await (await client.get(f"/api/keys/{made['UserId']}", headers=system)).json()
    assert shown["RevokedUtc"] is None
