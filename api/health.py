"""GET /healthz (the process is alive) and GET /readyz (it can do its work)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
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


AGENTS = {
    # check name: (topic, the settings field with its partition count)
    "intake": ("events.incoming", "events_partitions"),
    "subscriptions": ("subscriptions.commands", "subscriber_partitions"),
    "sync": ("sync.requests", "subscriber_partitions"),
}
"""The agents a request may need, each pinged on every partition of its topic (docs/operations.md)."""


def _check_agent(name: str) -> Callable[[web.Request], Awaitable[dict[str, Any]]]:
    topic, partitions_field = AGENTS[name]

    async def check(request: web.Request) -> dict[str, Any]:
        """Every partition's owner answers a ping, through the reply path: a partition with no
        live owner (a worker stopped, or one agent of a worker stuck) is a request that would fail."""
        settings = request.app[SETTINGS]
        partitions = range(getattr(settings, partitions_field))

        async def ping(partition: int) -> Any:
            reply = await request.app[RPC].request(
                settings.topic(topic), uuid.uuid4().hex, "ping", timeout=READY_TIMEOUT_S, partition=partition
            )
            if not reply.ok:
                raise RuntimeError(f"answered {reply.status}")
            return reply.body.get("worker") if isinstance(reply.body, dict) else None

        answers = await asyncio.gather(*(ping(p) for p in partitions), return_exceptions=True)
        silent = [p for p, a in zip(partitions, answers) if isinstance(a, BaseException)]
        if silent:
            first = next(a for a in answers if isinstance(a, BaseException))
            raise RuntimeError(
                f"partition(s) {','.join(map(str, silent))} of {len(partitions)} did not answer"
                f" ({type(first).__name__}: {first})"
            )
        return {"partitions": len(partitions), "workers": sorted({str(a) for a in answers})}

    return check


async def _check_replies(request: web.Request) -> dict[str, Any]:
    """This API process reads its replies (without it every call that asks a worker times out)."""
    if not request.app[RPC].reading_replies():
        raise RuntimeError("the reply reader is not running")
    return {}


async def readyz(request: web.Request) -> web.Response:
    """200 when the broker, PostgreSQL, the reply path and every partition of every agent answer;
    503 naming what failed."""
    checks = {
        "broker": _check_broker,
        "database": _check_database,
        "replies": _check_replies,
        **{name: _check_agent(name) for name in AGENTS},
    }
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
