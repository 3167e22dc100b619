"""GET /healthz (the process is alive) and GET /readyz (it can do its work)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiohttp import web

from api.errors import problem
from api.state import POOL, RPC, SETTINGS

READY_TIMEOUT_S = 3.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def _check_database(request: web.Request) -> dict[str, Any]:
    async with request.app[POOL].acquire() as conn:
        await conn.fetchval("SELECT 1")
    return {}


async def _check_broker(request: web.Request) -> dict[str, Any]:
    await request.app[RPC].producer.client.fetch_all_metadata()
    return {}


async def _check_workers(request: web.Request) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    reply = await request.app[RPC].request(
        settings.topic("subscriptions.commands"),
        uuid.uuid4().hex,
        "ping",
        timeout=READY_TIMEOUT_S,
    )
    if not reply.ok:
        raise RuntimeError(f"worker answered {reply.status}")
    return {"worker": reply.body.get("worker") if isinstance(reply.body, dict) else None}


async def readyz(request: web.Request) -> web.Response:
    """200 when the broker, the database and a worker all answer; 503 naming what failed."""
    checks = {"broker": _check_broker, "database": _check_database, "workers": _check_workers}
    results: dict[str, Any] = {}
    failed: list[str] = []

    async def run(name: str) -> None:
        started = time.perf_counter()
        try:
            extra = await asyncio.wait_for(checks[name](request), READY_TIMEOUT_S + 1)
            results[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **extra}
        except Exception as exc:  # any failure means "not ready", with the reason
            failed.append(name)
            results[name] = {"ok": False, "reason": f"{type(exc).__name__}: {exc}"[:300]}

    await asyncio.gather(*(run(name) for name in checks))
    if failed:
        return problem(
            503, "not_ready", f"Not ready: {', '.join(sorted(failed))} did not answer.", {"checks": results}
        )
    return web.json_response({"status": "ready", "checks": results})
