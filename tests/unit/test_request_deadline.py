"""A request path that meets a Kafka or PostgreSQL error, or that hangs: 503 ``unavailable``, in time.

CONTRACT.md "Conventions": never a 500 and never a hang. A real aiohttp
server with the API's error middleware; the handlers raise what the client
libraries raised in outages (issue 22), or unwind slowly when cancelled as
aiokafka's consumer stop did with brokers away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiokafka import errors as kafka_errors

from api.errors import OUTCOME_UNKNOWN, error_middleware
from api.state import SETTINGS
from hub_stream.local.embedded import free_port
from hub_stream.platform.settings import HubSettings

DEADLINE_S = 1.0


def _raising(exc: BaseException) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        raise exc

    return handler


async def _slow_to_unwind(request: web.Request) -> web.Response:
    """Waits on a dependency that never answers; once cancelled, takes 10 s to let go."""
    request[OUTCOME_UNKNOWN] = "Sending it again is safe."
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.sleep(10)
    return web.Response()


FAILURES: dict[str, BaseException] = {
    "node-not-ready": kafka_errors.NodeNotReadyError("Attempt to send a request to node which is not ready (node id 2)."),
    "kafka-timeout": kafka_errors.KafkaTimeoutError(),
    "not-enough-replicas": kafka_errors.NotEnoughReplicasError(),
    "producer-closed": kafka_errors.ProducerClosed(),
    "consumer-stopped": kafka_errors.ConsumerStoppedError(),
    "kafka-error": kafka_errors.KafkaError("Unable to update metadata"),
    "pg-query-cancelled": asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
    "pg-connection-gone": asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    "pg-read-only": asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    "pg-too-many": asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    "pg-pool-closed": asyncpg.exceptions.InterfaceError("pool is closed"),
}


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application(middlewares=[error_middleware])
    app[SETTINGS] = HubSettings(request_timeout_s=DEADLINE_S)
    for name, exc in FAILURES.items():
        app.router.add_get(f"/api/{name}", _raising(exc))
    app.router.add_get("/api/bug", _raising(ValueError("a bug")))
    app.router.add_post("/api/slow", _slow_to_unwind)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _call(url: str, method: str = "GET") -> tuple[int, dict[str, Any], dict[str, str], float]:
    started = time.monotonic()
    async with aiohttp.ClientSession() as http, http.request(method, url, timeout=aiohttp.ClientTimeout(total=30)) as r:
        return r.status, await r.json(), dict(r.headers), time.monotonic() - started


@pytest.mark.parametrize("name", sorted(FAILURES))
async def test_a_dependency_error_is_503_unavailable_with_retry_after(server: str, name: str) -> None:
    status, body, headers, _ = await _call(f"{server}/api/{name}")
    assert (status, body["error"]) == (503, "unavailable"), body
    assert int(headers["Retry-After"]) > 0
    assert body["details"]["dependency"] in ("the broker", "PostgreSQL"), body


async def test_a_bug_is_still_500(server: str) -> None:
    status, body, _, _ = await _call(f"{server}/api/bug")
    assert (status, body["error"]) == (500, "internal_error"), body


async def test_a_handler_slow_to_unwind_is_answered_at_the_deadline_saying_the_outcome_is_unknown(server: str) -> None:
    status, body, headers, seconds = await _call(f"{server}/api/slow", "POST")
    assert (status, body["error"]) == (503, "unavailable"), body
    assert int(headers["Retry-After"]) > 0
    assert seconds < DEADLINE_S + 1.5, f"answered after {seconds:.1f} s; the deadline is {DEADLINE_S} s"
    assert body["details"]["outcome"] == "unknown" and body["details"]["safeToRetry"] is True, body
    assert "again is safe" in body["message"], body
