"""The API's error shape, body limit and health endpoints, on real services."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support import basic

from api.app import create_app
from hub_stream.access.keys import create_key
from hub_stream.platform.logs import JsonFormatter
from hub_stream.platform.request_reply import RpcClient
from hub_stream.platform.settings import HubSettings
from hub_stream.platform.topics import ensure_topics

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(settings: HubSettings, pool: asyncpg.Pool) -> AsyncIterator[TestClient]:
    await ensure_topics(settings)
    rpc = RpcClient(settings)
    await rpc.start()
    async with TestClient(TestServer(create_app(settings, rpc=rpc, pool=pool))) as c:
        yield c
    await rpc.stop()


def _is_problem(body: dict) -> bool:
    return set(body) == {"error", "message", "details"} and isinstance(body["details"], dict)


async def test_unknown_path_is_a_json_problem(client: TestClient) -> None:
    r = await client.get("/no/such/thing")
    assert r.status == 404
    body = await r.json()
    assert _is_problem(body) and body["error"] == "not_found"


async def test_wrong_method_is_a_json_problem_naming_allowed(client: TestClient) -> None:
    r = await client.delete("/healthz")
    assert r.status == 405
    body = await r.json()
    assert _is_problem(body) and body["error"] == "method_not_allowed"
    assert "GET" in body["details"]["allowed"]


async def test_body_over_one_mib_is_refused(client: TestClient) -> None:
    r = await client.post("/api/events", data=b"x" * (1024 * 1024 + 1), headers={"Content-Type": "application/json"})
    assert r.status == 413
    assert (await r.json())["error"] == "payload_too_large"


async def test_healthz(client: TestClient) -> None:
    r = await client.get("/healthz")
    assert r.status == 200 and (await r.json())["status"] == "alive"


async def test_readyz_says_which_part_is_missing(client: TestClient) -> None:
    # No worker runs in this test: broker and database answer, workers do not.
    r = await client.get("/readyz")
    assert r.status == 503
    body = await r.json()
    assert _is_problem(body) and body["error"] == "not_ready"
    checks = body["details"]["checks"]
    assert checks["broker"]["ok"] and checks["database"]["ok"] and checks["replies"]["ok"]
    assert not any(checks[agent]["ok"] for agent in ("intake", "subscriptions", "sync"))


async def test_api_without_credentials_is_401_with_challenge(client: TestClient) -> None:
    r = await client.get("/api/programs")
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert _is_problem(await r.json())


async def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["X-Request-ID"] == "abc-123"
    r = await client.get("/nowhere", headers={"X-Request-ID": "bad id with spaces"})
    made = r.headers["X-Request-ID"]
    assert made and " " not in made and made != "bad id with spaces"


async def test_metrics_count_requests_by_route_and_status(client: TestClient) -> None:
    await client.get("/healthz")
    await client.get("/no/such/path")
    r = await client.get("/metrics")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    text = await r.text()
    assert 'hub_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="unmatched",status="404"' in text
    assert "hub_http_request_seconds_bucket" in text


async def test_one_access_line_per_request(client: TestClient, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture) -> None:
    """docs/operations.md: method, route, status, duration, request_id, program and key id; probes at DEBUG."""
    key = await create_key(pool, system=True)
    auth = basic(key.user_id, key.api_key)
    caplog.set_level(logging.INFO, logger="hub_stream.access")
    await client.get("/api/programs/NOPE1", headers={**auth, "X-Request-ID": "rid-access-1"})
    await client.get("/healthz")
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "hub_stream.access"]
    assert len(lines) == 1, lines  # /healthz is a probe: DEBUG
    (line,) = lines
    assert (line["method"], line["route"], line["status"]) == ("GET", "/api/programs/{programId}", 404)
    assert (line["request_id"], line["program_id"], line["key_id"]) == ("rid-access-1", "NOPE1", key.user_id)
    assert isinstance(line["duration_ms"], float) and key.api_key not in str(line)
