"""The programs registry API on real PostgreSQL (and a real broker for the app's RPC client)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import basic

from api.app import create_app
from api.programs import SUBSCRIPTION_REFS
from hub_stream.access.keys import create_key
from hub_stream.access.programs import no_subscription_refs
from hub_stream.platform.request_reply import RpcClient
from hub_stream.platform.settings import HubSettings

pytestmark = pytest.mark.integration

UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LB_SECRET = "LBKEY-registry-test-0123456789"


@pytest.fixture
async def client(rpc: tuple[HubSettings, RpcClient], pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    settings, rpc_client = rpc
    app = create_app(settings, rpc=rpc_client, pool=pool)
    # No worker runs here: the registry is tested alone; the subscription check
    # against real workers is tested in test_subscriptions_api.py.
    app[SUBSCRIPTION_REFS] = no_subscription_refs
    async with TestClient(TestServer(app)) as c:
        yield c


def is_problem(body: Any, code: str) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"error", "message", "details"}
        and body["error"] == code
        and isinstance(body["message"], str)
        and isinstance(body["details"], dict)
    )


FULL = {
    "Name": "Acme Board",
    "LbBaseUrl": "https://acme.lb.example.com",
    "LbApiKey": LB_SECRET,
    "CreationPath": "HUB_IMPORT",
    "SendSuccessEmailTo": "ops@acme.example",
    "SendFailureEmailTo": "ops@acme.example; it@acme.example",
}


# --- PUT create / replace -----------------------------------------------------------


async def test_put_creates_then_get_shows_it_without_the_key(
    client: TestClient, system: dict[str, str], pool: asyncpg.Pool
) -> None:
    r = await client.put("/api/programs/ACME", json=FULL, headers=system)
    assert r.status == 201
    assert r.headers["Location"] == "/api/programs/ACME"
    r = await client.get("/api/programs/ACME", headers=system)
    assert r.status == 200
    text = await r.text()
    assert LB_SECRET not in text
    body = await r.json()
    assert set(body) == {
        "ProgramId", "Name", "LbBaseUrl", "LbApiKeySet", "CreationPath",
        "SendSuccessEmailTo", "SendFailureEmailTo", "CreatedUtc", "UpdatedUtc",
    }  # fmt: skip
    assert body["ProgramId"] == "ACME" and body["Name"] == "Acme Board"
    assert body["LbBaseUrl"] == FULL["LbBaseUrl"] and body["LbApiKeySet"] is True
    assert body["CreationPath"] == "HUB_IMPORT"
    assert body["SendSuccessEmailTo"] == FULL["SendSuccessEmailTo"]
    assert body["SendFailureEmailTo"] == FULL["SendFailureEmailTo"]
    assert UTC_MS.fullmatch(body["CreatedUtc"]) and UTC_MS.fullmatch(body["UpdatedUtc"])
    # The key is kept server-side for the sync.
    assert await pool.fetchval("SELECT lb_api_key FROM programs WHERE program_id = 'ACME'") == LB_SECRET


async def test_publisher_only_program_needs_no_lb_connection(client: TestClient, system: dict[str, str]) -> None:
    r = await client.put("/api/programs/PUB", json={"Name": "Publisher"}, headers=system)
    assert r.status == 201
    body = await (await client.get("/api/programs/PUB", headers=system)).json()
    assert body["LbBaseUrl"] is None and body["LbApiKeySet"] is False
    assert body["CreationPath"] == "LH"
    assert body["SendSuccessEmailTo"] is None and body["SendFailureEmailTo"] is None


async def test_put_replaces_every_field_but_keeps_an_omitted_lb_key(
    client: TestClient, system: dict[str, str], pool: asyncpg.Pool
) -> None:
    assert (await client.put("/api/programs/ACME", json=FULL, headers=system)).status == 201
    before = await (await client.get("/api/programs/ACME", headers=system)).json()
    r = await client.put("/api/programs/ACME", json={"Name": "Acme 2"}, headers=system)
    assert r.status == 204
    after = await (await client.get("/api/programs/ACME", headers=system)).json()
    assert after["Name"] == "Acme 2"
    assert after["LbBaseUrl"] is None and after["CreationPath"] == "LH"
    assert after["SendSuccessEmailTo"] is None and after["SendFailureEmailTo"] is None
    assert after["LbApiKeySet"] is True  # omitted: kept
    assert after["CreatedUtc"] == before["CreatedUtc"]
    assert after["UpdatedUtc"] > before["UpdatedUtc"]
    assert await pool.fetchval("SELECT lb_api_key FROM programs WHERE program_id = 'ACME'") == LB_SECRET


async def test_put_with_a_new_lb_key_replaces_it_and_null_clears_it(
    client: TestClient, system: dict[str, str], pool: asyncpg.Pool
) -> None:
    assert (await client.put("/api/programs/ACME", json=FULL, headers=system)).status == 201
    r = await client.put("/api/programs/ACME", json={**FULL, "LbApiKey": "LBKEY-rotated"}, headers=system)
    assert r.status == 204
    assert await pool.fetchval("SELECT lb_api_key FROM programs WHERE program_id = 'ACME'") == "LBKEY-rotated"
    r = await client.put("/api/programs/ACME", json={**FULL, "LbApiKey": None}, headers=system)
    assert r.status == 204
    assert (await (await client.get("/api/programs/ACME", headers=system)).json())["LbApiKeySet"] is False
    assert await pool.fetchval("SELECT lb_api_key FROM programs WHERE program_id = 'ACME'") is None


@pytest.mark.parametrize("program_id", ["A", "a" * 25, "Acme_1.2-x", "acme"])
async def test_put_accepts_every_valid_id_shape(client: TestClient, system: dict[str, str], program_id: str) -> None:
    r = await client.put(f"/api/programs/{program_id}", json={"Name": "x"}, headers=system)
    assert r.status == 201
    assert (await (await client.get(f"/api/programs/{program_id}", headers=system)).json())["ProgramId"] == program_id


async def test_ids_are_case_sensitive(client: TestClient, system: dict[str, str]) -> None:
    assert (await client.put("/api/programs/ACME", json={"Name": "upper"}, headers=system)).status == 201
    assert (await client.put("/api/programs/acme", json={"Name": "lower"}, headers=system)).status == 201
    assert (await (await client.get("/api/programs/acme", headers=system)).json())["Name"] == "lower"


# --- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
@pytest.mark.parametrize("raw_id", ["a" * 26, "a%20b", "a*b", "%C3%A9t%C3%A9", "a%3Ab"])
async def test_invalid_program_id_is_400_naming_it(
    client: TestClient, system: dict[str, str], method: str, raw_id: str
) -> None:
    r = await client.request(method, f"/api/programs/{raw_id}", json={"Name": "x"}, headers=system)
    assert r.status == 400
    body = await r.json()
    assert is_problem(body, "invalid_program_id")
    assert body["details"]["ProgramId"] in body["message"] or repr(body["details"]["ProgramId"]) in body["message"]


@pytest.mark.parametrize("path", ["", "lh", "A" * 16, "A-B", "A B"])
async def test_creation_path_rule_is_400(client: TestClient, system: dict[str, str], path: str) -> None:
    r = await client.put("/api/programs/ACME", json={"Name": "x", "CreationPath": path}, headers=system)
    assert r.status == 400
    body = await r.json()
    assert is_problem(body, "invalid_body")
    assert [e["field"] for e in body["details"]["errors"]] == ["CreationPath"]


@pytest.mark.parametrize(
    "url", ["ftp://lb.example.com", "lb.example.com", "https://", "https://user:pw@lb.example.com", "https://h/?x=1"]
)
async def test_lb_base_url_must_be_http_url(client: TestClient, system: dict[str, str], url: str) -> None:
    r = await client.put("/api/programs/ACME", json={"Name": "x", "LbBaseUrl": url}, headers=system)
    assert r.status == 400
    body = await r.json()
    assert is_problem(body, "invalid_body") and body["details"]["errors"][0]["field"] == "LbBaseUrl"


async def test_unknown_fields_are_400_listing_them(client: TestClient, system: dict[str, str]) -> None:
    doc = {"Name": "x", "ProgramId": "ACME", "LbApiKeySet": True, "lbApiKey": "k"}
    r = await client.put("/api/programs/ACME", json=doc, headers=system)
    assert r.status == 400
    body = await r.json()
    assert is_problem(body, "unknown_fields")
    assert sorted(body["details"]["unknown_fields"]) == ["LbApiKeySet", "ProgramId", "lbApiKey"]
    for name in ("ProgramId", "LbApiKeySet", "lbApiKey"):
        assert name in body["message"]


async def test_wrong_types_are_400_listing_each_field(client: TestClient, system: dict[str, str]) -> None:
    doc = {"Name": 5, "LbBaseUrl": ["x"], "LbApiKey": 1234, "CreationPath": None, "SendSuccessEmailTo": 1}
    r = await client.put("/api/programs/ACME", json=doc, headers=system)
    assert r.status == 400
    body = await r.json()
    assert is_problem(body, "invalid_body")
    fields = sorted(e["field"] for e in body["details"]["errors"])
    assert fields == ["CreationPath", "LbApiKey", "LbBaseUrl", "Name", "SendSuccessEmailTo"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b'["Name"]', "invalid_body"),
        (b'"Acme"', "invalid_body"),
        (b"null", "invalid_body"),
        (b"{}", "invalid_body"),
    ],
)
async def test_bad_bodies_are_400(client: TestClient, system: dict[str, str], data: bytes, code: str) -> None:
    headers = {**system, "Content-Type": "application/json"}
    r = await client.put("/api/programs/ACME", data=data, headers=headers)
    assert r.status == 400
    assert is_problem(await r.json(), code)
    assert (await client.get("/api/programs/ACME", headers=system)).status == 404


async def test_body_over_one_mib_is_413(client: TestClient, system: dict[str, str]) -> None:
    big = b'{"Name": "' + b"x" * (1024 * 1024) + b'"}'
    r = await client.put("/api/programs/ACME", data=big, headers={**system, "Content-Type": "application/json"})
    assert r.status == 413
    assert is_problem(await r.json(), "payload_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
        for _ in range(17):
            yield b" " * 65536

    r = await client.put("/api/programs/ACME", data=chunks(), headers={**system, "Content-Type": "application/json"})
    assert r.status == 413
    assert is_problem(await r.json(), "payload_too_large")
    assert (await client.get("/api/programs/ACME", headers=system)).status == 404


# --- GET, list ------------------------------------------------------------------------


async def test_get_unknown_is_404(client: TestClient, system: dict[str, str]) -> None:
    r = await client.get("/api/programs/NOPE", headers=system)
    assert r.status == 404
    body = await r.json()
    assert is_problem(body, "unknown_program") and body["details"]["ProgramId"] == "NOPE"


async def test_list_is_sorted_by_id_and_hides_keys(client: TestClient, system: dict[str, str]) -> None:
    r = await client.get("/api/programs", headers=system)
    assert r.status == 200 and await r.json() == []
    for program_id in ("beta", "Zed", "ACME", "A.1", "a"):
        doc = {"Name": program_id, "LbApiKey": f"{LB_SECRET}-{program_id}"}
        assert (await client.put(f"/api/programs/{program_id}", json=doc, headers=system)).status == 201
    r = await client.get("/api/programs", headers=system)
    assert r.status == 200
    assert LB_SECRET not in await r.text()
    listed = await r.json()
    assert [p["ProgramId"] for p in listed] == ["A.1", "ACME", "Zed", "a", "beta"]  # byte order
    assert all(p["LbApiKeySet"] is True and "LbApiKey" not in p for p in listed)


# --- DELETE ------------------------------------------------------------------------


async def test_delete_then_404(client: TestClient, system: dict[str, str]) -> None:
    assert (await client.put("/api/programs/ACME", json=FULL, headers=system)).status == 201
    r = await client.delete("/api/programs/ACME", headers=system)
    assert r.status == 204
    assert (await client.get("/api/programs/ACME", headers=system)).status == 404
    r = await client.delete("/api/programs/ACME", headers=system)
    assert r.status == 404
    assert is_problem(await r.json(), "unknown_program")


async def test_delete_is_409_while_a_subscription_references_it(
    rpc: tuple[HubSettings, RpcClient], pool: asyncpg.Pool, system: dict[str, str]
) -> None:
    asked: list[str] = []
    referenced = {"ACME": ["ACME<-PUB", "BETA<-ACME"]}

    async def refs(program_id: str) -> list[str]:
        asked.append(program_id)
        return referenced.get(program_id, [])

    settings, rpc_client = rpc
    app = create_app(settings, rpc=rpc_client, pool=pool)
    app[SUBSCRIPTION_REFS] = refs  # as the subscriptions module will, in its setup
    async with TestClient(TestServer(app)) as client:
        assert (await client.put("/api/programs/ACME", json=FULL, headers=system)).status == 201
        r = await client.delete("/api/programs/ACME", headers=system)
        assert r.status == 409
        body = await r.json()
        assert is_problem(body, "program_in_use")
        assert body["details"] == {"ProgramId": "ACME", "Subscriptions": ["ACME<-PUB", "BETA<-ACME"]}
        assert "ACME<-PUB" in body["message"]
        assert asked == ["ACME"]
        assert (await client.get("/api/programs/ACME", headers=system)).status == 200
        # Unknown programs are 404 before anyone is asked about subscriptions.
        assert (await client.delete("/api/programs/NOPE", headers=system)).status == 404
        assert asked == ["ACME"]
        referenced.clear()
        assert (await client.delete("/api/programs/ACME", headers=system)).status == 204


def test_the_api_asks_the_subscriptions_before_a_delete(rpc: tuple[HubSettings, RpcClient]) -> None:
    app = create_app(rpc[0], rpc=rpc[1])
    assert app[SUBSCRIPTION_REFS] is not no_subscription_refs
    assert app[SUBSCRIPTION_REFS].func.__name__ == "subscription_refs"


async def test_delete_removes_the_program_from_keys_grants(
    client: TestClient, system: dict[str, str], pool: asyncpg.Pool
) -> None:
    for program_id in ("ACME", "BETA"):
        assert (await client.put(f"/api/programs/{program_id}", json={"Name": "x"}, headers=system)).status == 201
    r = await client.post("/api/keys", json={"Programs": {"ACME": "write", "BETA": "read"}}, headers=system)
    user_id = (await r.json())["UserId"]
    assert (await client.delete("/api/programs/ACME", headers=system)).status == 204
    listed = {k["UserId"]: k for k in await (await client.get("/api/keys", headers=system)).json()}
    assert listed[user_id]["Programs"] == {"BETA": "read"}
    # Re-registering the id later does not hand the old key its access back.
    assert (await client.put("/api/programs/ACME", json={"Name": "new owner"}, headers=system)).status == 201
    grants = await pool.fetchval("SELECT grants::text FROM api_keys WHERE user_id = $1", user_id)
    assert "ACME" not in grants


# --- authentication and access ----------------------------------------------------


ENDPOINTS = [
    ("GET", "/api/programs"),
    ("GET", "/api/programs/ACME"),
    ("PUT", "/api/programs/ACME"),
    ("DELETE", "/api/programs/ACME"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_every_endpoint_needs_credentials(client: TestClient, method: str, path: str) -> None:
    r = await client.request(method, path, json={"Name": "x"})
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert is_problem(await r.json(), "unauthorized")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_program_keys_are_403_even_with_write_on_that_program(
    client: TestClient, system: dict[str, str], pool: asyncpg.Pool, method: str, path: str
) -> None:
    assert (await client.put("/api/programs/ACME", json=FULL, headers=system)).status == 201
    key = await create_key(pool, programs={"ACME": "write"})
    r = await client.request(method, path, json={"Name": "x"}, headers=basic(key.user_id, key.api_key))
    assert r.status == 403
    assert is_problem(await r.json(), "forbidden")
    body = await (await client.get("/api/programs/ACME", headers=system)).json()
    assert body["Name"] == FULL["Name"]  # nothing changed
