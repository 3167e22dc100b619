"""Request ids, HTTP metrics and one access line for every request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from aiohttp import web

from api.auth import GRANTS_KEY
from hub_stream.platform.logs import request_id_var
from hub_stream.platform.metrics import HTTP_LATENCY, HTTP_REQUESTS, exposition

access_log = logging.getLogger("hub_stream.access")

# Probes and scrapes come every few seconds from machines: their access lines are DEBUG.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})

REQUEST_ID_HEADER = "X-Request-ID"
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _route_name(request: web.Request) -> str:
    """The route template (not the raw path), so labels stay few."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


@web.middleware
async def observe_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Accept or make an X-Request-ID, echo it, log with it, and count the request."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _GOOD_ID.match(given) else uuid.uuid4().hex
    token = request_id_var.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        route = _route_name(request)
        seconds = time.perf_counter() - started
        HTTP_REQUESTS.labels(request.method, route, str(status)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(seconds)
        _log_access(request, route, status, seconds)
        request_id_var.reset(token)


def _program_of(request: web.Request) -> str | None:
    """The program the request is about: the path's, the query's, else the key's only program."""
    program = request.match_info.get("programId") or request.query.get("programId")
    if program:
        return program[:64]
    grants = request.get(GRANTS_KEY)
    if grants is not None and len(grants.programs) == 1:
        return next(iter(grants.programs))
    return None


def _log_access(request: web.Request, route: str, status: int, seconds: float) -> None:
    """One line per request: method, route, status, duration, request_id (from the context), program, key."""
    level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    grants = request.get(GRANTS_KEY)
    access_log.log(
        level,
        "%s %s %d %.1f ms",
        request.method,
        route,
        status,
        seconds * 1000,
        extra={
            "request_id": request_id_var.get(),  # also on the record: a handler may format it later
            "method": request.method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "program_id": _program_of(request),
            "key_id": grants.user_id if grants is not None else None,
        },
    )


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: this API process's metrics, in the format the worker's /metrics answers too."""
    body, content_type = exposition(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})
