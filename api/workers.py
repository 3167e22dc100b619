"""Asking the workers: one request over hub_stream.platform.request_reply, its reply or a problem.

Shared by every area whose calls are commands to an agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from api.errors import ApiError, unavailable
from api.state import RPC, SETTINGS
from hub_stream.platform.outages import WORKERS
from hub_stream.platform.request_reply import Reply, RpcTimeout


def problem_from(reply: Reply) -> ApiError:
    """A worker's 4xx/5xx reply as the API's problem answer."""
    body = reply.body if isinstance(reply.body, dict) else {}
    return ApiError(
        reply.status,
        str(body.get("error") or "worker_error"),
        str(body.get("message") or "A worker refused the request."),
        body.get("details") if isinstance(body.get("details"), dict) else {},
    )


async def ask(
    app: web.Application,
    topic: str,
    key: str,
    kind: str,
    body: Mapping[str, Any] | None = None,
    *,
    command_id: str | None = None,
    partition: int | None = None,
) -> Reply:
    """One request to the workers; a 4xx/5xx reply or no reply becomes an ApiError (503 on timeout).

    A broker that does not take the request raises DependencyUnavailable (503
    by the error middleware), within HUB_REQUEST_TIMEOUT_S as well.
    """
    settings = app[SETTINGS]
    try:
        reply = await app[RPC].request(
            settings.topic(topic), key, kind, body, command_id=command_id, partition=partition
        )
    except RpcTimeout:
        raise unavailable(
            WORKERS,
            f"No worker answered within {settings.request_timeout_s:g} s; try again shortly.",
            {"request": kind},
        ) from None
    if not reply.ok:
        raise problem_from(reply)
    return reply
